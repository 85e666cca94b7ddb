"""Per-lot quality physics of the ALD + mild-anneal line (MODEL.md §1): parameters, kinetic integrals over
furnace profiles, coating state updates (deposit, wait, anneal), properties and the spec check.
Pure functions on numbers and arrays; no SimPy, no I/O. Hot-path functions use `math` on floats only."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from plant.expint import exp1

R_KJ = 8.314462618e-3  # kJ/(mol K)
ATMOSPHERES = ("O2", "dry_air", "air", "N2")
MATERIALS = ("HfO2", "Al2O3")

T_REF_K = 298.15  # reference temperature of the wet-exposure rate K_w (25 °C)
RH_REF_PCT = 50.0  # reference relative humidity of K_w
DRY_ROOM_RH_PCT = (
    1.0  # default RH of a dry room (-40 °C dew point is 0.4-0.6 % RH at 20-25 °C; 1 % is conservative)
)
COOL_BAND_K = 5.0  # cooling starts at the last profile point within this band of the peak temperature
_FLAT_SEGMENT_K = 1.0  # segments with |T1 - T0| below this use Gauss-Legendre instead of the E1 closed form
_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)


@dataclass(frozen=True, slots=True)
class QualityParams:
    """Every parameter of the quality model with its default (units in the names; sources in PARAM_SOURCES)."""

    # powder
    bet_m2_g: float = 0.4
    rl0_ppm: float = 1200.0
    d_rl_ald_ppm: float = 0.0
    q_ref_mah_g: float = 203.0
    fce_ref: float = 0.89
    # ALD chemistry
    gpc_hfo2_nm: float = 0.10
    gpc_al2o3_nm: float = 0.11
    n_delay_cycles: float = 1.0
    rho_am_hfo2_g_cm3: float = 9.2
    rho_am_al2o3_g_cm3: float = 3.0
    dens_gain_hfo2: float = 0.03
    dens_gain_al2o3: float = 0.05
    d_cov_nm: float = 0.4
    dose_saturation: float = 1.0
    cv_thickness: float = 0.05
    prec_hfo2_mol_m2: float = 4.5e-6
    prec_al2o3_mol_m2: float = 6.5e-6
    eta_util: float = 0.6
    # densification (JMAK on the Arrhenius integral)
    ea_d_kj: float = 100.0
    a_d_per_h: float = 4.47e7
    n_d: float = 1.0
    # crystallization
    ea_c_kj: float = 300.0
    n_c: float = 2.0
    t_cr_hfo2_c: float = 600.0
    t_cr_al2o3_c: float = 850.0
    # cation mixing and interdiffusion
    ea_m_kj: float = 220.0
    a_m_pct_per_h: float = 2.56e10
    f_atm_o2: float = 1.0
    f_atm_dry_air: float = 1.3
    f_atm_air: float = 1.5
    f_atm_n2: float = 5.0
    ea_diff_kj: float = 250.0
    d0_diff_nm2_per_h: float = 2.1e15
    # residual-Li conversion in the anneal and pick-up on cooling in air
    ea_conv_kj: float = 80.0
    a_conv_per_h: float = 3.54e5
    r_conv_max: float = 0.5
    conv_o2: float = 1.0
    conv_dry_air: float = 1.0
    conv_air: float = 1.0
    conv_n2: float = 0.5
    air_pickup_ppm_per_sqrt_h: float = 30.0
    # residual-Li growth while waiting
    k_w_ppm2_per_h: float = 2.7e4
    m_rh: float = 1.5
    ea_w_kj: float = 40.0
    eta_0: float = 0.3
    eta_1: float = 0.6
    # roughness and bonding (JMAK on the densification integral)
    rough0_nm: float = 0.5
    rough_min_nm: float = 0.2
    a_rough_per_h: float = 8.94e7
    n_rough: float = 1.0
    a_bond_per_h: float = 2.24e7
    n_bond: float = 1.0
    # property factors
    alpha_d_per_nm: float = 0.15
    alpha_u: float = 0.5
    alpha_rl_per_kppm: float = 0.2
    alpha_c: float = 0.3
    alpha_m_per_pct: float = 0.5
    beta_d_mah_g_nm: float = 5.0
    d_free_nm: float = 1.0
    beta_rl_mah_g_kppm: float = 3.0
    beta_m_mah_g_pct: float = 4.0
    beta_r_mah_g: float = 5.0
    k_f0_per_cycle: float = 1.6e-3
    gamma_rl_per_kppm: float = 0.1
    gamma_c: float = 0.5
    phi_rl_per_kppm: float = 0.01
    phi_m_per_pct: float = 0.01
    epsilon: float = 0.6
    r_ref_ohm_cm2: float = 30.0
    # spec limits
    thickness_min_rel: float = 0.85
    thickness_max_rel: float = 1.15
    x_d_min: float = 0.5
    rl_max_ppm: float = 1200.0
    dmix_max_pct: float = 0.05
    l_d_max_nm: float = 1.0
    r_rel_max: float = 1.8
    # measurement CVs
    cv_icp: float = 0.03
    cv_titration: float = 0.08
    cv_xrd: float = 0.10
    cv_eis: float = 0.10

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"QualityParams.{f.name} must be a finite number, got {v!r}")
            if v < 0.0 and f.name not in _MAY_BE_NEGATIVE:
                raise ValueError(f"QualityParams.{f.name} must be >= 0, got {v!r}")
        for name in _POSITIVE:
            if getattr(self, name) <= 0.0:
                raise ValueError(f"QualityParams.{name} must be > 0, got {getattr(self, name)!r}")
        if self.thickness_min_rel > self.thickness_max_rel:
            raise ValueError("QualityParams.thickness_min_rel must be <= thickness_max_rel")
        if self.r_conv_max >= 1.0:
            raise ValueError(f"QualityParams.r_conv_max must be < 1, got {self.r_conv_max!r}")

    def replace(self, **overrides: float) -> QualityParams:
        """A copy with some fields changed; an unknown name raises ValueError naming it and the valid ones."""
        valid = _FIELD_NAMES
        for name in overrides:
            if name not in valid:
                raise ValueError(f"unknown quality parameter {name!r}; valid: {', '.join(valid)}")
        return dataclasses.replace(self, **overrides)


_MAY_BE_NEGATIVE = frozenset({"d_rl_ald_ppm"})
_POSITIVE = (
    "bet_m2_g",
    "d_cov_nm",
    "eta_util",
    "ea_d_kj",
    "a_d_per_h",
    "n_d",
    "ea_c_kj",
    "n_c",
    "ea_m_kj",
    "ea_diff_kj",
    "ea_conv_kj",
    "n_rough",
    "n_bond",
    "k_f0_per_cycle",
    "r_ref_ohm_cm2",
)
_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(QualityParams))

# field -> (unit, tag, source). Tags as MODEL.md: S cited source, K literature value, C computed, E estimate.
# Numbers in brackets refer to the source list of docs/model.md (carried over from MODEL.md §4).
PARAM_SOURCES: dict[str, tuple[str, str, str]] = {
    "bet_m2_g": ("m²/g", "K", "typical poly-crystalline NCM811; PC vs SC in Trevisanello 2021 [59]"),
    "rl0_ppm": ("ppm Li", "S/E", "after the 750 °C O2 pre-clean [27]; value estimated"),
    "d_rl_ald_ppm": ("ppm Li", "S/E", "ΔRL during ALD; sign from Li et al. 2022 [18], value 0"),
    "q_ref_mah_g": ("mAh/g", "S", "NCM811 ~200 mAh/g, Laine et al. 2023 [57]"),
    "fce_ref": ("–", "K", "typical NCM811 half cell"),
    "gpc_hfo2_nm": ("nm/cycle", "K", "TEMAHf/H2O, Hausmann et al. 2002"),
    "gpc_al2o3_nm": ("nm/cycle", "S/K", "1.12 Å/cycle on NCM811 [16]; Groner 2004"),
    "n_delay_cycles": ("cycles", "E", "nucleation delay on the substrate"),
    "rho_am_hfo2_g_cm3": ("g/cm³", "K", "as-deposited ALD HfO2 (m-HfO2 9.68)"),
    "rho_am_al2o3_g_cm3": ("g/cm³", "K", "Groner 2004 (3.0 at 177 °C)"),
    "dens_gain_hfo2": ("–", "S/E", "+2.5 % on HfO2 crystallization, Bagmut 2018 [32]"),
    "dens_gain_al2o3": ("–", "S/E", "densification of amorphous Al2O3 on anneal [35]"),
    "d_cov_nm": ("nm", "E", "coverage length: 1 nm -> c ≈ 0.92"),
    "dose_saturation": ("–", "E", "eq. 2 dose factor 1 - exp(-t_dose/τ_sat); 1 = saturated dosing"),
    "cv_thickness": ("–", "E", "lot-to-lot thickness CV"),
    "prec_hfo2_mol_m2": ("mol/m²/cycle", "C", "1.0 Å × 9.5 g/cm³ / 210.5 g/mol"),
    "prec_al2o3_mol_m2": ("mol/m²/cycle", "C", "1.1 Å × 3.0 g/cm³ / 102 g/mol × 2"),
    "eta_util": ("–", "S", "rotary drum up to 70 % [3]; fluidized bed higher [1]"),
    "ea_d_kj": ("kJ/mol", "E", "steep 350–450 °C densification window; fit by twin calibrate"),
    "a_d_per_h": (
        "1/h",
        "C/E",
        "X_d = 0.90 for the full default profile with 2 h soak at 400 °C; fit by twin calibrate",
    ),
    "n_d": ("–", "E", "JMAK n ≈ 1 (first-order relaxation), MODEL eq. 5; fit by twin calibrate"),
    "ea_c_kj": ("kJ/mol", "E", "crystallization activation energy"),
    "n_c": ("–", "S", "quadratic X(t) for HfO2 film crystallization, Bagmut 2018 [32]"),
    "t_cr_hfo2_c": ("°C", "S/E", "1–2 nm HfO2 on NCM: thinner -> suppressed crystallization [29–31]"),
    "t_cr_al2o3_c": ("°C", "S", "amorphous alumina crystallizes from ~800 °C [34]"),
    "ea_m_kj": ("kJ/mol", "E", "Li/Ni cation mixing; Yang 2025 [54]"),
    "a_m_pct_per_h": ("%/h", "C/E", "dmix = 0.75 % after 5 h at 750 °C in O2 (MODEL: 0.5–1 %)"),
    "f_atm_o2": ("–", "E", "atmosphere factor on mixing, O2 reference"),
    "f_atm_dry_air": ("–", "E", "atmosphere factor on mixing"),
    "f_atm_air": ("–", "E", "air: CO2/H2O pick-up"),
    "f_atm_n2": ("–", "E", "inert: surface O loss, Ni2+ (range 2–10)"),
    "ea_diff_kj": ("kJ/mol", "S/E", "Al/Hf interdiffusion [24]; qualitative"),
    "d0_diff_nm2_per_h": (
        "nm²/h",
        "C/E",
        "L_D ≈ 2.5 nm for 400->600 °C profile with 2 h soak (MODEL: > 2 nm at ≥ 600 °C)",
    ),
    "ea_conv_kj": ("kJ/mol", "E", "residual-Li conversion in the anneal"),
    "a_conv_per_h": ("1/h", "C/E", "r_conv = 0.30 for the default 400 °C/3 h O2 profile [18]"),
    "r_conv_max": ("–", "S/E", "upper bound of r_conv (MODEL range 0–0.6) [18, 25]"),
    "conv_o2": ("–", "E", "conversion factor in O2 [26]"),
    "conv_dry_air": ("–", "E", "conversion factor in dry air"),
    "conv_air": ("–", "E", "conversion factor in air (pick-up modelled separately)"),
    "conv_n2": (
        "–",
        "E",
        "conversion in N2: reaction with the coating goes on, no oxidative decomposition (MODEL eq. 8)",
    ),
    "air_pickup_ppm_per_sqrt_h": ("ppm/√h", "E", "CO2/H2O pick-up while cooling in air [37, 40]"),
    "k_w_ppm2_per_h": (
        "ppm²/h",
        "E",
        "+800 ppm in 24 h, +2100 ppm in 7 d at 25 °C/50 % RH [37–41]; fit by twin calibrate",
    ),
    "m_rh": ("–", "E", "humidity exponent; dry room 1 % RH -> ×0.003"),
    "ea_w_kj": ("kJ/mol", "E", "temperature dependence of the wet exposure"),
    "eta_0": ("–", "S/E", "barrier as deposited; weak per Huang 2024 [22]"),
    "eta_1": ("–", "S/E", "barrier when fully densified [22]"),
    "rough0_nm": ("nm", "E", "RMS roughness as deposited"),
    "rough_min_nm": ("nm", "E", "RMS roughness fully relaxed"),
    "a_rough_per_h": ("1/h", "E", "smoothing, JMAK on the densification integral (2 × A_d)"),
    "n_rough": ("–", "E", "JMAK exponent of smoothing"),
    "a_bond_per_h": ("1/h", "E", "bonding, JMAK on the densification integral (0.5 × A_d)"),
    "n_bond": ("–", "E", "JMAK exponent of bonding"),
    "alpha_d_per_nm": ("1/nm", "S/E", "thick insulating coating raises R [26]"),
    "alpha_u": ("–", "S/E", "anneal lowers interfacial R [26]"),
    "alpha_rl_per_kppm": ("1/(1000 ppm)", "E", "residual Li raises R"),
    "alpha_c": ("–", "E", "crystallized coating raises R"),
    "alpha_m_per_pct": ("1/%", "E", "cation mixing raises R"),
    "beta_d_mah_g_nm": ("mAh/g/nm", "S/E", "2/5/10 cycles on NMC811: 199/188/166 mAh/g [17]"),
    "d_free_nm": ("nm", "S/E", "thickness without capacity penalty [17]"),
    "beta_rl_mah_g_kppm": ("mAh/g per 1000 ppm", "E", "capacity loss to residual Li"),
    "beta_m_mah_g_pct": ("mAh/g per %", "E", "capacity loss to cation mixing"),
    "beta_r_mah_g": ("mAh/g", "E", "capacity loss per unit of R_rel - 1"),
    "k_f0_per_cycle": ("1/cycle", "E", "uncoated fade -> Ret100 = 85 %"),
    "gamma_rl_per_kppm": ("1/(1000 ppm)", "E", "fade multiplier of residual Li"),
    "gamma_c": ("–", "E", "fade multiplier of crystallized coating"),
    "phi_rl_per_kppm": ("1/(1000 ppm)", "E", "FCE penalty of residual Li"),
    "phi_m_per_pct": ("1/%", "E", "FCE penalty of cation mixing"),
    "epsilon": ("–", "S/E", "max coating benefit on fade; Li 2022: 92.2 % vs 34.8 % at 300 cycles [18]"),
    "r_ref_ohm_cm2": ("Ω·cm²", "E", "interfacial resistance of uncoated NCM811 (R_rel = 1)"),
    "thickness_min_rel": ("–", "E", "ICP window, fraction of nominal thickness GPC·(N - N_delay)"),
    "thickness_max_rel": ("–", "E", "ICP window, fraction of nominal thickness"),
    "x_d_min": ("–", "E", "minimum densification (soft sensor on the furnace profile)"),
    "rl_max_ppm": (
        "ppm Li",
        "E",
        "no net growth over the pre-cleaned level RL_0 (MODEL: set so the budget matters)",
    ),
    "dmix_max_pct": ("%", "E", "XRD extra Li/Ni mixing limit (MODEL: < 0.05 % at 400 °C/5 h)"),
    "l_d_max_nm": ("nm", "E", "interdiffusion deeper than the ~1 nm coating is damage"),
    "r_rel_max": ("–", "E", "EIS interfacial resistance limit relative to uncoated"),
    "cv_icp": ("–", "E", "ICP Hf/Al loading (thickness) measurement CV"),
    "cv_titration": ("–", "E", "residual-Li titration CV"),
    "cv_xrd": ("–", "E", "XRD cation-mixing CV"),
    "cv_eis": ("–", "E", "EIS resistance CV"),
}

# field -> (low, high): the plausible range of each uncertain physical parameter (docs/model.md §3). Spec limits,
# measurement CVs and plant settings are the plant's choice, not uncertain physics, and are not listed.
PARAM_RANGES: dict[str, tuple[float, float]] = {
    "ea_d_kj": (60.0, 200.0),
    "k_w_ppm2_per_h": (2.0e3, 2.0e5),
    "eta_1": (0.3, 0.9),
    "alpha_rl_per_kppm": (0.05, 0.6),
}


def _fields(prefix: str, keys: Sequence[str], suffix: str = "") -> dict[str, str]:
    return {k: f"{prefix}{k.lower()}{suffix}" for k in keys}


_F_ATM = _fields("f_atm_", ATMOSPHERES)
_CONV = _fields("conv_", ATMOSPHERES)
_GPC = _fields("gpc_", MATERIALS, "_nm")
_GAIN = _fields("dens_gain_", MATERIALS)
_TCR = _fields("t_cr_", MATERIALS, "_c")
_PREC = _fields("prec_", MATERIALS, "_mol_m2")


def _check_material(material: str) -> None:
    if material not in MATERIALS:
        raise ValueError(f"unknown coating material {material!r}; valid: {', '.join(MATERIALS)}")


def _check_atmosphere(atmosphere: str) -> None:
    if atmosphere not in ATMOSPHERES:
        raise ValueError(f"unknown atmosphere {atmosphere!r}; valid: {', '.join(ATMOSPHERES)}")


# ---------------------------------------------------------------------------------------------------------
# Kinetic integrals over temperature profiles (eq. 4)


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


@dataclass(frozen=True, slots=True)
class AnnealDose:
    """Kinetic doses (hours) of one furnace profile, computed once per recipe or measured profile.

    theta_d: densification (also drives roughness and bonding), theta_c: crystallization, theta_m: cation mixing,
    theta_diff: interdiffusion, theta_r: residual-Li conversion; duration_h, peak_c, cool_h describe the profile.
    """

    theta_d: float
    theta_c: float
    theta_m: float
    theta_diff: float
    theta_r: float
    duration_h: float
    peak_c: float
    cool_h: float


def anneal_dose(t_h: ArrayLike, temp_c: ArrayLike, params: QualityParams) -> AnnealDose:
    """All kinetic integrals of a furnace profile (recipe breakpoints or a measured profile)."""
    t, tk = _profile_arrays(t_h, temp_c)
    peak_k = float(np.max(tk))
    last_hot = int(np.nonzero(tk >= peak_k - COOL_BAND_K)[0][-1])
    return AnnealDose(
        theta_d=_segments_integral(t, tk, params.ea_d_kj / R_KJ),
        theta_c=_segments_integral(t, tk, params.ea_c_kj / R_KJ),
        theta_m=_segments_integral(t, tk, params.ea_m_kj / R_KJ),
        theta_diff=_segments_integral(t, tk, params.ea_diff_kj / R_KJ),
        theta_r=_segments_integral(t, tk, params.ea_conv_kj / R_KJ),
        duration_h=float(t[-1] - t[0]),
        peak_c=peak_k - 273.15,
        cool_h=float(t[-1] - t[last_hot]),
    )


# ---------------------------------------------------------------------------------------------------------
# Per-lot state (hot path: plain floats and math)


@dataclass(slots=True)
class CoatingState:
    """Mutable quality state of one lot. Thetas are accumulated over every anneal (a re-anneal continues)."""

    material: str
    cycles: int
    thickness0_nm: float  # as deposited (mass-equivalent at as-deposited density; what ICP measures)
    coverage: float
    rl_base_ppm: float
    nominal_nm: float = 0.0  # GPC·max(0, N - N_delay), centre of the ICP window (0: no thickness check)
    e_w_ppm2: float = 0.0
    theta_d: float = 0.0
    theta_c: float = 0.0
    theta_diff: float = 0.0
    theta_r: float = 0.0
    x_d: float = 0.0
    x_c: float = 0.0
    x_rough: float = 0.0
    bonding: float = 0.0
    dmix_pct: float = 0.0
    l_d_nm: float = 0.0
    wait_h: float = 0.0
    anneals: int = 0

    @property
    def rl_ppm(self) -> float:
        """True residual Li now: base level plus the parabolic wet-exposure growth."""
        return self.rl_base_ppm + math.sqrt(self.e_w_ppm2)


class Properties(NamedTuple):
    thickness_nm: float
    coverage: float
    x_d: float
    x_c: float
    roughness_nm: float
    bonding: float
    r_rel: float
    r_int_ohm_cm2: float
    rl_ppm: float
    dmix_pct: float
    l_d_nm: float
    q0_mah_g: float
    fce: float
    ret100: float


class Assessment(NamedTuple):
    verdict: str  # "pass" | "rework" | "scrap"
    reason: str  # "ok" | "thickness" | "damage_mixing" | "damage_diffusion" | "residual_li" | "under_dense" | "resistance"
    props: Properties


def nominal_thickness_nm(material: str, cycles: int, params: QualityParams) -> float:
    """Eq. 1 without noise: GPC·max(0, N - N_delay)."""
    _check_material(material)
    return getattr(params, _GPC[material]) * max(0.0, cycles - params.n_delay_cycles)


def coater(material: str, cycles: int, params: QualityParams) -> Callable[[float], CoatingState]:
    """Eq. 1-2 for one chemistry: a function z_thickness -> freshly coated lot (the hot path of the ALD
    reactors; the constants of the chemistry are worked out once)."""
    nominal = nominal_thickness_nm(material, cycles, params)
    cv, d_cov, saturation = params.cv_thickness, params.d_cov_nm, params.dose_saturation
    rl0 = max(0.0, params.rl0_ppm + params.d_rl_ald_ppm)
    exp = math.exp

    def coat(z_thickness: float) -> CoatingState:
        d = nominal * (1.0 + cv * z_thickness)
        if d < 0.0:
            d = 0.0
        return CoatingState(material, cycles, d, (1.0 - exp(-d / d_cov)) * saturation, rl0, nominal)

    return coat


def new_coating(material: str, cycles: int, params: QualityParams, z_thickness: float) -> CoatingState:
    """Eq. 1-2: a freshly coated lot; z_thickness is the lot's standard-normal thickness deviate."""
    return coater(material, cycles, params)(z_thickness)


def _wet_env_factor(rh_pct: float, temp_c: float, params: QualityParams) -> float:
    """Eq. 7 without the barrier term: K_w (RH/50)^m exp(-Ea_w/R (1/T - 1/298.15))."""
    if not 0.0 <= rh_pct <= 100.0:
        raise ValueError(f"relative humidity must be within 0-100 %, got {rh_pct!r}")
    tk = temp_c + 273.15
    if tk <= 0.0:
        raise ValueError(f"temperature must be above -273.15 °C, got {temp_c!r}")
    return (
        params.k_w_ppm2_per_h
        * (rh_pct / RH_REF_PCT) ** params.m_rh
        * math.exp(-params.ea_w_kj / R_KJ * (1.0 / tk - 1.0 / T_REF_K))
    )


def wet_rate_ppm2_per_h(x_d: float, rh_pct: float, temp_c: float, params: QualityParams) -> float:
    """Eq. 7: dE_w/dt = K_w (RH/50)^m exp(-Ea_w/R (1/T - 1/298.15)) (1 - η_b), η_b = η0 + (η1 - η0) X_d."""
    eta_b = params.eta_0 + (params.eta_1 - params.eta_0) * x_d
    return _wet_env_factor(rh_pct, temp_c, params) * max(0.0, 1.0 - eta_b)


def waiter(rh_pct: float, temp_c: float, params: QualityParams) -> Callable[[CoatingState, float], None]:
    """Eq. 7 for one environment: a function (state, hours) -> None that lets a lot wait there (the hot path of
    the furnaces; the environment's rate is worked out once)."""
    env = _wet_env_factor(rh_pct, temp_c, params)
    eta_0, d_eta = params.eta_0, params.eta_1 - params.eta_0

    def wait_here(state: CoatingState, hours: float) -> None:
        if not hours >= 0.0:
            raise ValueError(f"wait hours must be >= 0, got {hours!r}")
        barrier = 1.0 - (eta_0 + d_eta * state.x_d)
        if barrier > 0.0:
            state.e_w_ppm2 += env * barrier * hours
        state.wait_h += hours

    return wait_here


def wait(state: CoatingState, hours: float, rh_pct: float, temp_c: float, params: QualityParams) -> None:
    """Eq. 7: the lot waits `hours` at rh_pct and temp_c; the wet exposure grows (residual Li ∝ √time)."""
    waiter(rh_pct, temp_c, params)(state, hours)


def _jmak(a_theta: float, n: float) -> float:
    return 1.0 - math.exp(-(a_theta**n)) if a_theta > 0.0 else 0.0


def _r_conv(theta_r: float, params: QualityParams) -> float:
    return params.r_conv_max * (1.0 - math.exp(-params.a_conv_per_h * theta_r))


def _rl_factor(state: CoatingState, dose: AnnealDose, atmosphere: str, params: QualityParams) -> float:
    """Fraction of residual Li left by this anneal: (1 - r(Θ_prev + f·Θ)) / (1 - r(Θ_prev))."""
    theta_new = state.theta_r + getattr(params, _CONV[atmosphere]) * dose.theta_r
    return (1.0 - _r_conv(theta_new, params)) / (1.0 - _r_conv(state.theta_r, params))


def _air_pickup_ppm(dose: AnnealDose, atmosphere: str, params: QualityParams) -> float:
    return params.air_pickup_ppm_per_sqrt_h * math.sqrt(dose.cool_h) if atmosphere == "air" else 0.0


def _anneal_effects(
    state: CoatingState, dose: AnnealDose, atmosphere: str, params: QualityParams
) -> tuple[float, ...]:
    """What one anneal does to a film with `state`'s accumulated doses: (residual-Li factor, air pick-up ppm,
    theta_r, theta_d, x_d, x_rough, bonding, theta_c, x_c, dmix_pct, theta_diff, l_d_nm) after it."""
    _check_atmosphere(atmosphere)
    theta_r = state.theta_r + getattr(params, _CONV[atmosphere]) * dose.theta_r
    rl_factor = _rl_factor(state, dose, atmosphere, params)
    theta_d = state.theta_d + dose.theta_d
    theta_c = state.theta_c + dose.theta_c
    # A_c chosen so that X_c = 0.5 after 1 h at T_cr: (A_c·Θ_c)^n = ln2 · (Θ_c / Θ_1h(T_cr))^n
    t_cr_k = getattr(params, _TCR[state.material]) + 273.15
    ratio = theta_c * math.exp(params.ea_c_kj / (R_KJ * t_cr_k))
    theta_diff = state.theta_diff + dose.theta_diff
    return (
        rl_factor,
        _air_pickup_ppm(dose, atmosphere, params),
        theta_r,
        theta_d,
        _jmak(params.a_d_per_h * theta_d, params.n_d),
        _jmak(params.a_rough_per_h * theta_d, params.n_rough),
        _jmak(params.a_bond_per_h * theta_d, params.n_bond),
        theta_c,
        1.0 - math.exp(-math.log(2.0) * ratio**params.n_c),
        state.dmix_pct + params.a_m_pct_per_h * dose.theta_m * getattr(params, _F_ATM[atmosphere]),
        theta_diff,
        math.sqrt(params.d0_diff_nm2_per_h * theta_diff),
    )


# First anneals of fresh films are all alike for one (dose, params, atmosphere, material): their effects are
# computed once. Entries hold the dose and params themselves, so an id is never reused while it is a key.
_FIRST_ANNEAL: dict[tuple[int, int, str, str], tuple[AnnealDose, QualityParams, tuple[float, ...]]] = {}


def anneal(state: CoatingState, dose: AnnealDose, atmosphere: str, params: QualityParams) -> None:
    """Eq. 4-6, 8-9: one anneal. Accumulates the doses, converts residual Li (O2/dry air/air), adds CO2/H2O
    pick-up on cooling in air, adds damage (mixing × f_atm, interdiffusion) and restarts the wet-exposure clock."""
    if state.anneals == 0:
        key = (id(dose), id(params), atmosphere, state.material)
        hit = _FIRST_ANNEAL.get(key)
        if hit is None or hit[0] is not dose or hit[1] is not params:
            if len(_FIRST_ANNEAL) > 256:
                _FIRST_ANNEAL.clear()
            hit = _FIRST_ANNEAL[key] = (dose, params, _anneal_effects(state, dose, atmosphere, params))
        effects = hit[2]
    else:
        effects = _anneal_effects(state, dose, atmosphere, params)
    rl_factor, pickup = effects[0], effects[1]
    state.rl_base_ppm = state.rl_ppm * rl_factor + pickup
    state.e_w_ppm2 = 0.0
    (
        state.theta_r, state.theta_d, state.x_d, state.x_rough, state.bonding, state.theta_c, state.x_c,
        state.dmix_pct, state.theta_diff, state.l_d_nm,
    ) = effects[2:]  # fmt: skip
    state.anneals += 1


def _property_model(params: QualityParams) -> Callable[[CoatingState], Properties]:
    """Eq. 5 (thickness shrink) and eq. 10 (resistance, capacity, FCE, retention) plus roughness and bonding, with
    the parameters bound once (QC evaluates it for every lot)."""
    gain = {m: getattr(params, _GAIN[m]) for m in MATERIALS}
    p = params
    alpha_d, alpha_u, alpha_rl, alpha_c, alpha_m = (
        p.alpha_d_per_nm, p.alpha_u, p.alpha_rl_per_kppm, p.alpha_c, p.alpha_m_per_pct,
    )  # fmt: skip
    q_ref, beta_d, d_free, beta_rl, beta_m, beta_r = (
        p.q_ref_mah_g, p.beta_d_mah_g_nm, p.d_free_nm, p.beta_rl_mah_g_kppm, p.beta_m_mah_g_pct, p.beta_r_mah_g,
    )  # fmt: skip
    fce_ref, phi_rl, phi_m = p.fce_ref, p.phi_rl_per_kppm, p.phi_m_per_pct
    k_f0, epsilon, gamma_rl, gamma_c = p.k_f0_per_cycle, p.epsilon, p.gamma_rl_per_kppm, p.gamma_c
    rough0, rough_min, r_ref = p.rough0_nm, p.rough_min_nm, p.r_ref_ohm_cm2
    exp = math.exp

    def properties_of(state: CoatingState) -> Properties:
        x_d = state.x_d
        d = state.thickness0_nm / (1.0 + x_d * gain[state.material])
        rl = state.rl_ppm
        rl_k = rl / 1000.0
        dmix = state.dmix_pct
        x_c = state.x_c
        coated = state.thickness0_nm > 0.0
        r_rel = (
            (1.0 + alpha_d * d)
            * ((1.0 + alpha_u * (1.0 - x_d)) if coated else 1.0)
            * (1.0 + alpha_rl * rl_k)
            * (1.0 + alpha_c * x_c)
            * (1.0 + alpha_m * dmix)
        )
        q0 = q_ref - beta_d * max(0.0, d - d_free) - beta_rl * rl_k - beta_m * dmix - beta_r * (r_rel - 1.0)
        fce = fce_ref - phi_rl * rl_k - phi_m * dmix
        k_f = (
            k_f0
            * (1.0 - epsilon * state.coverage * (0.5 + 0.5 * state.bonding))
            * (1.0 + gamma_rl * rl_k)
            * (1.0 + gamma_c * x_c)
        )
        roughness = rough0 - (rough0 - rough_min) * state.x_rough if coated else 0.0
        return Properties(
            d, state.coverage, x_d, x_c, roughness, state.bonding, r_rel, r_ref * r_rel, rl, dmix, state.l_d_nm,
            q0, fce, exp(-100.0 * k_f),
        )  # fmt: skip

    return properties_of


def _spec_check(
    params: QualityParams, properties_of: Callable[[CoatingState], Properties]
) -> Callable[[CoatingState, Sequence[float], bool], Assessment]:
    """Eq. 11 with the parameters bound once; see `assess`."""
    p = params
    cv_icp, cv_xrd, cv_titration, cv_eis = p.cv_icp, p.cv_xrd, p.cv_titration, p.cv_eis
    t_min, t_max = p.thickness_min_rel, p.thickness_max_rel
    dmix_max, l_d_max, x_d_min, rl_max, r_rel_max = (
        p.dmix_max_pct, p.l_d_max_nm, p.x_d_min, p.rl_max_ppm, p.r_rel_max,
    )  # fmt: skip

    def assess_lot(state: CoatingState, noise: Sequence[float], can_rework: bool) -> Assessment:
        props = properties_of(state)
        z_icp, z_rl, z_xrd, z_eis = noise
        nominal = state.nominal_nm
        if nominal > 0.0:
            d_meas = state.thickness0_nm * (1.0 + cv_icp * z_icp)
            if not t_min * nominal <= d_meas <= t_max * nominal:
                return Assessment("scrap", "thickness", props)
        if props.dmix_pct * (1.0 + cv_xrd * z_xrd) > dmix_max:
            return Assessment("scrap", "damage_mixing", props)
        if props.l_d_nm > l_d_max:
            return Assessment("scrap", "damage_diffusion", props)
        if state.thickness0_nm > 0.0 and props.x_d < x_d_min:
            return Assessment("rework" if can_rework else "scrap", "under_dense", props)
        if props.rl_ppm * (1.0 + cv_titration * z_rl) > rl_max:
            return Assessment("scrap", "residual_li", props)
        if props.r_rel * (1.0 + cv_eis * z_eis) > r_rel_max:
            return Assessment("scrap", "resistance", props)
        return Assessment("pass", "ok", props)

    return assess_lot


class QualityModel(NamedTuple):
    """The per-lot property and spec-check functions for one parameter set (see `quality_model`)."""

    params: QualityParams
    properties: Callable[[CoatingState], Properties]
    assess: Callable[[CoatingState, Sequence[float], bool], Assessment]


# By id(params); entries hold the params, so an id is not reused while it is a key.
_MODELS: dict[int, QualityModel] = {}


def quality_model(params: QualityParams) -> QualityModel:
    """`properties` and `assess` with the parameters bound (built once per parameter set)."""
    hit = _MODELS.get(id(params))
    if hit is None or hit.params is not params:
        if len(_MODELS) > 64:
            _MODELS.clear()
        props = _property_model(params)
        hit = _MODELS[id(params)] = QualityModel(params, props, _spec_check(params, props))
    return hit


def properties(state: CoatingState, params: QualityParams) -> Properties:
    """Eq. 5 (thickness shrink) and eq. 10 (resistance, capacity, FCE, retention) plus roughness and bonding."""
    return quality_model(params).properties(state)


def assess(
    state: CoatingState, params: QualityParams, noise: Sequence[float], can_rework: bool
) -> Assessment:
    """Eq. 11: fast-release QC on measured values, measured = true·(1 + cv·z).

    noise = standard normals (ICP thickness, titration RL, XRD dmix, EIS resistance). X_d and L_D have no
    fast test and are checked on their true (soft-sensor) values. Checks in order, first failure decides:
    thickness (scrap), damage_mixing (scrap), damage_diffusion (scrap), under_dense (rework if can_rework
    else scrap: a re-anneal also converts residual Li, so an unannealed film is judged first), residual_li
    (scrap), resistance (scrap); otherwise pass/ok.
    """
    return quality_model(params).assess(state, noise, can_rework)


def precursor_mol(material: str, cycles: int, mass_kg: float, params: QualityParams) -> float:
    """Metal precursor fed for one batch: n_prec·S·m·N / η_util (every cycle doses, nucleation delay included)."""
    _check_material(material)
    area_m2 = params.bet_m2_g * 1000.0 * mass_kg
    return getattr(params, _PREC[material]) * area_m2 * cycles / params.eta_util


def predicted_rl_after_anneal(
    state: CoatingState, dose: AnnealDose, atmosphere: str, params: QualityParams, extra_e_w_ppm2: float = 0.0
) -> float:
    """True residual Li right after annealing with `dose` (optionally after extra wet exposure), state unchanged."""
    _check_atmosphere(atmosphere)
    rl = state.rl_base_ppm + math.sqrt(state.e_w_ppm2 + extra_e_w_ppm2)
    return rl * _rl_factor(state, dose, atmosphere, params) + _air_pickup_ppm(dose, atmosphere, params)


def wait_budget_h(
    state: CoatingState,
    rh_pct: float,
    temp_c: float,
    dose: AnnealDose,
    atmosphere: str,
    params: QualityParams,
    margin: float = 0.0,
) -> float:
    """Hours this lot can still wait at (rh_pct, temp_c) before its predicted post-anneal residual Li (true value)
    exceeds rl_max_ppm·(1 - margin). Closed form of eq. 7-8; 0 if already over, inf if it never will."""
    _check_atmosphere(atmosphere)
    limit = params.rl_max_ppm * (1.0 - margin)
    factor = _rl_factor(state, dose, atmosphere, params)
    # (rl_base + sqrt(E_w + rate·t))·factor + pickup = limit
    s = (limit - _air_pickup_ppm(dose, atmosphere, params)) / factor - state.rl_base_ppm
    if s <= 0.0 or s * s <= state.e_w_ppm2:
        return 0.0
    rate = wet_rate_ppm2_per_h(state.x_d, rh_pct, temp_c, params)
    if rate <= 0.0:
        return math.inf
    return (s * s - state.e_w_ppm2) / rate


def rh_from_dew_point(dew_point_c: float, temp_c: float) -> float:
    """Relative humidity (%) of air at temp_c with the given dew point (Magnus formula over water)."""

    def es(tc: float) -> float:
        return 6.112 * math.exp(17.62 * tc / (243.12 + tc))

    return 100.0 * es(dew_point_c) / es(temp_c)
