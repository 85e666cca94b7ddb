"""The writer lock: two writers at once both land, the second waits before it simulates (or gives up with one
line), readers are not held up by a writer that simulates, and the lock is taken again within a process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, SMALL_SCENARIO, TWIN, run_twin

from twin import dblock
from twin.errors import TwinError


def _start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    full_env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200", NO_COLOR="1", **(env or {}))
    return subprocess.Popen([*TWIN, *args], cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip


def _wait_for(cond, timeout_s: float = 60.0) -> None:
    t0 = time.time()
    while not cond():
        assert time.time() - t0 < timeout_s, "timed out"
        time.sleep(0.05)


def _rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


LONG_LIMITS = "limits: {replications: 2000}\n"  # a run long enough to be caught while it simulates


@pytest.fixture
def place(tmp_path: Path) -> Path:
    (tmp_path / "s.yaml").write_text(SMALL_SCENARIO.format(hours=48, warmup=8))
    (tmp_path / "long.yaml").write_text(SMALL_SCENARIO.format(hours=2000, warmup=24) + LONG_LIMITS)
    return tmp_path


def test_two_writers_started_together_both_land(place):
    """Two `twin run` into one database at the same moment: both runs are stored, with all their rows."""
    a = _start(["run", "long.yaml", "--seed", "1", "--db", "h.duckdb"], cwd=place)
    b = _start(["run", "long.yaml", "--seed", "2", "--db", "h.duckdb"], cwd=place)
    outs = [p.communicate(timeout=300) for p in (a, b)]
    assert [a.returncode, b.returncode] == [0, 0], [err for _, err in outs]
    assert "Traceback" not in outs[0][1] + outs[1][1]
    stored = sorted(
        int(m.group(1)) for out, _ in outs for m in re.finditer(r"^run (\d+) stored in", out, re.M)
    )
    assert stored == [1, 2]
    assert _rows(place / "h.duckdb", "SELECT seed, replications FROM runs ORDER BY seed") == [(1, 2), (2, 2)]
    per_run = _rows(place / "h.duckdb", "SELECT run_id, count(*) FROM lots GROUP BY 1 ORDER BY 1")
    assert [r[0] for r in per_run] == [1, 2] and all(n > 0 for _, n in per_run)
    assert _rows(place / "h.duckdb", "SELECT count(DISTINCT run_id) FROM kpi_summary") == [(2,)]
    assert not (place / "h.duckdb.lock").exists()  # the last writer removed its lock file


def test_the_second_writer_waits_before_it_simulates_and_says_for_whom(place):
    """While one writer is storing (held inside its write by the test hook), a second one prints one waiting line
    naming the holder's PID, simulates only after the first is done, and lands."""
    flag = place / "writing.flag"
    a = _start(["run", "s.yaml", "--seed", "1", "--db", "h.duckdb"], cwd=place,
               env={"TWIN_TEST_HOLD_WRITE": str(flag), "TWIN_TEST_HOLD_WRITE_S": "1"})  # fmt: skip
    _wait_for(flag.exists)
    b = _start(["run", "s.yaml", "--seed", "2", "--db", "h.duckdb"], cwd=place)
    first = b.stderr.readline()
    assert first == f"waiting for h.duckdb (held by PID {a.pid}) for up to 600 s ...\n"
    assert a.poll() is None  # a still holds the lock: b has not simulated anything yet
    a.communicate(timeout=120)
    out_b, err_b = b.communicate(timeout=120)
    assert a.returncode == 0 and b.returncode == 0, err_b
    assert err_b.startswith("small: 1/2 replications")  # b simulated only after it got the lock
    assert "run 2 stored in h.duckdb" in out_b
    assert _rows(place / "h.duckdb", "SELECT run_id, seed FROM runs ORDER BY run_id") == [(1, 1), (2, 2)]


def test_a_writer_that_may_not_wait_gives_up_before_simulating(place):
    flag = place / "writing.flag"
    a = _start(["run", "s.yaml", "--db", "h.duckdb"], cwd=place,
               env={"TWIN_TEST_HOLD_WRITE": str(flag), "TWIN_TEST_HOLD_WRITE_S": "1.5"})  # fmt: skip
    try:
        _wait_for(flag.exists)
        t0 = time.time()
        b = run_twin("run", "s.yaml", "--db", "h.duckdb", "--wait", "0", cwd=place)
        assert b.returncode == 2 and "Traceback" not in b.stderr
        assert b.stderr.splitlines() == [
            f"error: database h.duckdb is in use by another writer (PID {a.pid}); waited 0 s and simulated "
            "nothing; try again later, raise --wait or use another --db"
        ]
        c = run_twin("run", "s.yaml", "--db", "h.duckdb", "--wait", "0.5", cwd=place)
        assert c.returncode == 2 and time.time() - t0 >= 0.5
        assert c.stderr.splitlines() == [
            f"waiting for h.duckdb (held by PID {a.pid}) for up to 0.5 s ...",
            f"error: database h.duckdb is in use by another writer (PID {a.pid}); waited 0.5 s and simulated "
            "nothing; try again later, raise --wait or use another --db",
        ]
    finally:
        a.communicate(timeout=120)
    assert a.returncode == 0
    assert _rows(place / "h.duckdb", "SELECT count(*) FROM runs") == [(1,)]


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_a_bad_wait_is_one_line(place, value):
    r = run_twin("run", "s.yaml", "--db", "h.duckdb", "--wait", value, cwd=place)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--wait" in lines[0], r.stderr
    assert not (place / "h.duckdb").exists()


def test_readers_are_not_held_up_by_a_writer_that_simulates(place):
    """The writer lock is not DuckDB's: while a run simulates, `twin runs list` and `twin sql` read the file."""
    assert run_twin("run", "s.yaml", "--db", "h.duckdb", cwd=place).returncode == 0
    (place / "longer.yaml").write_text(SMALL_SCENARIO.format(hours=720, warmup=24) + LONG_LIMITS)
    a = _start(["run", "longer.yaml", "-n", "2000", "--db", "h.duckdb"], cwd=place)
    try:
        assert a.stderr.readline().startswith("small: 1/2000 replications")  # simulating, holding the lock
        assert (place / "h.duckdb.lock").read_text().strip() == str(a.pid)
        listed = run_twin("runs", "list", "--db", "h.duckdb", cwd=place)
        assert listed.returncode == 0 and "small" in listed.stdout, listed.stderr
        counted = run_twin(
            "sql", "SELECT count(*) AS n FROM runs", "--db", "h.duckdb", "-f", "csv", cwd=place
        )
        assert counted.returncode == 0 and counted.stdout.splitlines() == ['"n"', "1"], counted.stderr
        assert a.poll() is None
    finally:
        a.kill()
        a.wait()


def test_the_lock_is_reentrant_in_a_process_and_released_by_the_last_holder(tmp_path):
    db = tmp_path / "h.duckdb"
    lock = tmp_path / "h.duckdb.lock"
    with dblock.writer_lock(db, wait_s=0):
        assert lock.read_text() == f"{os.getpid()}\n"
        with dblock.writer_lock(db, wait_s=0):  # again in this process: no wait
            pass
        assert lock.exists()
        other = subprocess.run(
            [sys.executable, "-c", "from twin import dblock; dblock.acquire(" + repr(str(db)) + ", 0)"],
            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
        )  # fmt: skip
        assert other.returncode == 1 and "is in use by another writer (PID" in other.stderr
    assert not lock.exists()
    with pytest.raises(TwinError, match=r"--wait must be a finite number of seconds >= 0, got nan"):
        dblock.check_wait(float("nan"))


def test_a_killed_writer_leaves_no_lock_behind(place):
    """flock dies with its process: a writer killed with -9 does not keep the next one waiting."""
    a = _start(["run", "long.yaml", "-n", "2000", "--db", "h.duckdb"], cwd=place)
    assert a.stderr.readline().startswith("small: 1/2000 replications")
    a.send_signal(signal.SIGKILL)
    a.wait()
    t0 = time.time()
    b = run_twin("run", "s.yaml", "--db", "h.duckdb", "--wait", "0", cwd=place)
    assert b.returncode == 0, b.stderr
    assert "waiting" not in b.stderr and time.time() - t0 < 60
    assert _rows(place / "h.duckdb", "SELECT run_id FROM runs") == [(1,)]


def test_a_study_and_a_run_started_together_both_land(place):
    (place / "base.yaml").write_text("horizon_h: 1000\nwarmup_h: 24\nreplications: 2\n")
    (place / "st.yaml").write_text("name: side\nbase: base.yaml\nreplications: 2\nseed: 3\ndesign: factorial\n"
                                   "factors:\n  furnaces.count: [2, 3, 4]\n")  # fmt: skip
    study = _start(["study", "st.yaml", "--executor", "serial", "--db", "h.duckdb"], cwd=place)
    run = _start(["run", "long.yaml", "--seed", "5", "--db", "h.duckdb"], cwd=place)
    (_, err_s), (_, err_r) = study.communicate(timeout=300), run.communicate(timeout=300)
    assert study.returncode == 0 and run.returncode == 0, (err_s, err_r)
    rows = _rows(place / "h.duckdb", "SELECT study_id, count(*) FROM runs GROUP BY 1 ORDER BY 1 NULLS LAST")
    assert rows == [(1, 3), (None, 1)]
    assert _rows(place / "h.duckdb", "SELECT status FROM studies") == [("done",)]
    assert _rows(place / "h.duckdb", "SELECT count(DISTINCT run_id) FROM lots") == [(4,)]
