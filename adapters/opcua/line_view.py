"""Tag values and unit states of the virtual plant, derived from the line's trace events and simulated time.

Pure bookkeeping (no asyncua, no I/O): the server feeds every new trace event in order, ticks the view to the
current simulated hour and takes the resulting ordered stream of value changes and lot-move events.
"""

from __future__ import annotations

import math
from typing import Any

from plant import physics

# One state set for every unit, PackML names (ISA-TR88.00.02), mapped from the model (docs/opcua.md):
STATES = ("Idle", "Starting", "Execute", "Completing", "Suspended", "Held", "Aborted", "Stopped")

# Trace kinds published as OPC UA lot-move events.
LOT_MOVES = ("ald_start", "ald_end", "batch_start", "batch_end", "pass", "rework", "scrap")

# Tag specs per unit kind: (tag, type). Types: Double, Int64, String, Boolean, StringArray.
TAGS: dict[str, tuple[tuple[str, str], ...]] = {
    "ald": (
        ("State", "String"), ("LotId", "Int64"), ("CycleCount", "Int64"), ("CyclesTarget", "Int64"),
        ("ReactorTemp_C", "Double"), ("ChamberPressure_Pa", "Double"), ("BatchesSinceMaintenance", "Int64"),
        ("Hold", "Boolean"),
    ),
    "buffer": (
        ("Count", "Int64"), ("Capacity", "Int64"), ("OldestWait_h", "Double"), ("RelativeHumidity_pct", "Double"),
    ),
    "furnace": (
        ("State", "String"), ("Setpoint_C", "Double"), ("Temperature_C", "Double"), ("Atmosphere", "String"),
        ("O2Flow_slpm", "Double"), ("BatchId", "Int64"), ("LotIds", "StringArray"), ("DoorOpen", "Boolean"),
    ),
    "qc": (
        ("State", "String"), ("InTest", "Int64"), ("LastLotId", "Int64"), ("LastVerdict", "String"),
        ("LastResistance", "Double"), ("PassedCount", "Int64"), ("FailedCount", "Int64"), ("ReworkCount", "Int64"),
    ),
    "line": (
        ("SimTime_h", "Double"), ("LotsReleased", "Int64"), ("LotsInProcess", "Int64"), ("LotsGood", "Int64"),
        ("LotsScrapped", "Int64"), ("BatchesCompleted", "Int64"),
    ),
}  # fmt: skip

# Tags a client may write (only with writes enabled): (unit kind, tag).
WRITABLE = (("furnace", "Setpoint_C"), ("ald", "Hold"))

# Illustrative ALD reactor conditions (not part of the line model): process temperature by precursor chemistry
# (MODEL.md: TEMAHf/H2O 200-250 °C, TMA/H2O 150-200 °C), ~1 Torr during the cycles, atmosphere when vented.
ALD_PROCESS_C = {"HfO2": 225.0, "Al2O3": 175.0}
AMBIENT_C = 25.0
ATM_PA = 101325.0
ALD_BASE_PA = 133.0
LINE_UNIT = "Line"


def _interp(x: float, xs: list[float], ys: list[float]) -> float:
    """Piecewise-linear interpolation on sorted breakpoints, clamped at both ends."""
    if x <= xs[0]:
        return ys[0]
    for i in range(1, len(xs)):
        if x <= xs[i]:
            x0, x1 = xs[i - 1], xs[i]
            if x1 <= x0:
                return ys[i]
            return ys[i - 1] + (ys[i] - ys[i - 1]) * (x - x0) / (x1 - x0)
    return ys[-1]


class _Ald:
    __slots__ = ("name", "state", "lot", "start_h", "factor", "down_acc_h", "down_since_h")

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = "Idle"
        self.lot = -1
        self.start_h = 0.0
        self.factor = 1.0
        self.down_acc_h = 0.0
        self.down_since_h = math.nan


class _Furnace:
    __slots__ = ("name", "state", "idle", "batch", "lots", "start_h", "end_h", "prof_t", "prof_c", "o2_slpm")

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = "Idle"
        self.idle = True
        self.batch = -1
        self.lots: list[str] = []
        self.start_h = math.nan
        self.end_h = math.inf
        self.prof_t: list[float] = []
        self.prof_c: list[float] = []
        self.o2_slpm = 0.0


class LineView:
    """Everything the server publishes, kept up to date from the trace of one running `plant.line.Line`.

    Use: after each `env.step()`, `on_events(new_events)`; now and then `tick(t_h)`; then `take()` returns
    ("v", unit, tag, value, t_h) and ("e", (t_h, kind, unit, lot_id, batch_id)) items in causal order.
    Changes at the same simulated instant are coalesced (a zero-duration state is not published).
    """

    def __init__(self, line: Any) -> None:
        sc = line.scenario
        self.line = line
        self.scenario = sc
        self.values: dict[tuple[str, str], Any] = {}
        self.kinds: dict[str, str] = {}
        self._out: list[tuple] = []
        self._pend: dict[tuple[str, str], Any] = {}
        self._pend_events: list[tuple] = []
        self._pend_t = 0.0
        self._lots: dict[int, Any] = {}
        self._n_lots = 0
        self._last_batch_end = -1
        self._in_test = 0
        coat = sc.coating
        self._cycles = int(coat.cycles)
        self._ald_c = ALD_PROCESS_C.get(coat.material, 200.0)
        ald = sc.ald
        self._ald_phases = (ald.load_h, ald.pump_heat_h, coat.cycles * ald.cycle_min / 60.0, ald.vent_cool_h)
        self._cycle_h = ald.cycle_min / 60.0
        f = sc.furnaces
        self._start_c, self._unload_c = f.start_c, f.unload_c
        self._o2_slpm = f.gas_nm3_per_h * 1000.0 / 60.0
        first = sc.recipes.get(sc.arrivals.recipe) or next(iter(sc.recipes.values()))
        self.alds = {r.name: _Ald(r.name) for r in line.reactors}
        self.furnaces = {fu.name: _Furnace(fu.name) for fu in line.furnaces}
        self._furnace_objs = list(line.furnaces)
        for name in self.alds:
            self.kinds[name] = "ald"
            self._init(name, State="Idle", LotId=-1, CycleCount=0, CyclesTarget=self._cycles,
                       ReactorTemp_C=AMBIENT_C, ChamberPressure_Pa=ATM_PA, BatchesSinceMaintenance=0, Hold=False)  # fmt: skip
        buf = line.buffer
        self.kinds[buf.name] = "buffer"
        self._buf_name = buf.name
        self._buf_in: dict[int, float] = {}
        self._init(buf.name, Count=0, Capacity=int(buf.capacity), OldestWait_h=0.0,
                   RelativeHumidity_pct=float(buf.rh_pct))  # fmt: skip
        for name in self.furnaces:
            self.kinds[name] = "furnace"
            self._init(name, State="Idle", Setpoint_C=float(first.setpoint_c), Temperature_C=float(self._start_c),
                       Atmosphere=str(first.atmosphere), O2Flow_slpm=0.0, BatchId=-1, LotIds=[], DoorOpen=False)  # fmt: skip
        self._qc_name = line.qc.name
        self.kinds[self._qc_name] = "qc"
        self._init(self._qc_name, State="Idle", InTest=0, LastLotId=-1, LastVerdict="", LastResistance=0.0,
                   PassedCount=0, FailedCount=0, ReworkCount=0)  # fmt: skip
        self.kinds[LINE_UNIT] = "line"
        self._init(LINE_UNIT, SimTime_h=0.0, LotsReleased=0, LotsInProcess=0, LotsGood=0, LotsScrapped=0,
                   BatchesCompleted=0)  # fmt: skip
        self._cv_eis = line.qp.cv_eis

    # -- change bookkeeping ----------------------------------------------------------------------------
    def _init(self, unit: str, **tags: Any) -> None:
        for tag, value in tags.items():
            self.values[(unit, tag)] = value

    def _stamp(self, t_h: float) -> None:
        if t_h > self._pend_t:
            self._flush()
            self._pend_t = t_h

    def _flush(self) -> None:
        t = self._pend_t
        out = self._out
        for (unit, tag), value in self._pend.items():
            out.append(("v", unit, tag, value, t))
        for ev in self._pend_events:
            out.append(("e", ev))
        self._pend.clear()
        self._pend_events.clear()

    def _set(self, unit: str, tag: str, value: Any) -> None:
        key = (unit, tag)
        if self.values[key] != value:
            self.values[key] = value
            self._pend[key] = value

    def _add(self, unit: str, tag: str, delta: int) -> None:
        self._set(unit, tag, self.values[(unit, tag)] + delta)

    def take(self) -> list[tuple]:
        """All changes and events up to the last time seen, in order; clears the internal list."""
        self._flush()
        out, self._out = self._out, []
        return out

    def set_external(self, unit: str, tag: str, value: Any) -> None:
        """Record a value written by a client (so the view does not republish the old one)."""
        self.values[(unit, tag)] = value

    def _lot(self, lot_id: int) -> Any:
        lot = self._lots.get(lot_id)
        if lot is None:
            lots = self.line.trace.lots
            for lot_obj in lots[self._n_lots :]:
                self._lots[lot_obj.lot_id] = lot_obj
            self._n_lots = len(lots)
            lot = self._lots.get(lot_id)
        return lot

    # -- time-driven transitions and continuous values ---------------------------------------------------
    def _advance(self, t_h: float) -> None:
        """Furnace cycles that ended by t_h switch to Completing (door open, unloading) at their own time."""
        due = [f for f in self.furnaces.values() if f.state == "Execute" and f.end_h <= t_h]
        for f in sorted(due, key=lambda f: f.end_h):
            self._stamp(f.end_h)
            f.state = "Completing"
            self._set(f.name, "State", "Completing")
            self._set(f.name, "Temperature_C", round(f.prof_c[-1], 1))
            self._set(f.name, "O2Flow_slpm", 0.0)
            self._set(f.name, "DoorOpen", True)

    def tick(self, t_h: float) -> None:
        """Bring continuous values (temperatures, pressures, cycle counts, waits, sim time) to t_h."""
        self._advance(t_h)
        self._stamp(t_h)
        for f in self.furnaces.values():
            if f.state == "Execute":
                self._set(f.name, "Temperature_C", round(_interp(t_h - f.start_h, f.prof_t, f.prof_c), 1))
        for r in self.alds.values():
            if r.state == "Execute":
                self._ald_values(r, t_h)
        if self._buf_in:
            oldest = next(iter(self._buf_in.values()))
            self._set(self._buf_name, "OldestWait_h", round(t_h - oldest, 3))
        self._set(LINE_UNIT, "SimTime_h", round(t_h, 3))

    def _ald_values(self, r: _Ald, t_h: float) -> None:
        op = (t_h - r.start_h - r.down_acc_h) / r.factor  # nominal hours of processing done
        load, heat, cycles_h, vent = self._ald_phases
        amb, proc = AMBIENT_C, self._ald_c
        if op < load:
            temp, pres, n = amb, ATM_PA, 0
        elif op < load + heat:
            x = (op - load) / heat
            temp, pres, n = amb + x * (proc - amb), ATM_PA * (ALD_BASE_PA / ATM_PA) ** x, 0
        elif op < load + heat + cycles_h:
            temp, pres = proc, ALD_BASE_PA
            n = min(self._cycles, int((op - load - heat) / self._cycle_h))
        elif op < load + heat + cycles_h + vent:
            x = (op - load - heat - cycles_h) / vent
            temp, pres, n = proc - x * (proc - amb), ALD_BASE_PA + x * (ATM_PA - ALD_BASE_PA), self._cycles
        else:
            temp, pres, n = amb, ATM_PA, self._cycles
        name = r.name
        self._set(name, "ReactorTemp_C", round(temp, 1))
        self._set(name, "ChamberPressure_Pa", round(pres, 0))
        self._set(name, "CycleCount", n)

    # -- events ----------------------------------------------------------------------------------------
    def on_events(self, events: list[tuple[float, str, str, int, int]]) -> None:
        """Apply new trace events (in trace order), then notice furnaces the dispatcher just started."""
        t_h = self._pend_t
        for ev in events:
            t_h = ev[0]
            self._advance(t_h)
            self._stamp(t_h)
            self._apply(ev)
        for fobj in self._furnace_objs:
            f = self.furnaces[fobj.name]
            if fobj.idle != f.idle:
                f.idle = fobj.idle
                if not fobj.idle and f.state == "Idle":  # dispatched: setup and loading start now
                    f.state = "Starting"
                    self._set(f.name, "State", "Starting")
                    self._set(f.name, "DoorOpen", True)

    def _apply(self, ev: tuple[float, str, str, int, int]) -> None:
        t_h, kind, unit, lot_id, batch_id = ev
        if kind in LOT_MOVES:
            self._pend_events.append(ev)
        ukind = self.kinds.get(unit)
        if ukind == "ald":
            self._apply_ald(self.alds[unit], t_h, kind, lot_id)
        elif ukind == "furnace":
            self._apply_furnace(self.furnaces[unit], t_h, kind, lot_id, batch_id)
        elif ukind == "buffer":
            if kind == "buffer_in":
                self._buf_in[lot_id] = t_h
            elif kind == "buffer_out":
                self._buf_in.pop(lot_id, None)
            self._set(unit, "Count", len(self._buf_in))
            if not self._buf_in:
                self._set(unit, "OldestWait_h", 0.0)
        elif ukind == "qc":
            self._apply_qc(unit, kind, lot_id)
        elif kind == "arrive":
            self._add(LINE_UNIT, "LotsReleased", 1)
            self._add(LINE_UNIT, "LotsInProcess", 1)

    def _apply_ald(self, r: _Ald, t_h: float, kind: str, lot_id: int) -> None:
        name = r.name
        if kind == "ald_start":
            lot = self._lot(lot_id)
            r.lot, r.start_h, r.down_acc_h = lot_id, t_h, 0.0
            r.factor = lot.ald_factor if lot is not None and lot.ald_factor > 0 else 1.0
            r.state = "Execute"
            self._set(name, "LotId", lot_id)
            self._ald_values(r, t_h)
        elif kind == "ald_end":
            r.state = "Idle"
            self._ald_values(r, t_h)
            self._set(name, "CycleCount", self._cycles)
            self._set(name, "LotId", -1)
            self._add(name, "BatchesSinceMaintenance", 1)
        elif kind == "blocked_start":
            r.state = "Suspended"
            self._set(name, "LotId", lot_id)
        elif kind == "blocked_end":
            r.state = "Idle"
            self._set(name, "LotId", -1)
        elif kind == "down":
            r.down_since_h = t_h
            r.state = "Aborted"
        elif kind == "up":
            r.down_acc_h += t_h - r.down_since_h
            r.state = "Execute" if r.lot >= 0 else "Idle"
        elif kind == "pm_start":
            r.state = "Held"
        elif kind == "pm_end":
            r.state = "Idle"
            self._set(name, "BatchesSinceMaintenance", 0)
        if kind in ("ald_end", "blocked_end"):
            r.lot = -1
        self._set(name, "State", r.state)

    def _apply_furnace(self, f: _Furnace, t_h: float, kind: str, lot_id: int, batch_id: int) -> None:
        name = f.name
        if kind == "batch_start":
            if f.state != "Execute" or f.batch != batch_id:
                lot = self._lot(lot_id)
                recipe = self.scenario.recipes[lot.recipe]
                t, c = physics.recipe_profile(
                    recipe.setpoint_c, recipe.ramp_c_per_min, recipe.soak_h, recipe.cool_c_per_min,
                    start_c=self._start_c, unload_c=self._unload_c,
                )  # fmt: skip
                f.prof_t, f.prof_c = [float(x) for x in t], [float(x) for x in c]
                f.start_h, f.end_h, f.batch, f.lots = t_h, t_h + f.prof_t[-1], batch_id, []
                f.state = "Execute"
                f.o2_slpm = self._o2_slpm if recipe.atmosphere == "O2" else 0.0
                self._set(name, "State", "Execute")
                self._set(name, "BatchId", batch_id)
                self._set(name, "Setpoint_C", float(recipe.setpoint_c))
                self._set(name, "Atmosphere", str(recipe.atmosphere))
                self._set(name, "O2Flow_slpm", round(f.o2_slpm, 1))
                self._set(name, "DoorOpen", False)
                self._set(name, "Temperature_C", round(f.prof_c[0], 1))
            f.lots = [*f.lots, str(lot_id)]
            self._set(name, "LotIds", f.lots)
        elif kind == "batch_end":
            if f.state != "Idle":
                f.state, f.lots, f.end_h = "Idle", [], math.inf
                self._set(name, "State", "Idle")
                self._set(name, "LotIds", [])
                self._set(name, "BatchId", -1)
                self._set(name, "DoorOpen", False)
                self._set(name, "O2Flow_slpm", 0.0)
                self._set(name, "Temperature_C", float(self._start_c))
            if batch_id != self._last_batch_end:
                self._last_batch_end = batch_id
                self._add(LINE_UNIT, "BatchesCompleted", 1)
        elif kind == "setup_start":
            f.state = "Starting"
            self._set(name, "State", "Starting")
            self._set(name, "BatchId", batch_id)
            self._set(name, "DoorOpen", False)
        elif kind == "setup_end":
            self._set(name, "DoorOpen", True)
        elif kind == "down":
            f.state = "Aborted"
            self._set(name, "State", "Aborted")
        elif kind == "up":
            f.state = "Idle"
            self._set(name, "State", "Idle")

    def _apply_qc(self, unit: str, kind: str, lot_id: int) -> None:
        if kind == "qc_start":
            self._in_test += 1
        elif kind == "qc_end":
            self._in_test -= 1
        elif kind in ("pass", "rework", "scrap"):
            lot = self._lot(lot_id)
            self._set(unit, "LastLotId", lot_id)
            self._set(unit, "LastVerdict", kind)
            if lot is not None and lot.assessment is not None:
                z = lot.qc_noise()[3]  # the EIS deviate of the test that decided
                r_meas = lot.assessment.props.r_int_ohm_cm2 * (1.0 + self._cv_eis * z)
                self._set(unit, "LastResistance", round(float(r_meas), 3))
            tag = {"pass": "PassedCount", "rework": "ReworkCount", "scrap": "FailedCount"}[kind]
            self._add(unit, tag, 1)
            if kind != "rework":
                self._add(LINE_UNIT, "LotsGood" if kind == "pass" else "LotsScrapped", 1)
                self._add(LINE_UNIT, "LotsInProcess", -1)
        self._set(unit, "InTest", self._in_test)
        self._set(unit, "State", "Execute" if self._in_test > 0 else "Idle")

    def stop(self, t_h: float) -> None:
        """The line reached its horizon: every unit with a state goes to Stopped."""
        self.tick(t_h)
        for unit, tag in list(self.values):
            if tag == "State":
                self._set(unit, tag, "Stopped")
