"""Fast-release QC (MODEL eq. 11): the spec check on measured values and the wait budget a lot has before its
predicted residual Li would break the titration limit (used by the quality-aware furnace policy)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from plant.physics.annealing import AnnealEffects, _first_effects, effects
from plant.physics.kinetics import AnnealDose
from plant.physics.params import QualityParams, check_atmosphere
from plant.physics.properties import Properties, property_model
from plant.physics.state import CoatingState, shell_li_ppm_per_nm, wet_rate_ppm2_per_h


class Assessment(NamedTuple):
    verdict: str  # "pass" | "rework" | "scrap"
    reason: str  # "ok" | "thickness" | "damage_mixing" | "under_dense" | "residual_li" | "resistance"
    props: Properties


REASONS = ("ok", "thickness", "damage_mixing", "under_dense", "residual_li", "resistance")


def _spec_check(
    params: QualityParams, properties_of: Callable[[CoatingState], Properties]
) -> Callable[[CoatingState, Sequence[float], bool], Assessment]:
    """Eq. 11 with the parameters bound once; see `assess`."""
    p = params
    cv_icp, cv_xrd, cv_titration, cv_eis = p.cv_icp, p.cv_xrd, p.cv_titration, p.cv_eis
    t_min, t_max = p.thickness_min_rel, p.thickness_max_rel
    dmix_max, x_d_min, rl_max, r_rel_max = p.dmix_max_pct, p.x_d_min, p.rl_max_ppm, p.r_rel_max

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
        if state.thickness0_nm > 0.0 and props.x_d < x_d_min:
            return Assessment("rework" if can_rework else "scrap", "under_dense", props)
        if props.rl_titration_ppm * (1.0 + cv_titration * z_rl) > rl_max:
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


@functools.lru_cache(maxsize=64)
def quality_model(params: QualityParams) -> QualityModel:
    """`properties` and `assess` with the parameters bound (built once per parameter set)."""
    props = property_model(params)
    return QualityModel(params, props, _spec_check(params, props))


def assess(
    state: CoatingState, params: QualityParams, noise: Sequence[float], can_rework: bool
) -> Assessment:
    """Eq. 11: fast-release QC on measured values, measured = true·(1 + cv·z).

    noise = standard normals (ICP thickness, titration RL, XRD dmix, EIS resistance). X_d has no fast test and is
    checked on its true (soft-sensor) value. Checks in order, first failure decides: thickness (scrap),
    damage_mixing (scrap), under_dense (rework if can_rework else scrap: a re-anneal also binds residual Li, so
    an unannealed film is judged first), residual_li (titration, scrap), resistance (EIS, scrap: the rock-salt
    layer, interdiffusion, mixing and an unlithiated or loose film all show here); otherwise pass/ok.
    """
    return quality_model(params).assess(state, noise, can_rework)


def _effects_of(
    state: CoatingState, dose: AnnealDose, atmosphere: str, params: QualityParams
) -> AnnealEffects:
    check_atmosphere(atmosphere)
    if state.anneals == 0:
        return _first_effects(dose, atmosphere, state.material, params)
    return effects(
        state.tau_d, state.tau_b, state.tau_c, state.l_rs_nm, state.dmix_pct, state.l_d_nm,
        dose, atmosphere, state.material, params,
    )  # fmt: skip


class _RlLine(NamedTuple):
    """Residual Li after an anneal as a function of the wet-exposure growth s (ppm) before it:
    max(floor, offset + slope·s), exactly the anneal's bookkeeping (`annealing.annealer`)."""

    floor: float
    offset: float
    slope: float


def _rl_line(state: CoatingState, fx: AnnealEffects, params: QualityParams) -> _RlLine:
    shell = shell_li_ppm_per_nm(params)
    need = state.li_capacity_ppm * (1.0 - state.li_uptake) * (1.0 - fx.uptake_keep)
    f = fx.relith_fraction
    # residual Li left after the film took `need` (while rl >= need); the shell it can refill is l_def + s/shell
    left0 = state.rl_base_ppm - need
    if left0 <= shell * state.l_def_nm:  # relithiation takes a share of everything left
        return _RlLine(fx.pickup_ppm, (1.0 - f) * left0 + fx.pickup_ppm, 1.0 - f)
    return _RlLine(fx.pickup_ppm, left0 - f * shell * state.l_def_nm + fx.pickup_ppm, 1.0 - f)


def predicted_rl_after_anneal(
    state: CoatingState, dose: AnnealDose, atmosphere: str, params: QualityParams, extra_e_w_ppm2: float = 0.0
) -> float:
    """True residual Li right after annealing with `dose` (optionally after extra wet exposure), state unchanged."""
    line = _rl_line(state, _effects_of(state, dose, atmosphere, params), params)
    s = math.sqrt(state.e_w_ppm2 + extra_e_w_ppm2)
    return max(line.floor, line.offset + line.slope * s)


def leach_after_anneal(
    state: CoatingState, dose: AnnealDose, atmosphere: str, params: QualityParams
) -> float:
    """The titration's leaching excess right after the anneal (it depends on the film, not on the wait)."""
    fx = _effects_of(state, dose, atmosphere, params)
    return params.rl_leach_ppm * (1.0 - params.phi_leach * state.coverage * fx.x_d)


def wait_budget_h(
    state: CoatingState,
    rh_pct: float,
    temp_c: float,
    dose: AnnealDose,
    atmosphere: str,
    params: QualityParams,
    margin: float = 0.0,
) -> float:
    """Hours this lot can still wait at (rh_pct, temp_c) before its predicted titration after the anneal exceeds
    rl_max_ppm·(1 - margin). Closed form of eq. 7-8; 0 if already over, inf if it never will."""
    fx = _effects_of(state, dose, atmosphere, params)
    limit = params.rl_max_ppm * (1.0 - margin) - params.rl_leach_ppm * (
        1.0 - params.phi_leach * state.coverage * fx.x_d
    )
    line = _rl_line(state, fx, params)
    s_now = math.sqrt(state.e_w_ppm2)
    if max(line.floor, line.offset + line.slope * s_now) >= limit:
        return 0.0
    if line.slope <= 0.0:
        return math.inf
    s = (limit - line.offset) / line.slope
    rate = wet_rate_ppm2_per_h(state, rh_pct, temp_c, params)
    if rate <= 0.0:
        return math.inf
    return (s * s - state.e_w_ppm2) / rate
