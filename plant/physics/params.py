"""The quality model's parameters: one frozen dataclass whose every field carries its unit, confidence tag, source
and plausible range (docs/model.md §3 is generated from them), plus the model's fixed constants."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

R_KJ = 8.314462618e-3  # kJ/(mol K)
T_REF_C = 400.0  # reference temperature of every anneal rate constant (the mild anneal's setpoint)
T_REF_ANNEAL_K = T_REF_C + 273.15
ATMOSPHERES = ("O2", "dry_air", "air", "N2")
MATERIALS = ("HfO2", "Al2O3")
M_LI = 6.941  # g/mol
M_FILM = {"HfO2": 210.49, "Al2O3": 101.96}  # g/mol of the film oxide
METAL_PER_FILM = {"HfO2": 1, "Al2O3": 2}  # metal atoms per formula unit
N_LI_CM3 = 1.0e22  # mobile Li per cm³ of a lithiated film (Nernst-Einstein: D = σ kT / (n e²))
KT_OVER_E_V = 0.025693  # at 25 °C
E_C = 1.602176634e-19


class ParamInfo(NamedTuple):
    """What a parameter is: unit, confidence tag (S source, K literature value, C computed, E estimate; combined as
    S/E = direction from a source, value estimated), source (numbers refer to docs/model.md §5), plausible range,
    and whether an uncertainty study samples it by default: the anneal's physics, which a plant does not measure
    (spec limits, CVs and reporting settings are its choice; its powder, ALD and buffer it measures)."""

    unit: str
    tag: str
    source: str
    low: float
    high: float
    uncertain: bool


def _p(
    default: float, unit: str, tag: str, source: str, low: float, high: float, uncertain: bool = True
) -> Any:
    return field(default=default, metadata={"info": ParamInfo(unit, tag, source, low, high, uncertain)})


def _plant(default: float, unit: str, tag: str, source: str, low: float, high: float) -> Any:
    """A plant choice: a spec limit, a measurement CV, a reporting setting."""
    return _p(default, unit, tag, source, low, high, uncertain=False)


def _measured(default: float, unit: str, tag: str, source: str, low: float, high: float) -> Any:
    """A property of the plant's own powder, ALD process or buffer that it measures or calibrates (`twin
    calibrate` fits K_w): uncertain in general, known for a given plant, so not sampled by default."""
    return _p(default, unit, tag, source, low, high, uncertain=False)


@dataclass(frozen=True, slots=True)
class QualityParams:
    """Every parameter of the quality model with its default. Rate constants `k_*` are per hour at 400 °C
    (`T_REF_C`): k(T) = k·exp(−Ea/R·(1/T − 1/T_ref)), so an activation energy changes the temperature
    dependence and not the rate of the reference recipe."""

    # -- powder ------------------------------------------------------------------------------------------------
    bet_m2_g: float = _measured(
        0.4, "m²/g", "K", "poly-crystalline NCM811; PC vs SC in Trevisanello 2021 [59]", 0.2, 0.6
    )
    rl0_ppm: float = _measured(
        1200.0, "ppm Li", "S/E", "after the 750 °C O2 pre-clean [27]; value estimated", 600, 3000
    )
    d_rl_ald_ppm: float = _measured(
        0.0, "ppm Li", "S/E", "ΔRL during ALD besides the film's own uptake; sign from [18]", -300, 300
    )
    q_ref_mah_g: float = _measured(
        203.0, "mAh/g", "S", "NCM811 ~200 mAh/g at 0.1 C, Laine et al. 2023 [57]", 195, 210
    )
    fce_ref: float = _measured(0.89, "–", "K", "typical NCM811 half cell", 0.86, 0.92)
    rho_ncm_g_cm3: float = _measured(4.75, "g/cm³", "K", "crystallographic density of NCM811", 4.7, 4.8)
    li_frac_ncm: float = _measured(
        0.0713, "–", "C", "Li mass fraction of LiNi0.8Co0.1Mn0.1O2 (6.94/97.3)", 0.070, 0.073
    )
    l_def0_nm: float = _p(
        1.0,
        "nm",
        "E",
        "Li-deficient surface shell after pre-clean and ALD; relithiation sink [A2, A11, A17]",
        0.5,
        3,
    )
    loading_mg_cm2: float = _plant(
        10.0, "mg/cm²", "E", "electrode loading at which R_int (geometric) and the rate KPI are stated", 5, 20
    )
    # -- ALD chemistry ------------------------------------------------------------------------------------------
    gpc_hfo2_nm: float = _measured(0.10, "nm/cycle", "K", "TEMAHf/H2O, Hausmann et al. 2002", 0.08, 0.12)
    gpc_al2o3_nm: float = _measured(
        0.11, "nm/cycle", "S/K", "1.12 Å/cycle on NCM811 [16]; Groner 2004", 0.09, 0.13
    )
    n_delay_cycles: float = _measured(1.0, "cycles", "E", "nucleation delay on the substrate", 0, 3)
    rho_am_hfo2_g_cm3: float = _measured(9.2, "g/cm³", "K", "as-deposited ALD HfO2 (m-HfO2 9.68)", 8.5, 9.7)
    rho_am_al2o3_g_cm3: float = _measured(3.0, "g/cm³", "K", "Groner 2004 (3.0 at 177 °C)", 2.5, 3.1)
    dens_gain_hfo2: float = _p(
        0.03, "–", "S/E", "+2.5 % on HfO2 crystallization, Bagmut 2018 [32]", 0.02, 0.10
    )
    dens_gain_al2o3: float = _p(
        0.05, "–", "S/E", "densification of amorphous Al2O3 on anneal [35]", 0.02, 0.10
    )
    d_cov_nm: float = _p(0.4, "nm", "E", "coverage length: 1 nm -> c ≈ 0.92", 0.2, 0.8)
    dose_saturation: float = _plant(
        1.0, "–", "E", "eq. 2 dose factor 1 − exp(−t_dose/τ_sat); 1 = saturated", 0.5, 1
    )
    cv_thickness: float = _measured(0.05, "–", "E", "lot-to-lot thickness CV", 0.03, 0.10)
    prec_hfo2_mol_m2: float = _plant(
        4.5e-6, "mol/m²/cycle", "C", "1.0 Å × 9.5 g/cm³ / 210.5 g/mol", 3.5e-6, 5.5e-6
    )
    prec_al2o3_mol_m2: float = _plant(
        6.5e-6, "mol/m²/cycle", "C", "1.1 Å × 3.0 g/cm³ / 102 g/mol × 2", 5e-6, 8e-6
    )
    eta_util: float = _plant(0.6, "–", "S", "rotary drum up to 70 % [3]; fluidized bed higher [1]", 0.3, 0.9)
    # -- densification (JMAK), smoothing and bonding -----------------------------------------------------------
    ea_d_kj: float = _p(
        100.0, "kJ/mol", "E", "steep 350–450 °C densification window; fit by twin calibrate", 60, 200
    )
    k_d_per_h: float = _p(
        0.7778,
        "1/h",
        "C/E",
        "X_d = 0.90 for the default profile with 2 h soak at 400 °C; twin calibrate",
        0.3,
        2,
    )
    n_d: float = _p(1.0, "–", "E", "JMAK n ≈ 1 (first-order relaxation), MODEL eq. 5; twin calibrate", 0.7, 2)
    k_rough_per_h: float = _p(1.5557, "1/h", "E", "smoothing on the densification dose (2 × k_d)", 0.5, 4)
    n_rough: float = _p(1.0, "–", "E", "JMAK exponent of smoothing", 0.7, 2)
    rough0_nm: float = _p(0.5, "nm", "E", "RMS roughness as deposited", 0.3, 1.0)
    rough_min_nm: float = _p(0.2, "nm", "E", "RMS roughness fully relaxed", 0.1, 0.3)
    ea_b_kj: float = _p(
        140.0,
        "kJ/mol",
        "S/E",
        "film–NCM bonding: hotter anneals attach the coating more closely [A2]",
        100,
        200,
    )
    k_b_per_h: float = _p(
        0.1871, "1/h", "E", "bonding B = 0.5 after the default 400 °C/3 h profile", 0.08, 0.5
    )
    n_bond: float = _p(1.0, "–", "E", "JMAK exponent of bonding", 0.7, 2)
    # -- crystallisation of the film --------------------------------------------------------------------------
    ea_c_kj: float = _p(300.0, "kJ/mol", "E", "crystallisation activation energy", 200, 400)
    n_c: float = _p(2.0, "–", "S", "quadratic X(t) for HfO2 film crystallisation, Bagmut 2018 [32]", 1.5, 3)
    t_cr_inf_hfo2_c: float = _p(
        430.0,
        "°C",
        "S/E",
        "T_cr(d) = T_inf + c/d fitted to [A24] (2 nm > 600 °C), [A25, A26] (12–20 nm)",
        380,
        480,
    )
    t_cr_inf_al2o3_c: float = _p(
        800.0, "°C", "S", "amorphous alumina crystallises from ~800 °C [34]", 750, 900
    )
    t_cr_thin_c_nm: float = _p(
        540.0,
        "°C·nm",
        "S/E",
        "surface energy suppresses crystallisation of thin films [A24, A25, 31]",
        300,
        800,
    )
    dt_cr_li_c: float = _p(
        150.0, "°C", "S/E", "alloying raises T_cr (HfAlOx at 900 °C [A27]); × Li uptake", 50, 250
    )
    kappa_gb: float = _p(
        0.3,
        "–",
        "S/E",
        "grain boundaries are fast Li/H paths [A33]: lost barrier and protection per X_c",
        0,
        0.6,
    )
    # -- Li uptake by the film (Li–Hf–O / Li–Al–O) -------------------------------------------------------------
    ea_u_kj: float = _p(
        120.0,
        "kJ/mol",
        "S/E",
        "thin amorphous film: below bulk Li2CO3 + ZrO2, 274 kJ/mol [L10]; Al–O from 80 °C [A14]",
        80,
        275,
    )
    k_u_per_h: float = _p(0.27, "1/h", "E", "Li uptake y = 0.75 after the default 400 °C/3 h profile", 0.1, 1)
    y0_uptake: float = _p(
        0.3,
        "–",
        "S/E",
        "uptake during ALD: LiOH falls as the film grows [A3]; 2 nm Li–Al–O interphase [A5]",
        0.1,
        0.5,
    )
    li_per_hf: float = _p(2.0, "Li/Hf", "K", "Li2HfO3 stoichiometry (no low-T data for Hf [A §2])", 1, 2)
    li_per_al: float = _p(
        1.0, "Li/Al", "S", "LiAlO2 from Li2CO3 + Al2O3 [A13]; ALD Li–Al–O up to 1.6 [A30]", 1, 1.6
    )
    # -- relithiation of the Li-deficient shell by residual Li (O2) --------------------------------------------
    ea_r_kj: float = _p(100.0, "kJ/mol", "E", "relithiation kinetics, Ea ≈ 100 [A §2]", 60, 150)
    k_r_per_h: float = _p(
        0.03244,
        "1/h",
        "S/E",
        "20 % at 450 °C/2 h; seen only at 800 °C in O2 [A11, A17], none below [L]",
        0.0,
        0.1,
    )
    relith_o2: float = _p(
        1.0, "–", "E", "relithiation needs CO2-free O2 (reverse of [A12])", 1, 1, uncertain=False
    )
    relith_dry_air: float = _p(0.5, "–", "E", "21 % O2, CO2 present", 0.2, 0.8)
    relith_air: float = _p(0.2, "–", "S/E", "CO2 and H2O drive carbonate formation instead [A12]", 0, 0.5)
    relith_n2: float = _p(0.0, "–", "S/E", "no O2: no relithiation sink [A §3]", 0, 0.1)
    air_pickup_ppm_per_sqrt_h: float = _p(
        30.0,
        "ppm/√h",
        "S/E",
        "CO2/H2O pick-up on cooling in air; LiNiO2 + CO2 from 200 °C [A12, 37, 40]",
        0,
        100,
    )
    rl_leach_ppm: float = _p(
        150.0, "ppm Li", "S/E", "water titration leaches lattice Li and overstates residual Li [A10]", 50, 300
    )
    phi_leach: float = _p(0.5, "–", "S/E", "a dense coating suppresses the leaching [A10]", 0, 0.8)
    # -- reduced (rock-salt) surface layer from oxygen loss ----------------------------------------------------
    ea_rs_kj: float = _p(
        150.0,
        "kJ/mol",
        "S/E",
        "Li-deficient Li1−yNiO2 reconstructs from ~200 °C with O2 loss [A18, A19]",
        100,
        250,
    )
    k_rs_nm2_per_h: float = _p(
        0.008456, "nm²/h", "C/E", "L_RS = 0.15 nm after 400 °C/2 h O2 [A §1: 0.1–0.5]", 0.004, 0.1
    )
    f_rs_o2: float = _p(1.0, "–", "E", "O2 suppresses oxygen loss (reference)", 1, 1, uncertain=False)
    f_rs_dry_air: float = _p(2.0, "–", "S/E", "lower pO2: more Ni excess [A23]", 1.5, 4)
    f_rs_air: float = _p(3.0, "–", "S/E", "lower pO2 and CO2 attack [A12, A23]", 2, 5)
    f_rs_n2: float = _p(10.0, "–", "S/E", "inert: oxygen loss of the Li-deficient surface [A18–A20]", 5, 20)
    # -- cation mixing ---------------------------------------------------------------------------------------
    ea_m_kj: float = _p(220.0, "kJ/mol", "E", "Li/Ni cation mixing; Yang 2025 [54]", 150, 300)
    k_m_pct_per_h: float = _p(
        2.17e-7, "%/h", "C/E", "dmix = 0.75 % after 5 h at 750 °C in O2 (MODEL: 0.5–1 %)", 5e-8, 1e-6
    )
    f_mix_o2: float = _p(1.0, "–", "E", "reference atmosphere", 1, 1, uncertain=False)
    f_mix_dry_air: float = _p(1.3, "–", "S/E", "pO2 controls Ni excess [A23]", 1, 3)
    f_mix_air: float = _p(3.0, "–", "S/E", "Li0.85Ni1.15O2 in air vs Li0.98Ni1.02O2 in O2 [A23]", 1.5, 7)
    f_mix_n2: float = _p(10.0, "–", "S/E", "inert: surface O loss, Ni2+ [A18–A20]", 5, 20)
    # -- interdiffusion of the film's metal into the NCM surface -----------------------------------------------
    ea_diff_hfo2_kj: float = _p(
        180.0,
        "kJ/mol",
        "S/E",
        "Hf/Zr stays an amorphous surface layer below ~700 °C [L1]; interphase > 500 °C [A1]",
        150,
        300,
    )
    ea_diff_al2o3_kj: float = _p(88.0, "kJ/mol", "S", "Al3+/Co3+ interdiffusion into LiCoO2 [L6]", 80, 100)
    k_diff_hfo2_nm2_per_h: float = _p(
        6.7e-4, "nm²/h", "C/E", "L_D = 0.40 nm after 500 °C/3 h O2 (Hf; Zr analogue [A1])", 1e-4, 3e-3
    )
    k_diff_al2o3_nm2_per_h: float = _p(
        0.02207,
        "nm²/h",
        "C/E",
        "L_D = 0.3 nm after 400 °C/3 h, > 1.5 nm at 600 °C (MODEL; Al into LCO [A4])",
        0.005,
        0.1,
    )
    # -- residual-Li growth while waiting ----------------------------------------------------------------------
    k_w_ppm2_per_h: float = _measured(
        2.7e4,
        "ppm²/h",
        "E",
        "+800 ppm in 24 h, +2100 ppm in 7 d at 25 °C/50 % RH [37–41]; twin calibrate",
        2e3,
        2e5,
    )
    m_rh: float = _measured(1.5, "–", "E", "humidity exponent; dry room 1 % RH -> ×0.003", 1, 2)
    ea_w_kj: float = _measured(40.0, "kJ/mol", "E", "temperature dependence of the wet exposure", 20, 60)
    eta_0: float = _p(0.3, "–", "S/E", "barrier as deposited; weak per Huang 2024 [22]", 0, 0.6)
    eta_1: float = _p(0.6, "–", "S/E", "barrier when fully densified [22]", 0.3, 0.9)
    # -- Li transport and interfacial resistance ---------------------------------------------------------------
    sigma_am0_s_cm: float = _p(
        3e-11, "S/cm", "S/E", "a-Al2O3 with dilute Li 5.6e-12, coatings fitted 1e-11–1e-9 [A29]", 1e-12, 1e-10
    )
    sigma_amli_s_cm: float = _p(
        1e-8,
        "S/cm",
        "S/E",
        "lithiated film, exponential in Li content [A30, A34]; ALD Li–Zr–O 2.2e-7 [L2]",
        1e-9,
        3e-7,
    )
    sigma_cr_s_cm: float = _p(
        1e-12,
        "S/cm",
        "S/E",
        "crystalline oxides: Li barriers > 0.9 eV [A29]; γ-LiAlO2 ultraslow [A31]",
        1e-14,
        1e-11,
    )
    sigma_rs_s_cm: float = _p(
        1e-10, "S/cm", "E", "reduced rock-salt surface layer [A §6]; raises R_ct (K: Lin 2014)", 1e-11, 1e-9
    )
    sigma_diff_s_cm: float = _p(
        3e-10, "S/cm", "S/E", "insulating interphase of interdiffusion [A1]", 1e-10, 1e-9
    )
    f_contact0: float = _p(
        0.3,
        "–",
        "S/E",
        "Li-crossing contact of a loose as-deposited film; bonding closes it [A2, A38]",
        0.1,
        0.6,
    )
    r_ct0_ohm_cm2: float = _p(
        30.0, "Ω·cm²", "E", "charge-transfer resistance of clean uncoated NCM811 at the loading", 10, 60
    )
    alpha_rl_per_kppm: float = _p(
        0.2,
        "1/(1000 ppm)",
        "K/E",
        "insulating Li2CO3/LiOH raises R_ct (Jung 2018, Sicklinger [40])",
        0.05,
        0.6,
    )
    alpha_m_per_pct: float = _p(0.5, "1/%", "K/E", "Ni2+ in the Li layer blocks Li paths", 0.1, 2)
    # -- capacity and rate capability --------------------------------------------------------------------------
    beta_d_mah_g_nm: float = _p(
        5.0, "mAh/g/nm", "S/E", "2/5/10 cycles on NMC811: 199/188/166 mAh/g [17]", 2, 20
    )
    d_free_nm: float = _p(1.0, "nm", "S/E", "thickness without capacity penalty [17]", 0.5, 2)
    beta_rl_mah_g_kppm: float = _p(3.0, "mAh/g per 1000 ppm", "E", "capacity loss to residual Li", 1, 10)
    beta_m_mah_g_pct: float = _p(4.0, "mAh/g per %", "E", "capacity loss to cation mixing", 1, 10)
    rate_c: float = _plant(5.0, "C", "E", "C-rate of the rate-capability KPI Q(rate_c)/Q(0.1 C)", 1, 10)
    dv_eff_v: float = _p(
        1.0,
        "V",
        "C/E",
        "voltage margin an IR drop eats: Q(5C)/Q(0.1C) ≈ 0.5–0.6 for coated NCM811 [L17]",
        0.5,
        1.5,
    )
    q_bulk_rate: float = _p(
        0.92, "–", "E", "capacity at rate_c with no interfacial resistance (bulk diffusion)", 0.8, 0.98
    )
    # -- cycle life ------------------------------------------------------------------------------------------
    k_f0_per_cycle: float = _p(1.6e-3, "1/cycle", "E", "uncoated fade -> Ret100 = 85 %", 1e-3, 5e-3)
    epsilon: float = _p(
        0.6, "–", "S/E", "max coating benefit on fade; Li 2022: 92.2 % vs 34.8 % at 300 cycles [18]", 0.3, 0.8
    )
    w_prot_film: float = _p(
        0.3, "–", "S/E", "protection of any film: an amorphous film scavenges HF sacrificially [A6]", 0.1, 0.5
    )
    w_prot_dense: float = _p(
        0.3, "–", "S/E", "protection added by densification: durability in acid/water [A28]", 0.1, 0.5
    )
    gamma_rl_per_kppm: float = _p(
        0.1, "1/(1000 ppm)", "E", "fade multiplier of residual Li (gassing)", 0, 0.5
    )
    gamma_m_per_pct: float = _p(1.0, "1/%", "S/E", "less Li/Ni mixing, better retention [A3]", 0.3, 3)
    gamma_rs_per_nm: float = _p(
        0.3, "1/nm", "S/E", "rock-salt deeper than l_rs_free_nm raises fade [A1]", 0.1, 1
    )
    l_rs_free_nm: float = _p(1.0, "nm", "S", "a thin reduced shell does not hurt cycling [A21, A22]", 0.5, 2)
    gamma_diff_hfo2_per_nm: float = _p(
        0.3, "1/nm", "S/E", "insulating Zr/Hf interphase above 500 °C degrades cycling [A1]", 0.1, 1
    )
    gamma_diff_al2o3_per_nm: float = _p(0.0, "1/nm", "S/E", "Al doping is not harmful [A3, A4]", 0, 0.3)
    eps_dope_hfo2: float = _p(0.05, "–", "E", "surface doping benefit of Hf (0.3 × Al [A §1])", 0, 0.2)
    eps_dope_al2o3: float = _p(
        0.2, "–", "S/E", "Al in the surface: retention up, Li/Ni mixing down [A3]", 0, 0.4
    )
    phi_rl_per_kppm: float = _p(0.01, "1/(1000 ppm)", "E", "FCE penalty of residual Li", 0, 0.03)
    phi_m_per_pct: float = _p(0.01, "1/%", "E", "FCE penalty of cation mixing", 0, 0.03)
    # -- spec limits (the plant's choice) ----------------------------------------------------------------------
    thickness_min_rel: float = _plant(0.85, "–", "E", "ICP window, fraction of nominal thickness", 0.7, 0.95)
    thickness_max_rel: float = _plant(1.15, "–", "E", "ICP window, fraction of nominal thickness", 1.05, 1.3)
    x_d_min: float = _plant(
        0.5, "–", "E", "minimum densification (soft sensor on the furnace profile)", 0.3, 0.9
    )
    rl_max_ppm: float = _plant(
        1600.0,
        "ppm Li",
        "E",
        "titration limit (fresh powder titrates 1350): set so the ALD→anneal wait matters",
        1200,
        3000,
    )
    dmix_max_pct: float = _plant(
        0.05, "%", "E", "XRD extra Li/Ni mixing limit (MODEL: < 0.05 % at 400 °C/5 h)", 0.02, 1
    )
    r_rel_max: float = _plant(
        2.5, "–", "E", "EIS limit: R_int / r_ct0 (annealed ≈ 1.5, as deposited ≈ 2.7)", 1.5, 4
    )
    # -- measurement CVs ---------------------------------------------------------------------------------------
    cv_icp: float = _plant(0.03, "–", "E", "ICP Hf/Al loading (thickness) measurement CV", 0.02, 0.05)
    cv_titration: float = _plant(0.08, "–", "E", "residual-Li titration CV", 0.05, 0.10)
    cv_xrd: float = _plant(0.10, "–", "E", "XRD cation-mixing CV", 0.05, 0.15)
    cv_eis: float = _plant(0.10, "–", "E", "EIS resistance CV", 0.05, 0.15)

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
        for name in _FRACTIONS:
            if getattr(self, name) > 1.0:
                raise ValueError(f"QualityParams.{name} must be <= 1, got {getattr(self, name)!r}")
        if self.thickness_min_rel > self.thickness_max_rel:
            raise ValueError("QualityParams.thickness_min_rel must be <= thickness_max_rel")
        if self.w_prot_film + self.w_prot_dense > 1.0:
            raise ValueError("QualityParams.w_prot_film + w_prot_dense must be <= 1 (bonding takes the rest)")

    def replace(self, **overrides: float) -> QualityParams:
        """A copy with some fields changed; an unknown name raises ValueError naming it and the valid ones."""
        for name in overrides:
            if name not in PARAM_INFO:
                raise ValueError(f"unknown quality parameter {name!r}; valid: {', '.join(PARAM_INFO)}")
        return dataclasses.replace(self, **overrides)

    def rate(self, k_ref: float, ea_kj: float, temp_c: float) -> float:
        """A rate constant given at 400 °C, at temp_c."""
        return k_ref * math.exp(-ea_kj / R_KJ * (1.0 / (temp_c + 273.15) - 1.0 / T_REF_ANNEAL_K))


_MAY_BE_NEGATIVE = frozenset({"d_rl_ald_ppm"})
_POSITIVE = (
    "bet_m2_g", "rho_ncm_g_cm3", "li_frac_ncm", "loading_mg_cm2", "d_cov_nm", "eta_util", "ea_d_kj", "k_d_per_h",
    "n_d", "n_rough", "ea_b_kj", "n_bond", "ea_c_kj", "n_c", "ea_u_kj", "ea_r_kj", "ea_rs_kj", "ea_m_kj",
    "ea_diff_hfo2_kj", "ea_diff_al2o3_kj", "sigma_am0_s_cm", "sigma_amli_s_cm", "sigma_cr_s_cm", "sigma_rs_s_cm", "sigma_diff_s_cm",
    "f_contact0", "r_ct0_ohm_cm2", "rate_c", "dv_eff_v", "q_bulk_rate", "k_f0_per_cycle",
)  # fmt: skip
_FRACTIONS = (
    "y0_uptake", "phi_leach", "kappa_gb", "f_contact0", "q_bulk_rate", "epsilon", "w_prot_film", "w_prot_dense",
    "eps_dope_hfo2", "eps_dope_al2o3", "relith_o2", "relith_dry_air", "relith_air", "relith_n2", "eta_0", "eta_1",
    "dose_saturation",
)  # fmt: skip

PARAM_INFO: dict[str, ParamInfo] = {f.name: f.metadata["info"] for f in dataclasses.fields(QualityParams)}
"""field -> unit, tag, source, plausible range, sampled by uncertainty studies."""

PARAM_RANGES: dict[str, tuple[float, float]] = {
    name: (i.low, i.high) for name, i in PARAM_INFO.items() if i.uncertain and i.low < i.high
}
"""The plausible range of each uncertain physical parameter (what an uncertainty study samples)."""


def per_atmosphere(params: QualityParams, prefix: str, atmosphere: str) -> float:
    """The `prefix_<atmosphere>` field (e.g. f_rs_n2)."""
    if atmosphere not in ATMOSPHERES:
        raise ValueError(f"unknown atmosphere {atmosphere!r}; valid: {', '.join(ATMOSPHERES)}")
    return getattr(params, f"{prefix}_{atmosphere.lower()}")


def per_material(params: QualityParams, prefix: str, material: str, suffix: str = "") -> float:
    """The `prefix_<material><suffix>` field (e.g. gpc_hfo2_nm)."""
    check_material(material)
    return getattr(params, f"{prefix}_{material.lower()}{suffix}")


def check_material(material: str) -> None:
    if material not in MATERIALS:
        raise ValueError(f"unknown coating material {material!r}; valid: {', '.join(MATERIALS)}")


def check_atmosphere(atmosphere: str) -> None:
    if atmosphere not in ATMOSPHERES:
        raise ValueError(f"unknown atmosphere {atmosphere!r}; valid: {', '.join(ATMOSPHERES)}")


def params_markdown(params: QualityParams | None = None) -> str:
    """The parameter table of docs/model.md §3: name, default, unit, tag, range, sampled by default, source."""
    p = params or QualityParams()
    rows = [
        "| name | default | unit | tag | range | sampled | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, i in PARAM_INFO.items():
        rng = f"{i.low:g} – {i.high:g}"
        rows.append(
            f"| `{name}` | {getattr(p, name):.6g} | {i.unit} | {i.tag} | {rng} | {'yes' if i.uncertain else '–'} | "
            f"{i.source} |"
        )
    return "\n".join(rows) + "\n"
