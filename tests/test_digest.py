"""Every run table of 15 line variants, bit for bit: the SHA-256 of each table's Arrow IPC stream is pinned in
tests/data/run_digests.json. A refactor must leave them unchanged; a change of the model or the trace changes
them on purpose, and then `TWIN_UPDATE_DIGESTS=1 pytest tests/test_digest.py` rewrites the file (say so in the
commit message)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pytest
from linehelpers import scenario

from plant.initial import BatchAt, InitialState, LotAt, ReactorAt
from plant.line import Line
from twin.scenario import load_scenario

DIGESTS = Path(__file__).parent / "data" / "run_digests.json"
REPO = Path(__file__).resolve().parents[1]


def _baseline(**update):
    sc = load_scenario(REPO / "scenarios" / "baseline.yaml")
    return sc.model_copy(update={"horizon_h": 400.0, **update})


def _variants():
    mix = {"o2": 2.0, "n2": 1.0, "hot": 1.0}
    recipes = {
        "o2": {"setpoint_c": 400.0, "atmosphere": "O2"},
        "n2": {"setpoint_c": 400.0, "atmosphere": "N2"},
        "hot": {"setpoint_c": 450.0, "soak_h": 1.0, "atmosphere": "air"},
    }
    initial = InitialState(
        reactors=[ReactorAt("ALD1", LotAt(10, "r400", elapsed_h=2.0))],
        buffer=[LotAt(11, "r400", elapsed_h=3.0), LotAt(12, "r400", elapsed_h=1.0, anneals=1)],
        furnaces=[BatchAt("F1", "r400", [LotAt(13, "r400", wait_h=2.0)], elapsed_h=5.0)],
        qc=[LotAt(14, "r400", elapsed_h=20.0)],
    )
    return {
        "baseline": (_baseline(), None),
        "baseline-dry": (_baseline(buffer=_baseline().buffer.model_copy(update={"environment": "dry_room"})), None),
        "policy-full": (scenario(horizon_h=400.0, furnaces={"policy": {"name": "full"}}), None),
        "policy-immediate": (scenario(horizon_h=400.0, furnaces={"policy": {"name": "immediate"}}), None),
        "policy-campaign": (
            scenario(horizon_h=400.0, arrivals={"recipe_mix": mix}, recipes=recipes,
                     furnaces={"policy": {"name": "campaign", "max_wait_h": 8.0}}), None,
        ),
        "policy-quality": (scenario(horizon_h=400.0, furnaces={"policy": {"name": "quality_aware"}}), None),
        "recipe-mix-timeout": (scenario(horizon_h=400.0, arrivals={"recipe_mix": mix}, recipes=recipes), None),
        "takt": (scenario(horizon_h=300.0, arrivals={"kind": "takt", "takt_h": 1.7}), None),
        "calendar": (
            scenario(horizon_h=500.0, calendar={"pattern": "2x8-weekdays", "holidays": [2],
                                                 "shutdowns": [{"start_h": 200.0, "end_h": 230.0}]}), None,
        ),
        "calendar-clock": (
            scenario(horizon_h=400.0, ald={"failure_clock": "calendar", "mtbf_h": 80.0},
                     furnaces={"failure_clock": "calendar", "mtbf_h": 150.0}), None,
        ),
        "al2o3": (scenario(horizon_h=400.0, coating={"material": "Al2O3", "cycles": 4}), None),
        "rework": (scenario(horizon_h=400.0, recipes={"r400": {"setpoint_c": 330.0, "soak_h": 3.0}}), None),
        "big-line": (
            scenario(horizon_h=300.0, arrivals={"rate_per_h": 1.2}, ald={"reactors": 6},
                     furnaces={"count": 4, "capacity_lots": 6}, qc={"stations": 8}), None,
        ),
        "quality-overrides": (scenario(horizon_h=400.0, quality={"k_w_ppm2_per_h": 6.0e4, "rl_max_ppm": 1450.0}), None),
        "initial-state": (scenario(horizon_h=120.0), initial),
    }  # fmt: skip


def _digest(tables: dict[str, pa.Table]) -> dict[str, str]:
    out = {}
    for name in sorted(tables):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, tables[name].schema) as writer:
            writer.write_table(tables[name])
        out[name] = hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:20]
    return out


def _all_digests() -> dict[str, dict[str, str]]:
    return {
        name: _digest(Line(sc, seed=11, replication=1, initial=initial).run().tables())
        for name, (sc, initial) in _variants().items()
    }


def test_run_tables_of_15_variants_are_unchanged():
    got = _all_digests()
    assert len(got) == 15
    if os.environ.get("TWIN_UPDATE_DIGESTS"):
        DIGESTS.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(DIGESTS.read_text())
    changed = {
        f"{v}.{t}" for v in expected for t in expected[v] if got.get(v, {}).get(t) != expected[v][t]
    } | (set(got) ^ set(expected))
    assert not changed, f"run tables changed: {sorted(changed)} (TWIN_UPDATE_DIGESTS=1 if on purpose)"


def test_digests_are_deterministic():
    sc, initial = _variants()["policy-campaign"]
    a = _digest(Line(sc, seed=3, replication=0, initial=initial).run().tables())
    b = _digest(Line(sc, seed=3, replication=0, initial=initial).run().tables())
    c = _digest(Line(sc, seed=4, replication=0, initial=initial).run().tables())
    assert a == b and a["lots"] != c["lots"]


@pytest.mark.parametrize("name", ["baseline", "calendar", "initial-state"])
def test_each_variant_runs_lots_through_the_line(name):
    sc, initial = _variants()[name]
    lots = Line(sc, seed=11, replication=1, initial=initial).run().tables()["lots"]
    statuses = set(lots.column("status").to_pylist())
    assert lots.num_rows > 5 and "good" in statuses
