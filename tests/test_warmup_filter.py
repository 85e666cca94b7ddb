"""Warm-up is stored with a run and applied when KPIs are computed, so it can change without re-running."""

from __future__ import annotations

import numpy as np
from conftest import run_twin
from linehelpers import scenario

from twin import api, stats
from twin.runner import simulate_replication


def test_kpis_recomputed_from_the_store_match_a_fresh_computation(tmp_path):
    sc = scenario(horizon_h=400.0, warmup_h=24.0)
    db = tmp_path / "w.duckdb"
    res = api.run_scenario(sc, replications=3, seed=5, db=db)
    stored = res.summary.to_pandas().set_index("kpi")
    # same warm-up: the stored tables give back the stored KPIs
    again = api.kpis_with_warmup(res.run_id, 24.0, db).to_pandas().set_index("kpi")
    for kpi in ("good_kg_per_h", "final_yield", "wait_mean_h", "wip_mean", "oee_F1", "bottleneck_share_F1"):
        assert np.isclose(again.loc[kpi, "mean"], stored.loc[kpi, "mean"], rtol=1e-9), kpi
    # another warm-up: equals the KPIs computed straight from the simulation with that warm-up
    later = api.kpis_with_warmup(res.run_id, 150.0, db).to_pandas().set_index("kpi")
    direct = []
    for r in range(3):
        rep = simulate_replication(sc, 5, r)
        k = stats.replication_kpis(rep.tables, 150.0, sc.horizon_h)
        k.update(stats.equipment_kpis(rep.tables, sc, 150.0))
        direct.append(k)
    expect = stats.summarize(direct).to_pandas().set_index("kpi")
    for kpi in ("good_kg_per_h", "lead_time_mean_h", "furnace_util", "oee_ALD1"):
        assert np.isclose(later.loc[kpi, "mean"], expect.loc[kpi, "mean"], rtol=1e-9), kpi
    assert not np.isclose(later.loc["wip_mean", "mean"], stored.loc["wip_mean", "mean"])


def test_runs_show_with_warmup_through_the_cli(tmp_path):
    sc_file = tmp_path / "s.yaml"
    sc_file.write_text("horizon_h: 200\nwarmup_h: 10\nreplications: 2\n")
    assert run_twin("run", str(sc_file), "--db", "x.duckdb", cwd=tmp_path).returncode == 0
    out = run_twin("runs", "show", "1", "--warmup", "50", "--db", "x.duckdb", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "recomputed with a warm-up of 50 h (stored with the run: 10 h)" in out.stdout
    bad = run_twin("runs", "show", "1", "--warmup", "500", "--db", "x.duckdb", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: --warmup must be in [0, 200)")
