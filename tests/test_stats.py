"""KPIs of a replication, completion of scrap causes, and Student-t intervals (with an M/M/1 coverage check)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import simpy
from conftest import synthetic_trace

from twin import stats


def test_every_documented_kpi_is_computed_with_plausible_values():
    k = stats.replication_kpis(synthetic_trace(1), warmup_h=20.0, horizon_h=200.0)
    for d in stats.KPI_DEFINITIONS:
        assert d.name in k and math.isfinite(k[d.name]), d.name
    for name in (
        "first_pass_yield",
        "final_yield",
        "scrap_rate",
        "reactor_util",
        "furnace_util",
        "furnace_fill",
    ):
        assert 0.0 <= k[name] <= 1.0, name
    assert k["final_yield"] + k["scrap_rate"] == pytest.approx(1.0)
    causes = {n: v for n, v in k.items() if n.startswith("scrap_rate_")}
    assert set(causes) <= {"scrap_rate_residual_li", "scrap_rate_damage", "scrap_rate_under_dense"}
    assert sum(causes.values()) == pytest.approx(k["scrap_rate"])
    assert k["lead_time_p95_h"] >= k["lead_time_mean_h"] > 0


def test_time_window_clips_intervals_and_lot_cohort_uses_release():
    # one reactor busy 5..15 h, window 10..20 h -> 5 busy hours of 10 -> 0.5
    lots = synthetic_trace(2)["lots"].slice(0, 2)
    lots = lots.set_column(lots.schema.get_field_index("ald_start_h"), "ald_start_h", pa.array([5.0, 30.0]))
    lots = lots.set_column(
        lots.schema.get_field_index("ald_end_h"), "ald_end_h", pa.array([15.0, float("nan")])
    )
    lots = lots.set_column(lots.schema.get_field_index("release_h"), "release_h", pa.array([4.0, 12.0]))
    lots = lots.set_column(lots.schema.get_field_index("done_h"), "done_h", pa.array([18.0, float("nan")]))
    lots = lots.set_column(lots.schema.get_field_index("status"), "status", pa.array(["good", "wip"]))
    lots = lots.set_column(lots.schema.get_field_index("wait_h"), "wait_h", pa.array([1.0, 3.0]))
    tr = synthetic_trace(2)
    units = tr["units"].filter(pa.compute.equal(tr["units"]["kind"], "ald")).slice(0, 1)
    k = stats.replication_kpis(
        {"lots": lots, "batches": tr["batches"].slice(0, 0), "units": units, "events": tr["events"]},
        10.0,
        20.0,
    )
    assert k["reactor_util"] == pytest.approx(0.5)
    # WIP: lot 0 in system 10..18 (8 h), lot 1 12..20 (8 h) -> 16/10
    assert k["wip_mean"] == pytest.approx(1.6)
    # lot-based: only lot 1 (released 12 >= 10) counts for waits; it is WIP, so no finished lots
    assert k["wait_mean_h"] == pytest.approx(3.0)
    assert math.isnan(k["final_yield"])
    # output: lot 0 finished at 18 inside the window
    assert k["good_lots_per_day"] == pytest.approx(24.0 / 10.0)


def test_complete_kpis_fills_absent_scrap_causes_with_zero():
    rows = stats.complete_kpis([{"scrap_rate": 0.1, "scrap_rate_damage": 0.1}, {"scrap_rate": 0.0}])
    assert rows[1]["scrap_rate_damage"] == 0.0
    assert math.isnan(rows[1]["good_kg_per_h"])
    assert list(rows[0])[: len(stats.KPI_DEFINITIONS)] == [d.name for d in stats.KPI_DEFINITIONS]


def test_t_quantile_is_scipy_stats_without_importing_it():
    from scipy import stats as sps

    for df in (1, 2, 4, 9, 29, 120):
        for q in (0.9, 0.95, 0.975, 0.995):
            assert stats.t_ppf(q, df) == sps.t.ppf(q, df)
    assert list(stats.t_ppf(0.975, np.array([1, 4]))) == list(sps.t.ppf(0.975, np.array([1, 4])))


def test_mean_ci_matches_textbook_formula():
    x = np.array([3.0, 5.0, 4.0, 6.0, 2.0])
    mean, half, n = stats.mean_ci(x)
    assert n == 5 and mean == pytest.approx(4.0)
    # t(0.975, 4) = 2.776445, s = sqrt(2.5)
    assert half == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    mean, half, n = stats.mean_ci([1.0, float("nan")])
    assert n == 1 and mean == 1.0 and math.isnan(half)


def test_summarize_table_columns_and_interval():
    s = stats.summarize([{"final_yield": 0.8}, {"final_yield": 0.9}, {"final_yield": 1.0}]).to_pylist()
    row = next(r for r in s if r["kpi"] == "final_yield")
    assert row["n"] == 3 and row["mean"] == pytest.approx(0.9) and row["unit"] == "fraction"
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert row["ci_low"] == pytest.approx(0.9 - half, rel=1e-6)
    assert row["ci_high"] == pytest.approx(0.9 + half, rel=1e-6)


# -- M/M/1: coverage of the 95 % interval of the mean wait ------------------------------------------------

LAM, MU = 0.5, 1.0  # rho = 0.5
WQ = LAM / (MU * (MU - LAM))  # theoretical mean wait in queue: 1.0 h


def _mm1_waits(rng: np.random.Generator, reps: int, customers: int) -> np.ndarray:
    """Waits of `customers` successive customers in `reps` independent M/M/1 queues (Lindley recursion,
    vectorised over replications), each started in steady state so the waits are unbiased for Wq."""
    busy = rng.random(reps) < LAM / MU
    w = np.where(busy, rng.exponential(1.0 / (MU - LAM), reps), 0.0)
    out = np.empty((reps, customers))
    for i in range(customers):
        out[:, i] = w
        w = np.maximum(0.0, w + rng.exponential(1.0 / MU, reps) - rng.exponential(1.0 / LAM, reps))
    return out


def test_mm1_simpy_wait_kpi_agrees_with_theory():
    """A tiny SimPy M/M/1 recorded as a lots table: the wait_mean_h KPI over 200 replications brackets Wq."""

    def one(seed: int, horizon_h: float = 400.0) -> dict[str, float]:
        rng = np.random.default_rng(seed)
        env = simpy.Environment()
        server = simpy.Resource(env, 1)
        rel, wait = [], []

        def customer(t0):
            with server.request() as req:
                yield req
                rel.append(t0)
                wait.append(env.now - t0)
                yield env.timeout(rng.exponential(1.0 / MU))

        def source():
            while True:
                yield env.timeout(rng.exponential(1.0 / LAM))
                env.process(customer(env.now))

        env.process(source())
        env.run(until=horizon_h)
        n = len(rel)
        cols = {c: pa.array([float("nan")] * n) for c in ("done_h", "ald_start_h", "ald_end_h", "mass_kg")}
        cols.update(release_h=pa.array(rel), wait_h=pa.array(wait), status=pa.array(["wip"] * n))
        cols.update(first_pass=pa.array([False] * n), reason=pa.array([""] * n))
        for q in ("r_int_ohm_cm2", "rate_capability", "d_li_cm2_s", "bonding", "ret100", "precursor_mol"):
            cols[q] = pa.array([float("nan")] * n)
        tables = {
            "lots": pa.table(cols),
            "batches": synthetic_trace(0)["batches"].slice(0, 0),
            "units": synthetic_trace(0)["units"],
        }
        return stats.replication_kpis(tables, warmup_h=50.0, horizon_h=horizon_h)

    per_rep = [one(s) for s in range(200)]
    row = next(r for r in stats.summarize(per_rep).to_pylist() if r["kpi"] == "wait_mean_h")
    assert row["n"] == 200
    assert row["ci_low"] < WQ < row["ci_high"]  # warm-up 50 h removes the empty-start bias at rho = 0.5
    assert row["ci_high"] - row["ci_low"] < 0.2


def test_mm1_confidence_interval_coverage_is_about_95_percent():
    """200 batches of 200 replications each: the 95 % interval of the mean wait covers Wq in ~95 % of batches."""
    rng = np.random.default_rng(20240601)
    batches, reps, customers = 200, 200, 100
    waits = _mm1_waits(rng, batches * reps, customers)
    rep_means = waits.mean(axis=1).reshape(batches, reps)
    mean, half, n = stats.mean_ci(rep_means, axis=1)
    assert np.all(n == reps)
    coverage = float(np.mean(np.abs(mean - WQ) <= half))
    # binomial(200, 0.95): sd 0.015 -> a 3-sd band
    assert 0.905 <= coverage <= 0.995, coverage
    # and a 50 % interval must cover about half as often (the t quantile really is used)
    _, half50, _ = stats.mean_ci(rep_means, confidence=0.5, axis=1)
    coverage50 = float(np.mean(np.abs(mean - WQ) <= half50))
    assert 0.40 <= coverage50 <= 0.60, coverage50
