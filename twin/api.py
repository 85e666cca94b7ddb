"""The Python API for notebooks and scripts: the same functions the CLI calls.

>>> import twin
>>> result = twin.run_scenario("scenarios/baseline.yaml", replications=5, db="twin.duckdb")
>>> result.summary.to_pandas()                     # KPI means and 95 % confidence intervals
>>> twin.query("SELECT * FROM runs", db="twin.duckdb").to_pandas()
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from twin.errors import TwinError
from twin.runner import Progress, RunResult, store_run
from twin.runner import run_scenario as _run_replications
from twin.store import DEFAULT_DB, Store, open_store

__all__ = [
    "DEFAULT_DB",
    "RunResult",
    "Store",
    "load_scenario",
    "open_store",
    "query",
    "run_scenario",
    "with_overrides",
]

PathLike = str | os.PathLike[str]


def load_scenario(path: PathLike) -> Any:
    """Load and validate a scenario YAML file (TwinError naming the file and field on a bad one)."""
    from twin.scenario import load_scenario as _load

    return _load(Path(path))


def with_overrides(scenario: Any, hours: float | None = None, warmup: float | None = None) -> Any:
    """A copy of `scenario` with another horizon and/or warm-up (hours); checks warm-up < horizon."""
    update: dict[str, float] = {}
    if hours is not None:
        if hours <= 0:
            raise TwinError(f"--hours must be positive, got {hours}")
        update["horizon_h"] = float(hours)
    if warmup is not None:
        if warmup < 0:
            raise TwinError(f"--warmup must be zero or positive, got {warmup}")
        update["warmup_h"] = float(warmup)
    if update:
        scenario = scenario.model_copy(update=update)
    if scenario.warmup_h >= scenario.horizon_h:
        raise TwinError(
            f"warm-up {scenario.warmup_h:g} h must be shorter than the horizon {scenario.horizon_h:g} h "
            f"(scenario {scenario.name})"
        )
    return scenario


def run_scenario(
    scenario: Any,
    replications: int | None = None,
    seed: int | None = None,
    hours: float | None = None,
    warmup: float | None = None,
    db: PathLike | Store | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Run a scenario (object or YAML path) with N replications; store it in `db` (path or Store) if given.

    A database path is opened and checked (lock, schema version) before simulating, then opened again to write
    the whole run in one transaction at the end, so other processes can read it while the run simulates.
    """
    if isinstance(scenario, str | os.PathLike):
        scenario = load_scenario(scenario)
    scenario = with_overrides(scenario, hours, warmup)
    if replications is not None and replications < 1:
        raise TwinError(f"--replications must be at least 1, got {replications}")
    if seed is not None and seed < 0:
        raise TwinError(f"--seed must be zero or positive, got {seed}")
    if isinstance(db, Store):
        return _run_replications(scenario, replications, seed, store=db, progress=progress)
    if db is not None:
        open_store(db).close()  # fail fast: unwritable, locked, other schema version
    result = _run_replications(scenario, replications, seed, store=None, progress=progress)
    if db is not None:
        with open_store(db) as store:
            store_run(store, result)
    return result


def query(sql: str, db: PathLike = DEFAULT_DB) -> pa.Table:
    """Run read-only SQL on a run-history database; returns an Arrow table (`.to_pandas()` for a DataFrame)."""
    with Store(db, read_only=True, check_schema=False) as store:
        return store.query_read_only(sql)
