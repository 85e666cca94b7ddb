"""`twin calibrate`: recovers known kinetic parameters from synthetic QC data made by the model itself, and rejects
bad QC files with one line naming the file, line and column."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import run_twin

from plant import physics
from plant.physics import QualityParams
from twin import calibrate
from twin.errors import TwinError

# "True" plant: different from every default, so recovering them is not an accident of the start values.
TRUE = {
    "ea_d_kj": 118.0,
    "k_d_per_h": 0.45,
    "n_d": 1.3,
    "ea_u_kj": 150.0,
    "k_u_per_h": 0.18,
    "k_w_ppm2_per_h": 4.2e4,
}

HEADER = ["lot_id", "setpoint_c", "ramp_c_per_min", "soak_h", "cool_c_per_min", "atmosphere", "wait_h", "rh_pct",
          "x_d", "r_int_ohm_cm2", "rl_ppm"]  # fmt: skip


def synthetic_rows(params: QualityParams, n: int, seed: int, noise: tuple[float, float, float]) -> list[list]:
    """QC rows from the model: a design over setpoint, soak, atmosphere, wait and humidity, with noise
    (x_d absolute sd, resistance and residual-Li relative sd)."""
    rng = np.random.default_rng(seed)
    sd_x, sd_r, sd_rl = noise
    rows = []
    for i in range(n):
        setpoint = float(rng.choice([330.0, 350.0, 370.0, 390.0, 410.0, 430.0]))
        soak = float(rng.choice([0.5, 1.0, 2.0, 3.0]))
        atm = str(rng.choice(["O2", "O2", "dry_air", "air"]))
        wait_h = float(np.round(rng.uniform(0.5, 30.0), 2))
        rh = float(rng.choice([5.0, 30.0, 50.0, 60.0]))
        t, temp = physics.recipe_profile(setpoint, 5.0, soak, 0.67)
        state = physics.new_coating("HfO2", 10, params, 0.0)
        physics.wait(state, wait_h, rh, 25.0, params)
        physics.anneal(state, physics.anneal_dose(t, temp, params), atm, params)
        p = physics.properties(state, params)
        x_d = float(np.clip(p.x_d + sd_x * rng.standard_normal(), 0.0, 1.0))
        r = p.r_int_ohm_cm2 * math.exp(sd_r * rng.standard_normal())
        rl = p.rl_titration_ppm * math.exp(sd_rl * rng.standard_normal())
        rows.append(
            [
                f"L{i:03d}",
                setpoint,
                5.0,
                soak,
                0.67,
                atm,
                wait_h,
                rh,
                round(x_d, 4),
                round(r, 3),
                round(rl, 1),
            ]
        )
    return rows


def write_csv(path: Path, rows: list[list], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_recovers_known_parameters(tmp_path: Path) -> None:
    """60 lots, noise x_d ±0.01, resistance ±2 %, residual Li ±3 % (seed 11). Tolerances: Ea_d within 4 %,
    k_d (rate at 400 °C) within 5 %, n_d within 6 %, Ea_u within 10 %, k_u within 10 %, K_w within 8 %; and every
    true value inside 3 reported standard errors."""
    truth = QualityParams().replace(**TRUE)
    qc = write_csv(tmp_path / "qc.csv", synthetic_rows(truth, 60, seed=11, noise=(0.01, 0.02, 0.03)))
    fit = calibrate.calibrate(qc)
    v, se = fit.values, fit.std_errors
    assert fit.success
    assert fit.names == list(calibrate.FIT_PARAMS)
    assert v["ea_d_kj"] == pytest.approx(TRUE["ea_d_kj"], rel=0.04)
    assert v["n_d"] == pytest.approx(TRUE["n_d"], rel=0.06)
    assert v["k_w_ppm2_per_h"] == pytest.approx(TRUE["k_w_ppm2_per_h"], rel=0.08)
    assert v["k_d_per_h"] == pytest.approx(TRUE["k_d_per_h"], rel=0.05)
    assert v["ea_u_kj"] == pytest.approx(TRUE["ea_u_kj"], rel=0.10)
    assert v["k_u_per_h"] == pytest.approx(TRUE["k_u_per_h"], rel=0.10)
    for name in calibrate.FIT_PARAMS:
        assert se[name] > 0
        if name.startswith("ea_"):
            assert abs(v[name] - TRUE[name]) < 3 * se[name], name
        else:  # log-scale error: SE/value is the sd of the log
            assert abs(math.log(v[name] / TRUE[name])) < 3 * se[name] / v[name], name
    # the start (defaults) was far from the truth, so the fit moved
    assert abs(fit.start["ea_d_kj"] - TRUE["ea_d_kj"]) > 15
    # uncertainty shrinks with less noise: standard errors scale roughly with the noise
    qc2 = write_csv(tmp_path / "qc2.csv", synthetic_rows(truth, 60, seed=11, noise=(0.0025, 0.005, 0.0075)))
    fit2 = calibrate.calibrate(qc2)
    assert fit2.std_errors["ea_d_kj"] < 0.5 * se["ea_d_kj"]
    assert fit2.values["ea_d_kj"] == pytest.approx(TRUE["ea_d_kj"], rel=0.01)


def test_densification_only_keeps_kw(tmp_path: Path) -> None:
    """Without residual-Li data K_w is not fitted (kept at its start value) and the rest still fits."""
    truth = QualityParams().replace(**TRUE)
    rows = synthetic_rows(truth, 40, seed=3, noise=(0.01, 0.02, 0.03))
    header = HEADER[:-1]
    qc = write_csv(tmp_path / "qc.csv", [r[:-1] for r in rows], header)
    fit = calibrate.calibrate(qc)
    assert fit.names == ["ea_d_kj", "k_d_per_h", "n_d", "ea_u_kj", "k_u_per_h"]
    assert any("K_w" in n for n in fit.fixed_note)
    assert fit.values["ea_d_kj"] == pytest.approx(TRUE["ea_d_kj"], rel=0.05)


def test_cli_prints_fit_and_writes_fragment(tmp_path: Path) -> None:
    truth = QualityParams().replace(**TRUE)
    qc = write_csv(tmp_path / "qc.csv", synthetic_rows(truth, 30, seed=5, noise=(0.01, 0.02, 0.03)))
    out = tmp_path / "fitted.yaml"
    proc = run_twin("calibrate", str(qc), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    for name in calibrate.FIT_PARAMS:
        assert name in proc.stdout
    frag = yaml.safe_load(out.read_text())
    assert set(frag) == {"quality"}
    assert set(frag["quality"]) == set(calibrate.FIT_PARAMS)
    assert frag["quality"]["ea_d_kj"] == pytest.approx(TRUE["ea_d_kj"], rel=0.08)
    QualityParams().replace(**frag["quality"])  # a valid override set


def test_example_csv_fits() -> None:
    """The shipped example (scenarios/qc-example.csv) calibrates against the baseline scenario."""
    repo = Path(__file__).resolve().parent.parent
    fit = calibrate.calibrate(repo / "scenarios" / "qc-example.csv", repo / "scenarios" / "baseline.yaml")
    assert fit.success
    assert 60 < fit.values["ea_d_kj"] < 200
    assert fit.std_errors["ea_d_kj"] < 0.1 * fit.values["ea_d_kj"]


GOOD = "lot_id,setpoint_c,ramp_c_per_min,soak_h,cool_c_per_min,atmosphere,wait_h,rh_pct,x_d,rl_ppm\n"
ROW = "L{i},400,5,2,0.67,O2,{w},50,0.9,900\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("rh_pct,", "") + "".join(ROW.format(i=i, w=i).replace(",50,", ",") for i in range(8)),
         "qc.csv: line 1: missing column(s) rh_pct"),
        (GOOD + "".join(ROW.format(i=i, w=i) for i in range(4)) + "L9,400,5,two,0.67,O2,1,50,0.9,900\n"
         + "".join(ROW.format(i=i, w=i) for i in range(10, 14)),
         "qc.csv: line 6: column soak_h: 'two' is not a number"),
        (GOOD + "".join(ROW.format(i=i, w=i) for i in range(3)), "qc.csv: line 4: too few rows: 3 lot(s)"),
        (GOOD + "".join(ROW.format(i=i, w=i) for i in range(6)) + "L7,400,5,2,0.67,H2,1,50,0.9,900\n",
         "qc.csv: line 8: column atmosphere: 'H2' is not one of O2, dry_air, air, N2"),
    ],
)  # fmt: skip
def test_bad_csv_one_line_error(tmp_path: Path, text: str, expected: str) -> None:
    qc = tmp_path / "qc.csv"
    qc.write_text(text)
    with pytest.raises(TwinError) as err:
        calibrate.calibrate(qc)
    assert str(err.value).endswith(str(err.value).splitlines()[0])
    assert expected in str(err.value)
    proc = run_twin("calibrate", str(qc), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in proc.stderr


def test_measured_profile_equals_recipe(tmp_path: Path) -> None:
    """A lot given by a measured profile file (t_h, temp_c) is predicted like the same recipe: same fit."""
    truth = QualityParams().replace(**TRUE)
    rows = synthetic_rows(truth, 20, seed=8, noise=(0.01, 0.02, 0.03))
    by_recipe = calibrate.calibrate(write_csv(tmp_path / "a.csv", rows))
    header = ["lot_id", "profile", "atmosphere", *HEADER[6:]]
    prof_rows = []
    for r in rows:
        t, temp = physics.recipe_profile(r[1], r[2], r[3], r[4])
        name = f"p{r[1]:g}-{r[3]:g}.csv"
        write_csv(tmp_path / name, [[a, b] for a, b in zip(t, temp, strict=True)], ["t_h", "temp_c"])
        prof_rows.append([r[0], name, r[5], *r[6:]])
    by_profile = calibrate.calibrate(write_csv(tmp_path / "b.csv", prof_rows, header))
    for name in calibrate.FIT_PARAMS:
        assert by_profile.values[name] == pytest.approx(by_recipe.values[name], rel=1e-6)
    prof_rows[3][1] = "missing.csv"
    write_csv(tmp_path / "c.csv", prof_rows, header)
    with pytest.raises(TwinError, match=r"c\.csv: line 5: column profile: profile file not found"):
        calibrate.calibrate(tmp_path / "c.csv")
