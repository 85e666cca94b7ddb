"""OEE factors and the active-period bottleneck on constructed lines."""

from __future__ import annotations

import pyarrow as pa
import pytest
from linehelpers import scenario

from plant.line import Line
from twin.oee import bottleneck, bottleneck_shares, unit_oee


def oee_of(sc, seed=1):
    tabs = Line(sc, seed=seed).run().tables()
    return unit_oee(tabs, sc).to_pandas().set_index("unit"), tabs


def test_bottleneck_shares_on_hand_made_states():
    # A is active 0-10 (one period of 10), B active 0-4 and 6-10 (periods of 4): A is the bottleneck all along
    states = pa.table({
        "unit": ["A", "B", "B", "B"],
        "state": ["productive", "productive", "standby", "productive"],
        "start_h": [0.0, 0.0, 4.0, 6.0],
        "end_h": [10.0, 4.0, 6.0, 10.0],
    })  # fmt: skip
    shares = bottleneck_shares(states, 0.0, 10.0)
    assert shares == {"A": pytest.approx(1.0), "B": pytest.approx(0.0)}
    # an idle stretch of A hands the bottleneck to B while B runs its long period
    states = pa.table({
        "unit": ["A", "A", "B"],
        "state": ["productive", "standby", "productive"],
        "start_h": [0.0, 2.0, 0.0],
        "end_h": [2.0, 10.0, 10.0],
    })  # fmt: skip
    assert bottleneck_shares(states, 0.0, 10.0) == {"A": pytest.approx(0.0), "B": pytest.approx(1.0)}


def test_single_reactor_line_has_the_reactor_as_bottleneck():
    sc = scenario(horizon_h=1500.0, arrivals={"kind": "poisson", "rate_per_h": 0.4}, ald={"reactors": 1})
    oee, _ = oee_of(sc)
    assert bottleneck(pa.Table.from_pandas(oee.reset_index())) == "ALD1"
    assert oee.loc["ALD1", "bottleneck_share"] > 0.8


def test_oee_factors_match_their_definitions():
    sc = scenario(horizon_h=3000.0, ald={"mtbf_h": 60.0, "mttr_h": 6.0, "pm_every_batches": None})
    oee, tabs = oee_of(sc)
    units = tabs["units"].to_pandas().set_index("unit")
    for u in ("ALD1", "ALD2", "ALD3"):
        planned = sc.horizon_h - units.loc[u, "pm_h"]
        expected_a = (
            planned - units.loc[u, "down_h"] - units.loc[u, "setup_h"] - units.loc[u, "unstaffed_h"]
        ) / planned
        assert oee.loc[u, "availability"] == pytest.approx(expected_a, rel=1e-9)
        assert oee.loc[u, "availability"] < 0.99  # failures cost availability
        assert 0 < oee.loc[u, "performance"] <= 1 and 0 < oee.loc[u, "quality"] <= 1
        row = oee.loc[u]
        assert row.oee == pytest.approx(row.availability * row.performance * row.quality)
    # with the `full` policy every batch is full, so the ideal hours are the productive hours
    sc = scenario(horizon_h=2000.0, furnaces={"policy": {"name": "full"}, "mtbf_h": None})
    full, tabs = oee_of(sc)
    units = tabs["units"].to_pandas().set_index("unit")
    run = sc.horizon_h - units.loc["F1", "pm_h"] - units.loc["F1", "setup_h"] - units.loc["F1", "down_h"]
    assert full.loc["F1", "performance"] == pytest.approx(units.loc["F1", "busy_h"] / run, rel=0.02)
    # a partial batch counts only its fill: `immediate` at low load books far more furnace hours than ideal ones
    sc = scenario(horizon_h=2000.0, arrivals={"rate_per_h": 0.15}, furnaces={"policy": {"name": "immediate"}})
    imm, tabs = oee_of(sc)
    busy = tabs["units"].to_pandas().set_index("unit").loc["F1", "busy_h"]
    assert imm.loc["F1", "performance"] < 0.6 * busy / sc.horizon_h
