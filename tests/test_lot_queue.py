"""plant.equipment.lot_queue.LotQueue: first in first out for lots and for waiting servers, and an M/M/c stage
built on it waits as Erlang C says."""

from __future__ import annotations

import math

import numpy as np
import simpy

from plant.equipment.lot_queue import LotQueue


def test_lots_go_to_the_servers_that_waited_longest_then_queue_in_order():
    env = simpy.Environment()
    q = LotQueue(env)
    got: list[tuple[str, float, str]] = []

    def server(name: str, start_h: float):
        yield env.timeout(start_h)
        while True:
            lot = q.take()
            if lot is None:
                lot = yield q.wait()
            got.append((name, env.now, lot))
            yield env.timeout(10.0)

    env.process(server("A", 0.0))
    env.process(server("B", 1.0))

    def arrivals():
        yield env.timeout(2.0)
        for lot in ("l1", "l2", "l3", "l4"):
            q.put(lot)
        assert len(q) == 2  # two lots went straight to the waiting servers, A first (it waited longer)
        assert list(q.items) == ["l3", "l4"]

    env.process(arrivals())
    env.run(until=100.0)
    assert got == [("A", 2.0, "l1"), ("B", 2.0, "l2"), ("A", 12.0, "l3"), ("B", 12.0, "l4")]
    assert len(q) == 0


def test_take_is_none_on_an_empty_queue_and_a_wait_gets_the_next_put():
    env = simpy.Environment()
    q = LotQueue(env)
    assert q.take() is None
    ev = q.wait()
    q.put("lot")
    assert ev.triggered and ev.value == "lot"
    assert len(q) == 0 and q.take() is None


def _m_m_c_waits(queue_kind: str, n: int, lam: float, mu: float, c: int, seed: int) -> list[float]:
    """Waits in queue of n lots at an M/M/c stage whose queue is a LotQueue or a simpy.Store."""
    rng = np.random.default_rng(seed)
    gaps, services = rng.exponential(1 / lam, n), rng.exponential(1 / mu, n)
    env = simpy.Environment()
    lean = queue_kind == "lot_queue"
    q = LotQueue(env) if lean else simpy.Store(env)
    waits: list[float] = []

    def source():
        for i in range(n):
            yield env.timeout(gaps[i])
            q.put((i, env.now))

    def server():
        while True:
            if lean:
                lot = q.take()
                if lot is None:
                    lot = yield q.wait()
            else:
                lot = yield q.get()
            i, arrived = lot
            waits.append(env.now - arrived)
            yield env.timeout(services[i])

    env.process(source())
    for _ in range(c):
        env.process(server())
    env.run()
    return waits


def test_an_m_m_c_stage_on_the_queue_waits_as_on_a_simpy_store_and_as_erlang_c_says():
    lam, mu, c, n = 1.5, 1.0, 2, 60_000  # utilisation 0.75
    waits = _m_m_c_waits("lot_queue", n, lam, mu, c, seed=11)
    assert len(waits) == n  # every lot was served: nothing lost in the queue
    # the same lots, served in the same order at the same times as SimPy's own store
    assert waits == _m_m_c_waits("store", n, lam, mu, c, seed=11)
    a, rho = lam / mu, lam / (c * mu)
    p0 = 1 / (sum(a**k / math.factorial(k) for k in range(c)) + a**c / (math.factorial(c) * (1 - rho)))
    erlang_c = a**c / (math.factorial(c) * (1 - rho)) * p0  # probability that a lot waits: 0.643
    wq = erlang_c / (c * mu - lam)  # mean wait in queue: 1.286 h
    # batch means past the start-up: 18 batches of 3,000 lots, far longer than the queue's memory
    batches = np.array(waits[n // 10 :]).reshape(18, -1)
    means, waited = batches.mean(axis=1), (batches > 0).mean(axis=1)
    assert abs(means.mean() - wq) <= 3 * means.std(ddof=1) / math.sqrt(len(means))
    assert abs(waited.mean() - erlang_c) <= 3 * waited.std(ddof=1) / math.sqrt(len(waited))
