"""A lot's properties from its coating state (MODEL eq. 10, revised): film thickness and protection, Li transport
through the film, interfacial resistance as a sum of layers, capacity, rate capability, first-cycle efficiency
and retention. Every damage term acts continuously; docs/model.md §1 gives the mechanism behind each."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

from plant.physics.params import E_C, KT_OVER_E_V, MATERIALS, N_LI_CM3, QualityParams, per_material
from plant.physics.state import CoatingState


class Properties(NamedTuple):
    """What QC and the customer see of a lot (true values; the lots table has one column per field). Not 20
    fields: CPython 3.11 keeps freed 20-tuples on a free list it never reuses (up to 2000 of them)."""

    thickness_nm: float  # densified film
    coverage: float  # effective: as deposited, less the grain boundaries of a crystallised film
    x_d: float  # densification 0-1
    x_c: float  # crystallised fraction 0-1
    roughness_nm: float
    bonding: float  # film-NCM bonding 0-1
    li_uptake: float  # fraction of the film's Li capacity bound (Li–Hf–O / Li–Al–O)
    r_rel: float  # R_int / r_ct0 (what the EIS spec checks)
    r_int_ohm_cm2: float  # interfacial resistance, geometric at the stated loading
    r_ct_ohm_cm2: float  # the NCM surface's charge-transfer share (residual Li and mixing raise it)
    r_film_ohm_cm2: float  # the film's share of it (Li transport through the film and its contact)
    d_li_cm2_s: float  # effective Li diffusivity through the film at 25 °C (NaN without a film)
    rl_ppm: float  # residual Li (true)
    rl_titration_ppm: float  # what water titration reads: residual Li plus leached lattice Li
    dmix_pct: float
    l_rs_nm: float  # Li-depleted / reduced rock-salt surface layer
    l_d_nm: float  # interdiffusion depth of the film's metal
    q0_mah_g: float  # capacity at 0.1 C
    rate_capability: float  # Q(rate_c) / Q(0.1 C)
    fce: float
    ret100: float  # capacity retention after 100 cycles (fraction)


def _property_model(params: QualityParams) -> Callable[[CoatingState], Properties]:
    """The property function with the parameters bound once (QC evaluates it for every lot)."""
    p = params
    gain = {m: per_material(p, "dens_gain", m) for m in MATERIALS}
    eps_dope = {m: per_material(p, "eps_dope", m) for m in MATERIALS}
    gamma_diff = {m: per_material(p, "gamma_diff", m, "_per_nm") for m in MATERIALS}
    area = p.bet_m2_g * 1e4 * p.loading_mg_cm2 * 1e-3  # active surface per electrode area, cm²/cm²
    nm_ohm = 1e-7 / area  # a 1 nm layer of 1 S/cm, in Ω·cm² of electrode
    shell_frac = p.bet_m2_g * 1e4 * 1e-7 * p.rho_ncm_g_cm3  # mass fraction of a 1 nm surface shell
    d_per_sigma = KT_OVER_E_V / (N_LI_CM3 * E_C)  # Nernst-Einstein: D = σ kT / (n e²)
    s0, s_cr = p.sigma_am0_s_cm, p.sigma_cr_s_cm
    li_gain = p.sigma_amli_s_cm / s0  # σ(y) = σ0·(σ_Li/σ0)^y: exponential in Li content
    f_c0, kappa = p.f_contact0, p.kappa_gb
    r_ct0, a_rl, a_m = p.r_ct0_ohm_cm2, p.alpha_rl_per_kppm, p.alpha_m_per_pct
    r_rs_per_nm, r_d_per_nm = nm_ohm / p.sigma_rs_s_cm, nm_ohm / p.sigma_diff_s_cm
    amps_per_ohm = p.loading_mg_cm2 * 1e-3 * 1e-3 / p.dv_eff_v  # (A/cm² per C per mAh/g) / V
    rate_c, q_bulk = p.rate_c, p.q_bulk_rate
    w_film, w_dense = p.w_prot_film, p.w_prot_dense
    w_bond = 1.0 - w_film - w_dense
    rough0, rough_min = p.rough0_nm, p.rough_min_nm
    q_ref, beta_d, d_free, beta_rl, beta_m = (
        p.q_ref_mah_g, p.beta_d_mah_g_nm, p.d_free_nm, p.beta_rl_mah_g_kppm, p.beta_m_mah_g_pct,
    )  # fmt: skip
    fce_ref, phi_rl, phi_m = p.fce_ref, p.phi_rl_per_kppm, p.phi_m_per_pct
    k_f0, epsilon, g_rl, g_m, g_rs, l_free = (
        p.k_f0_per_cycle, p.epsilon, p.gamma_rl_per_kppm, p.gamma_m_per_pct, p.gamma_rs_per_nm, p.l_rs_free_nm,
    )  # fmt: skip
    leach, phi_leach = p.rl_leach_ppm, p.phi_leach
    exp, nan, sqrt = math.exp, math.nan, math.sqrt

    def properties_of(state: CoatingState) -> Properties:
        x_d, x_c, bond, y = state.x_d, state.x_c, state.bonding, state.li_uptake
        coated = state.thickness0_nm > 0.0
        d = state.thickness0_nm / (1.0 + x_d * gain[state.material])
        rl = state.rl_base_ppm + sqrt(state.e_w_ppm2)
        rl_k = rl / 1000.0
        dmix, l_d = state.dmix_pct, state.l_d_nm
        l_rs = state.l_rs_nm + state.l_li_nm
        coverage = state.coverage * (1.0 - kappa * x_c)
        if coated:
            sigma = (1.0 - x_c) * s0 * li_gain**y + x_c * s_cr
            contact = f_c0 + (1.0 - f_c0) * bond
            r_film = d * nm_ohm / (sigma * contact)
            d_li = sigma * contact * d_per_sigma
            protection = coverage * (w_film + w_dense * x_d + w_bond * bond)
            roughness = rough0 - (rough0 - rough_min) * state.x_rough
        else:
            r_film, d_li, protection, roughness = 0.0, nan, 0.0, 0.0
        r_ct = r_ct0 * (1.0 + a_rl * rl_k) * (1.0 + a_m * dmix)
        r_int = r_ct + r_film + l_rs * r_rs_per_nm + l_d * r_d_per_nm
        thick = d - d_free
        q_active = (
            q_ref * (1.0 - shell_frac * (l_rs + l_d))
            - (beta_d * thick if thick > 0.0 else 0.0)
            - beta_rl * rl_k
            - beta_m * dmix
        )
        drop = q_active * r_int * amps_per_ohm  # IR drop at 1 C over the voltage margin
        slow = 1.0 - 0.1 * drop
        if slow > 0.0:
            fast = 1.0 - rate_c * drop
            q0, rate = q_active * slow, (q_bulk * fast / slow if fast > 0.0 else 0.0)
        else:
            q0 = rate = 0.0
        fce = fce_ref - phi_rl * rl_k - phi_m * dmix
        thick_rs = l_rs - l_free
        k_f = (
            k_f0
            * (1.0 - epsilon * protection)
            * (1.0 - eps_dope[state.material] * (1.0 - exp(-l_d)))
            * (1.0 + g_rl * rl_k)
            * (1.0 + g_m * dmix)
            * (1.0 + (g_rs * thick_rs if thick_rs > 0.0 else 0.0))
            * (1.0 + gamma_diff[state.material] * l_d)
        )
        titration = rl + leach * (1.0 - phi_leach * coverage * x_d)
        return Properties(
            d, coverage, x_d, x_c, roughness, bond, y, r_int / r_ct0, r_int, r_ct, r_film, d_li, rl, titration, dmix,
            l_rs, l_d, q0, rate, fce, exp(-100.0 * k_f),
        )  # fmt: skip

    return properties_of


@functools.lru_cache(maxsize=64)
def property_model(params: QualityParams) -> Callable[[CoatingState], Properties]:
    """`properties` with the parameters bound (built once per parameter set)."""
    return _property_model(params)


def properties(state: CoatingState, params: QualityParams) -> Properties:
    """The lot's properties now (true values)."""
    return property_model(params)(state)
