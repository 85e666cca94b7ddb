"""Tests of plant/physics: kinetic doses, the MODEL calibration targets, the revised mechanisms (residual-Li
budget, rock-salt layer, interdiffusion, crystallisation, Li transport), the spec check and the wait budget."""

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from plant import physics as ph
from plant.physics import (
    DRY_ROOM_RH_PCT,
    PARAM_INFO,
    PARAM_RANGES,
    R_KJ,
    QualityParams,
    anneal,
    anneal_dose,
    assess,
    equivalent_hours,
    kinetic_integral,
    new_coating,
    precursor_mol,
    properties,
    recipe_profile,
    wait,
    wait_budget_h,
)

P = QualityParams()
EXACT = P.replace(cv_icp=0.0, cv_titration=0.0, cv_xrd=0.0, cv_eis=0.0)
NO_NOISE = (0.0, 0.0, 0.0, 0.0)


def dose(setpoint_c: float, soak_h: float = 2.0, params: QualityParams = P) -> ph.AnnealDose:
    return anneal_dose(*recipe_profile(setpoint_c, 5.0, soak_h, 0.67), params)


def lot(
    setpoint_c=400.0,
    soak_h=2.0,
    atmosphere="O2",
    wait_h=0.0,
    rh_pct=50.0,
    material="HfO2",
    cycles=10,
    params=P,
):
    s = new_coating(material, cycles, params, 0.0)
    wait(s, wait_h, rh_pct, 25.0, params)
    anneal(s, dose(setpoint_c, soak_h, params), atmosphere, params)
    return s


def props(**kw):
    p = kw.get("params", P)
    return properties(lot(**kw), p)


def verdict(s, can_rework=True):
    a = assess(s, EXACT, NO_NOISE, can_rework)
    return a.verdict, a.reason


# ----------------------------------------------------------------------------------------- kinetic integral


@pytest.mark.parametrize("ea", [40.0, 100.0, 220.0, 300.0])
@pytest.mark.parametrize("temp_c", [25.0, 400.0, 750.0])
def test_constant_profile_is_closed_form(ea, temp_c):
    got = kinetic_integral([0.0, 3.5], [temp_c, temp_c], ea)
    assert got == pytest.approx(3.5 * math.exp(-ea / (R_KJ * (temp_c + 273.15))), rel=1e-9)


@pytest.mark.parametrize("ea", [80.0, 100.0, 250.0])
def test_piecewise_linear_profile_matches_quadrature(ea):
    t = np.array([0.0, 0.4, 1.25, 1.25, 3.25, 3.3, 5.0, 11.0])
    temp = np.array([25.0, 200.0, 400.0, 420.0, 420.3, 400.0, 399.5, 80.0])
    ref = 0.0
    for i in range(len(t) - 1):
        if t[i + 1] > t[i]:

            def f(x, i=i):
                tc = temp[i] + (temp[i + 1] - temp[i]) * (x - t[i]) / (t[i + 1] - t[i])
                return math.exp(-ea / (R_KJ * (tc + 273.15)))

            ref += quad(f, t[i], t[i + 1], epsabs=0.0, epsrel=1e-12, limit=200)[0]
    assert kinetic_integral(t, temp, ea) == pytest.approx(ref, rel=1e-6)


def test_measured_noisy_profile_matches_quadrature():
    rng = np.random.default_rng(7)
    t = np.linspace(0.0, 12.0, 1441)
    base = np.interp(t, *recipe_profile(400.0, 5.0, 3.0, 0.67))
    temp = base + rng.normal(0.0, 1.5, t.size)
    ref = sum(
        quad(
            lambda x, i=i: math.exp(-100.0 / (R_KJ * (np.interp(x, t[i : i + 2], temp[i : i + 2]) + 273.15))),
            t[i],
            t[i + 1],
            epsrel=1e-12,
        )[0]
        for i in range(t.size - 1)
    )
    assert kinetic_integral(t, temp, 100.0) == pytest.approx(ref, rel=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    t0c=st.floats(20.0, 800.0),
    t1c=st.floats(20.0, 800.0),
    dt=st.floats(1e-3, 20.0),
    frac=st.floats(0.001, 0.999),
    ea=st.floats(30.0, 350.0),
)
def test_splitting_a_segment_does_not_change_the_integral(t0c, t1c, dt, frac, ea):
    whole = kinetic_integral([0.0, dt], [t0c, t1c], ea)
    tm = frac * dt
    split = kinetic_integral([0.0, tm, dt], [t0c, t0c + frac * (t1c - t0c), t1c], ea)
    assert split == pytest.approx(whole, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(
    ("t", "temp", "match"),
    [
        ([0.0, 1.0], [25.0], "points"),
        ([0.0], [25.0], "at least 2"),
        ([0.0, 2.0, 1.0], [25.0, 25.0, 25.0], "non-decreasing"),
        ([0.0, float("nan")], [25.0, 25.0], "finite"),
        ([0.0, 1.0], [25.0, float("inf")], "finite"),
        ([0.0, 1.0], [25.0, -300.0], "absolute zero"),
    ],
)
def test_kinetic_integral_validates(t, temp, match):
    with pytest.raises(ValueError, match=match):
        kinetic_integral(t, temp, 100.0)


def test_recipe_profile_breakpoints():
    t, temp = recipe_profile(400.0, 5.0, 3.0, 0.67)
    assert temp.tolist() == [25.0, 400.0, 400.0, 80.0]
    assert t[1] == pytest.approx(75.0 / 60.0)
    assert t[2] - t[1] == pytest.approx(3.0)
    assert t[3] - t[2] == pytest.approx(320.0 / 0.67 / 60.0)  # ≈ 8 h
    d = anneal_dose(t, temp, P)
    assert d.cool_h == pytest.approx(t[3] - t[2])
    assert d.peak_c == pytest.approx(400.0)
    assert d.duration_h == pytest.approx(t[3])
    with pytest.raises(ValueError, match="ramp_c_per_min"):
        recipe_profile(400.0, 0.0, 3.0, 0.67)


@pytest.mark.parametrize("ea", [40.0, 150.0, 300.0])
def test_equivalent_hours_at_400c(ea):
    """A dose is hours at 400 °C: a constant 400 °C profile is its own duration, hotter counts more."""
    assert equivalent_hours([0.0, 2.5], [400.0, 400.0], ea) == pytest.approx(2.5, rel=1e-12)
    assert equivalent_hours([0.0, 1.0], [450.0, 450.0], ea) == pytest.approx(
        math.exp(ea / R_KJ * (1 / 673.15 - 1 / 723.15)), rel=1e-12
    )
    d = dose(400.0, 3.0)
    assert set(ph.DOSE_PROCESSES) == {f.name for f in dataclasses.fields(d)} - {
        "duration_h",
        "peak_c",
        "cool_h",
    }


# ------------------------------------------------------------------------------- anchors of the rate constants


def test_each_rate_constant_reproduces_its_anchor():
    """The calibrated k_* defaults (docs/model.md §3) hit the anchors they are documented with."""
    s = lot(400.0, 2.0)
    assert s.x_d == pytest.approx(0.90, abs=0.001)
    s3 = lot(400.0, 3.0)
    assert s3.bonding == pytest.approx(0.50, abs=0.001)
    assert s3.li_uptake == pytest.approx(0.75, abs=0.001)
    assert s.l_rs_nm == pytest.approx(0.15, abs=0.001)
    assert lot(500.0, 3.0).l_d_nm == pytest.approx(0.40, abs=0.002)
    assert lot(400.0, 3.0, material="Al2O3").l_d_nm == pytest.approx(0.30, abs=0.002)
    iso750 = P.k_m_pct_per_h * equivalent_hours([0, 5], [750, 750], P.ea_m_kj)
    assert iso750 == pytest.approx(0.75, rel=0.01)
    assert P.k_m_pct_per_h * equivalent_hours([0, 5], [400, 400], P.ea_m_kj) < 0.05
    relith = 1.0 - math.exp(-P.k_r_per_h * equivalent_hours([0, 2], [450, 450], P.ea_r_kj))
    assert relith == pytest.approx(0.20, abs=0.002)
    assert P.k_rough_per_h == pytest.approx(2.0 * P.k_d_per_h, rel=1e-3)


# ------------------------------------------------------------------------------------- calibration targets


def test_densification_400c_2h_full_profile_about_0p9_and_passes():
    s = lot(400.0, 2.0)
    assert s.x_d == pytest.approx(0.90, abs=0.005)  # k_d is calibrated on the full profile
    assert verdict(s) == ("pass", "ok")
    assert verdict(lot(400.0, 3.0)) == ("pass", "ok")  # the default recipe


def test_300c_is_under_dense_rework_or_scrap():
    s = lot(300.0, 2.0)
    assert 0.05 <= s.x_d < 0.15
    assert verdict(s, can_rework=True) == ("rework", "under_dense")
    assert verdict(s, can_rework=False) == ("scrap", "under_dense")


def test_rework_anneal_continues_densification_and_passes():
    s = lot(300.0, 2.0)
    x1, y1 = s.x_d, s.li_uptake
    anneal(s, dose(400.0, 3.0), "O2", P)
    assert s.anneals == 2 and s.x_d > x1 and s.x_d > 0.95 and s.li_uptake > y1
    assert verdict(s) == ("pass", "ok")


@pytest.mark.parametrize("soak_h", [2.0, 3.0])
@pytest.mark.parametrize("setpoint_c", [650.0, 700.0])
@pytest.mark.parametrize("atmosphere", ["O2", "N2"])
def test_hot_anneal_is_damage(setpoint_c, soak_h, atmosphere):
    """Over-annealed: the rock-salt layer and interdiffusion fail the EIS limit, mixing the XRD limit."""
    v, reason = verdict(lot(setpoint_c, soak_h, atmosphere))
    assert v == "scrap" and reason in ("resistance", "damage_mixing")


@pytest.mark.parametrize("soak_h", [2.0, 3.0])
@pytest.mark.parametrize("setpoint_c", [350.0, 400.0, 450.0, 500.0])
def test_mild_window_passes_without_mixing_damage(setpoint_c, soak_h):
    s = lot(setpoint_c, soak_h)
    assert s.dmix_pct < P.dmix_max_pct / 10
    if setpoint_c >= 400.0 or soak_h >= 3.0:
        assert verdict(s) == ("pass", "ok")


def test_n2_and_air_harm_the_surface_and_air_reforms_carbonate():
    o2, n2, air = (props(setpoint_c=650.0, atmosphere=a) for a in ("O2", "N2", "air"))
    assert n2.dmix_pct > air.dmix_pct > o2.dmix_pct
    assert n2.dmix_pct == pytest.approx(P.f_mix_n2 * o2.dmix_pct)
    assert n2.l_rs_nm > air.l_rs_nm > o2.l_rs_nm
    assert verdict(lot(650.0, atmosphere="N2")) == ("scrap", "damage_mixing")
    assert lot(400.0, atmosphere="air").rl_ppm > lot(400.0, atmosphere="O2").rl_ppm + 50.0
    assert lot(400.0, atmosphere="N2").rl_ppm > lot(400.0, atmosphere="O2").rl_ppm  # no relithiation sink


def test_n2_at_400c_is_worse_through_the_surface_not_only_residual_li():
    """With relithiation off in both atmospheres (equal residual Li), N2 still loses: a reduced rock-salt layer."""
    no_sink = P.replace(relith_o2=0.0, relith_n2=0.0)
    o2, n2 = (
        props(setpoint_c=400.0, soak_h=3.0, params=no_sink),
        props(setpoint_c=400.0, soak_h=3.0, atmosphere="N2", params=no_sink),
    )
    assert n2.rl_ppm == pytest.approx(o2.rl_ppm)
    assert n2.l_rs_nm == pytest.approx(math.sqrt(P.f_rs_n2) * o2.l_rs_nm, rel=1e-9)
    assert n2.r_int_ohm_cm2 > o2.r_int_ohm_cm2 + 5.0
    assert n2.rate_capability < o2.rate_capability - 0.03


# ------------------------------------------------------------------------------------------ residual Li


@pytest.mark.parametrize("soak_h", [2.0, 3.0])
def test_residual_li_budget(soak_h):
    quick = lot(400.0, soak_h, wait_h=2.0, rh_pct=50.0)
    humid = lot(400.0, soak_h, wait_h=24.0, rh_pct=50.0)
    dry = lot(400.0, soak_h, wait_h=24.0, rh_pct=DRY_ROOM_RH_PCT)
    assert verdict(quick) == ("pass", "ok")
    assert verdict(humid) == ("scrap", "residual_li")
    assert verdict(dry) == ("pass", "ok")


def test_film_li_capacity_is_stoichiometric():
    """0.9 nm HfO2 at 9.2 g/cm³ on 0.4 m²/g binds 218 ppm Li as Li2HfO3; 1.1 nm Al2O3 at 3.0 g/cm³ 180 ppm as
    LiAlO2 (ANNEAL-LITERATURE §2); a Li-deficient shell of 1 nm holds 136 ppm."""
    assert ph.film_li_capacity_ppm("HfO2", 0.9, P) == pytest.approx(218.4, abs=0.5)
    assert ph.film_li_capacity_ppm("Al2O3", 1.1, P) == pytest.approx(179.8, abs=0.5)
    assert ph.shell_li_ppm_per_nm(P) == pytest.approx(135.5, abs=0.5)


@pytest.mark.parametrize("setpoint_c", [350.0, 400.0, 450.0, 550.0])
@pytest.mark.parametrize("atmosphere", ["O2", "N2", "dry_air"])
def test_residual_li_removed_is_bounded_by_film_and_shell(setpoint_c, atmosphere):
    fresh = new_coating("HfO2", 10, P, 0.0)
    s = lot(setpoint_c, 3.0, atmosphere)
    removed = fresh.rl_ppm - s.rl_ppm
    uptake = fresh.li_capacity_ppm * (s.li_uptake - fresh.li_uptake)
    assert 0.0 <= uptake <= fresh.li_capacity_ppm * (1.0 - P.y0_uptake)
    relith = removed - uptake
    assert -1e-9 <= relith <= ph.shell_li_ppm_per_nm(P) * P.l_def0_nm + 1e-9
    if atmosphere == "N2":
        assert relith == pytest.approx(0.0, abs=1e-9)
    assert s.l_li_nm == 0.0  # residual Li was enough: nothing from the lattice


def test_film_takes_lattice_li_when_residual_li_runs_short():
    """A washed powder (50 ppm residual Li) lithiates its film from the lattice: a Li-depleted layer, more
    resistance and less capacity than with residual Li to spare."""
    washed = P.replace(rl0_ppm=50.0)
    s = lot(450.0, 3.0, params=washed)
    assert s.rl_ppm == pytest.approx(0.0, abs=1e-9)
    assert s.l_li_nm > 0.5
    rich = props(setpoint_c=450.0, soak_h=3.0)
    poor = properties(s, washed)
    assert poor.l_rs_nm > rich.l_rs_nm + 0.5 and poor.r_int_ohm_cm2 > rich.r_int_ohm_cm2


def test_wet_clock_restarts_after_anneal_and_barrier_works():
    s = lot(400.0, 3.0)
    before = s.rl_ppm
    wait(s, 24.0, 50.0, 25.0, P)
    grown_annealed = s.rl_ppm - before
    fresh = new_coating("HfO2", 10, P, 0.0)
    rl_fresh = fresh.rl_ppm
    wait(fresh, 24.0, 50.0, 25.0, P)
    grown_fresh = fresh.rl_ppm - rl_fresh
    eta_b = P.eta_0 + (P.eta_1 - P.eta_0) * s.x_d
    assert grown_annealed / grown_fresh == pytest.approx(math.sqrt((1 - eta_b) / (1 - P.eta_0)), rel=1e-12)


def test_titration_reads_leached_lattice_li_less_through_a_dense_film():
    fresh = properties(new_coating("HfO2", 10, P, 0.0), P)
    assert fresh.rl_titration_ppm - fresh.rl_ppm == pytest.approx(P.rl_leach_ppm)
    annealed = props(setpoint_c=400.0, soak_h=3.0)
    excess = annealed.rl_titration_ppm - annealed.rl_ppm
    assert excess == pytest.approx(P.rl_leach_ppm * (1 - P.phi_leach * annealed.coverage * annealed.x_d))


# ------------------------------------------------------------------------------- transport and properties


def test_annealing_densifies_smooths_bonds_lowers_resistance_and_speeds_li_transport():
    s = new_coating("HfO2", 10, P, 0.0)
    before = properties(s, P)
    anneal(s, dose(400.0, 3.0), "O2", P)
    after = properties(s, P)
    assert after.x_d > before.x_d + 0.9
    assert after.roughness_nm < before.roughness_nm
    assert after.bonding > before.bonding + 0.4
    assert after.thickness_nm < before.thickness_nm  # densification shrinks the film
    assert after.r_int_ohm_cm2 < before.r_int_ohm_cm2 - 20.0
    assert after.r_film_ohm_cm2 < before.r_film_ohm_cm2 / 10.0
    assert after.d_li_cm2_s > 10.0 * before.d_li_cm2_s
    assert after.rate_capability > before.rate_capability + 0.2
    assert after.ret100 > before.ret100


def test_resistance_is_the_sum_of_its_layers():
    s = lot(450.0, 3.0, wait_h=5.0)
    p = properties(s, P)
    area = P.bet_m2_g * 1e4 * P.loading_mg_cm2 * 1e-3
    r_ct = (
        P.r_ct0_ohm_cm2 * (1 + P.alpha_rl_per_kppm * p.rl_ppm / 1000) * (1 + P.alpha_m_per_pct * p.dmix_pct)
    )
    r_rs = p.l_rs_nm * 1e-7 / (P.sigma_rs_s_cm * area)
    r_d = p.l_d_nm * 1e-7 / (P.sigma_diff_s_cm * area)
    assert p.r_int_ohm_cm2 == pytest.approx(r_ct + p.r_film_ohm_cm2 + r_rs + r_d, rel=1e-12)
    assert p.r_rel == pytest.approx(p.r_int_ohm_cm2 / P.r_ct0_ohm_cm2, rel=1e-12)
    sigma = P.sigma_am0_s_cm * (P.sigma_amli_s_cm / P.sigma_am0_s_cm) ** p.li_uptake
    contact = P.f_contact0 + (1 - P.f_contact0) * p.bonding
    assert p.r_film_ohm_cm2 == pytest.approx(p.thickness_nm * 1e-7 / (sigma * contact * area), rel=1e-12)
    # Nernst-Einstein with 1e22 Li/cm³: 1e-8 S/cm is 1.6e-13 cm²/s
    assert p.d_li_cm2_s == pytest.approx(sigma * contact * 1.6036e-5, rel=1e-3)


def test_rate_capability_follows_the_ir_drop():
    p = props(setpoint_c=400.0, soak_h=3.0)
    q_active = p.q0_mah_g / (1 - 0.1 * p.q0_mah_g * 0)  # the 0.1 C loss is below 1 %
    drop_1c = q_active * P.loading_mg_cm2 * 1e-6 * p.r_int_ohm_cm2 / P.dv_eff_v
    assert p.rate_capability == pytest.approx(
        P.q_bulk_rate * (1 - P.rate_c * drop_1c) / (1 - 0.1 * drop_1c), rel=0.01
    )
    assert 0.45 < p.rate_capability < 0.65  # Q(5C)/Q(0.1C) ≈ 0.58 for Al2O3-coated NCM811 [L17]


@pytest.mark.parametrize("material,cycles", [("HfO2", 10), ("Al2O3", 10)])
def test_over_anneal_degrades_every_property_continuously(material, cycles):
    """From 475 °C up, each 25 °C raises R_int and lowers capacity, rate and (for HfO2) retention: no property
    waits for a spec limit to act. Al doping of the surface helps retention first [A3], then the rock salt wins."""
    seq = [
        props(setpoint_c=float(t), soak_h=3.0, material=material, cycles=cycles) for t in range(475, 651, 25)
    ]
    for a, b in zip(seq, seq[1:]):
        assert b.r_int_ohm_cm2 > a.r_int_ohm_cm2
        assert b.l_rs_nm > a.l_rs_nm and b.l_d_nm > a.l_d_nm
        assert b.q0_mah_g < a.q0_mah_g
        assert b.rate_capability <= a.rate_capability
        if material == "HfO2":
            assert b.ret100 < a.ret100
    peak = max(range(len(seq)), key=lambda i: seq[i].ret100)
    assert all(b.ret100 < a.ret100 for a, b in zip(seq[peak:], seq[peak + 1 :])) and peak <= 2


def test_thin_rock_salt_spares_retention_thick_one_does_not():
    """A reduced shell under l_rs_free_nm does not raise fade [A21]; beyond it, it does."""
    s = lot(400.0, 3.0)
    base = properties(s, P).ret100
    s.l_rs_nm = P.l_rs_free_nm * 0.9
    assert properties(s, P).ret100 == pytest.approx(base, rel=1e-12)
    s.l_rs_nm = P.l_rs_free_nm + 1.0
    assert properties(s, P).ret100 < base


def test_model_sanity_check():
    p = props(setpoint_c=400.0, soak_h=3.0)
    assert new_coating("HfO2", 10, P, 0.0).thickness0_nm == pytest.approx(0.9, rel=1e-12)
    assert p.thickness_nm == pytest.approx(0.9, rel=0.05)
    assert p.coverage == pytest.approx(0.90, rel=0.02)
    assert p.x_d == pytest.approx(0.954, abs=0.005)
    assert 180.0 < p.q0_mah_g < 203.0
    assert 0.88 < p.ret100 < 0.93
    uncoated = properties(new_coating("HfO2", 0, P, 0.0), P)
    assert uncoated.ret100 == pytest.approx(0.85, rel=0.03)
    assert uncoated.coverage == 0.0 and uncoated.thickness_nm == 0.0 and math.isnan(uncoated.d_li_cm2_s)


def test_crystallisation_is_thickness_dependent_and_costs_transport_and_protection():
    assert lot(650.0, 3.0).x_c < 1e-6  # 0.9 nm stays amorphous [A24]
    assert lot(650.0, 3.0, material="Al2O3", cycles=4).x_c < 1e-6
    thick = lot(650.0, 3.0, cycles=51)  # 5 nm
    assert thick.x_c > 0.2
    amorphous_p = P.replace(t_cr_inf_hfo2_c=1500.0)
    am = properties(lot(650.0, 3.0, cycles=51, params=amorphous_p), amorphous_p)
    cr = properties(thick, P)
    assert cr.d_li_cm2_s < am.d_li_cm2_s and cr.coverage < am.coverage and cr.ret100 < am.ret100
    # lithium in the film raises T_cr
    dry = P.replace(dt_cr_li_c=0.0)
    assert lot(650.0, 3.0, cycles=51, params=dry).x_c > thick.x_c


# ------------------------------------------------------------------------------------------- spec check


def test_thickness_out_of_window_is_scrap():
    s = new_coating("HfO2", 10, P, 4.0)  # +20 %
    anneal(s, dose(400.0), "O2", P)
    assert verdict(s) == ("scrap", "thickness")
    s = new_coating("HfO2", 10, P, 2.0)  # +10 %: inside
    anneal(s, dose(400.0), "O2", P)
    assert verdict(s) == ("pass", "ok")


def test_measurement_noise_moves_measured_values():
    s = lot(400.0, 3.0, wait_h=2.0)
    titration = properties(s, P).rl_titration_ppm
    z_over = (P.rl_max_ppm / titration - 1.0) / P.cv_titration + 0.01
    assert assess(s, P, (0.0, z_over, 0.0, 0.0), True)[:2] == ("scrap", "residual_li")
    assert assess(s, P, (0.0, z_over - 0.02, 0.0, 0.0), True)[:2] == ("pass", "ok")
    z_icp = (1.15 - 1.0) / P.cv_icp + 0.01
    assert assess(s, P, (z_icp, 0.0, 0.0, 0.0), True).reason == "thickness"
    z_eis = (P.r_rel_max / properties(s, P).r_rel - 1.0) / P.cv_eis + 0.01
    assert assess(s, P, (0.0, 0.0, 0.0, z_eis), True)[:2] == ("scrap", "resistance")


def test_check_order_damage_before_under_dense_before_residual_li():
    s = new_coating("HfO2", 10, P, 0.0)
    wait(s, 200.0, 50.0, 25.0, P)
    anneal(s, dose(300.0), "O2", P)
    # also over the residual-Li spec, but an unannealed film is judged first: a re-anneal binds residual Li too
    assert properties(s, P).rl_titration_ppm > P.rl_max_ppm
    assert verdict(s) == ("rework", "under_dense")
    anneal(s, dose(400.0), "O2", P)
    assert verdict(s) == ("scrap", "residual_li")
    s.dmix_pct = 1.0
    assert verdict(s) == ("scrap", "damage_mixing")
    assert set(ph.REASONS) >= {assess(s, EXACT, NO_NOISE, True).reason}


# ------------------------------------------------------------------------------------------- wait budget


@pytest.mark.parametrize("atmosphere", ["O2", "air", "N2"])
@pytest.mark.parametrize(("rh", "margin"), [(50.0, 0.0), (30.0, 0.05), (DRY_ROOM_RH_PCT, 0.0)])
def test_wait_budget_lands_on_the_titration_limit(atmosphere, rh, margin):
    d = dose(400.0, 3.0)
    s = new_coating("HfO2", 10, P, 0.0)
    wait(s, 1.5, 50.0, 25.0, P)
    budget = wait_budget_h(s, rh, 25.0, d, atmosphere, P, margin)
    assert 0.0 < budget < math.inf
    predicted = ph.predicted_rl_after_anneal(
        s, d, atmosphere, P, ph.wet_rate_ppm2_per_h(s, rh, 25.0, P) * budget
    )
    wait(s, budget, rh, 25.0, P)
    anneal(s, d, atmosphere, P)
    assert s.rl_ppm == pytest.approx(predicted, rel=1e-9)
    assert properties(s, P).rl_titration_ppm == pytest.approx(P.rl_max_ppm * (1.0 - margin), rel=1e-6)


def test_predicted_residual_li_is_the_anneals_own_bookkeeping():
    """The closed form the wait budget inverts equals what `anneal` does, in both of its branches."""
    for rl0, l_def0 in ((1200.0, 1.0), (400.0, 3.0), (150.0, 0.5)):
        params = P.replace(rl0_ppm=rl0, l_def0_nm=l_def0)
        for atm in ("O2", "N2", "air"):
            for w in (0.0, 3.0, 30.0):
                s = new_coating("HfO2", 10, params, 0.0)
                wait(s, w, 50.0, 25.0, params)
                d = dose(430.0, 2.0, params)
                predicted = ph.predicted_rl_after_anneal(s, d, atm, params)
                anneal(s, d, atm, params)
                assert s.rl_ppm == pytest.approx(predicted, rel=1e-9, abs=1e-9)


def test_wait_budget_edges():
    d = dose(400.0, 3.0)
    s = new_coating("HfO2", 10, P, 0.0)
    assert wait_budget_h(s, 0.0, 25.0, d, "O2", P) == math.inf
    wait(s, 100.0, 50.0, 25.0, P)
    assert wait_budget_h(s, 50.0, 25.0, d, "O2", P) == 0.0
    budget_50 = wait_budget_h(new_coating("HfO2", 10, P, 0.0), 50.0, 25.0, d, "O2", P)
    budget_dry = wait_budget_h(new_coating("HfO2", 10, P, 0.0), DRY_ROOM_RH_PCT, 25.0, d, "O2", P)
    assert 5.0 < budget_50 < 24.0 and budget_dry > 1000.0


# ------------------------------------------------------------------------------------- params and misc


def test_replace_and_validation():
    q = P.replace(rl_max_ppm=1700.0)
    assert q.rl_max_ppm == 1700.0 and P.rl_max_ppm == 1600.0
    with pytest.raises(ValueError, match=r"unknown quality parameter 'rl_max'.*rl_max_ppm"):
        P.replace(rl_max=1.0)
    with pytest.raises(ValueError, match="k_d_per_h"):
        P.replace(k_d_per_h=-1.0)
    with pytest.raises(ValueError, match="cv_eis"):
        P.replace(cv_eis=float("nan"))
    with pytest.raises(ValueError, match="y0_uptake must be <= 1"):
        P.replace(y0_uptake=1.5)
    with pytest.raises(ValueError, match="w_prot_film"):
        P.replace(w_prot_film=0.7, w_prot_dense=0.5)
    with pytest.raises(ValueError, match="atmosphere"):
        anneal(new_coating("HfO2", 10, P, 0.0), dose(400.0), "Ar", P)
    with pytest.raises(ValueError, match="material"):
        new_coating("ZrO2", 10, P, 0.0)


def test_every_parameter_has_unit_tag_source_and_a_range_around_its_default():
    names = [f.name for f in dataclasses.fields(QualityParams)]
    assert list(PARAM_INFO) == names
    for name, info in PARAM_INFO.items():
        assert info.unit and info.source, name
        assert re.fullmatch(r"[SKCE](/[SKCE])?", info.tag), name
        assert info.low <= getattr(P, name) <= info.high, name
    assert set(PARAM_RANGES) <= set(names)
    assert "rl_max_ppm" not in PARAM_RANGES and "cv_eis" not in PARAM_RANGES  # the plant's choice
    assert {"ea_rs_kj", "k_u_per_h", "sigma_amli_s_cm", "f_rs_n2"} <= set(PARAM_RANGES)


def test_any_sample_of_the_ranges_is_a_valid_parameter_set():
    """An uncertainty study samples every range: each corner must be accepted and run."""
    lows = QualityParams().replace(**{n: lo for n, (lo, _) in PARAM_RANGES.items()})
    highs = QualityParams().replace(**{n: hi for n, (_, hi) in PARAM_RANGES.items()})
    for p in (lows, highs):
        pr = properties(lot(400.0, 3.0, wait_h=5.0, params=p), p)
        assert all(math.isfinite(v) for v in pr), pr


def test_docs_table_is_the_generated_one():
    """docs/model.md §3 is `params_markdown()`: every default, tag, range and source as the code has them."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "model.md").read_text(encoding="utf-8")
    assert ph.params_markdown() in doc, "docs/model.md §3 is stale: paste plant.physics.params_markdown()"
    for f in dataclasses.fields(QualityParams):
        m = re.search(rf"^\| `{f.name}` \| ([^|]+) \|", doc, re.MULTILINE)
        assert m, f"{f.name} missing from docs/model.md"
        assert float(m.group(1)) == pytest.approx(getattr(P, f.name), rel=1e-5), f.name


def test_precursor_mol():
    # 4.5e-6 mol/m²/cycle × 0.4 m²/g × 120 kg × 10 cycles / 0.6
    assert precursor_mol("HfO2", 10, 120.0, P) == pytest.approx(3.6, rel=1e-12)
    assert precursor_mol("Al2O3", 4, 120.0, P) == pytest.approx(6.5e-6 * 0.4e3 * 120 * 4 / 0.6)


def test_dry_room_constant_is_conservative_for_minus_40_dew_point():
    assert ph.rh_from_dew_point(-40.0, 22.0) < DRY_ROOM_RH_PCT
    assert ph.rh_from_dew_point(20.0, 20.0) == pytest.approx(100.0)


def test_cached_first_anneal_equals_a_computed_one():
    """First anneals are computed once per (dose, atmosphere, material, params); the cache changes nothing."""
    from plant.physics import annealing

    d = dose(420.0, 2.5)
    a, b = new_coating("HfO2", 10, P, 0.3), new_coating("HfO2", 10, P, -0.2)
    wait(a, 3.0, 50.0, 25.0, P)
    anneal(a, d, "air", P)  # fills the cache
    anneal(b, d, "air", P)  # uses it
    annealing.annealer.cache_clear()
    c = new_coating("HfO2", 10, P, -0.2)
    anneal(c, d, "air", P)  # computed afresh
    assert dataclasses.astuple(b) == dataclasses.astuple(c)
    assert a.rl_ppm != b.rl_ppm and a.x_d == b.x_d
    # another parameter object with another k_d is not served from the cache of the first
    p2 = P.replace(k_d_per_h=P.k_d_per_h * 2)
    e = new_coating("HfO2", 10, p2, -0.2)
    anneal(e, d, "air", p2)
    assert e.x_d > c.x_d
