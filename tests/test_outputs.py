"""Files the commands write: whole or not at all, never over the user's files by surprise.

The helpers of twin.outputs on their own, then every command that writes a file, made to fail for real: a
subprocess with a file-size limit (RLIMIT_FSIZE, as a full disk: a write past it fails with EFBIG, also for root)
or a result its format cannot hold. After each failure the target is absent (or unchanged) and no temporary file
is left beside it.
"""

from __future__ import annotations

import errno
import os
import resource
import subprocess
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO, SMALL_SCENARIO, TWIN
from typer.testing import CliRunner

from twin.cli import app
from twin.errors import TwinError
from twin.outputs import write_bytes_atomic, write_directory_atomic, write_text_atomic, write_with

runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})


def invoke(*args: str):
    return runner.invoke(app, list(args))


def leftovers(directory: Path) -> list[str]:
    """Temporary files or directories the atomic writers would leave: `.<name>.<random>.tmp`."""
    return sorted(p.name for p in directory.rglob(".*.tmp"))


def run_limited(args: list[str], cwd: Path, max_file_bytes: int) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess that may not write a file larger than `max_file_bytes` (EFBIG past it)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([*TWIN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=limit)  # fmt: skip


def one_line_error(proc, pattern: str) -> None:
    import re

    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert re.search(pattern, lines[0]), lines[0]


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """A run-history database with one run of two short replications."""
    d = tmp_path_factory.mktemp("outputs")
    (d / "s.yaml").write_text(SMALL_SCENARIO.format(hours=120, warmup=20))
    r = invoke("run", str(d / "s.yaml"), "-n", "2", "--db", str(d / "h.duckdb"))
    assert r.exit_code == 0, r.stderr
    return d / "h.duckdb"


# -- the helpers ---------------------------------------------------------------------------------------------
def test_write_text_atomic_replaces_the_whole_file_and_keeps_its_mode(tmp_path):
    p = tmp_path / "a.txt"
    write_text_atomic(p, "first\n")
    assert p.read_text() == "first\n"
    mask = os.umask(0o022)
    try:
        assert (p.stat().st_mode & 0o777) == 0o644  # like open(): 0o666 less the umask, not mkstemp's 0o600
        os.chmod(p, 0o640)
        write_text_atomic(p, "second\n")
    finally:
        os.umask(mask)
    assert p.read_text() == "second\n" and (p.stat().st_mode & 0o777) == 0o640
    write_bytes_atomic(tmp_path / "key.pem", b"secret", mode=0o600)
    assert (tmp_path / "key.pem").stat().st_mode & 0o777 == 0o600
    assert leftovers(tmp_path) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    p = tmp_path / "report.html"
    p.write_text("the user's good file")

    def half_then_disk_full(tmp: Path) -> None:
        tmp.write_text("<html>half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(TwinError, match=r"^cannot write .*report\.html: No space left on device$"):
        write_with(p, half_then_disk_full)
    assert p.read_text() == "the user's good file" and leftovers(tmp_path) == []

    def not_convertible(tmp: Path) -> None:
        tmp.write_text("partial")
        raise ValueError("unsupported type")

    with pytest.raises(ValueError, match="unsupported type"):  # not a file-system error: re-raised as is
        write_with(tmp_path / "new" / "deeper" / "x.csv", not_convertible)
    assert not (tmp_path / "new").exists()  # the directories made for it are gone again
    assert leftovers(tmp_path) == []
    with pytest.raises(TwinError, match=r"cannot write .*: it is a directory$"):
        write_text_atomic(tmp_path, "x")


def test_write_directory_atomic_all_or_nothing(tmp_path):
    def ok(text: str):
        return lambda p: p.write_text(text)

    def fails(p: Path) -> None:
        p.write_text("half")
        raise OSError(errno.EFBIG, "File too large")

    out = tmp_path / "exports" / "run-1"
    with pytest.raises(TwinError, match=r"^cannot write to .*run-1: File too large$"):
        write_directory_atomic(out, {"a.parquet": ok("a"), "b.parquet": fails})
    assert not (tmp_path / "exports").exists() and leftovers(tmp_path) == []

    assert write_directory_atomic(out, {"a.parquet": ok("a"), "b.parquet": ok("b")}) == [
        out / "a.parquet",
        out / "b.parquet",
    ]
    (out / "notes.txt").write_text("mine")
    with pytest.raises(
        TwinError, match=r"run-1 is not empty \(3 entries: a\.parquet, b\.parquet, notes\.txt\)"
    ):
        write_directory_atomic(out, {"a.parquet": ok("new a")})
    assert (out / "a.parquet").read_text() == "a"
    write_directory_atomic(out, {"a.parquet": ok("new a")}, force=True)
    assert (out / "a.parquet").read_text() == "new a"
    assert (out / "b.parquet").read_text() == "b" and (out / "notes.txt").read_text() == "mine"
    with pytest.raises(TwinError):  # --force: the files already moved stay whole, the failed one is not there
        write_directory_atomic(out, {"a.parquet": ok("newer a"), "c.parquet": fails}, force=True)
    assert (out / "a.parquet").read_text() == "new a" and not (out / "c.parquet").exists()
    assert leftovers(tmp_path) == []
    (tmp_path / "afile").write_text("x")
    with pytest.raises(TwinError, match=r"afile: it is a file, not a directory$"):
        write_directory_atomic(tmp_path / "afile", {"a": ok("a")})


# -- twin export -----------------------------------------------------------------------------------------------
def test_export_refuses_a_non_empty_directory_without_force(history, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "lots.parquet").write_text("the user's own file")
    r = invoke("export", "1", "--to", str(out), "--db", str(history))
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.strip() == (
        f"error: {out} is not empty (1 entries: lots.parquet); use another directory, or --force to replace "
        f"the files of the same names"
    )
    assert (out / "lots.parquet").read_text() == "the user's own file"
    r = invoke("export", "1", "--to", str(out), "--db", str(history), "--force")
    assert r.exit_code == 0, r.stderr
    assert pq.read_table(out / "lots.parquet").num_rows > 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert invoke("export", "1", "--to", str(empty), "--db", str(history)).exit_code == 0
    assert sorted(p.name for p in empty.iterdir())[:3] == [
        "batches.parquet",
        "events.parquet",
        "kpi_summary.parquet",
    ]
    assert leftovers(tmp_path) == []


def test_failed_export_leaves_nothing(history, tmp_path):
    proc = run_limited(["export", "1", "--to", "out/run-1", "--db", str(history)], tmp_path, 8_000)
    one_line_error(proc, r"^error: cannot write to out/run-1: File too large$")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


# -- twin sql -o -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["parquet", "csv", "json"])
def test_failed_sql_output_leaves_nothing_and_keeps_the_old_file(history, tmp_path, fmt):
    out = tmp_path / f"lots.{fmt}"
    proc = run_limited(["sql", "SELECT * FROM lots", "-f", fmt, "-o", out.name, "--db", str(history)], tmp_path,
                       4_000)  # fmt: skip
    one_line_error(proc, rf"^error: cannot write lots\.{fmt}: File too large$")
    assert not out.exists() and leftovers(tmp_path) == []
    out.write_text("yesterday's result")
    proc = run_limited(["sql", "SELECT * FROM lots", "-f", fmt, "-o", out.name, "--db", str(history)], tmp_path,
                       4_000)  # fmt: skip
    assert proc.returncode == 2 and out.read_text() == "yesterday's result" and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("fmt", "query", "message"),
    [
        ("parquet", "SELECT INTERVAL 1 DAY AS d",
         r"cannot write r\.parquet as Parquet: Unhandled type for Arrow to Parquet schema conversion"),
        ("csv", "SELECT [1, 2] AS xs", r"cannot write the result as csv to r\.csv: Unsupported Type:list"),
    ],
)  # fmt: skip
def test_sql_result_the_format_cannot_hold_is_one_line(history, tmp_path, fmt, query, message):
    proc = run_limited(["sql", query, "-f", fmt, "-o", f"r.{fmt}", "--db", str(history)], tmp_path, 10**9)
    one_line_error(proc, rf"^error: {message}")
    assert list(tmp_path.iterdir()) == []


# -- report, calibrate, profile, plot -------------------------------------------------------------------------
def test_failed_report_leaves_nothing_and_keeps_the_old_report(history, tmp_path):
    proc = run_limited(["report", "1", "-o", "report.html", "--db", str(history)], tmp_path, 20_000)
    one_line_error(proc, r"^error: cannot write report\.html: File too large$")
    assert not (tmp_path / "report.html").exists() and leftovers(tmp_path) == []
    (tmp_path / "report.html").write_text("last week's report")
    proc = run_limited(["report", "1", "-o", "report.html", "--db", str(history)], tmp_path, 20_000)
    assert proc.returncode == 2 and (tmp_path / "report.html").read_text() == "last week's report"
    r = invoke("report", "1", "-o", str(tmp_path / "report.html"), "--db", str(history))
    assert r.exit_code == 0 and (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert leftovers(tmp_path) == []


def test_failed_calibration_fragment_leaves_nothing(tmp_path):
    qc = REPO / "scenarios" / "qc-example.csv"
    proc = run_limited(["calibrate", str(qc), "-o", "calibrated.yaml"], tmp_path, 200)
    one_line_error(proc, r"^error: cannot write calibrated\.yaml: File too large$")
    assert list(tmp_path.iterdir()) == []


def test_failed_profile_leaves_nothing_and_never_hides_the_run_s_own_error(tmp_path, monkeypatch):
    import cProfile

    from twin.profiling import profile_to

    def half_then_disk_full(self, path):
        Path(path).write_bytes(b"half a profile")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cProfile.Profile, "dump_stats", half_then_disk_full)
    out = tmp_path / "run.prof"
    with pytest.raises(
        TwinError, match=r"^--profile .*run\.prof: cannot write .*run\.prof: No space left on device$"
    ):
        profile_to(out, sum, [1, 2])
    assert list(tmp_path.iterdir()) == []

    def failing_run():
        raise TwinError("database h.duckdb is locked by another process")

    with pytest.raises(TwinError, match="is locked by another process"):
        profile_to(out, failing_run)
    assert list(tmp_path.iterdir()) == []


def test_failed_plot_leaves_nothing(history, tmp_path):
    proc = run_limited(["warmup", "1", "--plot", "welch.svg", "--db", str(history)], tmp_path, 5_000)
    one_line_error(proc, r"^error: cannot write welch\.svg: File too large$")
    assert not (tmp_path / "welch.svg").exists() and leftovers(tmp_path) == []


def test_sql_and_export_outputs_are_complete_files(history, tmp_path):
    """The happy path through the same writers: what lands is the whole result."""
    n = duckdb.connect(str(history), read_only=True).execute("SELECT count(*) FROM lots").fetchall()[0][0]
    r = invoke(
        "sql", "SELECT * FROM lots", "-f", "parquet", "-o", str(tmp_path / "l.parquet"), "--db", str(history)
    )
    assert r.exit_code == 0 and pq.read_table(tmp_path / "l.parquet").num_rows == n
    r = invoke("sql", "SELECT * FROM lots", "-f", "csv", "-o", str(tmp_path / "l.csv"), "--db", str(history))
    assert r.exit_code == 0 and len((tmp_path / "l.csv").read_text().splitlines()) == n + 1
    assert isinstance(pq.read_table(tmp_path / "l.parquet"), pa.Table) and leftovers(tmp_path) == []


# -- the run history on a full disk ------------------------------------------------------------------------------
def test_run_on_a_full_disk_stores_nothing_and_leaves_the_history_usable(history, tmp_path):
    db = tmp_path / "h.duckdb"
    db.write_bytes(history.read_bytes())
    (tmp_path / "s.yaml").write_text(SMALL_SCENARIO.format(hours=2000, warmup=20))
    proc = run_limited(["run", "s.yaml", "--db", "h.duckdb"], tmp_path, db.stat().st_size + 100_000)
    not_progress = [ln for ln in proc.stderr.splitlines() if not ln.startswith("small: ")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert not_progress == [
        f"error: cannot store the run in h.duckdb (nothing was written): IO Error: Could not write file "
        f'"{db}": File too large'
    ]
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchall() == [(1,)]
    con.close()
    r = invoke("run", str(tmp_path / "s.yaml"), "-n", "1", "--hours", "48", "--db", str(db))
    assert r.exit_code == 0 and "run 2 stored" in r.stdout
