"""The DuckDB run-history schema: the single documented source of every table, its columns and its version.

A new table (e.g. the live link's `telemetry`) is one more `Table(...)` entry in `TABLES`; adding a table is
additive and keeps `SCHEMA_VERSION`. Changing or removing a column of an existing table bumps `SCHEMA_VERSION`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA_VERSION = 2  # 2: units gained standby_h and unstaffed_h; table states


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = field(default=())
    per_run: bool = True  # rows belong to one run (exported by `twin export RUN`)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ddl(self) -> str:
        cols = [f"{c.name} {c.type}" for c in self.columns]
        if self.primary_key:
            cols.append(f"PRIMARY KEY ({', '.join(self.primary_key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n  " + ",\n  ".join(cols) + "\n)"


def _c(name: str, type_: str, doc: str) -> Column:
    return Column(name, type_, doc)


_RUN_KEY = (
    _c("run_id", "BIGINT", "run this row belongs to (`runs.run_id`)"),
    _c("replication", "INTEGER", "replication index 0..N-1 within the run"),
)

META = Table(
    "meta",
    "Key/value facts about the database file itself; `schema_version` guards against older or newer files.",
    (_c("key", "VARCHAR", "e.g. `schema_version`"), _c("value", "VARCHAR", "value as text")),
    primary_key=("key",),
    per_run=False,
)

STUDIES = Table(
    "studies",
    "One row per study (a sweep of scenarios run together, common random numbers).",
    (
        _c("study_id", "BIGINT", "study id (1, 2, ...)"),
        _c("name", "VARCHAR", "study name"),
        _c("study_json", "VARCHAR", "the study definition as JSON"),
        _c("study_hash", "VARCHAR", "hash of the study definition"),
        _c("code_version", "VARCHAR", "package version and git commit that ran it"),
        _c("created_at", "TIMESTAMP", "when it started (UTC)"),
        _c("status", "VARCHAR", "`running`, `done` or `failed`"),
    ),
    primary_key=("study_id",),
    per_run=False,
)

RUNS = Table(
    "runs",
    "One row per run: one `twin run` invocation (or one scenario of a study) with N replications.",
    (
        _c("run_id", "BIGINT", "run id (1, 2, ...), as shown by `twin runs list`"),
        _c("study_id", "BIGINT", "study it belongs to, NULL for a plain `twin run`"),
        _c("scenario_name", "VARCHAR", "scenario `name`"),
        _c("scenario_json", "VARCHAR", "the full scenario as run (after --hours/--warmup overrides), JSON"),
        _c("scenario_hash", "VARCHAR", "hash of the scenario content"),
        _c("seed", "BIGINT", "base seed; replication r uses the streams of (seed, r)"),
        _c("replications", "INTEGER", "number of replications"),
        _c("horizon_h", "DOUBLE", "simulated hours per replication"),
        _c("warmup_h", "DOUBLE", "warm-up hours excluded from KPIs"),
        _c("code_version", "VARCHAR", "package version and git commit"),
        _c("created_at", "TIMESTAMP", "when the run was stored (UTC)"),
        _c("wall_s", "DOUBLE", "wall-clock seconds of the whole run"),
        _c("status", "VARCHAR", "`done` (a run that fails leaves no row at all)"),
    ),
    primary_key=("run_id",),
)

LOTS = Table(
    "lots",
    "One row per lot released, per replication (the plant's trace; times in simulated hours).",
    _RUN_KEY
    + (
        _c("lot_id", "BIGINT", "lot id within the replication"),
        _c("recipe", "VARCHAR", "anneal recipe name"),
        _c("mass_kg", "DOUBLE", "lot mass"),
        _c("release_h", "DOUBLE", "release into the line"),
        _c("ald_unit", "VARCHAR", "ALD reactor that coated it"),
        _c("ald_start_h", "DOUBLE", "ALD batch start"),
        _c("ald_end_h", "DOUBLE", "ALD batch end (unloaded)"),
        _c("anneal_start_h", "DOUBLE", "first anneal start"),
        _c("anneal_end_h", "DOUBLE", "last anneal end"),
        _c("batch_id", "BIGINT", "first furnace batch (-1 if none)"),
        _c("rework_batch_id", "BIGINT", "re-anneal batch (-1 if none)"),
        _c("wait_h", "DOUBLE", "ALD end -> first anneal start"),
        _c("anneals", "INTEGER", "number of anneals"),
        _c("qc_end_h", "DOUBLE", "last QC end"),
        _c("done_h", "DOUBLE", "left the line (good or scrap); NULL for WIP"),
        _c("status", "VARCHAR", "`good`, `scrap` or `wip`"),
        _c("first_pass", "BOOLEAN", "passed at its first QC"),
        _c("verdict", "VARCHAR", "last QC verdict"),
        _c("reason", "VARCHAR", "why it failed a spec (scrap cause)"),
        _c("thickness_nm", "DOUBLE", "coating thickness"),
        _c("coverage", "DOUBLE", "coating coverage 0-1"),
        _c("x_d", "DOUBLE", "densification 0-1"),
        _c("x_c", "DOUBLE", "crystallised fraction 0-1"),
        _c("roughness_nm", "DOUBLE", "coating roughness"),
        _c("bonding", "DOUBLE", "bonding strength 0-1"),
        _c("r_rel", "DOUBLE", "interfacial resistance relative to uncoated"),
        _c("r_int_ohm_cm2", "DOUBLE", "interfacial resistance"),
        _c("rl_ppm", "DOUBLE", "residual lithium"),
        _c("dmix_pct", "DOUBLE", "process-induced cation mixing"),
        _c("l_d_nm", "DOUBLE", "interdiffusion depth"),
        _c("q0_mah_g", "DOUBLE", "initial capacity estimate"),
        _c("fce", "DOUBLE", "first-cycle efficiency"),
        _c("ret100", "DOUBLE", "capacity retention after 100 cycles"),
        _c("precursor_mol", "DOUBLE", "ALD precursor used for this lot"),
    ),
)

BATCHES = Table(
    "batches",
    "One row per furnace batch, per replication.",
    _RUN_KEY
    + (
        _c("batch_id", "BIGINT", "batch id within the replication"),
        _c("furnace", "VARCHAR", "furnace unit, e.g. `F1`"),
        _c("recipe", "VARCHAR", "recipe name"),
        _c("setpoint_c", "DOUBLE", "anneal setpoint"),
        _c("ramp_c_per_min", "DOUBLE", "heating ramp"),
        _c("soak_h", "DOUBLE", "soak time"),
        _c("cool_c_per_min", "DOUBLE", "cooling rate"),
        _c("atmosphere", "VARCHAR", "`O2`, `dry_air`, `air` or `N2`"),
        _c("n_lots", "INTEGER", "lots in the batch"),
        _c("capacity_lots", "INTEGER", "furnace capacity"),
        _c("mass_kg", "DOUBLE", "mass in the batch"),
        _c("setup_h", "DOUBLE", "setup time before this batch (atmosphere/setpoint change)"),
        _c("load_start_h", "DOUBLE", "loading starts"),
        _c("start_h", "DOUBLE", "heating starts"),
        _c("end_h", "DOUBLE", "unloaded; NULL if still running at the horizon"),
        _c("energy_kwh", "DOUBLE", "furnace energy"),
        _c("o2_nm3", "DOUBLE", "O2 used"),
        _c("gas_nm3", "DOUBLE", "process gas used, any atmosphere"),
        _c("rework_lots", "INTEGER", "lots in the batch that are re-anneals"),
        _c(
            "reason",
            "VARCHAR",
            "why the policy started it: `full`, `timeout`, `immediate`, `campaign`, `quality`",
        ),
    ),
)

EVENTS = Table(
    "events",
    "Every event of the line, per replication (see docs/architecture.md for the kinds).",
    _RUN_KEY
    + (
        _c("t_h", "DOUBLE", "simulated time"),
        _c("kind", "VARCHAR", "event kind, e.g. `ald_start`, `batch_end`, `scrap`"),
        _c("unit", "VARCHAR", "unit, e.g. `ALD1`, `BUF`, `F1`, `QC`, `SRC`"),
        _c("lot_id", "BIGINT", "lot (-1 if none)"),
        _c("batch_id", "BIGINT", "batch (-1 if none)"),
    ),
)

UNITS = Table(
    "units",
    "One row per unit of the line, per replication: time in states over the whole horizon.",
    _RUN_KEY
    + (
        _c("unit", "VARCHAR", "unit name: `ALD1..`, `F1..`, QC stations `QC1..`"),
        _c("kind", "VARCHAR", "`ald`, `furnace` or `qc`"),
        _c("busy_h", "DOUBLE", "productive hours (loading, processing, unloading, testing)"),
        _c("setup_h", "DOUBLE", "setup hours (purge, setpoint change)"),
        _c("down_h", "DOUBLE", "unscheduled down hours (failure and repair)"),
        _c("pm_h", "DOUBLE", "scheduled down hours (preventive maintenance, planned shutdown)"),
        _c("blocked_h", "DOUBLE", "hours blocked by a full downstream buffer"),
        _c("standby_h", "DOUBLE", "idle hours (starved or waiting for the policy)"),
        _c("unstaffed_h", "DOUBLE", "hours of work waiting for an operator"),
        _c("batches", "INTEGER", "batches (lots for ALD, tests for QC) processed"),
    ),
)

STATES = Table(
    "states",
    "Equipment state intervals per unit (SEMI E10 categories, docs/equipment-states.md); they sum to the horizon.",
    _RUN_KEY
    + (
        _c("unit", "VARCHAR", "unit name"),
        _c(
            "state",
            "VARCHAR",
            "productive, setup, standby, blocked, scheduled_down, unscheduled_down, unstaffed",
        ),
        _c("start_h", "DOUBLE", "interval start"),
        _c("end_h", "DOUBLE", "interval end"),
    ),
)

KPIS = Table(
    "kpis",
    "One row per KPI and replication (definitions: `twin.stats.KPI_DEFINITIONS`).",
    _RUN_KEY + (_c("kpi", "VARCHAR", "KPI name"), _c("value", "DOUBLE", "value in the KPI's unit")),
)

KPI_SUMMARY = Table(
    "kpi_summary",
    "One row per KPI and run: mean over replications with its 95 % Student-t confidence interval.",
    (
        _c("run_id", "BIGINT", "run"),
        _c("kpi", "VARCHAR", "KPI name"),
        _c("unit", "VARCHAR", "unit"),
        _c("n", "INTEGER", "replications with a value"),
        _c("mean", "DOUBLE", "mean over replications"),
        _c("std", "DOUBLE", "standard deviation over replications"),
        _c("ci_low", "DOUBLE", "95 % confidence interval, lower bound"),
        _c("ci_high", "DOUBLE", "95 % confidence interval, upper bound"),
    ),
)

TABLES: tuple[Table, ...] = (META, STUDIES, RUNS, LOTS, BATCHES, EVENTS, UNITS, STATES, KPIS, KPI_SUMMARY)
"""Every table of the run history, in creation order."""

TRACE_TABLES: tuple[str, ...] = ("events", "lots", "batches", "units", "states")
"""Tables filled from `Trace.tables()`, one block of rows per replication."""


def table(name: str) -> Table:
    """The table definition called `name`."""
    for t in TABLES:
        if t.name == name:
            return t
    raise KeyError(name)


def markdown() -> str:
    """The schema as Markdown (the README's schema section is this text)."""
    out = [
        f"Schema version {SCHEMA_VERSION}. Times are simulated hours; `run_id` + `replication` lead every per-run "
        "table; NULL means not applicable (NaN in the trace)."
    ]
    for t in TABLES:
        out.append("")
        out.append(f"**`{t.name}`**: {t.doc}")
        out.append("")
        out.append("| column | type | meaning |")
        out.append("|---|---|---|")
        for c in t.columns:
            out.append(f"| `{c.name}` | {c.type} | {c.doc} |")
    return "\n".join(out)
