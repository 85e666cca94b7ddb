"""Furnace scheduling policies: each one's promise checked on the simulated line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from linehelpers import scenario

from plant.line import Line
from plant.policies import POLICIES, FurnacePolicy, Start


def run(sc, seed=5):
    return {k: v.to_pandas() for k, v in Line(sc, seed=seed).run().tables().items()}


def test_the_five_policies_are_registered():
    assert {"full", "timeout", "immediate", "campaign", "quality_aware"} <= set(POLICIES)


def test_a_sixth_policy_is_one_class():
    class Smallest(FurnacePolicy):
        name = "test_pairs"

        def decide(self, now, queue, furnace):
            groups = self.groups(queue)
            lots = next(iter(groups.values()))
            return Start(lots[:2], "pairs") if len(lots) >= 2 else None

    try:
        tabs = run(scenario(furnaces={"policy": {"name": "test_pairs"}}))
        assert set(tabs["batches"].n_lots) == {2}
    finally:
        POLICIES.pop("test_pairs")


def test_full_never_starts_below_capacity():
    tabs = run(scenario(horizon_h=1500.0, furnaces={"capacity_lots": 4, "policy": {"name": "full"}}))
    b = tabs["batches"]
    assert len(b) > 50
    assert (b.n_lots == 4).all()


def busy_intervals(tabs) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for row in tabs["batches"].itertuples():
        out.setdefault(row.furnace, []).append((row.load_start_h, row.end_h))
    ev = tabs["events"]
    for unit, grp in ev[ev.kind.isin(["down", "up"])].groupby("unit"):
        if not unit.startswith("F"):
            continue
        times = grp.sort_values("t_h")
        downs = times[times.kind == "down"].t_h.tolist()
        ups = times[times.kind == "up"].t_h.tolist() + [np.inf]
        out.setdefault(unit, []).extend(zip(downs, ups))
    return out


def test_timeout_never_lets_a_lot_wait_longer_than_max_wait_when_a_furnace_is_free():
    max_wait = 4.0
    sc = scenario(horizon_h=3000.0, furnaces={"policy": {"name": "timeout", "max_wait_h": max_wait}})
    tabs = run(sc)
    ev = tabs["events"]
    t_in = ev[ev.kind == "buffer_in"].groupby("lot_id").t_h.first()
    t_out = ev[ev.kind == "buffer_out"].groupby("lot_id").t_h.first()
    waits = (t_out - t_in).dropna()
    busy = busy_intervals(tabs)
    furnaces = [f"F{i + 1}" for i in range(sc.furnaces.count)]
    long = waits[waits > max_wait + 1e-6]
    assert len(waits) > 500
    assert (tabs["batches"].reason == "timeout").sum() > 20  # the timer really fires
    for lot_id in long.index:
        t = t_in[lot_id] + max_wait
        # at the moment its timer fell due, every furnace was busy or down
        for f in furnaces:
            assert any(a - 1e-9 <= t <= b + 1e-9 for a, b in busy.get(f, [])), (lot_id, f, t)


def two_recipe_scenario(policy: dict):
    return scenario(
        horizon_h=2000.0,
        arrivals={"kind": "poisson", "rate_per_h": 0.45, "recipe_mix": {"o2": 1.0, "air": 1.0}},
        recipes={
            "o2": {"setpoint_c": 400.0, "soak_h": 3.0, "atmosphere": "O2"},
            "air": {"setpoint_c": 420.0, "soak_h": 3.0, "atmosphere": "air"},
        },
        furnaces={"policy": policy},
    )


def test_campaign_makes_fewer_setups_than_immediate():
    setups = {}
    for name in ("immediate", "campaign"):
        tabs = run(two_recipe_scenario({"name": name}))
        setups[name] = int((tabs["batches"].setup_h > 0).sum())
    assert setups["campaign"] < 0.7 * setups["immediate"], setups


def humid_slow_scenario(policy: dict):
    # slow arrivals fill batches slowly; three furnaces give the capacity to start early when lots are at risk
    return scenario(
        horizon_h=3000.0,
        arrivals={"kind": "poisson", "rate_per_h": 0.2},
        buffer={"capacity_lots": 40, "rh_pct": 70.0},
        furnaces={"count": 3, "capacity_lots": 4, "policy": policy},
    )


def test_quality_aware_loses_fewer_lots_to_residual_li_than_full():
    lost = {}
    for name in ("full", "quality_aware"):
        lots = run(humid_slow_scenario({"name": name}))["lots"]
        lost[name] = int((lots.reason == "residual_li").sum())
    assert lost["full"] > 20
    assert lost["quality_aware"] < 0.2 * lost["full"], lost


@pytest.mark.parametrize("name", ["full", "timeout", "immediate", "campaign", "quality_aware"])
def test_batches_hold_one_recipe_and_respect_capacity(name):
    tabs = run(two_recipe_scenario({"name": name}))
    lots, b = tabs["lots"], tabs["batches"]
    assert (b.n_lots <= b.capacity_lots).all() and (b.n_lots >= 1).all()
    merged = lots[lots.batch_id >= 0].merge(b[["batch_id", "recipe"]], on="batch_id", suffixes=("", "_batch"))
    assert (merged.recipe == merged.recipe_batch).all()
    assert isinstance(b, pd.DataFrame)
