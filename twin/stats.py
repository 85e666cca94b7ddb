"""KPIs of one replication from its trace tables, and means with Student-t confidence intervals over replications.

Warm-up rule: lot-based KPIs use the lots released at or after `warmup_h`; time-based KPIs (output per hour,
utilisation, WIP, consumption) use the window [warmup_h, horizon_h], with intervals clipped to it.
Paired comparisons and rankings of strategies belong to the study code, not here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class KpiDef:
    name: str
    unit: str
    basis: str  # "lot" (lots released in the window) or "time" (the window [warmup_h, horizon_h])
    description: str


KPI_DEFINITIONS: tuple[KpiDef, ...] = (
    KpiDef(
        "good_kg_per_h", "kg/h", "time", "mass of good lots that left the line in the window / window hours"
    ),
    KpiDef("good_lots_per_day", "lots/d", "time", "good lots that left the line in the window per 24 h"),
    KpiDef("first_pass_yield", "fraction", "lot", "finished lots that passed their first QC / finished lots"),
    KpiDef("final_yield", "fraction", "lot", "good lots / finished (good + scrap) lots"),
    KpiDef("scrap_rate", "fraction", "lot", "scrapped lots / finished lots"),
    KpiDef("lead_time_mean_h", "h", "lot", "mean of done_h - release_h over finished lots"),
    KpiDef("lead_time_p95_h", "h", "lot", "95th percentile (linear) of the lead time of finished lots"),
    KpiDef(
        "wait_mean_h",
        "h",
        "lot",
        "mean wait between ALD end and first anneal start (lots that reached anneal)",
    ),
    KpiDef("wait_p95_h", "h", "lot", "95th percentile (linear) of that wait"),
    KpiDef(
        "reactor_util",
        "fraction",
        "time",
        "ALD busy hours (ald_start_h..ald_end_h) / (reactors x window hours)",
    ),
    KpiDef(
        "furnace_util",
        "fraction",
        "time",
        "furnace occupied hours (load_start_h..end_h) / (furnaces x window)",
    ),
    KpiDef(
        "furnace_fill",
        "fraction",
        "time",
        "mean of n_lots / capacity_lots over batches started in the window",
    ),
    KpiDef("setups", "count", "time", "batches started in the window that needed a setup (setup_h > 0)"),
    KpiDef("energy_kwh_per_good_kg", "kWh/kg", "time", "energy of batches started in the window / good kg"),
    KpiDef("o2_nm3_per_good_kg", "Nm3/kg", "time", "O2 of batches started in the window / good kg"),
    KpiDef(
        "precursor_mol_per_good_kg",
        "mol/kg",
        "time",
        "precursor of lots whose ALD started in the window / good kg",
    ),
    KpiDef(
        "wip_mean", "lots", "time", "time-average number of lots between release and done_h over the window"
    ),
    KpiDef("r_int_good_mean", "ohm cm2", "lot", "mean interfacial resistance of good lots"),
    KpiDef("rate_capability_good_mean", "fraction", "lot", "mean Q(high C)/Q(0.1 C) of good lots"),
    KpiDef("d_li_good_mean", "cm2/s", "lot", "mean effective Li diffusivity through the film of good lots"),
    KpiDef("bonding_good_mean", "0-1", "lot", "mean bonding strength of good lots"),
    KpiDef("ret100_good_mean", "fraction", "lot", "mean 100-cycle capacity retention of good lots"),
)
"""Every KPI; besides these, `scrap_rate_<reason>` (scrapped lots with that reason / finished lots) per reason."""

SCRAP_PREFIX = "scrap_rate_"
_UNITS = {d.name: d.unit for d in KPI_DEFINITIONS}


EQUIPMENT_PREFIXES = ("oee_", "bottleneck_share_")
"""Per-unit KPIs: `oee_<unit>` (availability x performance x quality) and `bottleneck_share_<unit>` (share of the
window during which the unit is the momentary bottleneck), for each ALD reactor and furnace; `oee_qc` and
`bottleneck_share_qc` for the QC stations together; `oee_ald_mean` and `oee_furnace_mean` (see twin/oee.py)."""


def kpi_unit(name: str) -> str:
    """The unit of a KPI name (including the dynamic `scrap_rate_<reason>` and per-unit ones)."""
    if name in _UNITS:
        return _UNITS[name]
    if name.startswith(SCRAP_PREFIX) or name.startswith(EQUIPMENT_PREFIXES):
        return "fraction"
    return ""


def equipment_kpis(
    tables: Mapping[str, pa.Table], scenario: Any, warmup_h: float | None = None
) -> dict[str, float]:
    """OEE and bottleneck share per ALD reactor and furnace, QC stations pooled, from the `states` table."""
    from twin.oee import unit_oee

    o = unit_oee(dict(tables), scenario, warmup_h)
    k: dict[str, float] = {}
    by_kind: dict[str, list[float]] = {}
    qc_share = 0.0
    for unit, kind, oee, share in zip(
        o["unit"].to_pylist(), o["kind"].to_pylist(), o["oee"].to_pylist(), o["bottleneck_share"].to_pylist()
    ):
        by_kind.setdefault(kind, []).append(oee)
        if kind == "qc":
            qc_share += share
        else:
            k[f"oee_{unit}"] = oee
            k[f"bottleneck_share_{unit}"] = share
    for kind in ("ald", "furnace"):
        if by_kind.get(kind):
            k[f"oee_{kind}_mean"] = float(np.nanmean(by_kind[kind]))
    if by_kind.get("qc"):
        k["oee_qc"] = float(np.nanmean(by_kind["qc"]))
        k["bottleneck_share_qc"] = qc_share
    return k


def reason_slug(reason: object) -> str:
    text = str(reason).strip().lower() if reason is not None else ""
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_") or "unknown"


def _num(tbl: pa.Table, name: str) -> np.ndarray:
    col = tbl.column(name)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=float)


def _str(tbl: pa.Table, name: str) -> np.ndarray:
    return np.asarray(tbl.column(name).to_numpy(zero_copy_only=False), dtype=object)


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


def _mean(a: np.ndarray) -> float:
    return float(np.mean(a)) if a.size else float("nan")


def _p95(a: np.ndarray) -> float:
    return float(np.percentile(a, 95)) if a.size else float("nan")


def _overlap_h(start: np.ndarray, end: np.ndarray, lo: float, hi: float) -> float:
    """Total hours of the intervals [start, end] (end NaN = still open at hi) inside [lo, hi]."""
    ok = ~np.isnan(start)
    s = np.clip(start[ok], lo, hi)
    e = np.clip(np.where(np.isnan(end[ok]), hi, end[ok]), lo, hi)
    return float(np.sum(np.maximum(e - s, 0.0)))


def replication_kpis(tables: Mapping[str, pa.Table], warmup_h: float, horizon_h: float) -> dict[str, float]:
    """Every KPI of one replication from its `lots`, `batches` and `units` tables (vectorised)."""
    w, h = float(warmup_h), float(horizon_h)
    window_h = h - w
    if window_h <= 0:
        raise ValueError(f"warm-up {w} h must be shorter than the horizon {h} h")
    lots, batches, units = tables["lots"], tables["batches"], tables["units"]
    k: dict[str, float] = {}

    release = _num(lots, "release_h")
    done = _num(lots, "done_h")
    mass = _num(lots, "mass_kg")
    status = _str(lots, "status")
    good = status == "good"
    good_in_window = good & (done >= w) & (done <= h)
    good_kg = float(mass[good_in_window].sum())
    k["good_kg_per_h"] = good_kg / window_h
    k["good_lots_per_day"] = float(good_in_window.sum()) * 24.0 / window_h

    cohort = release >= w
    finished = cohort & ((status == "good") | (status == "scrap"))
    n_finished = int(finished.sum())
    first_pass = np.asarray(lots.column("first_pass").to_numpy(zero_copy_only=False), dtype=object)
    k["first_pass_yield"] = _ratio(np.sum(first_pass[finished] == True), n_finished)  # noqa: E712
    k["final_yield"] = _ratio(np.sum(good & finished), n_finished)
    scrap = finished & (status == "scrap")
    k["scrap_rate"] = _ratio(scrap.sum(), n_finished)
    lead = (done - release)[finished]
    k["lead_time_mean_h"] = _mean(lead)
    k["lead_time_p95_h"] = _p95(lead)
    wait = _num(lots, "wait_h")
    wait = wait[cohort & ~np.isnan(wait)]
    k["wait_mean_h"] = _mean(wait)
    k["wait_p95_h"] = _p95(wait)

    kind = _str(units, "kind")
    n_reactors = int(np.sum(kind == "ald"))
    n_furnaces = int(np.sum(kind == "furnace"))
    ald_busy = _overlap_h(_num(lots, "ald_start_h"), _num(lots, "ald_end_h"), w, h)
    k["reactor_util"] = _ratio(ald_busy, n_reactors * window_h)
    furnace_busy = _overlap_h(_num(batches, "load_start_h"), _num(batches, "end_h"), w, h)
    k["furnace_util"] = _ratio(furnace_busy, n_furnaces * window_h)

    b_start = _num(batches, "start_h")
    b_in = (b_start >= w) & (b_start <= h)
    fill = _num(batches, "n_lots")[b_in] / _num(batches, "capacity_lots")[b_in]
    k["furnace_fill"] = _mean(fill)
    k["setups"] = float(np.sum(_num(batches, "setup_h")[b_in] > 0))
    k["energy_kwh_per_good_kg"] = _ratio(_num(batches, "energy_kwh")[b_in].sum(), good_kg)
    k["o2_nm3_per_good_kg"] = _ratio(_num(batches, "o2_nm3")[b_in].sum(), good_kg)
    ald_start = _num(lots, "ald_start_h")
    ald_in = (ald_start >= w) & (ald_start <= h)
    k["precursor_mol_per_good_kg"] = _ratio(np.nansum(_num(lots, "precursor_mol")[ald_in]), good_kg)
    k["wip_mean"] = _overlap_h(release, done, w, h) / window_h

    good_cohort = good & cohort
    k["r_int_good_mean"] = _mean(_num(lots, "r_int_ohm_cm2")[good_cohort])
    k["rate_capability_good_mean"] = _mean(_num(lots, "rate_capability")[good_cohort])
    k["d_li_good_mean"] = _mean(_num(lots, "d_li_cm2_s")[good_cohort])
    k["bonding_good_mean"] = _mean(_num(lots, "bonding")[good_cohort])
    k["ret100_good_mean"] = _mean(_num(lots, "ret100")[good_cohort])

    if n_finished:
        reasons = np.array([reason_slug(r) for r in _str(lots, "reason")[scrap]], dtype=object)
        for r in sorted(set(reasons.tolist())):
            k[SCRAP_PREFIX + r] = float(np.sum(reasons == r)) / n_finished
    return k


def complete_kpis(per_replication: Sequence[Mapping[str, float]]) -> list[dict[str, float]]:
    """Give every replication the same KPI names: a scrap cause absent from a replication counts 0 there
    (NaN if it finished no lots); names ordered as KPI_DEFINITIONS, then scrap causes alphabetically."""
    names = [d.name for d in KPI_DEFINITIONS]
    extra = sorted({n for k in per_replication for n in k} - set(names))
    out = []
    for k in per_replication:
        row: dict[str, float] = {}
        for n in names + extra:
            if n in k:
                row[n] = float(k[n])
            elif n.startswith(SCRAP_PREFIX):
                row[n] = 0.0 if np.isfinite(k.get("scrap_rate", np.nan)) else float("nan")
            else:
                row[n] = float("nan")
        out.append(row)
    return out


def t_ppf(q: float, df: Any) -> Any:
    """Student-t quantile function, as scipy.stats.t.ppf(q, df) (the same special function, bit for bit), without
    importing scipy.stats: that import costs more than a second, paid by every `twin run` that summarises."""
    from scipy.special import stdtrit

    return stdtrit(df, q)


def mean_ci(values: np.ndarray | Sequence[float], confidence: float = 0.95, axis: int = -1):
    """Mean, half-width of the Student-t confidence interval and count, ignoring NaN, along `axis`.

    Returns (mean, half_width, n) as floats for 1-D input, arrays otherwise; half-width is NaN when n < 2.
    """
    a = np.asarray(values, dtype=float)
    n = np.sum(~np.isnan(a), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(a, axis=axis) / n
        dev = np.where(np.isnan(a), 0.0, a - np.expand_dims(mean, axis))
        var = np.sum(dev**2, axis=axis) / (n - 1)
        tq = t_ppf(0.5 + confidence / 2.0, np.maximum(n - 1, 1))
        half = np.where(n >= 2, tq * np.sqrt(var / n), np.nan)
        mean = np.where(n >= 1, mean, np.nan)
    if a.ndim == 1:
        return float(mean), float(half), int(n)
    return mean, half, n


def summarize(per_replication: Sequence[Mapping[str, float]], confidence: float = 0.95) -> pa.Table:
    """One row per KPI: kpi, unit, n, mean, std, ci_low, ci_high (Student t over replications)."""
    rows = complete_kpis(per_replication)
    names = list(rows[0]) if rows else []
    matrix = np.array([[r[n] for r in rows] for n in names], dtype=float).reshape(len(names), len(rows))
    mean, half, n = mean_ci(matrix, confidence, axis=1) if names else (np.array([]),) * 3
    with np.errstate(invalid="ignore"):
        std = np.array([np.nanstd(m, ddof=1) if np.sum(~np.isnan(m)) > 1 else np.nan for m in matrix])
    return pa.table(
        {
            "kpi": pa.array(names, pa.string()),
            "unit": pa.array([kpi_unit(x) for x in names], pa.string()),
            "n": pa.array(np.asarray(n, dtype=np.int32), pa.int32()),
            "mean": pa.array(np.asarray(mean, dtype=float), pa.float64()),
            "std": pa.array(std, pa.float64()),
            "ci_low": pa.array(np.asarray(mean - half, dtype=float), pa.float64()),
            "ci_high": pa.array(np.asarray(mean + half, dtype=float), pa.float64()),
        }
    )


def kpis_long(per_replication: Sequence[Mapping[str, float]], replications: Sequence[int]) -> pa.Table:
    """The long KPI table (replication, kpi, value) that goes into the `kpis` table."""
    rows = complete_kpis(per_replication)
    reps, names, values = [], [], []
    for r, k in zip(replications, rows, strict=True):
        for n, v in k.items():
            reps.append(r)
            names.append(n)
            values.append(v)
    return pa.table(
        {
            "replication": pa.array(reps, pa.int32()),
            "kpi": pa.array(names, pa.string()),
            "value": pa.array(values, pa.float64()),
        }
    )
