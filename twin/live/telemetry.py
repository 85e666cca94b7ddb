"""The live link's DuckDB tables (`telemetry`, `plant_events`, `soft_sensor`) in the run-history file, and the
recorder that buffers the mirror's samples and events, derives plant events, runs the soft sensor and writes
each batch in one transaction. The tables are defined with the rest of the schema in twin/schema.py.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from adapters.opcua.client import PlantEvent, Sample, utcnow
from twin.errors import TwinError
from twin.live.derive import Deriver
from twin.live.softsensor import SoftSensor
from twin.schema import LIVE_TABLES, PLANT_EVENTS, SOFT_SENSOR, TELEMETRY, Table
from twin.store import Store, insert_arrow

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


REORDER_S = 0.2  # seconds a received sample waits before derivation, so that its whole notification is in


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
        self._pending: list[Sample] = []  # received, not yet derived (see _derive)
        self._events: list[PlantEvent] = []
        self._soft_rows: list[tuple] = []
        self.written_samples = 0
        self.written_events = 0
        self.written_predictions = 0

    def add_sample(self, sample: Sample) -> None:
        self._samples.append(sample)
        self._pending.append(sample)

    def _derive(self, everything: bool = False) -> None:
        """Feed received samples to the event derivation and the soft sensor in source-timestamp order.

        One publish response carries the changes of all its monitored items in item order, not time order (a
        furnace's new LotIds can come before the State change that ended its previous batch). Samples are held
        for REORDER_S after receipt, so that a whole notification is in, then sorted by (source_ts, seq)."""
        if not self._pending:
            return
        if everything:
            ready, self._pending = self._pending, []
        else:
            cutoff = utcnow() - timedelta(seconds=REORDER_S)
            ready = [s for s in self._pending if s.received_ts <= cutoff]
            if not ready:
                return
            self._pending = [s for s in self._pending if s.received_ts > cutoff]
        for sample in sorted(ready, key=lambda s: (s.source_ts, s.seq)):
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

    def flush(self, everything: bool = False) -> None:
        """Write everything buffered in ONE transaction; on failure the rows stay buffered for the next try.
        `everything`: also derive from the samples still inside the reordering window (at the end)."""
        self._derive(everything)
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
                self._insert(SOFT_SENSOR, _arrow(SOFT_SENSOR, soft))
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
        insert_arrow(self.con, table.name, tbl)

    def close(self) -> None:
        try:
            self.flush(everything=True)
        finally:
            self.store.close()

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        return self.con.execute(sql, params or []).fetchall()
