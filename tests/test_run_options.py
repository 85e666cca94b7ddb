"""`twin run --precision/--kpi` (replications by precision) and `--profile` through the real CLI."""

from __future__ import annotations

import pstats

import duckdb
from conftest import run_twin

from twin.precision import half_width, relative_half_width

SCENARIO = "horizon_h: 300\nwarmup_h: 24\nreplications: 3\n"


def test_precision_stops_at_the_first_replication_count_that_meets_the_target(tmp_path):
    (tmp_path / "s.yaml").write_text(SCENARIO)
    out = run_twin("run", "s.yaml", "--precision", "0.03", "--kpi", "good_kg_per_h", "--max-replications", "60",
                   "--db", "p.duckdb", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "precision on good_kg_per_h" in out.stdout and "reached" in out.stdout
    con = duckdb.connect(str(tmp_path / "p.duckdb"), read_only=True)
    n = con.execute("SELECT replications FROM runs").fetchone()[0]
    values = [r[0] for r in con.execute(
        "SELECT value FROM kpis WHERE kpi = 'good_kg_per_h' ORDER BY replication").fetchall()]  # fmt: skip
    assert len(values) == n and 5 <= n < 60
    mean, hw = half_width(values)
    assert relative_half_width(mean, hw) <= 0.03
    if n > 5:  # it did not stop later than needed
        mean, hw = half_width(values[:-1])
        assert relative_half_width(mean, hw) > 0.03


def test_unknown_kpi_and_bad_precision_are_one_line_errors(tmp_path):
    (tmp_path / "s.yaml").write_text(SCENARIO)
    out = run_twin("run", "s.yaml", "--precision", "0.02", "--kpi", "nope", "--db", "p.duckdb", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith("error: --kpi 'nope' is not a KPI")
    out = run_twin("run", "s.yaml", "--precision", "2", "--db", "p.duckdb", cwd=tmp_path)
    assert out.returncode == 2 and "--precision must be a fraction" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_profile_writes_a_cprofile_file(tmp_path):
    (tmp_path / "s.yaml").write_text(SCENARIO)
    out = run_twin("run", "s.yaml", "--profile", "run.prof", "--db", "p.duckdb", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    stats = pstats.Stats(str(tmp_path / "run.prof"))
    names = {func[2] for func in stats.stats}
    assert "simulate_replication" in names and "run" in names
    bad = run_twin("run", "s.yaml", "--profile", str(tmp_path / "nodir" / "x.prof"), cwd=tmp_path)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
