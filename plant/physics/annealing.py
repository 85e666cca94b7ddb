"""What one anneal does to a lot (MODEL eq. 4-9, revised): film densification, smoothing, bonding and
crystallisation; Li uptake by the film and relithiation of the NCM surface, which consume residual Li; and the
surface damage that grows continuously with temperature: a reduced rock-salt layer, cation mixing, interdiffusion.
docs/model.md §1 explains each mechanism and its source."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

from plant.physics.kinetics import AnnealDose
from plant.physics.params import (
    MATERIALS,
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
    t_inf, thin, dt_li, a_c, n_c = _crystallisation(params)[state.material]
    return _x_c(state, tau_c, t_inf, thin, dt_li, a_c, n_c)


def _x_c(
    state: CoatingState, tau_c: float, t_inf: float, thin: float, dt_li: float, a_c: float, n_c: float
) -> float:
    d = state.thickness0_nm
    if d <= 0.0 or tau_c <= 0.0:
        return 0.0
    t_cr_k = t_inf + thin / d + dt_li * state.li_uptake + 273.15
    tau_1h = math.exp(-a_c * (1.0 / t_cr_k - 1.0 / T_REF_ANNEAL_K))
    return 1.0 - math.exp(-_LN2 * (tau_c / tau_1h) ** n_c)


_LN2 = math.log(2.0)


@functools.lru_cache(maxsize=64)
def _crystallisation(params: QualityParams) -> dict[str, tuple[float, float, float, float, float]]:
    """Per material: T_inf (°C), the thin-film term (°C·nm), ΔT per Li uptake, Ea_c/R and n_c."""
    return {
        m: (
            per_material(params, "t_cr_inf", m, "_c"), params.t_cr_thin_c_nm, params.dt_cr_li_c,
            params.ea_c_kj / R_KJ, params.n_c,
        )
        for m in MATERIALS
    }  # fmt: skip


Annealer = Callable[[CoatingState, AnnealDose, str], None]


@functools.lru_cache(maxsize=64)
def annealer(params: QualityParams) -> Annealer:
    """`anneal` with the parameters bound once (the furnaces' hot path): a function (state, dose, atmosphere).
    First anneals of fresh films are alike for one recipe, atmosphere and material: their effects are worked out
    once per dose object (held by the cache, so its id is not reused while it is a key)."""
    shell = shell_li_ppm_per_nm(params)
    cryst = _crystallisation(params)
    first: dict[tuple[int, str, str], tuple[AnnealDose, AnnealEffects]] = {}
    sqrt = math.sqrt

    def anneal_lot(state: CoatingState, dose: AnnealDose, atmosphere: str) -> None:
        if state.anneals == 0:
            key = (id(dose), atmosphere, state.material)
            hit = first.get(key)
            if hit is None or hit[0] is not dose:
                if len(first) > 256:
                    first.clear()
                hit = first[key] = (
                    dose,
                    effects(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, dose, atmosphere, state.material, params),
                )
            fx = hit[1]
        else:
            fx = effects(
                state.tau_d, state.tau_b, state.tau_c, state.l_rs_nm, state.dmix_pct, state.l_d_nm,
                dose, atmosphere, state.material, params,
            )  # fmt: skip
        s = sqrt(state.e_w_ppm2)
        rl = state.rl_base_ppm + s
        l_def = state.l_def_nm + s / shell  # Li/H exchange during the wait took that Li from the lattice
        # Li uptake by the film: from residual Li first, from the lattice when it runs short
        y_new = 1.0 - (1.0 - state.li_uptake) * fx.uptake_keep
        need = state.li_capacity_ppm * (y_new - state.li_uptake)
        take = need if need < rl else rl
        rl -= take
        if need > take:
            short = (need - take) / shell
            state.l_li_nm += short
            l_def += short
        # relithiation: residual Li refills the Li-deficient shell (O2; none in N2)
        if fx.relith_fraction > 0.0:
            reach = shell * l_def
            back = fx.relith_fraction * (rl if rl < reach else reach)
            rl -= back
            l_def -= back / shell
            l_li = state.l_li_nm - back / shell
            state.l_li_nm = l_li if l_li > 0.0 else 0.0
        state.rl_base_ppm = rl + fx.pickup_ppm
        state.e_w_ppm2 = 0.0
        state.l_def_nm = l_def
        state.li_uptake = y_new
        state.tau_d, state.tau_b, state.tau_c = fx.tau_d, fx.tau_b, fx.tau_c
        state.x_d, state.x_rough, state.bonding = fx.x_d, fx.x_rough, fx.bonding
        state.l_rs_nm, state.dmix_pct, state.l_d_nm = fx.l_rs_nm, fx.dmix_pct, fx.l_d_nm
        state.x_c = _x_c(state, fx.tau_c, *cryst[state.material])
        state.anneals += 1

    return anneal_lot


def anneal(state: CoatingState, dose: AnnealDose, atmosphere: str, params: QualityParams) -> None:
    """One anneal: accumulate the doses, bind residual Li into the film and relithiate the surface (O2), add
    pick-up on cooling (air) and the damage, and restart the wet-exposure clock."""
    annealer(params)(state, dose, atmosphere)
