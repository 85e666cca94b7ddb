"""Calibration of the quality model's kinetic parameters to measured QC data (`twin calibrate`).

Reads a QC CSV (one lot per row: anneal recipe or profile, wait before anneal, measured densification and/or
resistance, residual Li), predicts each lot with `plant.physics`, and fits the densification kinetics (Ea_d, k_d,
n_d, from x_d), the film's Li-uptake kinetics (Ea_u, k_u, from resistance) and K_w (from residual Li) by weighted
least squares; standard errors come from the Jacobian. The file format is in docs/report-and-calibration.md.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize
from scipy import stats as sps

from plant import physics
from plant.physics import ATMOSPHERES, R_KJ, QualityParams
from plant.physics.params import T_REF_ANNEAL_K
from twin.errors import TwinError
from twin.inputs import read_text

RECIPE_COLUMNS = ("setpoint_c", "ramp_c_per_min", "soak_h", "cool_c_per_min", "atmosphere")
MEASURED = ("x_d", "r_rel", "r_int_ohm_cm2", "rl_ppm")
"""Measured columns; a row may leave some of them empty, but each row needs at least one."""

FIT_PARAMS = ("ea_d_kj", "k_d_per_h", "n_d", "ea_u_kj", "k_u_per_h", "k_w_ppm2_per_h")
"""QualityParams fields that `twin calibrate` fits (densification: Ea_d, k_d, n_d; Li uptake by the film: Ea_u,
k_u; residual Li: K_w). Rate constants k are per hour at 400 °C."""

_DENS = ("ea_d_kj", "k_d_per_h", "n_d")
_UPTAKE = ("ea_u_kj", "k_u_per_h")
_ARRHENIUS = {"ea_d_kj": ("k_d_per_h", "d"), "ea_u_kj": ("k_u_per_h", "u")}  # Ea -> (its rate, its dose)
_RATE_EA = {k: ea for ea, (k, _) in _ARRHENIUS.items()}
_UNITS = {
    "ea_d_kj": "kJ/mol", "k_d_per_h": "1/h", "n_d": "-", "ea_u_kj": "kJ/mol", "k_u_per_h": "1/h",
    "k_w_ppm2_per_h": "ppm²/h",
}  # fmt: skip
# first-stage noise scales per measurement kind (the second stage re-estimates them from the residuals):
# x_d absolute, r and rl relative (log residuals)
_START_SIGMA = {"x_d": 0.02, "r": 0.05, "rl": 0.05}


# ---------------------------------------------------------------------------------------------------------
# The QC file


@dataclass(frozen=True)
class QcLot:
    """One measured lot: how it was annealed, how long and how humid it waited, what was measured (NaN = not)."""

    line: int
    lot_id: str
    profile_key: tuple[Any, ...]
    atmosphere: str
    wait_h: float
    rh_pct: float
    temp_c: float
    x_d: float
    r_rel: float
    rl_ppm: float


@dataclass
class QcData:
    """The lots of a QC file and the anneal profiles they reference (key -> (t_h, temp_c))."""

    path: str
    lots: list[QcLot]
    profiles: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]]

    def has(self, kind: str) -> bool:
        return any(math.isfinite(getattr(lot, kind)) for lot in self.lots)


def _err(path: str | Path, line: int | None, column: str | None, msg: str) -> TwinError:
    where = [str(path)]
    if line is not None:
        where.append(f"line {line}")
    if column is not None:
        where.append(f"column {column}")
    return TwinError(": ".join(where) + ": " + msg)


def _number(path: Path, line: int, row: dict[str, str], column: str, required: bool) -> float:
    text = (row.get(column) or "").strip()
    if not text:
        if required:
            raise _err(path, line, column, "empty value (a number is required)")
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise _err(path, line, column, f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise _err(path, line, column, f"{text!r} is not a finite number")
    return value


def _read_profile(path: Path, ref: str, line: int) -> tuple[np.ndarray, np.ndarray]:
    """A measured furnace profile: CSV with columns t_h and temp_c, path relative to the QC file."""
    p = (path.parent / ref) if not Path(ref).is_absolute() else Path(ref)
    if not p.is_file():
        raise _err(path, line, "profile", f"profile file not found: {p}")
    with io.StringIO(read_text(p), newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("t_h", "temp_c") if c not in (reader.fieldnames or [])]
        if missing:
            raise _err(p, 1, None, f"missing column(s) {', '.join(missing)} (a profile needs t_h, temp_c)")
        t, temp = [], []
        for i, row in enumerate(reader, start=2):
            t.append(_number(p, i, row, "t_h", True))
            temp.append(_number(p, i, row, "temp_c", True))
    try:
        physics.kinetic_integral(t, temp, 100.0)
    except ValueError as exc:
        raise _err(p, None, None, str(exc)) from None
    return np.asarray(t), np.asarray(temp)


def read_qc_csv(path: str | Path, scenario: Any | None = None, min_rows: int = 1) -> QcData:
    """Read and validate a QC file. Errors are one-line TwinErrors naming the file, line and column.

    Each row needs: lot_id, wait_h, rh_pct, an anneal (a `profile` file, the five recipe columns, or a `recipe`
    name defined in `scenario`), and at least one measured value (x_d, r_rel, r_int_ohm_cm2, rl_ppm).
    Optional: temp_c (buffer temperature; default the scenario's buffer temperature, else 25 °C).
    """
    path = Path(path)
    if not path.is_file():
        raise _err(path, None, None, "file not found")
    furnaces = getattr(scenario, "furnaces", None)
    start_c = float(getattr(furnaces, "start_c", 25.0))
    unload_c = float(getattr(furnaces, "unload_c", 80.0))
    buffer_temp_c = float(getattr(getattr(scenario, "buffer", None), "temp_c", 25.0))
    recipes = dict(getattr(scenario, "recipes", None) or {})
    r_ref = (scenario.quality_params() if scenario is not None else QualityParams()).r_ct0_ohm_cm2
    with io.StringIO(read_text(path), newline="") as fh:
        numbered = [
            (no, ln) for no, ln in enumerate(fh, start=1) if ln.strip() and not ln.lstrip().startswith("#")
        ]
    if not numbered:
        raise _err(path, 1, None, "empty file (expected a header line)")
    reader = csv.DictReader([ln for _, ln in numbered])
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in ("lot_id", "wait_h", "rh_pct") if c not in header]
    has_recipe_cols = all(c in header for c in RECIPE_COLUMNS)
    if not has_recipe_cols and "profile" not in header and "recipe" not in header:
        absent = [c for c in RECIPE_COLUMNS if c not in header]
        missing.append(f"{'/'.join(absent)} (or a profile or recipe column)")
    if not any(c in header for c in MEASURED):
        missing.append("one of " + "/".join(MEASURED))
    if missing:
        raise _err(path, numbered[0][0], None, f"missing column(s) {', '.join(missing)}")

    lots: list[QcLot] = []
    profiles: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}
    for row in reader:
        line = numbered[reader.line_num - 1][0]
        if None in row:
            raise _err(
                path, line, None, f"{len(header) + len(row[None])} fields, the header has {len(header)}"
            )
        lot_id = (row.get("lot_id") or "").strip()
        if not lot_id:
            raise _err(path, line, "lot_id", "empty value")
        wait_h = _number(path, line, row, "wait_h", True)
        if wait_h < 0:
            raise _err(path, line, "wait_h", f"must be >= 0, got {wait_h:g}")
        rh = _number(path, line, row, "rh_pct", True)
        if not 0 <= rh <= 100:
            raise _err(path, line, "rh_pct", f"must be within 0-100, got {rh:g}")
        temp_c = _number(path, line, row, "temp_c", False) if "temp_c" in header else math.nan
        temp_c = buffer_temp_c if math.isnan(temp_c) else temp_c

        profile_ref = (row.get("profile") or "").strip()
        recipe_name = (row.get("recipe") or "").strip()
        atmosphere = (row.get("atmosphere") or "").strip()
        if profile_ref:
            key: tuple[Any, ...] = ("profile", profile_ref)
            if key not in profiles:
                profiles[key] = _read_profile(path, profile_ref, line)
            if atmosphere not in ATMOSPHERES:
                raise _err(path, line, "atmosphere", f"{atmosphere!r} is not one of {', '.join(ATMOSPHERES)}")
        elif has_recipe_cols and (row.get("setpoint_c") or "").strip():
            vals = [_number(path, line, row, c, True) for c in RECIPE_COLUMNS[:4]]
            for c, v in zip(RECIPE_COLUMNS[:4], vals, strict=True):
                if v <= 0 and c != "soak_h" or v < 0:
                    raise _err(path, line, c, f"must be positive, got {v:g}")
            if atmosphere not in ATMOSPHERES:
                raise _err(path, line, "atmosphere", f"{atmosphere!r} is not one of {', '.join(ATMOSPHERES)}")
            key = ("recipe", *vals)
            if key not in profiles:
                profiles[key] = physics.recipe_profile(*vals, start_c=start_c, unload_c=unload_c)
        elif recipe_name:
            if recipe_name not in recipes:
                known = ", ".join(sorted(recipes)) or "none: pass --scenario"
                raise _err(
                    path, line, "recipe", f"unknown recipe {recipe_name!r} (scenario recipes: {known})"
                )
            r = recipes[recipe_name]
            vals = [r.setpoint_c, r.ramp_c_per_min, r.soak_h, r.cool_c_per_min]
            atmosphere = r.atmosphere
            key = ("recipe", *vals)
            if key not in profiles:
                profiles[key] = physics.recipe_profile(*vals, start_c=start_c, unload_c=unload_c)
        else:
            col = "setpoint_c" if has_recipe_cols else ("profile" if "profile" in header else "recipe")
            raise _err(path, line, col, "empty value (each lot needs its anneal recipe or profile)")

        measured = {c: _number(path, line, row, c, False) if c in header else math.nan for c in MEASURED}
        for c, v in measured.items():
            if v < 0 or (c == "r_rel" and v == 0) or (c == "r_int_ohm_cm2" and v == 0):
                raise _err(path, line, c, f"must be positive, got {v:g}")
        if not 0 <= measured["x_d"] <= 1 and not math.isnan(measured["x_d"]):
            raise _err(path, line, "x_d", f"densification must be within 0-1, got {measured['x_d']:g}")
        r_rel = measured["r_rel"]
        if math.isnan(r_rel) and math.isfinite(measured["r_int_ohm_cm2"]):
            r_rel = measured["r_int_ohm_cm2"] / r_ref
        if all(math.isnan(v) for v in (measured["x_d"], r_rel, measured["rl_ppm"])):
            raise _err(
                path, line, "/".join(c for c in MEASURED if c in header), "no measured value in this row"
            )
        lots.append(
            QcLot(
                line, lot_id, key, atmosphere, wait_h, rh, temp_c, measured["x_d"], r_rel, measured["rl_ppm"]
            )
        )
    if len(lots) < min_rows:
        raise _err(
            path,
            numbered[-1][0],
            None,
            f"too few rows: {len(lots)} lot(s), calibration needs at least {min_rows}",
        )
    return QcData(str(path), lots, profiles)


# ---------------------------------------------------------------------------------------------------------
# Fitting


@dataclass
class FitResult:
    """Fitted parameters with standard errors, the fragment to use them, and fit diagnostics."""

    names: list[str]
    start: dict[str, float]
    values: dict[str, float]
    std_errors: dict[str, float]
    ci95: dict[str, tuple[float, float]]
    t_ref_c: float
    k_ref_per_h: float
    k_ref_rel_se: float
    n_lots: int
    n_obs: dict[str, int]
    rms: dict[str, float]
    correlation: np.ndarray
    fixed_note: list[str] = field(default_factory=list)
    success: bool = True
    message: str = ""

    def fragment(self) -> dict[str, dict[str, float]]:
        """The scenario fragment `quality: {field: value}` with the fitted values (4 significant digits)."""
        return {"quality": {n: float(f"{self.values[n]:.4g}") for n in self.names}}


class _Problem:
    """Maps the conditioned parameter vector u to QualityParams and to weighted residuals.

    Each Arrhenius pair enters as (Ea / 100 kJ/mol, ln k(T_ref)) with k(T_ref) the rate at the data's median peak
    temperature: ln k(400 °C) and Ea are collinear when the data sit away from 400 °C, ln k(T_ref) and Ea are not.
    n_d and K_w enter as logarithms.
    """

    def __init__(self, data: QcData, base: QualityParams, material: str, cycles: int, names: Sequence[str]):
        self.data = data
        self.base = base
        self.material = material
        self.cycles = cycles
        self.names = list(names)
        peaks = [float(np.max(data.profiles[lot.profile_key][1])) for lot in data.lots]
        self.t_ref_k = float(np.median(peaks)) + 273.15
        self.shift = 1.0 / self.t_ref_k - 1.0 / T_REF_ANNEAL_K  # ln k(T_ref) = ln k(400 °C) - Ea/R * shift
        self.obs: list[tuple[str, np.ndarray, np.ndarray]] = []  # (kind, lot index, measured transformed)
        for kind, arr, tf in (
            ("x_d", np.array([lot.x_d for lot in data.lots]), lambda a: a),
            ("r", np.array([lot.r_rel for lot in data.lots]), np.log),
            ("rl", np.array([lot.rl_ppm for lot in data.lots]), np.log),
        ):
            idx = np.nonzero(np.isfinite(arr))[0]
            if idx.size:
                self.obs.append((kind, idx, tf(arr[idx])))
        self.sigma = {kind: _START_SIGMA[kind] for kind, _, _ in self.obs}
        self._others = {k: physics.anneal_dose(t, temp, base) for k, (t, temp) in data.profiles.items()}

    def _ea(self, name: str, d: dict[str, float]) -> float:
        return 100.0 * d[name] if name in d else float(getattr(self.base, name))

    # u <-> params
    def u0(self, p: QualityParams) -> np.ndarray:
        full = {"n_d": math.log(p.n_d), "k_w_ppm2_per_h": math.log(p.k_w_ppm2_per_h)}
        for ea, (k, _) in _ARRHENIUS.items():
            full[ea] = getattr(p, ea) / 100.0
            full[k] = math.log(getattr(p, k)) - getattr(p, ea) / R_KJ * self.shift
        return np.array([full[n] for n in self.names])

    def values(self, u: np.ndarray) -> dict[str, float]:
        d = dict(zip(self.names, u, strict=True))
        out = {}
        for n, v in d.items():
            if n in _ARRHENIUS:
                out[n] = 100.0 * v
            elif n in _RATE_EA:
                out[n] = math.exp(v + self._ea(_RATE_EA[n], d) / R_KJ * self.shift)
            else:
                out[n] = math.exp(v)
        return out

    def params(self, u: np.ndarray) -> QualityParams:
        return dataclasses.replace(self.base, **self.values(u))

    def predict(self, u: np.ndarray) -> dict[str, np.ndarray]:
        p = self.params(u)
        doses = {}
        for k, (t, temp) in self.data.profiles.items():
            redo = {
                dose: physics.equivalent_hours(t, temp, getattr(p, ea))
                for ea, (_, dose) in _ARRHENIUS.items()
            }
            doses[k] = dataclasses.replace(self._others[k], **redo)
        n = len(self.data.lots)
        xd, rr, rl = np.empty(n), np.empty(n), np.empty(n)
        for i, lot in enumerate(self.data.lots):
            state = physics.new_coating(self.material, self.cycles, p, 0.0)
            physics.wait(state, lot.wait_h, lot.rh_pct, lot.temp_c, p)
            physics.anneal(state, doses[lot.profile_key], lot.atmosphere, p)
            props = physics.properties(state, p)
            xd[i], rr[i], rl[i] = props.x_d, props.r_rel, props.rl_titration_ppm
        return {"x_d": xd, "r": np.log(rr), "rl": np.log(rl)}

    def residuals(self, u: np.ndarray) -> np.ndarray:
        pred = self.predict(u)
        parts = [(pred[kind][idx] - meas) / self.sigma[kind] for kind, idx, meas in self.obs]
        return np.concatenate(parts)


def fit(
    data: QcData,
    base: QualityParams | None = None,
    material: str = "HfO2",
    cycles: int = 10,
    names: Sequence[str] | None = None,
) -> FitResult:
    """Fit the kinetic parameters to the QC data by least squares; standard errors from cov = inv(JᵀJ)·s².

    Parameters without data are kept at their start values (densification needs x_d; the film's Li uptake needs
    r_rel or r_int_ohm_cm2; K_w needs rl_ppm, the titration value). Two stages: the second re-weights each kind of measurement by its residual scatter.
    """
    base = base or QualityParams()
    wanted = list(names or FIT_PARAMS)
    unknown = [n for n in wanted if n not in FIT_PARAMS]
    if unknown:
        raise TwinError(f"cannot fit {', '.join(unknown)}; fittable: {', '.join(FIT_PARAMS)}")
    notes = []
    if not data.has("x_d") and any(n in wanted for n in _DENS):
        notes.append("no x_d measured: Ea_d, k_d, n_d kept at their start values")
        wanted = [n for n in wanted if n not in _DENS]
    if not data.has("r_rel") and any(n in wanted for n in _UPTAKE):
        notes.append("no r_rel/r_int_ohm_cm2 measured: Ea_u, k_u kept at their start values")
        wanted = [n for n in wanted if n not in _UPTAKE]
    if not data.has("rl_ppm") and "k_w_ppm2_per_h" in wanted:
        notes.append("no rl_ppm measured: K_w kept at its start value")
        wanted.remove("k_w_ppm2_per_h")
    if not wanted:
        raise TwinError(f"{data.path}: nothing to fit (no usable measured column)")
    prob = _Problem(data, base, material, cycles, wanted)
    n_res = sum(idx.size for _, idx, _ in prob.obs)
    if n_res <= len(wanted):
        raise TwinError(
            f"{data.path}: too few measurements: {n_res} for {len(wanted)} parameters (need more than the "
            f"number of parameters)"
        )
    start = prob.u0(base)
    u = start
    res = None
    for _stage in range(2):
        res = optimize.least_squares(prob.residuals, u, method="trf", x_scale="jac", xtol=1e-12, ftol=1e-12)
        u = res.x
        r = res.fun
        offset = 0
        for kind, idx, _ in prob.obs:
            rk = r[offset : offset + idx.size] * prob.sigma[kind]
            offset += idx.size
            dof = max(idx.size - len(wanted) * idx.size / n_res, 1.0)
            prob.sigma[kind] = max(float(np.sqrt(np.sum(rk**2) / dof)), 1e-6)
    assert res is not None
    # final residuals and Jacobian with the re-estimated weights
    res = optimize.least_squares(prob.residuals, u, method="trf", x_scale="jac", xtol=1e-12, ftol=1e-12)
    u, jac, r = res.x, res.jac, res.fun
    dof = n_res - len(wanted)
    s2 = float(r @ r) / dof
    cov_u = np.linalg.pinv(jac.T @ jac) * s2
    values = prob.values(u)
    se, ci = _transform_errors(prob, u, cov_u, values, sps.t.ppf(0.975, dof))
    k_idx = wanted.index("k_d_per_h") if "k_d_per_h" in wanted else None
    k_ref = math.exp(u[k_idx]) if k_idx is not None else float("nan")
    k_ref_rel_se = math.sqrt(cov_u[k_idx, k_idx]) if k_idx is not None else float("nan")
    sd = np.sqrt(np.clip(np.diag(cov_u), 1e-300, None))
    corr = cov_u / np.outer(sd, sd)
    pred = prob.predict(u)
    rms, n_obs = {}, {}
    for kind, idx, meas in prob.obs:
        label = {"x_d": "x_d", "r": "r_rel (log)", "rl": "rl_ppm (log)"}[kind]
        rms[label] = float(np.sqrt(np.mean((pred[kind][idx] - meas) ** 2)))
        n_obs[label] = int(idx.size)
    start_vals = {n: float(getattr(base, n)) for n in wanted}
    return FitResult(
        wanted,
        start_vals,
        values,
        se,
        ci,
        prob.t_ref_k - 273.15,
        k_ref,
        k_ref_rel_se,
        len(data.lots),
        n_obs,
        rms,
        corr,
        notes,
        bool(res.success),
        str(res.message),
    )


def _transform_errors(
    prob: _Problem, u: np.ndarray, cov_u: np.ndarray, values: dict[str, float], t_q: float
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Standard errors in the physical parameters by the delta method; 95 % intervals on the fitted scale
    (log scale for rates, n_d, K_w, so the interval stays positive)."""
    names = prob.names
    # gradient of each natural-scale quantity (Ea, ln k(400 °C), ln n, ln K_w) with respect to u
    g = np.zeros((len(names), len(names)))
    for i, n in enumerate(names):
        if n in _ARRHENIUS:
            g[i, i] = 100.0
        else:
            g[i, i] = 1.0
            if n in _RATE_EA and _RATE_EA[n] in names:
                g[i, names.index(_RATE_EA[n])] = 100.0 / R_KJ * prob.shift
    cov = g @ cov_u @ g.T
    se, ci = {}, {}
    for i, n in enumerate(names):
        sd = math.sqrt(max(cov[i, i], 0.0))
        v = values[n]
        if n in _ARRHENIUS:
            se[n] = sd
            ci[n] = (v - t_q * sd, v + t_q * sd)
        else:  # sd is on the log scale
            se[n] = v * sd
            ci[n] = (v * math.exp(-t_q * sd), v * math.exp(t_q * sd))
    return se, ci


# ---------------------------------------------------------------------------------------------------------
# Entry point of the command


def calibrate(
    qc_csv: str | Path,
    scenario_path: str | Path | None = None,
    names: Sequence[str] | None = None,
) -> FitResult:
    """Read a QC file, fit the kinetic parameters starting from the scenario's quality parameters (or the
    defaults), and return the fit. Coating material and cycles come from the scenario (default HfO2, 10)."""
    scenario = None
    if scenario_path is not None:
        from twin.scenario import load_scenario

        scenario = load_scenario(scenario_path)
    base = scenario.quality_params() if scenario is not None else QualityParams()
    material = scenario.coating.material if scenario is not None else "HfO2"
    cycles = scenario.coating.cycles if scenario is not None else 10
    n_params = len(list(names or FIT_PARAMS))
    data = read_qc_csv(qc_csv, scenario, min_rows=n_params + 2)
    return fit(data, base, material, cycles, names)


def format_fit(result: FitResult) -> str:
    """The fit as a plain-text table (what `twin calibrate` prints)."""
    rows = [f"{'parameter':<16} {'start':>11} {'fitted':>11} {'std err':>10} {'rel':>6}  95 % interval"]
    for n in result.names:
        v, s = result.values[n], result.std_errors[n]
        lo, hi = result.ci95[n]
        rel = f"{100 * s / abs(v):.1f}%" if v else "-"
        rows.append(
            f"{n:<16} {result.start[n]:>11.4g} {v:>11.4g} {s:>10.3g} {rel:>6}  [{lo:.4g}, {hi:.4g}] {_UNITS[n]}"
        )
    out = [f"fitted {len(result.names)} parameter(s) to {result.n_lots} lots", *rows]
    if "k_d_per_h" in result.names:
        out.append(
            f"densification rate at {result.t_ref_c:.0f} °C (the data's median peak): {result.k_ref_per_h:.4g} 1/h "
            f"(± {100 * result.k_ref_rel_se:.1f} %)"
        )
    out.append(
        "residual RMS: " + ", ".join(f"{k} {v:.3g} (n={result.n_obs[k]})" for k, v in result.rms.items())
    )
    out.extend(f"note: {n}" for n in result.fixed_note)
    if not result.success:
        out.append(f"warning: the optimiser did not converge: {result.message}")
    return "\n".join(out)


def write_fragment(result: FitResult, path: str | Path, source: str = "") -> Path:
    """Write the scenario fragment (`quality:` overrides) with the standard errors as comments."""
    import yaml

    p = Path(path)
    head = [f"# Quality-model parameters fitted by `twin calibrate {source}`".rstrip()]
    head += [f"#   {n}: {result.values[n]:.4g} ± {result.std_errors[n]:.2g} (1 s.e.)" for n in result.names]
    head.append("# Merge this `quality:` section into a scenario file.")
    from twin.outputs import write_text_atomic

    return write_text_atomic(p, "\n".join(head) + "\n" + yaml.safe_dump(result.fragment(), sort_keys=False))
