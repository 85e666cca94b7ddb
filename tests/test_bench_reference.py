"""The bare SimPy reference of benchmarks/ models the same line as the twin, so it stays a fair baseline."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from plant.line import Line
from twin.scenario import load_scenario

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from bare_simpy_line import BareLine  # noqa: E402


@pytest.fixture(scope="module")
def baseline():
    sc = load_scenario(REPO / "scenarios" / "baseline.yaml")
    return sc.model_copy(update={"horizon_h": 1500.0})


def twin_counts(sc, seed: int, rep: int) -> dict[str, int]:
    line = Line(sc, seed, rep)
    trace = line.run()
    kinds = [e[1] for e in trace.events]
    return {
        "released": len(trace.lots),
        "ald_done": kinds.count("ald_end"),
        "batches": len(trace.batches),
        "batch_lots": sum(b[8] for b in trace.batches),
        "qc_done": kinds.count("qc_end"),
        "events": next(line.env._eid),
    }


@pytest.mark.parametrize("rep", [0, 1, 2])
def test_same_lots_released_and_same_flow(baseline, rep):
    bare = BareLine(baseline, 7, rep).run()
    twin = twin_counts(baseline, 7, rep)
    assert bare.released == twin["released"] > 600  # same arrival stream, same horizon
    assert bare.ald_done == twin["ald_done"]
    # no rework in the baseline, so the flow downstream is the same too: batches, lots annealed, QC throughput
    assert abs(bare.batches - twin["batches"]) <= 0.02 * twin["batches"]
    assert abs(bare.qc_done - twin["qc_done"]) <= 0.02 * twin["qc_done"]
    # the reference makes the engine do no more work than idiomatic SimPy needs, so it is not an easy target: it
    # schedules what the twin schedules plus simpy.Store's own events, one or two per lot put into a queue (the
    # put, and a get that finds the lot waiting). The twin's plant.equipment.lot_queue.LotQueue schedules neither.
    puts = bare.released + bare.batch_lots  # lots put into the ALD queue and into the QC queue
    assert puts <= bare.events - twin["events"] <= 2 * puts
    # with the twin's queues, the reference runs the same flow on exactly the twin's engine work: the twin/lean
    # ratio that benchmarks/run.py also prints is the cost of the twin's features alone
    lean = BareLine(baseline, 7, rep, lean_queues=True).run()
    assert (lean.released, lean.ald_done, lean.batches, lean.qc_done) == (
        bare.released,
        bare.ald_done,
        bare.batches,
        bare.qc_done,
    )
    assert lean.events == twin["events"]


def test_throughput_agrees_over_replications(baseline):
    bare = sum(BareLine(baseline, 11, r).run().qc_done for r in range(4))
    twin = sum(twin_counts(baseline, 11, r)["qc_done"] for r in range(4))
    assert bare == pytest.approx(twin, rel=0.02)
    assert twin > 4 * 0.4 * 1500 * 0.9  # ~0.5 lots/h arrive; most are through QC by the horizon


def test_reference_refuses_what_it_does_not_model(baseline):
    other = baseline.model_copy(update={"furnaces": baseline.furnaces.model_copy(
        update={"policy": baseline.furnaces.policy.model_copy(update={"name": "full"})})})  # fmt: skip
    with pytest.raises(ValueError, match="timeout policy"):
        BareLine(other, 1, 0)
