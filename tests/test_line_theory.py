"""The line against queueing theory: Erlang C for an M/M/c ALD stage, Little's law, conservation of lots and mass."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from linehelpers import scenario
from scipy import stats

from plant.line import Line


def erlang_c_wq(lam: float, mu: float, c: int) -> float:
    """Mean wait in queue of an M/M/c queue (Erlang C)."""
    a = lam / mu
    rho = a / c
    terms = sum(a**k / math.factorial(k) for k in range(c))
    last = a**c / (math.factorial(c) * (1 - rho))
    p_wait = last / (terms + last)
    return p_wait / (c * mu - lam)


def mmc_scenario(lam: float, service_h: float, c: int, horizon_h: float):
    return scenario(
        horizon_h=horizon_h,
        arrivals={"kind": "poisson", "rate_per_h": lam},
        ald={
            "reactors": c,
            "load_h": 0.0,
            "pump_heat_h": 0.0,
            "vent_cool_h": 0.0,
            "unload_h": 0.0,
            "cycle_min": service_h * 60.0 / 10,
            "time_distribution": "exponential",
            "mtbf_h": None,
            "pm_every_batches": None,
        },
        buffer={"capacity_lots": 100_000},
        furnaces={"count": 50, "capacity_lots": 4, "mtbf_h": None, "policy": {"name": "immediate"}},
        qc={"stations": 100},
    )


def test_ald_stage_matches_erlang_c():
    lam, service_h, c = 0.5, 4.5, 3  # rho = 0.75
    sc = mmc_scenario(lam, service_h, c, horizon_h=6000.0)
    warmup = 500.0
    means = []
    for rep in range(20):
        lots = Line(sc, seed=11, replication=rep).run().tables()["lots"]
        lots = lots.filter(pc.greater_equal(lots["release_h"], warmup))
        wq = pc.subtract(lots["ald_start_h"], lots["release_h"]).to_numpy()
        means.append(wq[~np.isnan(wq)].mean())  # lots still queued at the horizon have no start
    means = np.array(means)
    theory = erlang_c_wq(lam, 1 / service_h, c)
    half = stats.t.ppf(0.975, len(means) - 1) * means.std(ddof=1) / math.sqrt(len(means))
    assert abs(means.mean() - theory) <= half, (means.mean(), theory, half)
    assert half / theory < 0.15  # the interval is tight enough to mean something


def test_erlang_c_formula():
    # c = 1 reduces to M/M/1: Wq = rho / (mu - lam); the c = 3 case of the test above, by hand: 3.4066 h
    assert math.isclose(erlang_c_wq(0.5, 1.0, 1), 0.5 / 0.5, rel_tol=1e-12)
    assert math.isclose(erlang_c_wq(0.5, 1 / 4.5, 3), 3.4066, rel_tol=1e-4)


def wip_time_average(events, t0: float, t1: float) -> float:
    """Time-average number of lots in the line from arrive (+1) and pass/scrap (-1) events."""
    kinds = events["kind"].to_pylist()
    times = events["t_h"].to_numpy()
    delta = np.array([1 if k == "arrive" else -1 if k in ("pass", "scrap") else 0 for k in kinds])
    mask = delta != 0
    t, d = times[mask], delta[mask]
    order = np.argsort(t, kind="stable")
    t, d = t[order], d[order]
    n = np.cumsum(d)
    area, level, last = 0.0, 0, t0
    for ti, ni in zip(t, n):
        if ti > t1:
            break
        if ti > t0:
            area += level * (ti - last)
            last = ti
        level = ni
    area += level * (t1 - last)
    return area / (t1 - t0)


def test_littles_law_on_the_full_line():
    sc = scenario(horizon_h=8760.0)
    tabs = Line(sc, seed=3).run().tables()
    L = wip_time_average(tabs["events"], 0.0, sc.horizon_h)
    lots = tabs["lots"].to_pandas()
    done = lots[lots.done_h.notna()]
    lam = len(lots) / sc.horizon_h
    W = (done.done_h - done.release_h).mean()
    assert len(done) > 3000
    assert abs(L - lam * W) / L < 0.02, (L, lam * W)


def check_conservation(sc, seed: int = 1) -> None:
    line = Line(sc, seed=seed)
    tabs = line.run().tables()
    lots, events = tabs["lots"].to_pandas(), tabs["events"].to_pandas()
    counts = events.kind.value_counts()
    arrived = int(counts.get("arrive", 0))
    assert len(lots) == arrived
    status = lots.status.value_counts()
    good, scrap, wip = (int(status.get(s, 0)) for s in ("good", "scrap", "wip"))
    assert good + scrap + wip == arrived
    assert good == int(counts.get("pass", 0)) and scrap == int(counts.get("scrap", 0))
    # mass balance
    assert math.isclose(
        lots.mass_kg.sum(),
        lots.mass_kg[lots.status == "good"].sum()
        + lots.mass_kg[lots.status == "scrap"].sum()
        + lots.mass_kg[lots.status == "wip"].sum(),
        rel_tol=1e-12,
    )
    # every WIP lot is physically somewhere in the line at the horizon
    in_ald_queue = len(line.ald_queue.items)
    in_buffer = len(line.buffer.queue)
    in_qc_queue = len(line.qc.queue.items)
    last = events[events.lot_id >= 0].groupby("lot_id").kind.last()
    wip_ids = set(lots.lot_id[lots.status == "wip"])
    where = last[last.index.isin(wip_ids)].value_counts()
    assert int(where.get("arrive", 0)) == in_ald_queue
    assert int(where.get("buffer_in", 0)) == in_buffer
    known = {"arrive", "ald_start", "ald_end", "blocked_start", "blocked_end", "buffer_in", "buffer_out",
             "batch_start", "batch_end", "qc_start", "qc_end", "rework"}  # fmt: skip
    assert set(where.index) <= known
    assert int(where.get("batch_end", 0)) >= in_qc_queue
    # lots in the furnaces at the horizon: started a batch but not ended it
    in_furnace = int(where.get("batch_start", 0)) + int(where.get("buffer_out", 0))
    assert in_furnace <= sum(f.capacity_lots for f in line.furnaces)


def test_conservation_baseline():
    check_conservation(scenario(horizon_h=2000.0))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.floats(0.05, 1.5),
    reactors=st.integers(1, 4),
    buffer_cap=st.integers(1, 20),
    furnaces=st.integers(1, 3),
    cap=st.integers(1, 6),
    policy=st.sampled_from(["full", "timeout", "immediate", "campaign", "quality_aware"]),
    rh=st.floats(0.0, 90.0),
    setpoint=st.floats(280.0, 700.0),
    seed=st.integers(0, 2**31),
)
def test_conservation_property(rate, reactors, buffer_cap, furnaces, cap, policy, rh, setpoint, seed):
    sc = scenario(
        horizon_h=300.0,
        arrivals={"kind": "poisson", "rate_per_h": rate, "recipe_mix": {"r400": 1.0, "alt": 1.0}},
        ald={"reactors": reactors},
        buffer={"capacity_lots": buffer_cap, "rh_pct": rh},
        furnaces={"count": furnaces, "capacity_lots": cap, "policy": {"name": policy}},
        recipes={
            "r400": {"setpoint_c": 400.0, "soak_h": 3.0, "atmosphere": "O2"},
            "alt": {"setpoint_c": setpoint, "soak_h": 2.0, "atmosphere": "N2"},
        },
    )
    check_conservation(sc, seed)
