"""`twin sql` in DuckDB's sandbox: every way out (files, extensions, network, settings, several statements) ends in
one line and leaves every file as it was; reads of the run history and of `--read DIR` files still work."""

from __future__ import annotations

import socket
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SMALL_SCENARIO
from typer.testing import CliRunner

import twin
from twin import sandbox
from twin.cli import app
from twin.errors import TwinError

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})

OUTSIDE = '^error: twin sql reads only the database: ".*{}" is outside it'
NO_EXTENSIONS = "^error: twin sql installs and loads no extensions$"


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """A twin database with one short run."""
    d = tmp_path_factory.mktemp("sandbox")
    (d / "s.yaml").write_text(SMALL_SCENARIO.format(hours=48, warmup=8))
    twin.run_scenario(str(d / "s.yaml"), replications=1, db=d / "twin.duckdb")
    return d / "twin.duckdb"


@pytest.fixture
def place(tmp_path, monkeypatch, history) -> Path:
    """A working directory holding another twin database, a secret text file and a CSV, none of them to be
    touched; relative paths in the queries point here."""
    import shutil

    shutil.copy(history, tmp_path / "other.duckdb")
    (tmp_path / "secret.txt").write_text("the secret\n")
    (tmp_path / "outside.csv").write_text("a,b\n1,2\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _snapshot(*dirs: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for d in dirs for p in sorted(d.rglob("*")) if p.is_file()}


def sql(*args: str, db: Path):
    return runner.invoke(app, ["sql", *args, "--db", str(db), "--format", "csv"])


def assert_one_line(result, pattern: str) -> None:
    import re

    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


BYPASSES = [
    ("COPY (SELECT 'gone' AS x) TO 'other.duckdb' (FORMAT csv)", OUTSIDE.format("other.duckdb")),
    ("EXPLAIN ANALYZE COPY (SELECT 'gone' AS x) TO 'other.duckdb' (FORMAT csv)", OUTSIDE.format("other.duckdb")),
    ("EXPLAIN COPY (SELECT 'gone' AS x) TO 'other.duckdb' (FORMAT csv)", OUTSIDE.format("other.duckdb")),
    ("COPY runs TO 'stolen.csv'", OUTSIDE.format("stolen.csv")),
    ("EXPORT DATABASE 'exported'", OUTSIDE.format(r"exported/\w+\.csv")),
    ("SELECT * FROM read_text('secret.txt')", OUTSIDE.format("secret.txt")),
    ("SELECT * FROM read_text('/etc/passwd')", OUTSIDE.format("/etc/passwd")),
    ("SELECT * FROM read_blob('secret.txt')", OUTSIDE.format("secret.txt")),
    ("SELECT * FROM read_csv('outside.csv')", OUTSIDE.format("outside.csv")),
    ("SELECT * FROM 'outside.csv'", OUTSIDE.format("outside.csv")),
    ("SELECT * FROM glob('*')", OUTSIDE.format(r"\*")),
    ("SELECT * FROM sniff_csv('outside.csv')", OUTSIDE.format("outside.csv")),
    ("WITH f AS (SELECT * FROM read_csv('outside.csv')) SELECT * FROM f", OUTSIDE.format("outside.csv")),
    ("SELECT (SELECT count(*) FROM read_text('secret.txt')) AS n", OUTSIDE.format("secret.txt")),
    ("SELECT * FROM runs WHERE run_id IN (SELECT a FROM read_csv('outside.csv'))", OUTSIDE.format("outside.csv")),
    ("EXPLAIN ANALYZE INSTALL httpfs", NO_EXTENSIONS),
    ("INSTALL httpfs", NO_EXTENSIONS),
    ("FORCE INSTALL httpfs", NO_EXTENSIONS),
    ("LOAD httpfs", NO_EXTENSIONS),
    ("LOAD 'other.duckdb'", NO_EXTENSIONS),
    ("ATTACH 'other.duckdb' AS o", OUTSIDE.format("other.duckdb")),
    ("ATTACH 'new.duckdb' AS n (READ_WRITE)", OUTSIDE.format("new.duckdb")),
    ("SET enable_external_access = true", "cannot change settings: enable_external_access is locked$"),
    ("RESET enable_external_access", "cannot change settings: enable_external_access is locked$"),
    ("SET lock_configuration = false", "cannot change settings: lock_configuration is locked$"),
    ("RESET lock_configuration", "cannot change settings: lock_configuration is locked$"),
    ("SET autoinstall_known_extensions = true", "autoinstall_known_extensions is locked$"),
    ("SET autoload_known_extensions = true", "autoload_known_extensions is locked$"),
    ("SET allowed_directories = ['/']", "allowed_directories is locked$"),
    ("SET allowed_paths = ['/etc/passwd']", "allowed_paths is locked$"),
    ("SET temp_directory = 'spill'", "temp_directory is locked$"),
    ("PRAGMA enable_profiling", "cannot change settings: enable_profiling is locked$"),
    ("PRAGMA profiling_output = 'profile.txt'", "profiling_output is locked$"),
    ("CALL enable_logging(storage = 'file', storage_path = 'log')", "enable_logging is locked$"),
    ("CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')", "Secret type 's3' does not exist"),
    ("DELETE FROM runs", "^error: twin sql is read-only: DELETE statements are not allowed$"),
    ("DROP TABLE lots", "^error: twin sql is read-only: DROP statements are not allowed$"),
    ("INSERT INTO meta VALUES ('a', 'b')", "^error: twin sql is read-only: INSERT statements are not allowed$"),
    ("UPDATE runs SET seed = 1", "^error: twin sql is read-only: UPDATE statements are not allowed$"),
    ("CREATE TABLE t (a INT)", "^error: twin sql is read-only: CREATE statements are not allowed$"),
    ("ALTER TABLE runs ADD COLUMN x INT", "^error: twin sql is read-only: ALTER statements are not allowed$"),
    ("SET threads = 1", "cannot change settings: threads is locked$"),
    ("SELECT 1; SELECT 2", "^error: twin sql runs one statement at a time, got 2; run them one by one$"),
    ("SELECT 1; COPY runs TO 'other.duckdb'", "runs one statement at a time, got 2"),
]  # fmt: skip


@pytest.mark.parametrize(("statement", "pattern"), BYPASSES, ids=[s for s, _ in BYPASSES])
def test_a_way_out_of_the_sandbox_is_one_line_and_touches_no_file(place, history, statement, pattern):
    before = _snapshot(place, history.parent)
    assert_one_line(sql(statement, db=history), pattern)
    assert _snapshot(place, history.parent) == before  # nothing written, created or removed
    con = duckdb.connect(str(place / "other.duckdb"), read_only=True)  # the other database still opens
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    con.close()


def test_a_url_reaches_no_network(place, history):
    """A URL in a file function opens no connection, not even to a server listening on this machine."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.5)
        port = server.getsockname()[1]
        for query in (f"SELECT * FROM read_csv('http://127.0.0.1:{port}/x.csv')",
                      f"SELECT * FROM 'http://127.0.0.1:{port}/x.parquet'"):  # fmt: skip
            assert_one_line(
                sql(query, db=history), r"^error: twin sql (reads only the database|installs and)"
            )
        with pytest.raises(TimeoutError):
            server.accept()


def test_the_sandbox_is_duckdbs_own_configuration(history, place):
    """Straight on the connection, without twin's error wrapping: DuckDB itself refuses, and says the settings
    are what twin.sandbox asks for."""
    con = sandbox.connect(history)
    try:
        for name in ("enable_external_access", "autoinstall_known_extensions", "autoload_known_extensions"):
            assert con.execute(f"SELECT current_setting('{name}')").fetchone()[0] is False
        assert con.execute("SELECT current_setting('lock_configuration')").fetchone()[0] is True
        with pytest.raises(duckdb.PermissionException):
            con.execute("EXPLAIN ANALYZE COPY (SELECT 'gone' AS x) TO 'other.duckdb' (FORMAT csv)")
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_text('secret.txt')")
        with pytest.raises(duckdb.InvalidInputException, match="locked"):
            con.execute("SET enable_external_access = true")
    finally:
        con.close()
    assert (place / "other.duckdb").read_bytes() == history.read_bytes()


@pytest.mark.parametrize(
    "query",
    ["SELECT run_id, seed FROM runs", "DESCRIBE runs", "SHOW TABLES", "PRAGMA table_info('runs')",
     "WITH r AS (SELECT run_id FROM runs) SELECT count(*) AS n FROM r JOIN lots USING (run_id)",
     "SELECT (SELECT max(run_id) FROM runs) AS last", "EXPLAIN SELECT * FROM lots",
     "SELECT kpi, mean FROM kpi_summary WHERE run_id = (SELECT max(run_id) FROM runs)",
     "SELECT 1;"],
)  # fmt: skip
def test_reading_the_run_history_still_works(history, place, query):
    before = _snapshot(place, history.parent)
    r = sql(query, db=history)
    assert r.exit_code == 0, r.stderr
    assert len(r.stdout.splitlines()) >= 2  # a header and at least one row
    assert _snapshot(place, history.parent) == before


def test_a_temporary_table_lives_in_memory_only(history, place):
    before = _snapshot(place, history.parent)
    r = sql("CREATE TEMP TABLE t AS SELECT * FROM runs", db=history)
    assert r.exit_code == 0, r.stderr
    assert _snapshot(place, history.parent) == before


@pytest.fixture
def user_dir(place) -> Path:
    d = place / "mine"
    d.mkdir()
    (d / "qc.csv").write_text("run_id,measured_r_int\n1,21.5\n2,19.0\n")
    pq.write_table(pa.table({"run_id": [1], "line": ["L1"]}), d / "lines.parquet")
    (d / "notes.jsonl").write_text('{"run_id": 1, "note": "first"}\n')
    (d / "tabbed.tsv").write_text("run_id\tshift\n1\tnight\n")
    (d / "readme.txt").write_text("not a table\n")
    return d


def test_read_dir_files_are_tables_to_join(history, user_dir):
    query = ("SELECT r.run_id, q.measured_r_int, l.line, n.note, t.shift FROM runs r JOIN qc q USING (run_id) "
             "JOIN lines l USING (run_id) JOIN notes n USING (run_id) JOIN tabbed t USING (run_id)")  # fmt: skip
    r = sql(query, "--read", str(user_dir), db=history)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[1] == '1,21.5,"L1","first","night"'
    got = twin.query("SELECT count(*) AS n FROM qc", db=history, read=user_dir)
    assert got.column("n").to_pylist() == [2]


@pytest.mark.parametrize(
    ("statement", "pattern"),
    [("COPY qc TO 'mine/qc.csv'", OUTSIDE.format("mine/qc.csv")),
     ("COPY (SELECT 1 AS x) TO 'mine/new.csv'", OUTSIDE.format("mine/new.csv")),
     ("COPY qc TO 'mine/new.parquet' (FORMAT parquet)", OUTSIDE.format("mine/new.parquet")),
     ("EXPORT DATABASE 'mine/exported'", OUTSIDE.format(r"mine/exported/\w+\.csv")),
     ("SELECT * FROM read_text('mine/readme.txt')", OUTSIDE.format("mine/readme.txt")),
     ("SELECT * FROM read_csv('mine/qc.csv')", OUTSIDE.format("mine/qc.csv")),
     ("ATTACH 'mine/new.duckdb' AS n (READ_WRITE)", OUTSIDE.format("mine/new.duckdb")),
     ("SELECT * FROM read_text('secret.txt')", OUTSIDE.format("secret.txt"))],
)  # fmt: skip
def test_read_dir_is_read_only_and_opens_nothing_else(history, user_dir, statement, pattern):
    before = _snapshot(user_dir.parent, history.parent)
    assert_one_line(sql(statement, "--read", str(user_dir), db=history), pattern)
    assert _snapshot(user_dir.parent, history.parent) == before


def test_read_dir_errors_are_one_line(history, user_dir, tmp_path):
    clash = tmp_path / "clash"
    clash.mkdir()
    (clash / "runs.csv").write_text("run_id\n1\n")
    assert_one_line(sql("SELECT 1", "--read", str(clash), db=history),
                    r"^error: --read .*clash: runs\.csv has the name of the database's table runs; rename")  # fmt: skip
    (clash / "runs.csv").unlink()
    (clash / "a.csv").write_text("x\n1\n")
    pq.write_table(pa.table({"x": [2]}), clash / "A.parquet")
    assert_one_line(
        sql("SELECT 1", "--read", str(clash), db=history), r"A\.parquet and a\.csv would both be table"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line(
        sql("SELECT 1", "--read", str(empty), db=history), r"^error: --read .*empty: no file ending in"
    )
    assert_one_line(sql("SELECT 1", "--read", str(tmp_path / "nope"), db=history), r"nope: not a directory$")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.csv").write_text("a,b\n1,2,3\n")
    assert_one_line(
        sql("SELECT 1", "--read", str(bad), db=history), r"^error: --read .*bad: cannot read broken\.csv: "
    )


def test_the_python_api_runs_in_the_same_sandbox(history, place):
    with pytest.raises(TwinError, match="reads only the database"):
        twin.query("COPY (SELECT 'gone' AS x) TO 'other.duckdb' (FORMAT csv)", db=history)
    with pytest.raises(TwinError, match="one statement at a time"):
        twin.query("SELECT 1; SELECT 2", db=history)
    assert (place / "other.duckdb").read_bytes() == history.read_bytes()
    assert twin.query("SELECT count(*) AS n FROM runs", db=history).column("n").to_pylist() == [1]
