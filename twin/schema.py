"""The DuckDB run-history schema: the single documented source of every table, its columns and its version.

A new table (e.g. the live link's `telemetry`) is one more `Table(...)` entry in `TABLES`; adding a table is
additive and keeps `SCHEMA_VERSION`. Changing or removing a column of an existing table bumps `SCHEMA_VERSION`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA_VERSION = 3


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
        _c("thickness_nm", "DOUBLE", "coating thickness (densified), nm"),
        _c("coverage", "DOUBLE", "effective coating coverage 0-1"),
        _c("x_d", "DOUBLE", "densification 0-1"),
        _c("x_c", "DOUBLE", "crystallised fraction 0-1"),
        _c("roughness_nm", "DOUBLE", "coating roughness, nm"),
        _c("bonding", "DOUBLE", "film-NCM bonding 0-1"),
        _c("li_uptake", "DOUBLE", "fraction of the film's Li capacity bound (Li-Hf-O / Li-Al-O) 0-1"),
        _c("r_rel", "DOUBLE", "interfacial resistance / the clean uncoated charge-transfer resistance"),
        _c("r_int_ohm_cm2", "DOUBLE", "interfacial resistance, geometric at the model's loading"),
        _c(
            "r_ct_ohm_cm2",
            "DOUBLE",
            "its charge-transfer share (the NCM surface, raised by residual Li and mixing)",
        ),
        _c("r_film_ohm_cm2", "DOUBLE", "its film share (Li transport through the film and its contact)"),
        _c("d_li_cm2_s", "DOUBLE", "effective Li diffusivity through the film at 25 °C; NULL without film"),
        _c("rl_ppm", "DOUBLE", "residual lithium (true), ppm Li"),
        _c("rl_titration_ppm", "DOUBLE", "what water titration reads (residual plus leached lattice Li)"),
        _c("dmix_pct", "DOUBLE", "process-induced cation mixing, %"),
        _c("l_rs_nm", "DOUBLE", "reduced rock-salt / Li-depleted surface layer, nm"),
        _c("l_d_nm", "DOUBLE", "interdiffusion depth of the film's metal, nm"),
        _c("q0_mah_g", "DOUBLE", "capacity at 0.1 C"),
        _c("rate_capability", "DOUBLE", "capacity at the model's high C-rate / capacity at 0.1 C"),
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

TELEMETRY = Table(
    "telemetry",
    "Every sample the mirror received (one row per data change), good or flagged. Timestamps in UTC.",
    (
        _c("source", "VARCHAR", "tag map name (the plant)"),
        _c("seq", "BIGINT", "receive order within one mirror process, 0, 1, ..."),
        _c("unit", "VARCHAR", "unit of the tag map, e.g. `F1`"),
        _c("signal", "VARCHAR", "twin signal, e.g. `temperature_c`"),
        _c("node", "VARCHAR", "NodeId the value came from"),
        _c("source_ts", "TIMESTAMP", "source timestamp (server timestamp or receive time if absent)"),
        _c("server_ts", "TIMESTAMP", "server timestamp"),
        _c("received_ts", "TIMESTAMP", "when the mirror received it"),
        _c("value", "DOUBLE", "numeric value (booleans 0/1); NULL for text"),
        _c("value_text", "VARCHAR", "text value, JSON array, or the raw value of a wrong type"),
        _c("mapped", "VARCHAR", "twin state of a state code (signals with a value map)"),
        _c("status_code", "BIGINT", "OPC UA StatusCode (0 = Good)"),
        _c("status", "VARCHAR", "StatusCode name"),
        _c("flag", "VARCHAR", "'' good; else bad_status, uncertain, wrong_type, nan, out_of_range, unmapped"),
        _c("replayed", "BOOLEAN", "re-delivered after a reconnect"),
    ),
    per_run=False,
)

PLANT_EVENTS = Table(
    "plant_events",
    "Equipment events: from the server (`origin` server), derived from samples (derived), link events (mirror).",
    (
        _c("source", "VARCHAR", "tag map name"),
        _c("t", "TIMESTAMP", "event time (UTC); start of a gap"),
        _c("t_end", "TIMESTAMP", "end of a gap; NULL otherwise"),
        _c(
            "kind",
            "VARCHAR",
            "e.g. state, lot_in, lot_out, batch_start, batch_end, ald_start, gap, missing_node",
        ),
        _c("unit", "VARCHAR", "unit"),
        _c("lot_id", "VARCHAR", "lot, when the event concerns one"),
        _c("batch_id", "VARCHAR", "batch, when the event concerns one"),
        _c("value", "VARCHAR", "new state (state events)"),
        _c("origin", "VARCHAR", "`server`, `derived` or `mirror`"),
        _c("sim_time_h", "DOUBLE", "simulated hour (virtual plant events)"),
        _c("detail", "VARCHAR", "free text: reason of a gap, name of a missing node, previous state"),
    ),
    per_run=False,
)

_SOFT_COLUMNS = (
    "source", "furnace", "batch_id", "lot_id", "t_start", "t_end", "recipe", "atmosphere", "n_points",
    "peak_c", "soak_h", "duration_h", "wait_h", "anneal_no", "x_d", "bonding", "roughness_nm", "r_int_ohm_cm2",
    "dmix_pct", "l_d_nm", "rl_ppm", "verdict", "reason", "x_d_nom", "bonding_nom", "r_int_nom", "dmix_nom",
    "verdict_nom", "drift", "drift_reason",
)  # fmt: skip
_SOFT_DOCS = {
    "furnace": "furnace unit", "n_points": "temperature samples in the measured profile",
    "peak_c": "peak of the measured profile, °C", "wait_h": "wait between ALD and heating",
    "anneal_no": "1 first anneal, 2 re-anneal", "x_d": "densification predicted from the measured profile",
    "x_d_nom": "densification of the recipe's nominal profile", "drift": "measured profile drifted from the recipe",
    "drift_reason": "why it counts as drift", "verdict": "QC verdict predicted from the measured profile",
    "verdict_nom": "verdict of the nominal profile",
}  # fmt: skip
_SOFT_TYPES = {
    "source": "VARCHAR", "furnace": "VARCHAR", "batch_id": "VARCHAR", "lot_id": "VARCHAR", "t_start": "TIMESTAMP",
    "t_end": "TIMESTAMP", "recipe": "VARCHAR", "atmosphere": "VARCHAR", "n_points": "INTEGER", "anneal_no": "INTEGER",
    "verdict": "VARCHAR", "reason": "VARCHAR", "verdict_nom": "VARCHAR", "drift": "BOOLEAN", "drift_reason": "VARCHAR",
}  # fmt: skip
SOFT_SENSOR = Table(
    "soft_sensor",
    "Per lot of each finished furnace batch: quality predicted from the measured profile and from the nominal one.",
    tuple(_c(n, _SOFT_TYPES.get(n, "DOUBLE"), _SOFT_DOCS.get(n, n)) for n in _SOFT_COLUMNS),
    per_run=False,
)

LIVE_TABLES: tuple[Table, ...] = (TELEMETRY, PLANT_EVENTS, SOFT_SENSOR)
"""Tables of the live link (`twin mirror`): not per run."""

TABLES: tuple[Table, ...] = (
    META,
    STUDIES,
    RUNS,
    LOTS,
    BATCHES,
    EVENTS,
    UNITS,
    STATES,
    KPIS,
    KPI_SUMMARY,
    *LIVE_TABLES,
)
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
