"""The trace of one run: events, lot records, batch records, unit totals and state intervals.

Events are recorded packed: 27 bytes per event appended to one bytearray, kind and unit as small integer codes
(no Python object per event stays alive, and conversion to Arrow reads the bytes as numpy columns instead of
revisiting a cold list of tuples). A lot's row is packed the same way when the lot leaves the line; the units pack
their state intervals (plant/equipment/unit.py). Batches and unit totals are rows of Python values, converted
once after the run. Column names and meanings are documented in docs/architecture.md.
"""

from __future__ import annotations

import functools
import gc
import math
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from plant.physics import Properties

if TYPE_CHECKING:
    from plant.lot import Lot

EVENT_KINDS = (
    "arrive", "ald_start", "ald_end", "buffer_in", "buffer_out", "blocked_start", "blocked_end",
    "load_start", "setup_start", "setup_end", "batch_start", "batch_end", "qc_start", "qc_end", "pass", "rework", "scrap",
    "down", "up", "pm_start", "pm_end",
)  # fmt: skip
# kind codes of the packed events, in EVENT_KINDS order: record(pack(t_h, QC_START, unit.code, lot_id, -1))
(
    ARRIVE, ALD_START, ALD_END, BUFFER_IN, BUFFER_OUT, BLOCKED_START, BLOCKED_END,
    LOAD_START, SETUP_START, SETUP_END, BATCH_START, BATCH_END, QC_START, QC_END, PASS, REWORK, SCRAP,
    DOWN, UP, PM_START, PM_END,
) = range(len(EVENT_KINDS))  # fmt: skip

# one event as packed bytes: t_h, kind code, unit code, lot_id, batch_id (ids -1 when not applicable)
EVENT_ROW = struct.Struct("<dBHqq")
_EVENT_DTYPE = np.dtype(
    [("t_h", "<f8"), ("kind", "u1"), ("unit", "<u2"), ("lot_id", "<i8"), ("batch_id", "<i8")]
)  # the same layout for numpy (no padding)

EVENTS_SCHEMA = pa.schema(
    [("t_h", pa.float64()), ("kind", pa.string()), ("unit", pa.string()), ("lot_id", pa.int64()),
     ("batch_id", pa.int64())]
)  # fmt: skip

_LOT_QUALITY = Properties._fields  # the quality columns are the Properties tuple, in its order

_LOT_RECORD = (
    "lot_id", "recipe", "mass_kg", "release_h", "ald_unit", "ald_start_h", "ald_end_h", "anneal_start_h",
    "anneal_end_h", "batch_id", "rework_batch_id", "wait_h", "anneals", "qc_end_h", "done_h", "status",
    "first_pass", "verdict", "reason",
)  # fmt: skip

LOTS_SCHEMA = pa.schema(
    [("lot_id", pa.int64()), ("recipe", pa.string()), ("mass_kg", pa.float64()), ("release_h", pa.float64()),
     ("ald_unit", pa.string()), ("ald_start_h", pa.float64()), ("ald_end_h", pa.float64()),
     ("anneal_start_h", pa.float64()), ("anneal_end_h", pa.float64()), ("batch_id", pa.int64()),
     ("rework_batch_id", pa.int64()), ("wait_h", pa.float64()), ("anneals", pa.int64()),
     ("qc_end_h", pa.float64()), ("done_h", pa.float64()), ("status", pa.string()), ("first_pass", pa.bool_()),
     ("verdict", pa.string()), ("reason", pa.string())]
    + [(name, pa.float64()) for name in _LOT_QUALITY]
    + [("precursor_mol", pa.float64())]
)  # fmt: skip

BATCHES_SCHEMA = pa.schema(
    [("batch_id", pa.int64()), ("furnace", pa.string()), ("recipe", pa.string()), ("setpoint_c", pa.float64()),
     ("ramp_c_per_min", pa.float64()), ("soak_h", pa.float64()), ("cool_c_per_min", pa.float64()),
     ("atmosphere", pa.string()), ("n_lots", pa.int64()), ("capacity_lots", pa.int64()),
     ("mass_kg", pa.float64()), ("setup_h", pa.float64()), ("load_start_h", pa.float64()),
     ("start_h", pa.float64()), ("end_h", pa.float64()), ("energy_kwh", pa.float64()),
     ("o2_nm3", pa.float64()), ("gas_nm3", pa.float64()), ("rework_lots", pa.int64()), ("reason", pa.string())]
)  # fmt: skip

UNITS_SCHEMA = pa.schema(
    [("unit", pa.string()), ("kind", pa.string()), ("busy_h", pa.float64()), ("setup_h", pa.float64()),
     ("down_h", pa.float64()), ("pm_h", pa.float64()), ("blocked_h", pa.float64()), ("standby_h", pa.float64()),
     ("unstaffed_h", pa.float64()), ("batches", pa.int64())]
)  # fmt: skip

# A lot's row, packed when the lot leaves the line (WIP lots: at conversion): its position in `Trace.lots`, the
# record fields and precursor, then the quality properties, every field 8 bytes (so that the rows read as one 2-D
# int64 array): floats as doubles, ints and bools as int64, strings as codes into the trace's texts.
_LOTS_ROW_FIELDS = [LOTS_SCHEMA.field(n) for n in (*_LOT_RECORD, "precursor_mol", *_LOT_QUALITY)]
LOT_ROW = struct.Struct("<q" + "".join("d" if f.type == pa.float64() else "q" for f in _LOTS_ROW_FIELDS))
_LOT_COLUMN = {f.name: i + 1 for i, f in enumerate(_LOTS_ROW_FIELDS)}  # column of each field in a row
_lot_fields = attrgetter(*_LOT_RECORD, "precursor_mol")
_LOT_TEXTS = tuple(i for i, n in enumerate(_LOT_RECORD) if LOTS_SCHEMA.field(n).type == pa.string())
_NO_PROPS = (math.nan,) * len(_LOT_QUALITY)

# equipment states (SEMI E10 categories, docs/equipment-states.md) and one closed state interval as packed bytes
STATES = ("productive", "setup", "standby", "blocked", "scheduled_down", "unscheduled_down", "unstaffed")
STATE_CODES = {state: code for code, state in enumerate(STATES)}
STATE_ROW = struct.Struct("<Bdd")  # state code, start_h, end_h
_STATE_DTYPE = np.dtype([("state", "u1"), ("start_h", "<f8"), ("end_h", "<f8")])

STATES_SCHEMA = pa.schema(
    [("unit", pa.string()), ("state", pa.string()), ("start_h", pa.float64()), ("end_h", pa.float64())]
)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (restoring its previous state after).

    A run and the conversion of its trace allocate millions of objects and make no reference cycles, so the
    collector would only rescan the growing trace again and again (time per lot would grow with the horizon).
    `tests/test_line.py::test_a_run_leaves_no_cyclic_garbage` guards the no-cycles premise.

    On exit the objects made meanwhile are moved to the oldest generation unscanned (`gc.freeze()` then
    `gc.unfreeze()`): re-enabled with all of them still young, the collector would scan them all at the next
    allocation (`test_a_run_triggers_no_garbage_collection`). They stay collectable: the next full collection,
    when the oldest generation has grown enough, scans them as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


@functools.cache
def _names(values: tuple[str, ...]) -> pa.Array:
    """A fixed vocabulary (event kinds, states) as an Arrow string array, made once (on first use: building an Arrow
    array imports pandas, which importing this module does not)."""
    return pa.array(values, pa.string())


def _numeric(values: np.ndarray, type_: pa.DataType) -> pa.Array:
    """A contiguous numpy column as an Arrow array of `type_` (same width), without a copy. `pa.array` on a numpy
    array costs about 15 us of type checks per call, a fixed cost that a short run pays on every column."""
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(values)])


@functools.cache
def _row_type(schema: pa.Schema) -> pa.DataType:
    """The struct type of a schema's rows (made once per schema)."""
    return pa.struct(list(schema))


def _rows_table(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    """Row tuples to an Arrow table of the given schema, in one C++ pass over the rows (a struct array). Building
    columns instead revisits every row once per column: a cache miss each time once the trace outgrows the cache."""
    if not rows:
        return schema.empty_table()
    return pa.Table.from_struct_array(pa.array(rows, type=_row_type(schema)))


class Trace:
    """Everything one run produced. `record(pack(...))` is the hot path; `tables()` builds Arrow tables once."""

    __slots__ = (
        "_events", "record", "pack", "unit_names", "_unit_codes", "lots", "_lot_rows", "_texts", "batches",
        "units", "states", "horizon_h", "warmup_h", "keep_lots",
    )  # fmt: skip

    def __init__(self, horizon_h: float, warmup_h: float = 0.0, keep_lots: bool = True) -> None:
        self._events = bytearray()
        # the hot path, two C calls and no Python frame: record(pack(t_h, QC_START, unit_code, lot_id, batch_id))
        self.record = self._events.extend
        self.pack = EVENT_ROW.pack
        self.unit_names: list[str] = []  # unit code -> unit name
        self._unit_codes: dict[str, int] = {}
        # every lot released, in order (`add_lot`); with keep_lots=False a lot's entry becomes None when it leaves
        # the line (its row is packed then), so that a batch run does not keep every finished lot's objects
        self.lots: list[Lot | None] = []
        self.keep_lots = keep_lots
        self._lot_rows = bytearray()  # LOT_ROW records of the lots that left the line
        self._texts: dict[str, int] = {}  # string -> code for the lots' string fields (in code order)
        self.batches: list[tuple[Any, ...]] = []
        self.units: list[tuple[Any, ...]] = []
        self.states: list[tuple[str, bytes]] = []  # per unit: its name and its packed state intervals
        self.horizon_h = horizon_h
        self.warmup_h = warmup_h

    # -- events ----------------------------------------------------------------------------------------
    def unit_code(self, name: str) -> int:
        """The code under which events of unit `name` are recorded (registered on first use)."""
        code = self._unit_codes.get(name)
        if code is None:
            code = self._unit_codes[name] = len(self.unit_names)
            self.unit_names.append(name)
        return code

    def event(self, t_h: float, kind: int, unit_code: int, lot_id: int = -1, batch_id: int = -1) -> None:
        """Record one event (the same as the hot path's `record(pack(...))`, for code off the hot path)."""
        self.record(EVENT_ROW.pack(t_h, kind, unit_code, lot_id, batch_id))

    @property
    def n_events(self) -> int:
        """Events recorded so far."""
        return len(self._events) // EVENT_ROW.size

    def events_since(self, n: int) -> list[tuple[float, str, str, int, int]]:
        """Events number n onwards as (t_h, kind, unit, lot_id, batch_id) tuples, in recording order."""
        kinds, units = EVENT_KINDS, self.unit_names
        tail = self._events[n * EVENT_ROW.size :]  # a copy: the bytearray must stay resizable
        return [(t, kinds[k], units[u], lot, batch) for t, k, u, lot, batch in EVENT_ROW.iter_unpack(tail)]

    @property
    def events(self) -> list[tuple[float, str, str, int, int]]:
        """Every event so far, decoded (for tests and tools: the tables are the efficient form)."""
        return self.events_since(0)

    # -- lots ------------------------------------------------------------------------------------------
    def add_lot(self, lot: Lot) -> None:
        """A lot enters the line; its row in the lots table comes in this order."""
        lot.seq = len(self.lots)
        self.lots.append(lot)

    def lot_done(self, lot: Lot) -> None:
        """A lot left the line (good or scrap): its row is packed now, and without keep_lots the lot is let go."""
        self._lot_rows += self._lot_row(lot)
        if not self.keep_lots:
            self.lots[lot.seq] = None

    def _lot_row(self, lot: Lot) -> bytes:
        row = list(_lot_fields(lot))
        texts = self._texts
        for i in _LOT_TEXTS:
            code = texts.get(row[i])
            if code is None:
                code = texts[row[i]] = len(texts)
            row[i] = code
        a = lot.assessment
        return LOT_ROW.pack(lot.seq, *row, *(_NO_PROPS if a is None else a.props))

    # -- conversion ------------------------------------------------------------------------------------
    def events_table(self) -> pa.Table:
        # the packed bytes as numpy columns (a copy: the bytearray must stay resizable for a run that goes on)
        arr = np.frombuffer(bytes(self._events), dtype=_EVENT_DTYPE)
        kinds = _names(EVENT_KINDS)
        units = pa.array(self.unit_names, pa.string())
        return pa.table(
            [
                _numeric(np.ascontiguousarray(arr["t_h"]), pa.float64()),
                kinds.take(_numeric(np.ascontiguousarray(arr["kind"]), pa.uint8())),
                units.take(_numeric(np.ascontiguousarray(arr["unit"]), pa.uint16())),
                _numeric(np.ascontiguousarray(arr["lot_id"]), pa.int64()),
                _numeric(np.ascontiguousarray(arr["batch_id"]), pa.int64()),
            ],
            schema=EVENTS_SCHEMA,
        )

    def lots_table(self) -> pa.Table:
        # the rows packed when lots left the line, plus the WIP lots packed now, as columns in release order
        wip = b"".join(self._lot_row(lot) for lot in self.lots if lot is not None and lot.status == "wip")
        rows = np.frombuffer(self._lot_rows + wip, dtype="<i8").reshape(-1, LOT_ROW.size // 8)  # a copy, once
        columns = np.ascontiguousarray(rows[np.argsort(rows[:, 0], kind="stable")].T)
        texts = pa.array(list(self._texts), pa.string())
        cols = []
        for f in LOTS_SCHEMA:
            c = columns[_LOT_COLUMN[f.name]]
            if f.type == pa.string():
                cols.append(texts.take(_numeric(c, pa.int64())))
            elif f.type == pa.bool_():
                cols.append(pa.array(c != 0))
            else:  # float64 or int64: the 8 bytes as they were packed
                cols.append(_numeric(c, f.type))
        return pa.table(cols, schema=LOTS_SCHEMA)

    def batches_table(self) -> pa.Table:
        return _rows_table(self.batches, BATCHES_SCHEMA)

    def units_table(self) -> pa.Table:
        return _rows_table(self.units, UNITS_SCHEMA)

    def states_table(self) -> pa.Table:
        parts = [np.frombuffer(raw, dtype=_STATE_DTYPE) for _, raw in self.states]
        arr = np.concatenate(parts) if parts else np.empty(0, dtype=_STATE_DTYPE)
        unit = np.repeat(np.arange(len(parts), dtype=np.int32), [len(p) for p in parts])
        return pa.table(
            [
                pa.array([name for name, _ in self.states], pa.string()).take(_numeric(unit, pa.int32())),
                _names(STATES).take(_numeric(np.ascontiguousarray(arr["state"]), pa.uint8())),
                _numeric(np.ascontiguousarray(arr["start_h"]), pa.float64()),
                _numeric(np.ascontiguousarray(arr["end_h"]), pa.float64()),
            ],
            schema=STATES_SCHEMA,
        )

    def tables(self) -> dict[str, pa.Table]:
        """The run as Arrow tables: events, lots, batches, units, states."""
        with gc_paused():
            return {
                "events": self.events_table(),
                "lots": self.lots_table(),
                "batches": self.batches_table(),
                "units": self.units_table(),
                "states": self.states_table(),
            }
