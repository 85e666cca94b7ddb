"""Shared fixtures: synthetic trace tables with the documented columns, and a scenario file for CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import settings

from twin import schema

# Property tests draw the same examples on every run (CI must not turn red on a new random draw; a failure found
# while developing is then reproducible). Set HYPOTHESIS_PROFILE=explore to search with fresh random examples.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parent.parent
TWIN = [sys.executable, "-m", "twin"]

_ARROW_TYPES = {"BIGINT": pa.int64(), "INTEGER": pa.int64(), "DOUBLE": pa.float64(), "VARCHAR": pa.string(),
                "BOOLEAN": pa.bool_()}  # fmt: skip


def _table(name: str, cols: dict[str, object]) -> pa.Table:
    """An Arrow table with every trace column of `name` (defaults: NaN, -1 or empty strings)."""
    t = schema.table(name)
    n = len(next(iter(cols.values())))
    arrays = {}
    for c in t.columns:
        if c.name in ("run_id", "replication"):
            continue
        typ = _ARROW_TYPES[c.type]
        if c.name in cols:
            arrays[c.name] = pa.array(cols[c.name], typ)
        elif typ == pa.float64():
            arrays[c.name] = pa.array(np.full(n, np.nan), typ)
        elif typ == pa.string():
            arrays[c.name] = pa.array([""] * n, typ)
        elif typ == pa.bool_():
            arrays[c.name] = pa.array([False] * n, typ)
        else:
            arrays[c.name] = pa.array([-1] * n, typ)
    return pa.table(arrays)


def synthetic_trace(seed: int, horizon_h: float = 200.0, n_lots: int = 80) -> dict[str, pa.Table]:
    """A plausible random trace: lots through 2 reactors and 2 furnaces, some scrap, some WIP at the end."""
    rng = np.random.default_rng(seed)
    release = np.sort(rng.uniform(0, horizon_h, n_lots))
    ald_start = release + rng.exponential(1.0, n_lots)
    ald_end = ald_start + rng.uniform(2.0, 3.0, n_lots)
    wait = rng.exponential(4.0, n_lots)
    anneal_start = ald_end + wait
    done = anneal_start + rng.uniform(8.0, 14.0, n_lots)
    status = np.where(rng.random(n_lots) < 0.85, "good", "scrap").astype(object)
    reason = np.where(status == "scrap", rng.choice(["residual_li", "damage", "under_dense"], n_lots), "")
    wip = done > horizon_h
    status[wip] = "wip"
    reason[wip] = ""
    done[wip] = np.nan
    anneal_start[anneal_start > horizon_h] = np.nan
    wait[np.isnan(anneal_start)] = np.nan
    ald_end[ald_end > horizon_h] = np.nan
    first_pass = (status == "good") & (rng.random(n_lots) < 0.9)
    n_b = n_lots // 3
    b_load = np.sort(rng.uniform(0, horizon_h, n_b))
    b_start = b_load + 0.5
    b_end = b_start + rng.uniform(10.0, 14.0, n_b)
    b_end[b_end > horizon_h] = np.nan
    lots = _table(
        "lots",
        {
            "lot_id": np.arange(n_lots),
            "recipe": ["std"] * n_lots,
            "mass_kg": rng.uniform(100, 140, n_lots),
            "release_h": release,
            "ald_unit": rng.choice(["ALD1", "ALD2"], n_lots).tolist(),
            "ald_start_h": ald_start,
            "ald_end_h": ald_end,
            "anneal_start_h": anneal_start,
            "wait_h": wait,
            "done_h": done,
            "status": status.tolist(),
            "first_pass": first_pass.tolist(),
            "reason": reason.tolist(),
            "r_int_ohm_cm2": np.where(wip, np.nan, rng.normal(20, 3, n_lots)),
            "rate_capability": np.where(wip, np.nan, rng.uniform(0.45, 0.55, n_lots)),
            "d_li_cm2_s": np.where(wip, np.nan, rng.uniform(1e-14, 1e-13, n_lots)),
            "bonding": np.where(wip, np.nan, rng.uniform(0.5, 1.0, n_lots)),
            "ret100": np.where(wip, np.nan, rng.uniform(0.85, 0.95, n_lots)),
            "precursor_mol": rng.uniform(1.0, 2.0, n_lots),
            "anneals": np.ones(n_lots, dtype=int),
        },
    )
    batches = _table(
        "batches",
        {
            "batch_id": np.arange(n_b),
            "furnace": rng.choice(["F1", "F2"], n_b).tolist(),
            "recipe": ["std"] * n_b,
            "setpoint_c": rng.choice([350.0, 400.0, 450.0], n_b),
            "n_lots": rng.integers(1, 5, n_b),
            "capacity_lots": np.full(n_b, 4),
            "setup_h": np.where(rng.random(n_b) < 0.3, 1.5, 0.0),
            "load_start_h": b_load,
            "start_h": b_start,
            "end_h": b_end,
            "energy_kwh": rng.uniform(300, 500, n_b),
            "o2_nm3": rng.uniform(10, 20, n_b),
        },
    )
    units = _table(
        "units",
        {
            "unit": ["ALD1", "ALD2", "BUF", "F1", "F2", "QC"],
            "kind": ["ald", "ald", "buffer", "furnace", "furnace", "qc"],
            "busy_h": rng.uniform(0, horizon_h, 6),
        },
    )
    events = _table(
        "events",
        {
            "t_h": release,
            "kind": ["arrive"] * n_lots,
            "unit": ["SRC"] * n_lots,
            "lot_id": np.arange(n_lots),
            "batch_id": np.full(n_lots, -1),
        },
    )
    tables = {"events": events, "lots": lots, "batches": batches, "units": units}
    for name in schema.TRACE_TABLES:  # any later trace table (e.g. states): empty, with its columns
        if name not in tables:
            cols = [c for c in schema.table(name).columns if c.name not in ("run_id", "replication")]
            tables[name] = pa.schema([(c.name, _ARROW_TYPES[c.type]) for c in cols]).empty_table()
    return tables


SMALL_SCENARIO = """\
name: small
horizon_h: {hours}
warmup_h: {warmup}
seed: 7
replications: 2
"""


@pytest.fixture
def small_scenario(tmp_path: Path) -> Path:
    """A short scenario (plant defaults, 120 h) for end-to-end CLI runs."""
    p = tmp_path / "small.yaml"
    p.write_text(SMALL_SCENARIO.format(hours=120, warmup=20))
    return p


def run_twin(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120):
    """Run the real CLI in a subprocess (`python -m twin ...`); returns the CompletedProcess."""
    full_env = dict(os.environ, COLUMNS="200", NO_COLOR="1", PYTHONPATH=str(REPO))
    full_env.update(env or {})
    return subprocess.run(
        [*TWIN, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
