"""The live link's DuckDB tables (`telemetry`, `plant_events`, `soft_sensor`) in the run-history file, and the
recorder that buffers the mirror's samples and events, derives plant events, runs the soft sensor and writes
each batch in one transaction. The run-history schema itself (twin.store / twin.schema) is left unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from adapters.opcua.client import PlantEvent, Sample
from twin.errors import TwinError
from twin.live.derive import Deriver
from twin.live.softsensor import COLUMNS as SOFT_COLUMNS
from twin.live.softsensor import SoftSensor
from twin.schema import Column, Table
from twin.store import Store


def _c(name: str, type_: str, doc: str) -> Column:
    return Column(name, type_, doc)


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

_SOFT_TYPES = {
    "source": "VARCHAR", "furnace": "VARCHAR", "batch_id": "VARCHAR", "lot_id": "VARCHAR", "t_start": "TIMESTAMP",
    "t_end": "TIMESTAMP", "recipe": "VARCHAR", "atmosphere": "VARCHAR", "n_points": "INTEGER", "anneal_no": "INTEGER",
    "verdict": "VARCHAR", "reason": "VARCHAR", "verdict_nom": "VARCHAR", "drift": "BOOLEAN", "drift_reason": "VARCHAR",
}  # fmt: skip
SOFT_SENSOR = Table(
    "soft_sensor",
    "Per lot of each finished furnace batch: quality predicted from the measured profile and from the nominal one.",
    tuple(_c(n, _SOFT_TYPES.get(n, "DOUBLE"), n) for n in SOFT_COLUMNS),
    per_run=False,
)

LIVE_TABLES = (TELEMETRY, PLANT_EVENTS, SOFT_SENSOR)

_ARROW = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "INTEGER": pa.int32(), "DOUBLE": pa.float64(),
          "BOOLEAN": pa.bool_(), "TIMESTAMP": pa.timestamp("us")}  # fmt: skip
_EVENT_ORDER = ("source", "t", "t_end", "kind", "unit", "lot_id", "batch_id", "value", "origin", "sim_time_h",
                "detail")  # fmt: skip


def _arrow(table: Table, rows: list[tuple], names: tuple[str, ...] | None = None) -> pa.Table:
    names = names or tuple(table.column_names)
    types = {c.name: _ARROW[c.type] for c in table.columns}
    cols = list(zip(*rows)) if rows else [[] for _ in names]
    return pa.table({n: pa.array(list(col), types[n]) for n, col in zip(names, cols)})


def open_live(path: str | os.PathLike[str]) -> Store:
    """Open the run-history database (its version guard runs) and create the live tables if missing."""
    store = Store(path)
    try:
        for t in LIVE_TABLES:
            store.con.execute(t.ddl())
    except duckdb.Error as exc:
        store.close()
        raise TwinError(f"cannot create the live tables in {path}: {str(exc).splitlines()[0]}") from None
    return store


class LiveRecorder:
    """The mirror's sink: buffers samples and events, derives plant events, runs the soft sensor, writes batches."""

    def __init__(self, db: str | os.PathLike[str], kinds: dict[str, str], softsensor: SoftSensor | None = None,
                 source: str = "plant") -> None:  # fmt: skip
        self.path = Path(db)
        self.store = open_live(self.path)
        self.con = self.store.con
        self.deriver = Deriver(kinds)
        self.soft = softsensor
        self.source = source
        self._samples: list[Sample] = []
        self._events: list[PlantEvent] = []
        self._soft_rows: list[tuple] = []
        self.written_samples = 0
        self.written_events = 0
        self.written_predictions = 0

    def add_sample(self, sample: Sample) -> None:
        self._samples.append(sample)
        derived = self.deriver.feed(sample)
        if self.soft is not None:
            self.soft.on_sample(sample)
        for ev in derived:
            self.add_event(ev)

    def add_event(self, event: PlantEvent) -> None:
        self._events.append(event)
        if self.soft is not None:
            self.soft.on_event(event)
            self._soft_rows.extend(self.soft.take())

    def flush(self) -> None:
        """Write everything buffered in ONE transaction; on failure the rows stay buffered for the next try."""
        if not (self._samples or self._events or self._soft_rows):
            return
        samples, events, soft = self._samples, self._events, self._soft_rows
        self._samples, self._events, self._soft_rows = [], [], []
        con = self.con
        try:
            con.execute("BEGIN TRANSACTION")
            if samples:
                self._insert(TELEMETRY, _arrow(TELEMETRY, samples, Sample._fields))
            if events:
                rows = [tuple(getattr(e, n) for n in _EVENT_ORDER) for e in events]
                self._insert(PLANT_EVENTS, _arrow(PLANT_EVENTS, rows, _EVENT_ORDER))
            if soft:
                self._insert(SOFT_SENSOR, _arrow(SOFT_SENSOR, soft, SOFT_COLUMNS))
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            self._samples[:0], self._events[:0], self._soft_rows[:0] = samples, events, soft
            raise
        self.written_samples += len(samples)
        self.written_events += len(events)
        self.written_predictions += len(soft)

    def _insert(self, table: Table, tbl: pa.Table) -> None:
        view = f"_live_{table.name}"
        self.con.register(view, tbl)
        try:
            self.con.execute(f"INSERT INTO {table.name} BY NAME SELECT * FROM {view}")
        finally:
            self.con.unregister(view)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.store.close()

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        return self.con.execute(sql, params or []).fetchall()
