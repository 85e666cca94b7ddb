"""A lot's coating state and what happens to it before the anneal: deposition (thickness, coverage, the film's
first Li uptake) and residual-Li growth while it waits in humid air (MODEL eq. 1-3 and 7)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from plant.physics.params import (
    M_FILM,
    M_LI,
    METAL_PER_FILM,
    R_KJ,
    QualityParams,
    check_material,
    per_material,
)

T_REF_K = 298.15  # reference temperature of the wet-exposure rate K_w (25 °C)
RH_REF_PCT = 50.0  # reference relative humidity of K_w
DRY_ROOM_RH_PCT = (
    1.0  # default RH of a dry room (-40 °C dew point is 0.4-0.7 % RH at 20-25 °C; 1 % is conservative)
)


@dataclass(slots=True)
class CoatingState:
    """Mutable quality state of one lot. Doses accumulate over every anneal (a re-anneal continues)."""

    material: str
    cycles: int
    thickness0_nm: float  # as deposited (mass-equivalent at as-deposited density; what ICP measures)
    coverage: float  # as deposited, before crystallisation opens grain boundaries
    rl_base_ppm: float  # residual Li at the last anneal (or deposition), before the current wet exposure
    nominal_nm: float = 0.0  # GPC·max(0, N - N_delay), centre of the ICP window (0: no thickness check)
    li_capacity_ppm: float = 0.0  # Li the film can bind (Li2HfO3 / LiAlO2 stoichiometry), ppm of the powder
    li_uptake: float = 0.0  # y: fraction of that capacity bound
    l_def_nm: float = 0.0  # Li-deficient surface shell (without the current wet exposure's share)
    e_w_ppm2: float = 0.0  # wet exposure since the last anneal: residual Li grew by √E_w
    tau_d: float = 0.0  # accumulated densification dose, h at 400 °C
    tau_b: float = 0.0  # accumulated bonding dose
    tau_c: float = 0.0  # accumulated crystallisation dose
    x_d: float = 0.0
    x_c: float = 0.0
    x_rough: float = 0.0
    bonding: float = 0.0
    l_li_nm: float = 0.0  # lattice Li the film took when residual Li ran short, as nm of delithiated shell
    l_rs_nm: float = 0.0  # reduced rock-salt surface layer (oxygen loss)
    l_d_nm: float = 0.0  # interdiffusion depth of the film's metal
    dmix_pct: float = 0.0
    wait_h: float = 0.0
    anneals: int = 0

    @property
    def rl_ppm(self) -> float:
        """True residual Li now: base level plus the parabolic wet-exposure growth."""
        return self.rl_base_ppm + math.sqrt(self.e_w_ppm2)


def shell_li_ppm_per_nm(params: QualityParams) -> float:
    """Li held by a 1 nm shell of the NCM surface, ppm of the powder: S·1 nm·ρ·w_Li (136 ppm with defaults)."""
    return params.bet_m2_g * 1e4 * 1e-7 * params.rho_ncm_g_cm3 * params.li_frac_ncm * 1e6


def film_li_capacity_ppm(material: str, thickness0_nm: float, params: QualityParams) -> float:
    """Li a film can bind as Li2HfO3 (Li/Hf = 2) or LiAlO2 (Li/Al = 1), ppm of the powder: 218 ppm for 0.9 nm
    HfO2 on 0.4 m²/g, 180 ppm for 1.1 nm Al2O3."""
    film_g_per_g = (
        params.bet_m2_g * 1e4 * thickness0_nm * 1e-7 * per_material(params, "rho_am", material, "_g_cm3")
    )
    li_per_metal = params.li_per_hf if material == "HfO2" else params.li_per_al
    return film_g_per_g / M_FILM[material] * METAL_PER_FILM[material] * li_per_metal * M_LI * 1e6


def nominal_thickness_nm(material: str, cycles: int, params: QualityParams) -> float:
    """Eq. 1 without noise: GPC·max(0, N - N_delay)."""
    return per_material(params, "gpc", material, "_nm") * max(0.0, cycles - params.n_delay_cycles)


def coater(material: str, cycles: int, params: QualityParams) -> Callable[[float], CoatingState]:
    """Eq. 1-2 for one chemistry: a function z_thickness -> freshly coated lot (the hot path of the ALD
    reactors; the constants of the chemistry are worked out once). The growing film already binds the fraction
    y0 of its Li capacity from the surface's LiOH/Li2CO3."""
    nominal = nominal_thickness_nm(material, cycles, params)
    cv, d_cov, saturation = params.cv_thickness, params.d_cov_nm, params.dose_saturation
    rl0 = max(0.0, params.rl0_ppm + params.d_rl_ald_ppm)
    capacity_per_nm = film_li_capacity_ppm(material, 1.0, params)
    y0, l_def0, shell = params.y0_uptake, params.l_def0_nm, shell_li_ppm_per_nm(params)
    exp = math.exp

    def coat(z_thickness: float) -> CoatingState:
        d = nominal * (1.0 + cv * z_thickness)
        if d < 0.0:
            d = 0.0
        capacity = capacity_per_nm * d
        bound = y0 * capacity
        rl = rl0 - bound
        l_def = l_def0
        if rl < 0.0:  # not enough residual Li: the rest comes from the lattice
            l_def -= rl / shell
            rl = 0.0
        coverage = (1.0 - exp(-d / d_cov)) * saturation
        return CoatingState(material, cycles, d, coverage, rl, nominal, capacity, y0 if d > 0 else 0.0, l_def)

    return coat


def new_coating(material: str, cycles: int, params: QualityParams, z_thickness: float) -> CoatingState:
    """Eq. 1-2: a freshly coated lot; z_thickness is the lot's standard-normal thickness deviate."""
    check_material(material)
    return coater(material, cycles, params)(z_thickness)


def precursor_mol(material: str, cycles: int, mass_kg: float, params: QualityParams) -> float:
    """Metal precursor fed for one batch: n_prec·S·m·N / η_util (every cycle doses, nucleation delay included)."""
    area_m2 = params.bet_m2_g * 1000.0 * mass_kg
    return per_material(params, "prec", material, "_mol_m2") * area_m2 * cycles / params.eta_util


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


def barrier(state: CoatingState, params: QualityParams) -> float:
    """η_b = (η0 + (η1 − η0)·X_d)·(1 − κ_gb·X_c): densification closes the film, grain boundaries reopen it."""
    return (params.eta_0 + (params.eta_1 - params.eta_0) * state.x_d) * (1.0 - params.kappa_gb * state.x_c)


def wet_rate_ppm2_per_h(state: CoatingState, rh_pct: float, temp_c: float, params: QualityParams) -> float:
    """Eq. 7: dE_w/dt = K_w (RH/50)^m exp(-Ea_w/R (1/T - 1/298.15)) (1 - η_b)."""
    return _wet_env_factor(rh_pct, temp_c, params) * max(0.0, 1.0 - barrier(state, params))


def waiter(rh_pct: float, temp_c: float, params: QualityParams) -> Callable[[CoatingState, float], None]:
    """Eq. 7 for one environment: a function (state, hours) -> None that lets a lot wait there (the hot path of
    the furnaces; the environment's rate is worked out once). Li/H exchange takes the new residual Li from the
    lattice, so the Li-deficient shell deepens by √E_w / (136 ppm/nm) (counted when the lot is annealed)."""
    env = _wet_env_factor(rh_pct, temp_c, params)
    eta_0, d_eta, kappa = params.eta_0, params.eta_1 - params.eta_0, params.kappa_gb

    def wait_here(state: CoatingState, hours: float) -> None:
        if not hours >= 0.0:
            raise ValueError(f"wait hours must be >= 0, got {hours!r}")
        open_fraction = 1.0 - (eta_0 + d_eta * state.x_d) * (1.0 - kappa * state.x_c)
        if open_fraction > 0.0:
            state.e_w_ppm2 += env * open_fraction * hours
        state.wait_h += hours

    return wait_here


def wait(state: CoatingState, hours: float, rh_pct: float, temp_c: float, params: QualityParams) -> None:
    """Eq. 7: the lot waits `hours` at rh_pct and temp_c; the wet exposure grows (residual Li ∝ √time)."""
    waiter(rh_pct, temp_c, params)(state, hours)


def rh_from_dew_point(dew_point_c: float, temp_c: float) -> float:
    """Relative humidity (%) of air at temp_c with the given dew point (Magnus formula over water)."""

    def es(tc: float) -> float:
        return 6.112 * math.exp(17.62 * tc / (243.12 + tc))

    return 100.0 * es(dew_point_c) / es(temp_c)
