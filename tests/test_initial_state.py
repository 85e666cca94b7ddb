"""Starting the line from a given state (the forecast hook): lots in reactors, buffer and furnaces at time 0."""

from __future__ import annotations

import pytest
from linehelpers import scenario

from plant.initial import BatchAt, InitialState, LotAt, ReactorAt
from plant.line import Line


def test_lots_in_the_line_at_time_zero_finish_first_and_on_time():
    sc = scenario(horizon_h=100.0, arrivals={"kind": "takt", "takt_h": 1000.0}, ald={"time_distribution": "fixed",
                  "mtbf_h": None}, furnaces={"mtbf_h": None, "policy": {"name": "immediate"}})  # fmt: skip
    state = InitialState(
        reactors=[ReactorAt("ALD1", LotAt(10, "r400", elapsed_h=2.0))],
        buffer=[LotAt(11, "r400", elapsed_h=3.0), LotAt(12, "r400", elapsed_h=1.0)],
        furnaces=[BatchAt("F1", "r400", [LotAt(13, "r400", wait_h=2.0), LotAt(14, "r400")], elapsed_h=5.0)],
    )
    line = Line(sc, seed=1, initial=state)
    lots = line.run().tables()["lots"].to_pandas().set_index("lot_id")
    nominal_ald = sc.ald.nominal_batch_h(sc.coating.cycles)
    assert lots.loc[10, "ald_end_h"] == pytest.approx(nominal_ald - 2.0)
    # the batch in F1 ends after its remaining cycle plus unload
    cycle_h = line.dose("r400").duration_h
    assert lots.loc[13, "anneal_end_h"] == pytest.approx(cycle_h - 5.0 + sc.furnaces.unload_h)
    assert lots.loc[13, "wait_h"] == pytest.approx(2.0)
    # buffer lots are dispatched at once to the free furnace F2 (immediate policy), with their wait so far
    assert lots.loc[11, "wait_h"] == pytest.approx(3.0 + sc.furnaces.load_h)
    assert lots.loc[11, "batch_id"] == lots.loc[12, "batch_id"]
    # every injected lot is finished by the horizon; new arrivals get fresh ids
    assert set(lots.loc[[10, 11, 12, 13, 14], "status"]) <= {"good", "scrap"}
    assert lots.index.max() == 15 and lots.loc[15, "release_h"] == 0.0


def test_rework_lots_and_lots_in_qc_carry_their_earlier_anneals():
    sc = scenario(horizon_h=50.0, arrivals={"kind": "takt", "takt_h": 1000.0})
    state = InitialState(
        buffer=[LotAt(1, "r400", elapsed_h=1.0, anneals=1)], qc=[LotAt(2, "r400", elapsed_h=20.0)]
    )
    lots = Line(sc, seed=1, initial=state).run().tables()["lots"].to_pandas().set_index("lot_id")
    assert lots.loc[1, "anneals"] == 2 and not lots.loc[1, "first_pass"]
    assert lots.loc[2, "anneals"] == 1 and lots.loc[2, "qc_end_h"] == pytest.approx(sc.qc.test_h)
    assert lots.loc[2, "status"] == "good"
