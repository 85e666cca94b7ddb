"""The Python API for notebooks and scripts: the same functions the CLI calls.

>>> import twin
>>> result = twin.run_scenario("scenarios/baseline.yaml", replications=5, db="twin.duckdb")
>>> result.summary.to_pandas()                     # KPI means and 95 % confidence intervals
>>> twin.query("SELECT * FROM runs", db="twin.duckdb").to_pandas()
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from twin.dblock import DEFAULT_WAIT_S, STORE_WAIT_S, writer_lock
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
    "kpis_with_warmup",
    "run_to_precision",
    "sample_parameters",
    "strategy_robustness",
]

PathLike = str | os.PathLike[str]


def load_scenario(path: PathLike) -> Any:
    """Load and validate a scenario YAML file (TwinError naming the file and field on a bad one)."""
    from twin.scenario import load_scenario as _load

    return _load(Path(path))


def with_overrides(scenario: Any, hours: float | None = None, warmup: float | None = None) -> Any:
    """A copy of `scenario` with another horizon and/or warm-up (hours), validated again (limits included);
    checks warm-up < horizon."""
    from twin.scenario import scenario_from_dict

    update: dict[str, float] = {}
    if hours is not None:
        if not (math.isfinite(hours) and hours > 0):
            raise TwinError(f"--hours must be a positive number, got {hours}")
        update["horizon_h"] = float(hours)
    if warmup is not None:
        if not (math.isfinite(warmup) and warmup >= 0):
            raise TwinError(f"--warmup must be zero or a positive number, got {warmup}")
        update["warmup_h"] = float(warmup)
    horizon_h = update.get("horizon_h", scenario.horizon_h)
    warmup_h = update.get("warmup_h", scenario.warmup_h)
    if warmup_h >= horizon_h:
        raise TwinError(
            f"warm-up {warmup_h:g} h must be shorter than the horizon {horizon_h:g} h (scenario {scenario.name})"
        )
    if update:
        options = " and ".join(
            f"--{'hours' if k == 'horizon_h' else 'warmup'} {v:g}" for k, v in update.items()
        )
        scenario = scenario_from_dict(
            scenario.model_dump() | update, where=f"scenario {scenario.name} with {options}"
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
    wait_s: float = DEFAULT_WAIT_S,
) -> RunResult:
    """Run a scenario (object or YAML path) with N replications; store it in `db` (path or Store) if given.

    With a database path, the writer lock (twin.dblock) is taken first, waiting up to `wait_s` seconds for
    another writer, and held until the run is stored. The file is opened and checked (schema version) before
    simulating, then opened again to write the whole run in one transaction at the end, so other processes can
    read it while the run simulates.
    """
    if isinstance(scenario, str | os.PathLike):
        scenario = load_scenario(scenario)
    scenario = with_overrides(scenario, hours, warmup)
    if replications is not None and replications < 1:
        raise TwinError(f"--replications must be at least 1, got {replications}")
    if replications is not None:
        _check_replications(scenario, replications, "--replications")
    _check_seed(seed)
    if isinstance(db, Store):
        return _run_replications(scenario, replications, seed, store=db, progress=progress)
    if db is None:
        return _run_replications(scenario, replications, seed, store=None, progress=progress)
    with writer_lock(db, wait_s):
        open_store(db, wait_s=wait_s).close()  # fail fast: unwritable, locked, other schema version
        result = _run_replications(scenario, replications, seed, store=None, progress=progress)
        with open_store(db, wait_s=max(wait_s, STORE_WAIT_S)) as store:
            store_run(store, result)
    return result


def run_to_precision(
    scenario: Any,
    target_rel_half_width: float,
    kpi: str = "good_kg_per_h",
    min_replications: int = 5,
    max_replications: int = 100,
    seed: int | None = None,
    db: PathLike | None = None,
    progress: Progress | None = None,
    wait_s: float = DEFAULT_WAIT_S,
) -> tuple[RunResult, Any]:
    """Add replications until the 95 % interval of `kpi` has a relative half-width <= the target (or the max).

    Returns the run (stored in `db` if given, under the writer lock as `run_scenario`) and the PrecisionResult
    (n, mean, half-width, reached)."""
    from twin.precision import replications_for_precision
    from twin.runner import collect, simulate_replication

    if isinstance(scenario, str | os.PathLike):
        scenario = load_scenario(scenario)
    if not 0 < target_rel_half_width < 1:
        raise TwinError(f"--precision must be a fraction in (0, 1), e.g. 0.02, got {target_rel_half_width:g}")
    if not 2 <= min_replications <= max_replications:
        raise TwinError(f"need 2 <= min replications ({min_replications}) <= max ({max_replications})")
    _check_replications(scenario, max_replications, "--max-replications")
    _check_seed(seed)
    with writer_lock(db, wait_s) if db is not None else contextlib.nullcontext():
        if db is not None:
            open_store(db, wait_s=wait_s).close()
        base_seed = int(scenario.seed if seed is None else seed)
        results = []
        t0 = time.perf_counter()

        def sample(r: int) -> float:
            rep = simulate_replication(scenario, base_seed, r)
            if kpi not in rep.kpis:
                names = ", ".join(sorted(rep.kpis))
                raise TwinError(f"--kpi {kpi!r} is not a KPI of this run; choose one of: {names}")
            results.append(rep)
            if progress is not None:
                progress(len(results), max_replications)
            return rep.kpis[kpi]

        precision = replications_for_precision(
            sample, target_rel_half_width, min_replications, max_replications
        )
        result = collect(scenario, base_seed, results, time.perf_counter() - t0)
        if db is not None:
            with open_store(db, wait_s=max(wait_s, STORE_WAIT_S)) as store:
                store_run(store, result)
    return result, precision


def _check_seed(seed: int | None) -> None:
    if seed is not None and not 0 <= seed <= 2**63 - 1:
        raise TwinError(f"--seed must be between 0 and 2**63 - 1 (a BIGINT of the run history), got {seed}")


def _check_replications(scenario: Any, replications: int, option: str) -> None:
    from twin.limits import run_limit_error

    message = run_limit_error(scenario, replications, option)
    if message is not None:
        raise TwinError(message)


def kpis_with_warmup(run_id: int | str, warmup_h: float, db: PathLike = DEFAULT_DB) -> pa.Table:
    """A stored run's KPI summary recomputed with another warm-up, from its stored tables (nothing re-run)."""
    from twin import stats
    from twin.runner import recompute_kpis
    from twin.scenario import Scenario

    with Store(db, read_only=True) as store:
        run = store.run(run_id)
        tables = store.run_tables(run_id)
    scenario = Scenario.model_validate_json(run["scenario_json"])
    return stats.summarize(recompute_kpis(scenario, tables, float(warmup_h)))


def sample_parameters(
    samples: int,
    seed: int,
    params: list[str] | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
) -> Any:
    """A Latin hypercube of the uncertain quality parameters (default: every one in PARAM_RANGES), as a
    study's `uncertainty:` draws it: `.names`, `.values` (samples x parameters), `.overrides(k)`."""
    from twin.uncertainty import sample_parameters as _sample

    try:
        return _sample(samples, seed, params, ranges)
    except ValueError as exc:
        raise TwinError(str(exc)) from None


def strategy_robustness(
    study: str | int,
    db: PathLike = DEFAULT_DB,
    constraints: list[str] | None = None,
    min_yield: float | None = None,
) -> Any:
    """Probability of best and expected regret of every strategy of a stored uncertainty study, per objective
    (`twin compare` prints the same). `study` is a study id, `study:ID`, a study name or its YAML file;
    constraints as `KPI>=VALUE`. Returns a `twin.robustness.Robustness` (`robustness_json` for plain data)."""
    from twin import compare as cmp
    from twin import robustness as rob

    cons = [cmp.Constraint.parse(c) for c in constraints or []]
    if min_yield is not None:
        cons.insert(0, cmp.Constraint("final_yield", ">=", min_yield))
    item = f"study:{study}" if isinstance(study, int) else str(study)
    with Store(db, read_only=True) as store:
        sel = cmp.load_selection(store, [item])
    groups = rob.split_uncertainty(sel)
    if groups is None:
        raise TwinError(
            f"study {sel.study_name} (id {sel.study_id}) sampled no model parameters; run it with "
            "`uncertainty:` in the study file or `twin study FILE --uncertainty N`"
        )
    return rob.robustness(groups, cons)


def query(sql: str, db: PathLike = DEFAULT_DB, read: PathLike | None = None) -> pa.Table:
    """Run one SQL statement on a run-history database; returns an Arrow table (`.to_pandas()` for a DataFrame).

    The query runs in DuckDB's sandbox (twin.sandbox): it reads the database and no other file, except the
    CSV, Parquet and JSON-lines files directly in the directory `read`, each a table named after its file.
    Any DuckDB file is accepted (its schema version is not enforced); see `query_checked`."""
    return query_checked(sql, db, read)[0]


def query_checked(
    sql: str, db: PathLike = DEFAULT_DB, read: PathLike | None = None
) -> tuple[pa.Table, str | None]:
    """`query`, plus a one-line warning if `db` is a twin database of another schema version (else None)."""
    from twin import schema

    with Store(db, read_only=True, check_schema=False, sandbox=True) as store:
        found = store.schema_version()
        tbl = store.query_user(sql, read)
    if found is None or found == str(schema.SCHEMA_VERSION):
        return tbl, None
    return tbl, (
        f"warning: {db} was written by schema version {found}, this twin uses {schema.SCHEMA_VERSION}: "
        "tables and columns may differ from the README's schema"
    )
