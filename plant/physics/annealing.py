"""What one anneal does to a lot (MODEL eq. 4-9, revised): film densification, smoothing, bonding and
crystallisation; Li uptake by the film and relithiation of the NCM surface, which consume residual Li; and the
surface damage that grows continuously with temperature: a reduced rock-salt layer, cation mixing, interdiffusion.
docs/model.md §1 explains each mechanism and its source."""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

from plant.physics.kinetics import AnnealDose
from plant.physics.params import (
    R_KJ,
    T_REF_ANNEAL_K,
    QualityParams,
    check_atmosphere,
    per_atmosphere,
    per_material,
)
from plant.physics.state import CoatingState, shell_li_ppm_per_nm


def _jmak(k_tau: float, n: float) -> float:
    return 1.0 - math.exp(-(k_tau**n)) if k_tau > 0.0 else 0.0


class AnnealEffects(NamedTuple):
    """What an anneal leaves that does not depend on the lot's own thickness or residual Li."""

    tau_d: float
    tau_b: float
    tau_c: float
    x_d: float
    x_rough: float
    bonding: float
    uptake_keep: float  # (1 − y) is multiplied by this: first-order uptake
    relith_fraction: float  # share of the reachable Li-deficient shell refilled from residual Li
    pickup_ppm: float  # CO2/H2O pick-up on cooling (air)
    l_rs_nm: float
    dmix_pct: float
    l_d_nm: float


def effects(
    tau_d0: float, tau_b0: float, tau_c0: float, l_rs0: float, dmix0: float, l_d0: float,
    dose: AnnealDose, atmosphere: str, material: str, params: QualityParams,
) -> AnnealEffects:  # fmt: skip
    """One anneal's effects on a film that already had the given doses and damage."""
    check_atmosphere(atmosphere)
    p = params
    tau_d, tau_b, tau_c = tau_d0 + dose.d, tau_b0 + dose.b, tau_c0 + dose.c
    relith = per_atmosphere(p, "relith", atmosphere) * (1.0 - math.exp(-p.k_r_per_h * dose.r))
    pickup = p.air_pickup_ppm_per_sqrt_h * math.sqrt(dose.cool_h) if atmosphere == "air" else 0.0
    l_rs = math.sqrt(l_rs0 * l_rs0 + p.k_rs_nm2_per_h * per_atmosphere(p, "f_rs", atmosphere) * dose.rs)
    dmix = dmix0 + p.k_m_pct_per_h * per_atmosphere(p, "f_mix", atmosphere) * dose.m
    k_diff = per_material(p, "k_diff", material, "_nm2_per_h")
    l_d = math.sqrt(l_d0 * l_d0 + k_diff * getattr(dose, "diff_" + material.lower()))
    return AnnealEffects(
        tau_d, tau_b, tau_c,
        _jmak(p.k_d_per_h * tau_d, p.n_d), _jmak(p.k_rough_per_h * tau_d, p.n_rough),
        _jmak(p.k_b_per_h * tau_b, p.n_bond),
        math.exp(-p.k_u_per_h * dose.u), relith, pickup, l_rs, dmix, l_d,
    )  # fmt: skip


@functools.lru_cache(maxsize=256)
def _first_effects(dose: AnnealDose, atmosphere: str, material: str, params: QualityParams) -> AnnealEffects:
    """The first anneal of a fresh film: alike for every lot of one recipe, so worked out once."""
    return effects(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, dose, atmosphere, material, params)


def crystallised_fraction(state: CoatingState, tau_c: float, params: QualityParams) -> float:
    """X_c = 1 − exp(−ln2·(τ_c/τ_1h(T_cr))^n_c): half crystalline after 1 h at T_cr, and
    T_cr = T_inf + c/d + ΔT_Li·y (thin films and Li-alloyed films crystallise later)."""
    d = state.thickness0_nm
    if d <= 0.0 or tau_c <= 0.0:
        return 0.0
    t_cr_c = (
        per_material(params, "t_cr_inf", state.material, "_c")
        + params.t_cr_thin_c_nm / d
        + params.dt_cr_li_c * state.li_uptake
    )
    tau_1h = math.exp(-params.ea_c_kj / R_KJ * (1.0 / (t_cr_c + 273.15) - 1.0 / T_REF_ANNEAL_K))
    return 1.0 - math.exp(-math.log(2.0) * (tau_c / tau_1h) ** params.n_c)


def anneal(state: CoatingState, dose: AnnealDose, atmosphere: str, params: QualityParams) -> None:
    """One anneal: accumulate the doses, bind residual Li into the film and relithiate the surface (O2), add
    pick-up on cooling (air) and the damage, and restart the wet-exposure clock."""
    if state.anneals == 0:
        fx = _first_effects(dose, atmosphere, state.material, params)
    else:
        fx = effects(
            state.tau_d, state.tau_b, state.tau_c, state.l_rs_nm, state.dmix_pct, state.l_d_nm,
            dose, atmosphere, state.material, params,
        )  # fmt: skip
    shell = shell_li_ppm_per_nm(params)
    s = math.sqrt(state.e_w_ppm2)
    rl = state.rl_base_ppm + s
    l_def = state.l_def_nm + s / shell  # Li/H exchange during the wait took that Li from the lattice
    # Li uptake by the film: from residual Li first, from the lattice when it runs short
    y_new = 1.0 - (1.0 - state.li_uptake) * fx.uptake_keep
    need = state.li_capacity_ppm * (y_new - state.li_uptake)
    take = min(need, rl)
    rl -= take
    if need > take:
        short = (need - take) / shell
        state.l_li_nm += short
        l_def += short
    # relithiation: residual Li refills the Li-deficient shell (O2; none in N2)
    back = fx.relith_fraction * min(rl, shell * l_def)
    rl -= back
    l_def -= back / shell
    state.l_li_nm = max(0.0, state.l_li_nm - back / shell)
    state.rl_base_ppm = rl + fx.pickup_ppm
    state.e_w_ppm2 = 0.0
    state.l_def_nm = l_def
    state.li_uptake = y_new
    state.tau_d, state.tau_b, state.tau_c = fx.tau_d, fx.tau_b, fx.tau_c
    state.x_d, state.x_rough, state.bonding = fx.x_d, fx.x_rough, fx.bonding
    state.l_rs_nm, state.dmix_pct, state.l_d_nm = fx.l_rs_nm, fx.dmix_pct, fx.l_d_nm
    state.x_c = crystallised_fraction(state, fx.tau_c, params)
    state.anneals += 1
