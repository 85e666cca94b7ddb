"""MSER-5 on series with a known initial transient, Welch's moving average, and the binned warm-up suggestion."""

from __future__ import annotations

import numpy as np
import pytest

from twin.errors import TwinError
from twin.warmup import binned_series, mser, suggest_warmup_h, warmup_series, welch_curve, wip_steps


def transient_ar1(
    seed: int, n: int = 2000, a: float = 10.0, tau: float = 100.0, phi: float = 0.7, sd: float = 1.0
):
    """5 + a exp(-t/tau) + stationary AR(1) noise with marginal standard deviation `sd`."""
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, sd * np.sqrt(1 - phi**2), n)
    x = np.empty(n)
    x[0] = rng.normal(0.0, sd)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return 5.0 + a * np.exp(-np.arange(n) / tau) + x


@pytest.mark.parametrize("tau", [50.0, 100.0, 200.0])
def test_mser5_finds_the_end_of_an_exponential_transient(tau):
    # "known" truncation point: where the transient a exp(-t/tau) has decayed to the s.d. of a batch mean of the
    # noise (about 1 for batches of 5 AR(1) values with phi = 0.7 and marginal s.d. 1): tau ln(a / 1)
    known = tau * np.log(10.0 / 1.0)
    found = np.array([mser(transient_ar1(seed, tau=tau)).truncation_index for seed in range(12)])
    assert np.all(found % 5 == 0)
    # every seed: deletes at least half of it (remaining bias <= 3 s.d.) and at most two time constants more
    assert np.all((found >= 0.5 * known) & (found <= known + 2 * tau)), found
    assert abs(np.median(found) - known) <= 0.2 * known, found


def test_mser5_truncation_removes_the_bias_and_leaves_a_stationary_series_alone():
    for seed in range(8):
        y = transient_ar1(seed)
        d = mser(y).truncation_index
        # the untruncated mean is biased by about 10 * 100 / 2000 = 0.5; the truncated one is not
        assert y.mean() - 5.0 > 0.35
        assert abs(y[d:].mean() - 5.0) < 0.25
        flat = transient_ar1(seed, a=0.0)
        assert mser(flat).truncation_index <= 50  # <= 2.5 % of a stationary series deleted


def test_mser_statistic_matches_its_definition_and_searches_the_first_half():
    rng = np.random.default_rng(3)
    y = rng.normal(size=103)
    res = mser(y, batch=5)
    z = y[:100].reshape(20, 5).mean(axis=1)
    assert np.allclose(res.batch_means, z)
    assert res.statistic.size == 10
    for d in (0, 4, 9):
        tail = z[d:]
        assert res.statistic[d] == pytest.approx(((tail - tail.mean()) ** 2).sum() / tail.size**2)
    assert res.truncation_index == 5 * int(np.argmin(res.statistic))
    assert mser([10, 9, 8, 1, 1.1, 0.9, 1, 1.05, 0.95, 1], batch=1).truncation_index == 3
    with pytest.raises(TwinError, match="at least 20 observations"):
        mser(np.ones(19))


def test_welch_curve_averages_replications_then_a_centred_window():
    reps = [np.arange(10.0), np.arange(10.0) + 2.0, np.arange(12.0)]  # cut to 10, mean = i + 2/3
    x, ma = welch_curve(reps, window=2)
    ybar = np.arange(10.0) + 2.0 / 3.0
    assert x.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert ma[0] == pytest.approx(ybar[0])  # window [0, 0]
    assert ma[1] == pytest.approx(ybar[0:3].mean())  # window [0, 2]
    assert ma[5] == pytest.approx(ybar[3:8].mean())  # window [3, 7]
    with pytest.raises(TwinError, match="too wide"):
        welch_curve(reps, window=5)


def test_binned_series_points_and_time_weighted_steps():
    b = binned_series([0.5, 1.5, 1.6, 3.9], [1.0, 2.0, 4.0, 8.0], horizon_h=4.0, n_bins=4)
    assert b[0] == 1.0 and b[1] == 3.0 and np.isnan(b[2]) and b[3] == 8.0
    # WIP: lot A in [1, 3), lot B in [2, inf)
    t, v = wip_steps([1.0, 2.0], [3.0, np.nan])
    assert t.tolist() == [1.0, 2.0, 3.0] and v.tolist() == [1.0, 2.0, 1.0]
    s = binned_series(t, v, horizon_h=4.0, n_bins=2, kind="step")
    assert s.tolist() == pytest.approx([0.5, 1.5])  # [0,2): 1 h at 1 lot; [2,4): 1 h at 2 + 1 h at 1


def test_suggest_warmup_h_on_replicated_lot_series():
    # lots released by a Poisson process (2/h for 600 h) whose wait decays from 8 h to 2 h with time constant 40 h
    horizon_h, tau_h = 600.0, 40.0
    times, values = [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        t = np.sort(rng.uniform(0.0, horizon_h, rng.poisson(2 * horizon_h)))
        times.append(t)
        values.append(
            2.0 + 6.0 * np.exp(-t / tau_h) + rng.exponential(2.0, t.size) - 2.0 + rng.normal(0, 0.5, t.size)
        )
    ws = warmup_series(times, values, horizon_h)
    assert ws.bin_h == pytest.approx(horizon_h / 200)
    h = suggest_warmup_h(times, values, horizon_h)
    assert h == ws.warmup_h
    # a batch mean (5 bins of 3 h, ~6 lots each, 10 replications) has noise s.d. about 2.06 / sqrt(300) = 0.12,
    # so the transient reaches it at tau ln(6 / 0.12) = 156 h; same tolerance as above: [known / 2, known + 2 tau]
    known = tau_h * np.log(6.0 / 0.12)
    assert 0.5 * known <= h <= known + 2 * tau_h
    assert suggest_warmup_h(times, [np.full(t.size, 3.0) for t in times], horizon_h) == 0.0
    # one replication given as plain arrays works too
    assert suggest_warmup_h(times[0], values[0], horizon_h) > 20.0


# -- twin warmup on stored runs -------------------------------------------------------------------------------
TAU_H = 30.0


def _store_run(
    store, seed: int, study_id=None, horizon_h: float = 400.0, reps: int = 6, tau_h: float = TAU_H
) -> int:
    """A stored run whose lots' wait decays from 7 h to 1 h with time constant tau_h (lead time = 13 h + wait)."""
    import pyarrow as pa

    cols: dict[str, list] = {c: [] for c in ("replication", "lot_id", "release_h", "wait_h", "anneal_start_h",
                                              "done_h", "status", "mass_kg")}  # fmt: skip
    for rep in range(reps):
        rng = np.random.default_rng([seed, rep])
        t = np.sort(rng.uniform(0.0, horizon_h, rng.poisson(2 * horizon_h)))
        wait = 1.0 + 6.0 * np.exp(-t / tau_h) + rng.exponential(1.0, t.size) - 1.0
        start = t + 3.0 + wait
        done = start + 10.0
        late = done > horizon_h
        cols["replication"] += [rep] * t.size
        cols["lot_id"] += list(range(t.size))
        cols["release_h"] += t.tolist()
        cols["wait_h"] += np.where(start > horizon_h, np.nan, wait).tolist()
        cols["anneal_start_h"] += np.where(start > horizon_h, np.nan, start).tolist()
        cols["done_h"] += np.where(late, np.nan, done).tolist()
        cols["status"] += np.where(late, "wip", "good").tolist()
        cols["mass_kg"] += [100.0] * t.size
    run = {"study_id": study_id, "scenario_name": f"synthetic{seed}", "seed": seed, "replications": reps,
           "horizon_h": horizon_h, "warmup_h": 24.0, "status": "done"}  # fmt: skip
    kpis = pa.table({"replication": [0], "kpi": ["good_kg_per_h"], "value": [1.0]})
    summary = pa.table({"kpi": ["good_kg_per_h"], "unit": ["kg/h"], "n": [1], "mean": [1.0]})
    return store.write_run(run, {"lots": pa.table(cols)}, kpis, summary)


@pytest.fixture
def warmup_db(tmp_path):
    from twin.store import open_store

    db = tmp_path / "w.duckdb"
    with open_store(db) as store:
        _store_run(store, 1)
        sid = store.create_study("synth", "{}", "h")
        _store_run(store, 2, study_id=sid)
        _store_run(store, 3, study_id=sid, tau_h=60.0)
        store.finish_study(sid)
    return db


def _cli(*args: str):
    from typer.testing import CliRunner

    from twin.cli import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})


def test_analyze_runs_finds_the_transient_of_stored_lots(warmup_db):
    from twin.store import open_store
    from twin.warmup import analyze_runs

    with open_store(warmup_db, read_only=True) as store:
        res = analyze_runs(store, "1", ["wait", "wip", "lead_time"])
        study = analyze_runs(store, "study:1", ["wait"])
        by_name = analyze_runs(store, "synth", ["wait"])
    wait, wip, lead = res
    assert (wait.run_id, wait.replications, wait.stored_warmup_h) == (1, 6, 24.0)
    # wait series ends at horizon - p95(release -> anneal start) ~ 400 - 7 h; ~800 lots -> 200 bins
    assert 390.0 < wait.series.averaged.size * wait.series.bin_h < 397.0
    # batch-mean noise: s.d. 1 per lot, ~20 lots per batch of 5 bins x 6 replications -> 1 / sqrt(120) = 0.09;
    # the transient 6 exp(-t / 30) reaches it at 30 ln(6 / 0.09) = 126 h; tolerance [known / 2, known + 2 tau]
    known = TAU_H * np.log(6.0 / 0.09)
    assert 0.5 * known <= wait.warmup_h <= known + 2 * TAU_H
    assert 0.5 * known <= lead.warmup_h <= known + 2 * TAU_H  # lead time = 13 h + wait
    # WIP fills within about one lead time (13-20 h) and then still falls with the wait (~2 lots per extra hour)
    assert 10.0 <= wip.warmup_h <= known + 2 * TAU_H
    assert [r.run_id for r in study] == [2, 3] == [r.run_id for r in by_name]
    assert study[1].warmup_h > study[0].warmup_h  # tau 60 h vs 30 h


def test_twin_warmup_prints_the_suggestion_and_writes_the_welch_plot(warmup_db, tmp_path):
    from twin.store import open_store
    from twin.warmup import analyze_runs

    svg = tmp_path / "welch.svg"
    r = _cli("warmup", "study:1", "--db", str(warmup_db), "--plot", str(svg))
    assert r.exit_code == 0, r.output
    with open_store(warmup_db, read_only=True) as store:
        expected = max(x.warmup_h for x in analyze_runs(store, "study:1"))
    assert f"suggested warm-up: {int(np.ceil(expected))} h" in r.output
    assert "stored: 24 h" in r.output and "synthetic3" in r.output
    text = svg.read_text()
    assert text.startswith("<?xml") and "<svg" in text and len(text) > 10_000


def test_twin_warmup_errors_are_one_line(warmup_db, tmp_path):
    cases = [
        (["warmup", "9", "--db", str(warmup_db)], "unknown run id 9"),
        (["warmup", "study:7", "--db", str(warmup_db)], "no study with id 7"),
        (["warmup", "nosuch", "--db", str(warmup_db)], "'nosuch' is neither a run id nor a study"),
        (["warmup", "1", "--kpi", "foo", "--db", str(warmup_db)], "unknown warm-up KPI 'foo'"),
        (["warmup", "1", "--db", str(tmp_path / "none.duckdb")], "not found"),
        (["warmup", "1", "--plot", "x.txt", "--db", str(warmup_db)], "--plot x.txt"),
        (["warmup", "1", "--bins", "10", "--db", str(warmup_db)], "--bins must be at least 20"),
    ]
    for args, msg in cases:
        r = _cli(*args)
        assert r.exit_code == 2, (args, r.output)
        assert msg in r.output and "Traceback" not in r.output, r.output


def test_twin_warmup_on_a_run_without_lots(tmp_path):
    import pyarrow as pa

    from twin.store import open_store

    db = tmp_path / "e.duckdb"
    with open_store(db) as store:
        run = {"scenario_name": "empty", "seed": 1, "replications": 1, "horizon_h": 10.0, "warmup_h": 0.0}
        kpis = pa.table({"replication": [0], "kpi": ["x"], "value": [1.0]})
        store.write_run(run, {}, kpis, pa.table({"kpi": ["x"], "mean": [1.0]}))
    r = _cli("warmup", "1", "--db", str(db))
    assert r.exit_code == 2 and "run 1 (empty) has no lots to analyse" in r.output
