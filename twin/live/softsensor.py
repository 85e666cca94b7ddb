"""Soft sensor: when a mirrored furnace batch ends, integrate its MEASURED Temperature_C profile through the
quality model (`plant.physics.anneal_dose`) and predict each lot's densification, bonding, resistance, damage and
verdict, beside the prediction for the recipe's nominal profile; flag batches whose profile drifted.

Lot history comes from derived plant events: a lot that left an ALD unit starts a nominal coating (no noise),
waits in the buffer environment until its batch heats, and keeps its predicted state across re-anneals.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from adapters.opcua.client import PlantEvent, Sample
from plant import physics
from twin.schema import SOFT_SENSOR

COLUMNS = tuple(SOFT_SENSOR.column_names)  # one row per lot of a finished batch (twin/schema.py)


@dataclass(frozen=True)
class RecipeSpec:
    name: str
    setpoint_c: float
    ramp_c_per_min: float
    soak_h: float
    atmosphere: str
    cool_c_per_min: float


@dataclass
class SoftSensorConfig:
    """Model parameters the soft sensor needs (normally taken from the scenario file)."""

    qp: physics.QualityParams = field(default_factory=physics.QualityParams)
    recipes: tuple[RecipeSpec, ...] = ()
    start_c: float = 25.0
    unload_c: float = 80.0
    material: str = "HfO2"
    cycles: int = 10
    buffer_rh_pct: float = 50.0
    buffer_temp_c: float = 25.0
    time_scale: float = 1.0  # plant hours per wall-clock hour of the timestamps
    tol_x_d: float = 0.02  # |X_d measured - nominal| above this is drift
    tol_peak_c: float = 10.0  # |peak - setpoint| above this is drift
    tol_soak_rel: float = 0.1  # soak time off by more than this fraction is drift

    @classmethod
    def from_scenario(cls, scenario: Any, time_scale: float = 1.0) -> SoftSensorConfig:
        recipes = tuple(
            RecipeSpec(n, r.setpoint_c, r.ramp_c_per_min, r.soak_h, r.atmosphere, r.cool_c_per_min)
            for n, r in scenario.recipes.items()
        )
        f = scenario.furnaces
        return cls(
            qp=scenario.quality_params(),
            recipes=recipes,
            start_c=f.start_c,
            unload_c=f.unload_c,
            material=scenario.coating.material,
            cycles=scenario.coating.cycles,
            buffer_rh_pct=scenario.buffer.effective_rh_pct,
            buffer_temp_c=scenario.buffer.temp_c,
            time_scale=time_scale,
        )


def measured_profile(
    points: list[tuple[datetime, float]], time_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """(t_h, temp_c) of change-driven samples: linear between close samples, held across long silences.

    A server publishes a value only when it changes, so a long silence means "unchanged": before each sample a
    corner point with the previous value is put one typical sampling interval earlier.
    """
    if not points:
        return np.array([]), np.array([])
    t0 = points[0][0]
    t = np.array([(p[0] - t0).total_seconds() / 3600.0 * time_scale for p in points])
    c = np.array([p[1] for p in points], dtype=float)
    if len(t) < 3:
        return t, c
    dt = np.diff(t)
    typical = float(np.median(dt[dt > 0])) if np.any(dt > 0) else 0.0
    ts, cs = [t[0]], [c[0]]
    for i in range(1, len(t)):
        if dt[i - 1] > 1.5 * typical and typical > 0:
            ts.append(t[i] - typical)
            cs.append(c[i - 1])
        ts.append(t[i])
        cs.append(c[i])
    return np.array(ts), np.array(cs)


def soak_hours(t_h: np.ndarray, temp_c: np.ndarray, setpoint_c: float, band_c: float = 5.0) -> float:
    """Hours the profile spends within band_c below the setpoint or above it (linear interpolation)."""
    if len(t_h) < 2:
        return 0.0
    fine = np.linspace(t_h[0], t_h[-1], 4000)
    vals = np.interp(fine, t_h, temp_c)
    return float(np.sum(vals >= setpoint_c - band_c) * (fine[1] - fine[0]))


@dataclass
class _Batch:
    unit: str
    batch_id: str
    t_start: datetime
    points: list[tuple[datetime, float]] = field(default_factory=list)
    lots: list[str] = field(default_factory=list)
    setpoint_c: float | None = None
    atmosphere: str | None = None


class SoftSensor:
    """Feed samples and derived events in order; `take()` returns the prediction rows of finished batches."""

    def __init__(self, cfg: SoftSensorConfig, kinds: dict[str, str], source: str = "plant") -> None:
        self.cfg = cfg
        self.kinds = kinds
        self.source = source
        self.active: dict[str, _Batch] = {}
        self.lots: dict[str, tuple[physics.CoatingState, datetime]] = {}  # lot -> (state, exposed since)
        self.last: dict[tuple[str, str], Any] = {}
        self._rows: list[tuple] = []
        self._nominal: dict[str, physics.AnnealDose] = {}

    def on_sample(self, s: Sample) -> None:
        if s.flag or self.kinds.get(s.unit) != "furnace":
            return
        v = s.mapped if s.mapped is not None else (s.value_text if s.value_text is not None else s.value)
        self.last[(s.unit, s.signal)] = v
        b = self.active.get(s.unit)
        if b is None:
            return
        if s.signal == "temperature_c" and s.value is not None:
            b.points.append((s.source_ts, float(s.value)))
        elif s.signal == "setpoint_c" and s.value is not None:
            b.setpoint_c = float(s.value)
        elif s.signal == "atmosphere" and v is not None:
            b.atmosphere = str(v)
        elif s.signal in ("lot_ids", "lot_id"):
            _add_ids(b.lots, v)

    def on_event(self, ev: PlantEvent) -> None:
        if ev.origin != "derived" or ev.unit is None:
            return
        kind = self.kinds.get(ev.unit)
        if kind == "ald" and ev.kind == "lot_out" and ev.lot_id is not None:
            cfg = self.cfg
            state = physics.new_coating(cfg.material, cfg.cycles, cfg.qp, 0.0)
            self.lots[ev.lot_id] = (state, ev.t)
        elif kind == "qc" and ev.kind == "lot_out" and ev.lot_id in self.lots:
            state, _ = self.lots[ev.lot_id]
            self.lots[ev.lot_id] = (state, ev.t)  # back to the buffer after QC: exposure restarts
        elif kind == "furnace":
            if ev.kind == "batch_start" and ev.batch_id is not None and ev.detail != "initial":
                b = _Batch(ev.unit, ev.batch_id, ev.t)
                b.setpoint_c = _num(self.last.get((ev.unit, "setpoint_c")))
                atm = self.last.get((ev.unit, "atmosphere"))
                b.atmosphere = str(atm) if atm is not None else None
                _add_ids(b.lots, self.last.get((ev.unit, "lot_ids")))
                t_last = self.last.get((ev.unit, "temperature_c"))
                if t_last is not None:
                    b.points.append((ev.t, float(t_last)))
                self.active[ev.unit] = b
            elif ev.kind == "lot_in" and ev.unit in self.active and ev.lot_id is not None:
                b = self.active[ev.unit]
                if ev.lot_id not in b.lots:
                    b.lots.append(ev.lot_id)
            elif ev.kind == "batch_end" and ev.unit in self.active:
                b = self.active.pop(ev.unit)
                if b.batch_id == ev.batch_id:
                    self._finish(b, ev.t)

    def take(self) -> list[tuple]:
        rows, self._rows = self._rows, []
        return rows

    # -- the prediction ------------------------------------------------------------------------------------
    def _recipe(self, setpoint_c: float | None, atmosphere: str | None) -> RecipeSpec | None:
        cands = [r for r in self.cfg.recipes if atmosphere is None or r.atmosphere == atmosphere]
        if setpoint_c is None or not cands:
            return cands[0] if len(cands) == 1 else None
        best = min(cands, key=lambda r: abs(r.setpoint_c - setpoint_c))
        return best if abs(best.setpoint_c - setpoint_c) <= 1.0 else None

    def nominal_dose(self, r: RecipeSpec) -> physics.AnnealDose:
        dose = self._nominal.get(r.name)
        if dose is None:
            t, c = physics.recipe_profile(r.setpoint_c, r.ramp_c_per_min, r.soak_h, r.cool_c_per_min,
                                          start_c=self.cfg.start_c, unload_c=self.cfg.unload_c)  # fmt: skip
            dose = self._nominal[r.name] = physics.anneal_dose(t, c, self.cfg.qp)
        return dose

    def _finish(self, b: _Batch, t_end: datetime) -> None:
        cfg, qp = self.cfg, self.cfg.qp
        pts = sorted(p for p in b.points if p[0] <= t_end)
        if len(pts) < 2:
            return
        t_h, temp_c = measured_profile(pts, cfg.time_scale)
        dose = physics.anneal_dose(t_h, temp_c, qp)
        # heating starts at the last sample before the temperature first rises 2 °C above its start value
        rising = np.nonzero(np.array([p[1] for p in pts]) > pts[0][1] + 2.0)[0]
        heat_start = pts[max(int(rising[0]) - 1, 0)][0] if len(rising) else pts[0][0]
        recipe = self._recipe(b.setpoint_c, b.atmosphere)
        atmosphere = (
            b.atmosphere if b.atmosphere in physics.ATMOSPHERES else (recipe.atmosphere if recipe else "O2")
        )
        nom = self.nominal_dose(recipe) if recipe is not None else None
        setpoint = (
            b.setpoint_c if b.setpoint_c is not None else (recipe.setpoint_c if recipe else dose.peak_c)
        )
        soak = soak_hours(t_h, temp_c, setpoint)
        reasons = []
        if abs(dose.peak_c - setpoint) > cfg.tol_peak_c:
            reasons.append(f"peak {dose.peak_c:.0f} °C vs setpoint {setpoint:.0f} °C")
        if (
            recipe is not None
            and recipe.soak_h > 0
            and abs(soak - recipe.soak_h) > cfg.tol_soak_rel * recipe.soak_h
        ):
            reasons.append(f"soak {soak:.2f} h vs {recipe.soak_h:.2f} h")
        if recipe is None:
            reasons.append("no recipe matches the setpoint/atmosphere")
        for lot in b.lots:
            if lot in self.lots:
                state0, exposed = self.lots[lot]
                wait_h = max(0.0, (heat_start - exposed).total_seconds() / 3600.0 * cfg.time_scale)
            else:
                state0, wait_h = physics.new_coating(cfg.material, cfg.cycles, qp, 0.0), math.nan
            meas = _predict(state0, wait_h, dose, atmosphere, cfg)
            lot_reasons = list(reasons)
            if nom is not None:
                ref = _predict(state0, wait_h, nom, recipe.atmosphere, cfg)  # type: ignore[union-attr]
                if abs(meas[0].x_d - ref[0].x_d) > cfg.tol_x_d:
                    lot_reasons.append(f"X_d {meas[0].x_d:.3f} vs nominal {ref[0].x_d:.3f}")
                nominal_cols = (ref[1].props.x_d, ref[1].props.bonding, ref[1].props.r_int_ohm_cm2,
                                ref[1].props.dmix_pct, ref[1].verdict)  # fmt: skip
            else:
                nominal_cols = (None, None, None, None, None)
            p = meas[1].props
            self._rows.append((
                self.source, b.unit, b.batch_id, lot, b.t_start, t_end, recipe.name if recipe else None, atmosphere,
                len(pts), dose.peak_c, soak, dose.duration_h, None if math.isnan(wait_h) else wait_h,
                meas[0].anneals, p.x_d, p.bonding, p.roughness_nm, p.r_int_ohm_cm2, p.dmix_pct, p.l_d_nm, p.rl_ppm,
                meas[1].verdict, meas[1].reason, *nominal_cols, bool(lot_reasons), "; ".join(lot_reasons) or None,
            ))  # fmt: skip
            self.lots[lot] = (meas[0], t_end)


def _predict(
    state0: physics.CoatingState,
    wait_h: float,
    dose: physics.AnnealDose,
    atmosphere: str,
    cfg: SoftSensorConfig,
) -> tuple[physics.CoatingState, physics.Assessment]:
    st = copy.copy(state0)
    if wait_h > 0 and math.isfinite(wait_h):
        physics.wait(st, wait_h, cfg.buffer_rh_pct, cfg.buffer_temp_c, cfg.qp)
    physics.anneal(st, dose, atmosphere, cfg.qp)
    return st, physics.assess(st, cfg.qp, (0.0, 0.0, 0.0, 0.0), can_rework=st.anneals <= 1)


def _add_ids(lots: list[str], value: Any) -> None:
    from twin.live.derive import _ids

    for lot in _ids(value):
        if lot not in lots:
            lots.append(lot)


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None
