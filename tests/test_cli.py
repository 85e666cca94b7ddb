"""The `twin` CLI end to end: run -> sql/runs/export through Typer's runner, user errors and atomicity through
real subprocesses (one line, non-zero exit, never a traceback; a killed run leaves no rows)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import REPO, SMALL_SCENARIO, TWIN, run_twin
from typer.testing import CliRunner

from twin import schema
from twin.cli import app

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def db_with_run(small_scenario, tmp_path) -> Path:
    db = tmp_path / "h.duckdb"
    r = invoke("run", str(small_scenario), "--replications", "2", "--db", str(db))
    assert r.exit_code == 0, r.stderr
    return db


def test_run_then_find_its_rows_with_sql(small_scenario, tmp_path):
    db = tmp_path / "h.duckdb"
    r = invoke(
        "run",
        str(small_scenario),
        "-n",
        "3",
        "--seed",
        "4",
        "--hours",
        "100",
        "--warmup",
        "10",
        "--db",
        str(db),
    )
    assert r.exit_code == 0, r.stderr
    assert "run 1 stored in" in r.stdout
    for kpi in ("good_kg_per_h", "final_yield", "wait_p95_h", "furnace_util", "r_int_good_mean"):
        assert kpi in r.stdout
    assert "± 95 % CI" in r.stdout and "small: 3 replications x 100 h (warm-up 10 h), seed 4" in r.stdout
    r = invoke(
        "sql", "SELECT run_id, seed, replications, horizon_h FROM runs", "--db", str(db), "--format", "csv"
    )
    assert r.exit_code == 0, r.stderr
    assert list(csv.DictReader(io.StringIO(r.stdout))) == [
        {"run_id": "1", "seed": "4", "replications": "3", "horizon_h": "100"}
    ]
    r = invoke("sql", "SELECT replication, count(*) AS n FROM lots WHERE run_id = 1 GROUP BY 1 ORDER BY 1",
               "--db", str(db), "-f", "json")  # fmt: skip
    rows = json.loads(r.stdout)
    assert [x["replication"] for x in rows] == [0, 1, 2] and all(x["n"] > 5 for x in rows)
    # the table shown equals the stored summary
    con = duckdb.connect(str(db), read_only=True)
    mean = con.execute("SELECT mean FROM kpi_summary WHERE run_id = 1 AND kpi = 'good_kg_per_h'").fetchall()[
        0
    ][0]
    con.close()
    line = next(
        ln for ln in invoke("runs", "show", "1", "--db", str(db)).stdout.splitlines() if "good_kg_per_h" in ln
    )
    assert f"{mean:.4g}" in line


def test_sql_table_and_parquet_output(db_with_run, tmp_path):
    r = invoke("sql", "SELECT kpi, mean FROM kpi_summary ORDER BY kpi LIMIT 3", "--db", str(db_with_run))
    assert r.exit_code == 0 and "bonding_good_mean" in r.stdout and "3 rows" in r.stderr
    out = tmp_path / "lots.parquet"
    r = invoke("sql", "SELECT * FROM lots", "--db", str(db_with_run), "-f", "parquet", "-o", str(out))
    assert r.exit_code == 0, r.stderr
    n = duckdb.connect(str(db_with_run), read_only=True).execute("SELECT count(*) FROM lots").fetchall()[0][0]
    assert pq.read_table(out).num_rows == n > 0


def test_sql_warns_about_another_schema_version(db_with_run, tmp_path):
    """twin sql reads any DuckDB file, but says so when it is a twin database of another schema version."""
    from twin import schema

    r = invoke("sql", "SELECT count(*) AS n FROM runs", "--db", str(db_with_run), "-f", "csv")
    assert r.exit_code == 0 and "warning" not in r.stderr
    old = tmp_path / "old.duckdb"
    con = duckdb.connect(str(old))
    con.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("CREATE TABLE runs AS SELECT 1 AS run_id")
    con.close()
    r = invoke("sql", "SELECT run_id FROM runs", "--db", str(old), "-f", "csv")
    assert r.exit_code == 0 and r.stdout.splitlines()[1:] == ["1"]
    assert f"written by schema version 1, this twin uses {schema.SCHEMA_VERSION}" in r.stderr
    plain = tmp_path / "plain.duckdb"
    duckdb.connect(str(plain)).execute("CREATE TABLE t AS SELECT 2 AS x").close()
    r = invoke("sql", "SELECT x FROM t", "--db", str(plain), "-f", "csv")
    assert r.exit_code == 0 and "warning" not in r.stderr  # not a twin database: nothing to compare


def test_runs_list_show_and_export(db_with_run, small_scenario, tmp_path):
    assert (
        invoke("run", str(small_scenario), "-n", "1", "--seed", "9", "--db", str(db_with_run)).exit_code == 0
    )
    r = invoke("runs", "list", "--db", str(db_with_run))
    assert r.exit_code == 0
    lines = [ln.split() for ln in r.stdout.splitlines() if ln.strip()[:1].isdigit()]
    assert [(ln[0], ln[1], ln[2], ln[3]) for ln in lines] == [
        ("2", "small", "9", "1"),
        ("1", "small", "7", "2"),
    ]
    r = invoke("runs", "show", "2", "--db", str(db_with_run))
    assert r.exit_code == 0 and "seed 9, 1 replications x 120 h, warm-up 20 h" in r.stdout
    r = invoke("export", "1", "--to", str(tmp_path / "exp"), "--db", str(db_with_run))
    assert r.exit_code == 0, r.stderr
    for name in ("runs", "lots", "batches", "events", "units", "kpis", "kpi_summary"):
        t = pq.read_table(tmp_path / "exp" / f"{name}.parquet")
        assert set(t.column("run_id").to_pylist()) == {1}, name


def test_scenario_check_and_schema(small_scenario, tmp_path):
    r = invoke("scenario", "check", str(small_scenario), str(REPO / "scenarios" / "baseline.yaml"))
    assert r.exit_code == 0 and "small.yaml: ok (scenario small, 120 h" in r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("horizon_h: -5\nald:\n  reactors: 0\n  colour: red\n")
    r = invoke("scenario", "check", str(bad))
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 3
    assert any(ln.startswith(f"{bad}: horizon_h: ") for ln in lines)
    assert any(ln.startswith(f"{bad}: ald.reactors: ") for ln in lines)
    assert any(ln.startswith(f"{bad}: ald.colour: ") for ln in lines)
    r = invoke("scenario", "schema")
    schema = json.loads(r.stdout)
    assert "horizon_h" in schema["properties"] and "furnaces" in schema["properties"]


# -- user errors: a real subprocess, one line on stderr, exit code 2, no traceback -----------------------------


def _one_line_error(proc: subprocess.CompletedProcess, pattern: str, code: int = 2) -> None:
    import re

    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert re.search(pattern, lines[0]), lines[0]


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """A database with one short run, shared by the error tests."""
    d = tmp_path_factory.mktemp("hist")
    (d / "s.yaml").write_text(SMALL_SCENARIO.format(hours=60, warmup=10))
    proc = run_twin("run", "s.yaml", "-n", "1", cwd=d)
    assert proc.returncode == 0, proc.stderr
    return d / "twin.duckdb"


def test_error_missing_scenario_file(tmp_path):
    _one_line_error(run_twin("run", "nope.yaml", cwd=tmp_path), r"^error: nope\.yaml: file not found$")
    assert not (tmp_path / "twin.duckdb").exists()


def test_error_command_line_typer_cannot_parse_is_one_line(tmp_path):
    """An unknown option, a missing argument, a value of the wrong type: one line naming the command and where
    its help is, exit code 2 (not Typer's usage box)."""
    cases = [
        (("run", "s.yaml", "--bogus"), r"^error: twin run: No such option: --bogus .*\(see `twin run --help`\)$"),
        (("run",), r"^error: twin run: Missing argument 'scenario'\. \(see `twin run --help`\)$"),
        (("run", "s.yaml", "--hours", "abc"), r"^error: twin run: Invalid value for '--hours': .*\(see `twin run --help`\)$"),
        (("sql",), r"^error: twin sql: Missing argument"),
        (("nosuchcommand",), r"^error: twin: No such command 'nosuchcommand'\. \(see `twin --help`\)$"),
    ]  # fmt: skip
    for args, pattern in cases:
        _one_line_error(run_twin(*args, cwd=tmp_path), pattern)
    bare = run_twin(cwd=tmp_path)  # `twin` alone: its help, no error line
    assert bare.returncode == 2 and "Usage: twin" in bare.stdout + bare.stderr and "error:" not in bare.stderr


def test_error_invalid_scenario_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("horizon_h: ten\n")
    _one_line_error(run_twin("run", "bad.yaml", cwd=tmp_path), r"^error: bad\.yaml: horizon_h: ")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    _one_line_error(
        run_twin("run", "broken.yaml", cwd=tmp_path), r"^error: broken\.yaml: YAML syntax error: line \d"
    )


def test_error_database_path_not_writable(small_scenario, tmp_path):
    (tmp_path / "afile").write_text("x")
    proc = run_twin("run", str(small_scenario), "--db", str(tmp_path / "afile" / "h.duckdb"))
    _one_line_error(proc, r"^error: cannot open database .*afile/h\.duckdb to write: ")
    proc = run_twin("run", str(small_scenario), "--db", str(tmp_path))
    _one_line_error(proc, r"^error: database path .* is a directory$")


def test_error_database_locked_by_another_process(small_scenario, history):
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(history)!r}); print('ok', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ok"
        pattern = rf"^error: database .*twin\.duckdb is locked by another process \(pid {holder.pid}\)"
        _one_line_error(run_twin("run", str(small_scenario), "--db", str(history), "--wait", "0"), pattern)
        _one_line_error(run_twin("sql", "SELECT 1", "--db", str(history)), pattern)
        _one_line_error(run_twin("runs", "list", "--db", str(history)), pattern)
    finally:
        holder.kill()
        holder.wait()


def test_error_sql(history):
    _one_line_error(
        run_twin("sql", "SELEC * FROM runs", "--db", str(history)), r"^error: SQL error: Parser Error"
    )
    _one_line_error(run_twin("sql", "SELECT * FROM nope", "--db", str(history)), r"^error: SQL error: .*nope")


@pytest.mark.parametrize("statement", ["DELETE FROM runs", "DROP TABLE lots", "SELECT 1; DELETE FROM runs"])
def test_error_sql_write_statement_refused(history, statement):
    proc = run_twin("sql", statement, "--db", str(history))
    _one_line_error(
        proc,
        r"^error: twin sql (is read-only: (DELETE|DROP) statements are not allowed|runs one statement at a time)",
    )
    con = duckdb.connect(str(history), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchall()[0][0] == 1
    assert con.execute("SELECT count(*) FROM lots").fetchall()[0][0] > 0
    con.close()


def test_error_unknown_run_id(history, tmp_path):
    _one_line_error(
        run_twin("runs", "show", "42", "--db", str(history)),
        r"^error: unknown run id 42 in .*\(runs are 1\.\.1\)",
    )
    _one_line_error(
        run_twin("export", "42", "--to", str(tmp_path), "--db", str(history)), r"^error: unknown run id 42"
    )
    _one_line_error(run_twin("runs", "show", "x1", "--db", str(history)), r"^error: unknown run id 'x1'")


def test_error_missing_database_and_other_schema_version(tmp_path):
    _one_line_error(run_twin("runs", "list", "--db", str(tmp_path / "none.duckdb")), r"does not exist")
    old = tmp_path / "old.duckdb"
    con = duckdb.connect(str(old))
    con.execute(
        "CREATE TABLE meta (key VARCHAR, value VARCHAR); INSERT INTO meta VALUES ('schema_version', '0')"
    )
    con.close()
    before = old.read_bytes()
    _one_line_error(
        run_twin("runs", "list", "--db", str(old)),
        rf"written by schema version 0, this twin uses {schema.SCHEMA_VERSION}",
    )
    assert old.read_bytes() == before


# -- atomicity: killed runs leave nothing behind ----------------------------------------------------------------


def _counts(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                for t in ("runs", "lots", "batches", "events", "units", "kpis", "kpi_summary")}  # fmt: skip
    finally:
        con.close()


def _start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    full_env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    # a background job may inherit an ignored SIGINT; restore the default so Ctrl-C reaches Python
    return subprocess.Popen([*TWIN, *args], cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip


def _wait_for(cond, timeout_s: float = 30.0) -> None:
    t0 = time.time()
    while not cond():
        assert time.time() - t0 < timeout_s, "timed out"
        time.sleep(0.05)


def test_run_killed_while_simulating_leaves_no_partial_run(history, tmp_path):
    before = _counts(history)
    (tmp_path / "long.yaml").write_text(
        SMALL_SCENARIO.format(hours=720, warmup=24) + "limits: {replications: 2000}\n"
    )
    proc = _start(["run", "long.yaml", "-n", "2000", "--db", str(history)], cwd=tmp_path)
    assert proc.stderr.readline().startswith("small: 1/2000 replications")  # simulating now
    assert proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _counts(history) == before
    r = run_twin("sql", "SELECT max(run_id) FROM runs", "--db", str(history), "-f", "csv")
    assert r.returncode == 0 and r.stdout.splitlines()[1] == "1"


def test_run_interrupted_by_ctrl_c_leaves_no_partial_run(history, tmp_path):
    before = _counts(history)
    (tmp_path / "long.yaml").write_text(
        SMALL_SCENARIO.format(hours=720, warmup=24) + "limits: {replications: 2000}\n"
    )
    proc = _start(["run", "long.yaml", "-n", "2000", "--db", str(history)], cwd=tmp_path)
    assert proc.stderr.readline().startswith("small: 1/2000 replications")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == "interrupted: nothing was stored"
    assert _counts(history) == before


def test_run_killed_while_writing_leaves_no_partial_run(history, tmp_path):
    before = _counts(history)
    flag = tmp_path / "writing.flag"
    proc = _start(["run", str(history.parent / "s.yaml"), "-n", "2", "--db", str(history)], cwd=tmp_path,
                  env={"TWIN_TEST_HOLD_WRITE": str(flag)})  # fmt: skip
    _wait_for(flag.exists)  # inside BEGIN ... COMMIT: the runs row and the first table are inserted
    assert json.loads(flag.read_text())["pid"] == proc.pid
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _counts(history) == before
    # the database stays usable: the next run gets the next id and all its rows
    r = run_twin("run", str(history.parent / "s.yaml"), "-n", "1", "--db", str(history))
    assert r.returncode == 0 and "run 2 stored" in r.stdout
    after = _counts(history)
    assert after["runs"] == before["runs"] + 1 and after["lots"] > before["lots"]


# -- README: the quick start and the schema section (every example runs in tests/test_docs_examples.py) ---------


def _block(name: str) -> str:
    text = (REPO / "README.md").read_text()
    return text.split(f"<!-- {name}:begin -->")[1].split(f"<!-- {name}:end -->")[0]


def _fences(text: str, lang: str) -> list[str]:
    import re

    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_readme_quick_start_is_exactly_two_commands():
    cmds = [ln for block in _fences(_block("quickstart"), "bash") for ln in block.splitlines() if ln.strip()]
    assert cmds == [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/twin run scenarios/baseline.yaml",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest",
    ]
    assert (REPO / "scenarios" / "baseline.yaml").exists()


def test_readme_schema_section_matches_the_schema_module():
    from twin import schema

    assert schema.markdown() in _block("schema"), (
        "README schema section is out of date: paste the output of "
        "`python -c 'from twin.schema import markdown; print(markdown())'`"
    )
