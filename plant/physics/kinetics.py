"""Kinetic doses of a furnace profile: Arrhenius integrals over piecewise-linear temperature profiles (recipe
breakpoints or a measured historian profile), expressed as equivalent hours at 400 °C for each process."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from plant.expint import exp1
from plant.physics.params import R_KJ, T_REF_ANNEAL_K, QualityParams

COOL_BAND_K = 5.0  # cooling starts at the last profile point within this band of the peak temperature
_FLAT_SEGMENT_K = 1.0  # segments with |T1 - T0| below this use Gauss-Legendre instead of the E1 closed form
_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)


def _profile_arrays(t_h: ArrayLike, temp_c: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t_h, dtype=float)
    tc = np.asarray(temp_c, dtype=float)
    if t.ndim != 1 or tc.ndim != 1:
        raise ValueError("temperature profile: t_h and temp_c must be 1-D arrays")
    if t.shape != tc.shape:
        raise ValueError(f"temperature profile: t_h has {t.size} points but temp_c has {tc.size}")
    if t.size < 2:
        raise ValueError("temperature profile: needs at least 2 points")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(tc))):
        raise ValueError("temperature profile: t_h and temp_c must be finite (no NaN or inf)")
    if np.any(np.diff(t) < 0.0):
        i = int(np.argmax(np.diff(t) < 0.0))
        raise ValueError(f"temperature profile: t_h must be non-decreasing (t[{i + 1}] < t[{i}])")
    tk = tc + 273.15
    if np.any(tk <= 0.0):
        raise ValueError("temperature profile: temperatures must be above absolute zero (-273.15 °C)")
    return t, tk


def _antiderivative(tk: np.ndarray, a: float) -> np.ndarray:
    """F(T) = T exp(-a/T) - a E1(a/T), dF/dT = exp(-a/T)."""
    x = a / tk
    return tk * np.exp(-x) - a * exp1(x)


def _segments_integral(t: np.ndarray, tk: np.ndarray, a: float) -> float:
    dt = t[1:] - t[:-1]
    t0 = tk[:-1]
    t1 = tk[1:]
    dT = t1 - t0
    live = dt > 0.0
    flat = live & (np.abs(dT) < _FLAT_SEGMENT_K)
    ramp = live & ~flat
    total = 0.0
    if np.any(ramp):
        r0, r1 = t0[ramp], t1[ramp]
        total += float(np.sum((_antiderivative(r1, a) - _antiderivative(r0, a)) * (dt[ramp] / (r1 - r0))))
    if np.any(flat):
        f0, f1, fdt = t0[flat], t1[flat], dt[flat]
        # Gauss-Legendre in time; T is linear in t on the segment
        tn = 0.5 * (f0 + f1)[:, None] + 0.5 * (f1 - f0)[:, None] * _GL_X[None, :]
        total += float(np.sum(0.5 * fdt * (np.exp(-a / tn) @ _GL_W)))
    return total


def kinetic_integral(t_h: ArrayLike, temp_c: ArrayLike, ea_kj_mol: float) -> float:
    """Theta = ∫ exp(-Ea/(R T(t))) dt in hours over a piecewise-linear profile, exact per segment.

    A ramp segment uses the closed form (F(T1) - F(T0)) / slope with F(T) = T exp(-a/T) - a E1(a/T), a = Ea/R;
    a segment whose temperature changes by less than 1 K uses 8-point Gauss-Legendre (no cancellation).
    Accepts recipe breakpoints or a measured historian profile (any number of points; duplicate times allowed).
    """
    if not math.isfinite(ea_kj_mol) or ea_kj_mol <= 0.0:
        raise ValueError(f"activation energy must be a positive finite number, got {ea_kj_mol!r}")
    t, tk = _profile_arrays(t_h, temp_c)
    return _segments_integral(t, tk, ea_kj_mol / R_KJ)


def equivalent_hours(t_h: ArrayLike, temp_c: ArrayLike, ea_kj_mol: float) -> float:
    """The profile's dose as hours at 400 °C: Θ·exp(Ea/(R·673.15 K))."""
    return kinetic_integral(t_h, temp_c, ea_kj_mol) * math.exp(ea_kj_mol / (R_KJ * T_REF_ANNEAL_K))


def recipe_profile(
    setpoint_c: float,
    ramp_c_per_min: float,
    soak_h: float,
    cool_c_per_min: float,
    start_c: float = 25.0,
    unload_c: float = 80.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-linear furnace profile: start_c -> setpoint at the ramp rate, hold soak_h, then cool to unload_c.

    Returns (t_h, temp_c) breakpoints, t starting at 0. Unloading hotter than the setpoint means no cooling segment.
    """
    for name, v in (("ramp_c_per_min", ramp_c_per_min), ("cool_c_per_min", cool_c_per_min)):
        if not math.isfinite(v) or v <= 0.0:
            raise ValueError(f"recipe {name} must be > 0, got {v!r}")
    if not math.isfinite(soak_h) or soak_h < 0.0:
        raise ValueError(f"recipe soak_h must be >= 0, got {soak_h!r}")
    for name, v in (("setpoint_c", setpoint_c), ("start_c", start_c), ("unload_c", unload_c)):
        if not math.isfinite(v) or v <= -273.15:
            raise ValueError(f"recipe {name} must be a temperature above -273.15 °C, got {v!r}")
    t_ramp = abs(setpoint_c - start_c) / ramp_c_per_min / 60.0
    end_c = min(unload_c, setpoint_c)
    t_cool = (setpoint_c - end_c) / cool_c_per_min / 60.0
    t = np.array([0.0, t_ramp, t_ramp + soak_h, t_ramp + soak_h + t_cool])
    temp = np.array([start_c, setpoint_c, setpoint_c, end_c], dtype=float)
    return t, temp


DOSE_PROCESSES = {
    "d": "ea_d_kj",  # densification (and smoothing)
    "b": "ea_b_kj",  # bonding to the NCM
    "c": "ea_c_kj",  # crystallisation
    "u": "ea_u_kj",  # Li uptake by the film
    "r": "ea_r_kj",  # relithiation of the Li-deficient shell
    "rs": "ea_rs_kj",  # reduced rock-salt layer (oxygen loss)
    "m": "ea_m_kj",  # cation mixing
    "diff_hfo2": "ea_diff_hfo2_kj",  # interdiffusion of Hf into the NCM surface
    "diff_al2o3": "ea_diff_al2o3_kj",  # interdiffusion of Al
}
"""dose name -> the activation-energy field of its process."""


@dataclass(frozen=True, slots=True)
class AnnealDose:
    """The kinetic doses of one furnace profile as equivalent hours at 400 °C, one per process (DOSE_PROCESSES),
    computed once per recipe or measured profile; duration_h, peak_c and cool_h describe the profile."""

    d: float
    b: float
    c: float
    u: float
    r: float
    rs: float
    m: float
    diff_hfo2: float
    diff_al2o3: float
    duration_h: float
    peak_c: float
    cool_h: float


def anneal_dose(t_h: ArrayLike, temp_c: ArrayLike, params: QualityParams) -> AnnealDose:
    """All kinetic doses of a furnace profile (recipe breakpoints or a measured profile)."""
    t, tk = _profile_arrays(t_h, temp_c)
    peak_k = float(np.max(tk))
    last_hot = int(np.nonzero(tk >= peak_k - COOL_BAND_K)[0][-1])
    doses = {}
    for name, field_name in DOSE_PROCESSES.items():
        a = getattr(params, field_name) / R_KJ
        doses[name] = _segments_integral(t, tk, a) * math.exp(a / T_REF_ANNEAL_K)
    return AnnealDose(
        **doses, duration_h=float(t[-1] - t[0]), peak_c=peak_k - 273.15, cool_h=float(t[-1] - t[last_hot])
    )
