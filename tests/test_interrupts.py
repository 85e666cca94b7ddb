"""Ctrl-C: held back while a run is written, then one line saying exactly what was stored, exit code 130."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, SMALL_SCENARIO, TWIN

from twin import interrupts


def _counts(db: Path) -> tuple[int, int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT (SELECT count(*) FROM runs), (SELECT count(DISTINCT run_id) FROM lots), "
            "(SELECT count(DISTINCT run_id) FROM kpi_summary)"
        ).fetchone()
    finally:
        con.close()


def test_ctrl_c_while_a_run_is_written_finishes_the_write_and_says_so(tmp_path):
    (tmp_path / "s.yaml").write_text(SMALL_SCENARIO.format(hours=48, warmup=8))
    flag = tmp_path / "writing.flag"
    env = dict(os.environ, PYTHONPATH=str(REPO), TWIN_TEST_HOLD_WRITE=str(flag), TWIN_TEST_HOLD_WRITE_S="0.5")
    proc = subprocess.Popen([*TWIN, "run", "s.yaml", "--db", "h.duckdb"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    t0 = time.time()
    while not flag.exists():  # inside BEGIN ... COMMIT
        assert time.time() - t0 < 60 and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.splitlines()[-1] == "interrupted: run 1 was stored in h.duckdb"
    assert "stored in" not in out  # the KPI table and the closing line were not printed
    assert _counts(tmp_path / "h.duckdb") == (1, 1, 1)  # the whole run, every table


def test_deferred_holds_ctrl_c_to_the_end_of_the_block():
    order = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the signal is handled here and only noted
            order.append("block ran to its end")
    assert order == ["block ran to its end"]
    with interrupts.deferred(reraise=False) as came:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
    assert came == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_the_interrupted_line_counts_the_runs_of_this_command():
    interrupts.forget()
    assert interrupts.message() == "interrupted: nothing was stored"
    interrupts.stored.extend([("a.duckdb", 4), ("a.duckdb", 5), ("b.duckdb", 1)])
    assert interrupts.message() == (
        "interrupted: 2 runs were stored in a.duckdb (run ids 4, 5); run 1 was stored in b.duckdb"
    )
    interrupts.forget()
    assert interrupts.stored == []


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="watches the process's threads in /proc")
@pytest.mark.parametrize(
    "query",
    ["SELECT sum(hash(range)) FROM range(100000000000)",
     "SELECT sum(a.range * b.range) FROM range(100000) a, range(1000000) b"],
)  # fmt: skip
def test_ctrl_c_during_a_long_sql_query_is_one_line_and_exit_130(tmp_path, query):
    """The query stops at once (DuckDB left alone noticed the signal in these plans only after seconds or
    minutes, then raised RuntimeError("Query interrupted") as a traceback)."""
    duckdb.connect(str(tmp_path / "h.duckdb")).close()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([*TWIN, "sql", query, "--db", "h.duckdb"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    tasks = Path(f"/proc/{proc.pid}/task")
    t0 = time.time()
    while len(list(tasks.iterdir())) < 3:  # DuckDB's threads: the database is open, the query starts
        assert time.time() - t0 < 60 and proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    t_int = time.time()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.splitlines() == ["interrupted: nothing was stored"] and out == ""
    assert time.time() - t_int < 10
