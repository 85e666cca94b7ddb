"""The reference for the benchmarks: the baseline line written as plainly as possible in SimPy.

Same arrivals, ALD times, failures (same random streams as the twin), buffer blocking, furnaces with the timeout
policy and setups, and QC as `plant.line.Line`, but no quality model and no recording: only counters.

The queues in front of the reactors and of QC are `simpy.Store`s, SimPy's idiom. `lean_queues=True` replaces them
with the twin's own `plant.equipment.lot_queue.LotQueue` (a deque, and one event only for a server that waits): the
like-for-like engine work that `benchmarks/run.py` also reports.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from plant.equipment.lot_queue import LotQueue

# source numbers of plant/random.py (the documented seeding contract, docs/architecture.md "Randomness")
ARRIVALS, ALD_TIME, FAILURES = 0, 1, 4


def stream(seed: int, replication: int, source: int, *sub: int, kind: str = "exponential", cv: float = 0.0):
    """Endless iterator of floats from SeedSequence(seed, spawn_key=(replication, source, *sub))."""
    ss = np.random.SeedSequence(seed, spawn_key=(replication, source, *sub))
    rng = np.random.Generator(np.random.PCG64(ss))
    while True:
        if kind == "exponential":
            yield from rng.standard_exponential(4096).tolist()
        elif cv > 0:  # gamma with mean 1 and the given coefficient of variation
            shape = 1.0 / (cv * cv)
            yield from rng.gamma(shape, 1.0 / shape, 4096).tolist()
        else:
            yield from [1.0] * 4096


@dataclass
class Counts:
    released: int = 0
    ald_done: int = 0
    batches: int = 0
    batch_lots: int = 0
    setups: int = 0
    qc_done: int = 0
    events: int = 0  # SimPy events scheduled


class Lot:
    __slots__ = ("lot_id", "recipe", "ald_factor", "ready_h")

    def __init__(self, lot_id: int, recipe: str, ald_factor: float) -> None:
        self.lot_id, self.recipe, self.ald_factor = lot_id, recipe, ald_factor
        self.ready_h = 0.0


class BareLine:
    """`BareLine(scenario, seed, replication).run()` -> Counts. Supports the baseline's options only."""

    def __init__(
        self, scenario: Any, seed: int | None = None, replication: int = 0, lean_queues: bool = False
    ) -> None:
        sc = scenario
        if sc.arrivals.kind != "poisson" or sc.arrivals.recipe_mix or sc.furnaces.policy.name != "timeout":
            raise ValueError(
                "the bare reference models poisson arrivals of one recipe and the timeout policy"
            )
        self.sc = sc
        self.seed = sc.seed if seed is None else int(seed)
        self.rep = replication
        self.env = simpy.Environment()
        self.counts = Counts()
        self.lean = lean_queues
        self.ald_queue = LotQueue(self.env) if lean_queues else simpy.Store(self.env)
        self.free_slots = sc.buffer.capacity_lots
        self.blocked: list[simpy.Event] = []  # reactors waiting for a buffer slot, first come first served
        self.buffer: list[Lot] = []
        self.qc_queue = LotQueue(self.env) if lean_queues else simpy.Store(self.env)
        self.wake = self.env.event()
        self.furnaces = [Furnace(self, i) for i in range(sc.furnaces.count)]

    def arrivals(self) -> Iterator[simpy.Event]:
        sc, env = self.sc, self.env
        gaps = stream(self.seed, self.rep, ARRIVALS)
        factors = stream(self.seed, self.rep, ALD_TIME, kind=sc.ald.time_distribution, cv=sc.ald.time_cv)
        mean_gap = 1.0 / sc.arrivals.rate_per_h
        lot_id = 0
        while True:
            yield env.timeout(next(gaps) * mean_gap)
            self.ald_queue.put(Lot(lot_id, sc.arrivals.recipe, next(factors)))
            self.counts.released += 1
            lot_id += 1

    def reactor(self, index: int) -> Iterator[simpy.Event]:
        env, ald = self.env, self.sc.ald
        nominal_h = ald.nominal_batch_h(self.sc.coating.cycles)
        fail = stream(self.seed, self.rep, FAILURES, 0, index)
        ttf = next(fail) * ald.mtbf_h if ald.mtbf_h else math.inf
        batches = 0
        while True:
            if self.lean:
                lot = self.ald_queue.take()
                if lot is None:
                    lot = yield self.ald_queue.wait()
            else:
                lot = yield self.ald_queue.get()
            work = nominal_h * lot.ald_factor
            while ttf <= work:  # failures on the operating-hours clock: work, repair, resume
                yield env.timeout(ttf)
                work -= ttf
                yield env.timeout(next(fail) * ald.mttr_h)
                ttf = next(fail) * ald.mtbf_h
            ttf -= work
            yield env.timeout(work)
            self.counts.ald_done += 1
            batches += 1
            if self.free_slots > 0:
                self.free_slots -= 1
            else:  # a full buffer blocks the reactor until a furnace takes a lot
                slot = env.event()
                self.blocked.append(slot)
                yield slot
            lot.ready_h = env.now
            self.buffer.append(lot)
            self.notify()
            if ald.pm_every_batches and batches % ald.pm_every_batches == 0 and ald.pm_h > 0:
                yield env.timeout(ald.pm_h)

    def notify(self) -> None:
        if not self.wake.triggered:
            self.wake.succeed()

    def dispatcher(self) -> Iterator[simpy.Event]:
        env = self.env
        max_wait_h = self.sc.furnaces.policy.options().get("max_wait_h", 6.0)
        while True:
            due = math.inf
            for furnace in self.furnaces:
                if not self.buffer:
                    break
                if not furnace.idle:
                    continue
                cap = furnace.capacity
                oldest = self.buffer[0]
                if len(self.buffer) >= cap or env.now >= oldest.ready_h + max_wait_h - 1e-9:
                    lots, self.buffer = self.buffer[:cap], self.buffer[cap:]
                    for _ in lots:  # hand each freed slot to a blocked reactor, if any
                        if self.blocked:
                            self.blocked.pop(0).succeed()
                        else:
                            self.free_slots += 1
                    furnace.idle = False
                    env.process(furnace.batch(lots))
                else:
                    due = min(due, oldest.ready_h + max_wait_h)
            if self.wake.triggered:
                self.wake = env.event()
            if due < math.inf:
                yield self.wake | env.timeout(due - env.now)
            else:
                yield self.wake

    def qc_station(self) -> Iterator[simpy.Event]:
        env, test_h = self.env, self.sc.qc.test_h
        while True:
            if self.lean:
                if self.qc_queue.take() is None:
                    yield self.qc_queue.wait()
            else:
                yield self.qc_queue.get()
            yield env.timeout(test_h)
            self.counts.qc_done += 1

    def run(self, until_h: float | None = None) -> Counts:
        env, sc = self.env, self.sc
        env.process(self.arrivals())
        for i in range(sc.ald.reactors):
            env.process(self.reactor(i))
        env.process(self.dispatcher())
        for _ in range(sc.qc.stations):
            env.process(self.qc_station())
        env.run(until=sc.horizon_h if until_h is None else until_h)
        self.counts.events = next(env._eid)
        return self.counts


class Furnace:
    def __init__(self, line: BareLine, index: int) -> None:
        self.line = line
        self.cfg = cfg = line.sc.furnaces
        self.capacity = cfg.capacity_lots
        self.idle = True
        self.recipe = None
        self.fail = stream(line.seed, line.rep, FAILURES, 1, index)
        self.ttf = next(self.fail) * cfg.mtbf_h if cfg.mtbf_h else math.inf

    def batch(self, lots: list[Lot]) -> Iterator[simpy.Event]:
        line, cfg = self.line, self.cfg
        env = line.env
        name = lots[0].recipe
        r = line.sc.recipes[name]
        if self.recipe is not None and name != self.recipe:
            old = line.sc.recipes[self.recipe]
            setup_h = (cfg.atmosphere_change_h if r.atmosphere != old.atmosphere else 0.0) + (
                cfg.setpoint_change_h if r.setpoint_c != old.setpoint_c else 0.0
            )
            if setup_h > 0:
                line.counts.setups += 1
                yield env.timeout(setup_h)
        self.recipe = name
        ramp_h = abs(r.setpoint_c - cfg.start_c) / r.ramp_c_per_min / 60.0
        cool_h = (r.setpoint_c - min(cfg.unload_c, r.setpoint_c)) / r.cool_c_per_min / 60.0
        cycle_h = ramp_h + r.soak_h + cool_h
        if cfg.load_h > 0:
            yield env.timeout(cfg.load_h)
        yield env.timeout(cycle_h)
        if cfg.unload_h > 0:
            yield env.timeout(cfg.unload_h)
        for lot in lots:
            line.qc_queue.put(lot)
        line.counts.batches += 1
        line.counts.batch_lots += len(lots)
        self.ttf -= cycle_h
        if self.ttf <= 0:
            yield env.timeout(next(self.fail) * cfg.mttr_h)
            self.ttf = next(self.fail) * cfg.mtbf_h
        self.idle = True
        line.notify()


def run_bare(
    scenario: Any, seed: int | None = None, replication: int = 0, lean_queues: bool = False
) -> Counts:
    """One replication of the bare reference line."""
    return BareLine(scenario, seed, replication, lean_queues).run()
