"""Executors: serial, processes and a local Dask cluster give bit-identical results; the client stores each run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from conftest import TWIN, run_twin

from twin.errors import TwinError
from twin.executors import (
    DaskExecutor,
    Executor,
    StudyInterrupted,
    Task,
    make_executor,
    run_study,
    simulate_task,
)
from twin.study import parse_study, plan_study

REPO = Path(__file__).resolve().parent.parent


def two_scenarios(replications: int = 2, horizon_h: float = 150.0):
    study = parse_study(
        {
            "name": "exec-test",
            "base": "baseline.yaml",
            "replications": replications,
            "seed": 5,
            "horizon_h": horizon_h,
            "warmup_h": 24,
            "design": "strategies",
            "strategies": [
                {"name": "timeout-6"},
                {
                    "name": "immediate-450",
                    "furnaces.policy": {"name": "immediate"},
                    "recipes.mild-400.setpoint_c": 450,
                },
            ],
        },
        "exec-test.yaml",
    )
    return plan_study(study, REPO / "scenarios" / "exec-test.yaml")


def same_bits(a: pa.Table, b: pa.Table) -> bool:
    """Column by column: floats compared as bit patterns (NaN == NaN), everything else by value."""
    if a.schema != b.schema or a.num_rows != b.num_rows:
        return False
    for name in a.column_names:
        x, y = a.column(name), b.column(name)
        if pa.types.is_floating(x.type):
            xa = np.asarray(x.to_numpy(zero_copy_only=False), dtype=np.float64)
            ya = np.asarray(y.to_numpy(zero_copy_only=False), dtype=np.float64)
            if not np.array_equal(xa.view(np.int64), ya.view(np.int64)):
                return False
        elif x.to_pylist() != y.to_pylist():
            return False
    return True


def test_serial_processes_and_local_dask_give_identical_results() -> None:
    plan = two_scenarios()
    results = {ex: run_study(plan, executor=ex, workers=2) for ex in ("serial", "processes", "dask")}
    ref = results["serial"]
    assert [r.scenario.name for r in ref.runs] == ["timeout-6", "immediate-450"]
    assert ref.tasks == 4 and len(ref.task_wall_s) == 4
    for name in ("processes", "dask"):
        other = results[name]
        assert other.executor == name
        for a, b in zip(ref.runs, other.runs, strict=True):
            assert a.scenario.name == b.scenario.name
            for ra, rb in zip(a.replications, b.replications, strict=True):
                assert ra.replication == rb.replication
                assert list(ra.kpis) == list(rb.kpis)
                for k in ra.kpis:
                    assert np.float64(ra.kpis[k]).tobytes() == np.float64(rb.kpis[k]).tobytes(), (name, k)
            assert same_bits(a.table("lots"), b.table("lots")), name
            assert same_bits(a.table("batches"), b.table("batches")), name
    # the two scenarios really differ, so identical results are not vacuous
    assert ref.runs[0].kpis.column("value").to_pylist() != ref.runs[1].kpis.column("value").to_pylist()


def test_common_random_numbers_same_seed_in_every_task() -> None:
    plan = two_scenarios(replications=3)
    from twin.executors import _tasks

    tasks = _tasks(plan, range(3))
    assert [(i, seed, r) for i, _, seed, r in tasks] == [(i, 5, r) for i in (0, 1) for r in range(3)]
    # the same replication of two scenarios sees the same arrivals (lots released at the same times)
    a = simulate_task(tasks[1])[1].tables["lots"].column("release_h").to_pylist()
    b = simulate_task(tasks[4])[1].tables["lots"].column("release_h").to_pylist()
    assert a == b and len(a) > 20


def test_run_study_stores_the_study_and_one_run_per_scenario(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    res = run_study(two_scenarios(), executor="serial", db=db)
    assert res.study_id == 1 and [r.run_id for r in res.runs] == [1, 2]
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT name, status FROM studies").fetchall() == [("exec-test", "done")]
    rows = con.execute(
        "SELECT run_id, study_id, scenario_name, seed, replications FROM runs ORDER BY run_id"
    ).fetchall()
    assert rows == [(1, 1, "timeout-6", 5, 2), (2, 1, "immediate-450", 5, 2)]
    n_lots = con.execute("SELECT count(*) FROM lots WHERE run_id = 2").fetchone()[0]
    assert n_lots == res.runs[1].table("lots").num_rows > 0
    value = con.execute(
        "SELECT value FROM kpis WHERE run_id = 1 AND replication = 1 AND kpi = 'good_kg_per_h'"
    ).fetchone()[0]
    assert value == res.runs[0].replications[1].kpis["good_kg_per_h"]
    con.close()


class _InterruptAfter(Executor):
    """Serial, then Ctrl-C after `n` results (as a user would)."""

    name = "serial"

    def __init__(self, n: int) -> None:
        super().__init__(1)
        self.n = n

    def run(self, tasks: list[Task]) -> Iterator:
        for i, task in enumerate(tasks):
            if i == self.n:
                raise KeyboardInterrupt
            yield simulate_task(task)


class _Observer(Executor):
    """Serial, `pause_s` before each task; meanwhile looks whether the study's database opens in this process,
    and how many runs it holds (None: the study holds it open)."""

    name = "serial"

    def __init__(self, db: Path, pause_s: float) -> None:
        super().__init__(1)
        self.db, self.pause_s, self.seen = db, pause_s, []

    def run(self, tasks: list[Task]) -> Iterator:
        from twin.store import Store

        for task in tasks:
            time.sleep(self.pause_s)
            try:
                with Store(self.db, read_only=True) as s:
                    self.seen.append(s.query("SELECT count(*) FROM runs").column(0)[0].as_py())
            except TwinError as exc:
                assert "already open in this process" in str(exc)
                self.seen.append(None)
            yield simulate_task(task)


@pytest.mark.parametrize(
    ("pause_s", "hold_s", "seen"), [(0.3, 0.1, [0, 0, 1, 1]), (0.0, 1e9, [0, 0, None, None])]
)
def test_a_study_holds_its_database_only_while_results_come_quickly(
    tmp_path, monkeypatch, pause_s, hold_s, seen
):
    from twin import executors

    monkeypatch.setattr(executors._StudyStore, "HOLD_S", hold_s)
    db = tmp_path / "t.duckdb"
    observer = _Observer(db, pause_s)
    res = run_study(two_scenarios(), executor=observer, db=db)
    assert observer.seen == seen  # slow results: readable between runs; quick ones: kept open between writes
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT status FROM studies").fetchall() == [("done",)]
    assert con.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall() == [(1,), (2,)]
    n_lots = con.execute("SELECT count(*) FROM lots WHERE run_id = 2").fetchone()[0]
    assert n_lots == res.runs[1].table("lots").num_rows > 0
    con.close()


def test_an_interrupted_study_keeps_its_completed_runs_and_says_so(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    with pytest.raises(StudyInterrupted) as err:
        run_study(two_scenarios(), executor=_InterruptAfter(3), db=db)
    assert "kept 1 of 2 completed scenario runs" in str(err.value)
    assert err.value.exit_code == 130
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT status FROM studies").fetchall() == [("failed",)]
    assert con.execute("SELECT scenario_name FROM runs").fetchall() == [("timeout-6",)]
    assert con.execute("SELECT count(DISTINCT replication) FROM kpis").fetchone()[0] == 2
    con.close()


def test_make_executor_errors() -> None:
    with pytest.raises(TwinError, match="unknown executor 'threads'"):
        make_executor("threads")
    with pytest.raises(TwinError, match="--address is for --executor dask"):
        make_executor("processes", address="tcp://127.0.0.1:8786")
    with pytest.raises(TwinError, match="--workers must be at least 1"):
        make_executor("processes", workers=0)
    assert make_executor("processes", workers=3).workers == 3
    assert make_executor("serial", workers=3).workers == 1


def test_dask_unreachable_scheduler_is_one_line_error() -> None:
    plan = two_scenarios(replications=1)
    with pytest.raises(TwinError, match=r"cannot connect to the Dask scheduler at tcp://127.0.0.1:1"):
        run_study(plan, executor=DaskExecutor(address="tcp://127.0.0.1:1", connect_timeout_s=1.0))


def test_cli_study_runs_and_stores(tmp_path: Path) -> None:
    study = tmp_path / "s.yaml"
    study.write_text(
        f"name: cli-study\nbase: {REPO / 'scenarios' / 'baseline.yaml'}\nreplications: 2\nseed: 3\n"
        "horizon_h: 120\nwarmup_h: 20\ndesign: factorial\nfactors:\n  furnaces.count: [2, 3]\n"
    )
    db = tmp_path / "cli.duckdb"
    res = run_twin("study", str(study), "--executor", "serial", "--db", str(db))
    assert res.returncode == 0, res.stderr
    assert "count=3" in res.stdout and "4 replications on serial (1 worker)" in res.stdout
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM runs WHERE study_id = 1").fetchone()[0] == 2
    con.close()
    bad = run_twin("study", str(study), "--executor", "threads", "--db", str(db))
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: unknown executor 'threads'; choose one of serial, processes, dask"


def test_a_failing_replication_is_one_line_and_keeps_the_study_marked_failed(tmp_path, monkeypatch):
    """A plant exception inside a replication ends the study with one TwinError line naming the study."""
    import duckdb

    from twin import executors
    from twin.errors import TwinError

    study = tmp_path / "s.yaml"
    (tmp_path / "base.yaml").write_text("horizon_h: 50\nreplications: 2\n")
    study.write_text("name: boom\nbase: base.yaml\nreplications: 2\ndesign: strategies\nstrategies:\n"
                     "  - name: a\n  - name: b\n    buffer.rh_pct: 10\n")  # fmt: skip

    def explode(task):
        raise ZeroDivisionError("division by zero in the plant")

    monkeypatch.setattr(executors, "simulate_task", explode)
    db = tmp_path / "x.duckdb"
    with pytest.raises(TwinError) as exc:
        executors.run_study(study, executor="serial", db=db)
    msg = str(exc.value)
    assert msg.startswith(
        "study boom: a replication failed (ZeroDivisionError: division by zero in the plant)"
    )
    assert "\n" not in msg and isinstance(exc.value.__cause__, ZeroDivisionError)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT status FROM studies").fetchall() == [("failed",)]


def test_processes_run_the_first_tasks_here_while_the_pool_starts() -> None:
    """The pool takes about a second to start; meanwhile this process runs tasks itself, then the pool gets the
    rest. Every task gives the same bits as in serial, wherever it ran, and none is run twice or lost."""
    plan = two_scenarios(replications=8, horizon_h=400.0)
    tasks = [(i, sc, int(sc.seed), r) for i, sc in enumerate(plan.scenarios) for r in range(8)]
    serial = {(i, r.replication): r for i, r in make_executor("serial").run(tasks)}
    with make_executor("processes", workers=2) as ex:
        got = [(i, r.replication, r) for i, r in ex.run(tasks)]
        up_s, local = ex.pool_up_s, ex.local_tasks
        again = sorted((i, r.replication) for i, r in ex.run(tasks[:4]))  # the same executor runs again
    assert again == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert sorted((i, rep) for i, rep, _ in got) == sorted(serial)  # each task exactly once
    assert 1 <= ex.local_tasks <= len(tasks) + 4
    assert local == len(tasks) or up_s is not None  # the pool ran tasks: it had answered
    for i, rep, r in got:
        for name, table in r.tables.items():
            assert same_bits(table, serial[(i, rep)].tables[name]), (i, rep, name)
        assert r.kpis == serial[(i, rep)].kpis
    with make_executor("processes", workers=2) as ex:  # a single task needs no pool
        assert [i for i, _ in ex.run(tasks[:1])] == [0] and ex.local_tasks == 1 and ex._pool is None
        assert ex.pool_up_s is None
    with make_executor("processes", workers=2) as ex:  # a pool start is reported for its own run only
        list(ex.run(tasks[:6]))
        list(ex.run(tasks[:1]))
        assert ex.pool_up_s is None


@pytest.mark.parametrize("protocol", [4, 5])
def test_a_replication_result_pickles_as_arrow_streams_with_the_same_bits(protocol) -> None:
    """Results travel from workers pickled (protocol 4 in multiprocessing, 5 in Dask): one Arrow IPC stream per
    table, which must give back the same bits, schemas (metadata included), KPIs and timings."""
    import pickle

    plan = two_scenarios(replications=1, horizon_h=300.0)
    _, r = simulate_task((1, plan.scenarios[1], int(plan.scenarios[1].seed), 0))
    blob = pickle.dumps(r, protocol=protocol)
    assert len(blob) < sum(t.nbytes for t in r.tables.values()) + 100_000
    back = pickle.loads(blob)
    assert (back.replication, back.seed, back.kpis, back.wall_s) == (r.replication, r.seed, r.kpis, r.wall_s)
    assert list(back.tables) == list(r.tables)
    for name, table in r.tables.items():
        assert back.tables[name].schema.equals(table.schema, check_metadata=True), name
        assert same_bits(back.tables[name], table), name


def test_a_pool_worker_imports_neither_pandas_nor_scipy_and_can_still_use_pandas() -> None:
    """A worker needs the line, the scenario model and pyarrow; the forkserver imports those once. pandas (which
    pyarrow would import on its first conversion) and scipy (E1 is plant.expint's) stay out of every pool start,
    and the results are serial's; a worker unpickles scenarios without building their validators. An explicit
    pandas call in a worker still works: nothing is lost."""
    from twin.executors import new_pool

    plan = two_scenarios(replications=2, horizon_h=100.0)
    tasks = [(i, sc, int(sc.seed), r) for i, sc in enumerate(plan.scenarios) for r in range(2)]
    serial = {(i, r.replication): r for i, r in make_executor("serial").run(tasks)}
    probe = "sorted({'pandas', 'scipy', 'twin.cli', 'twin.store', 'duckdb'} & set(__import__('sys').modules))"
    to_pandas = "__import__('pyarrow').table({'a': [1, 2]}).to_pandas().shape"
    with new_pool(2) as pool:
        got = list(pool.map(simulate_task, tasks))
        answers = [pool.submit(eval, probe).result() for _ in range(4)]
        shape = pool.submit(eval, to_pandas).result()
        built = pool.submit(
            eval, "__import__('twin.scenario').scenario.Scenario.__pydantic_complete__"
        ).result()
    assert answers == [[]] * 4
    assert shape == (2, 1)
    assert built is False  # the scenario models' validators are built where scenarios are validated, not here
    for i, r in got:
        for name, table in r.tables.items():
            assert same_bits(table, serial[(i, r.replication)].tables[name])


def test_processes_do_not_wait_for_a_pool_they_no_longer_need(monkeypatch) -> None:
    """A few short runs all done here before the pool is up: the run ends at once (it used to wait about a second
    for the pool), the results are serial's, and the pool is shut down in the background once it comes up."""
    import threading
    from concurrent.futures import ProcessPoolExecutor

    from twin import executors

    class SlowToStart(ProcessPoolExecutor):
        def __init__(self, *a, **k) -> None:
            time.sleep(2.0)
            super().__init__(*a, **k)

    monkeypatch.setattr(executors, "ProcessPoolExecutor", SlowToStart)
    plan = two_scenarios(replications=2)
    tasks = [(i, sc, int(sc.seed), r) for i, sc in enumerate(plan.scenarios) for r in range(2)]
    serial = {(i, r.replication): r for i, r in make_executor("serial").run(tasks)}
    t0 = time.perf_counter()
    with make_executor("processes", workers=2) as ex:
        got = {(i, r.replication): r for i, r in ex.run(tasks)}
    assert time.perf_counter() - t0 < 1.5  # the pool takes 2 s to start: nobody waited for it
    assert ex.local_tasks == len(tasks) and sorted(got) == sorted(serial)
    for key, r in got.items():
        assert r.kpis == serial[key].kpis
    starters = [t for t in threading.enumerate() if t.name == "twin-pool-start"]
    for t in starters:
        t.join(timeout=30)  # the abandoned start shuts its pool down and ends
    assert starters and not any(t.is_alive() for t in starters)


# -- Ctrl-C and lost Dask workers: one line, the study marked failed, the printed count is the stored one -------


def _study_file(tmp_path: Path, scenarios: int, horizon_h: float) -> Path:
    """A study of `scenarios` strategies (furnace count and buffer humidity varied), 2 replications each."""
    (tmp_path / "base.yaml").write_text(f"horizon_h: {horizon_h}\nwarmup_h: 24\nreplications: 2\n")
    strategies = "".join(
        f"  - name: s{k}\n    furnaces.count: {2 + k % 3}\n    buffer.rh_pct: {10 + 10 * (k // 3)}\n"
        for k in range(scenarios)
    )
    (tmp_path / "s.yaml").write_text(
        "name: stop-me\nbase: base.yaml\nreplications: 2\nseed: 3\ndesign: strategies\nstrategies:\n"
        + strategies
    )
    return tmp_path / "s.yaml"


def _db_rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize(
    ("executor", "hold_s"),
    [("processes", "1"), ("processes", "0"), ("dask", "0")],
    ids=["processes-ctrl-c-while-writing", "processes-ctrl-c-while-simulating", "local-dask-ctrl-c"],
)
def test_ctrl_c_in_a_study_is_one_line_exit_130_and_counts_what_is_stored(tmp_path, executor, hold_s):
    """Ctrl-C from a terminal reaches every process of the job (the study, the forkserver and the pool's workers,
    or the local Dask cluster's): sent here to the whole process group. One line, exit code 130, no worker
    traceback, the study marked failed, and the runs it says it kept are the runs in the database (a write under
    way is finished first)."""
    import os
    import re
    import signal
    import subprocess

    _study_file(tmp_path, scenarios=12, horizon_h=3000)
    flag = tmp_path / "writing.flag"
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200", NO_COLOR="1",
               TWIN_TEST_HOLD_WRITE=str(flag), TWIN_TEST_HOLD_WRITE_S=hold_s)  # fmt: skip
    proc = subprocess.Popen(
        [*TWIN, "study", "s.yaml", "--executor", executor, "--workers", "2", "--db", "t.duckdb"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    t0 = time.time()
    while not flag.exists():  # the first run is being written
        assert time.time() - t0 < 120 and proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    if hold_s == "0":
        time.sleep(0.3)  # past that write: the study simulates on
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err + out and "KeyboardInterrupt" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    m = re.fullmatch(
        r"interrupted: study stop-me kept (\d+) of 12 completed scenario runs in t\.duckdb "
        r"\(study id 1, marked failed\)",
        lines[0],
    )
    assert m, lines[0]
    stored = _db_rows(tmp_path / "t.duckdb", "SELECT count(*) FROM runs WHERE study_id = 1")[0][0]
    assert int(m.group(1)) == stored
    if hold_s == "1":
        assert stored >= 1  # the run being written when Ctrl-C came was finished and counted
    assert _db_rows(tmp_path / "t.duckdb", "SELECT status FROM studies") == [("failed",)]
    complete = _db_rows(tmp_path / "t.duckdb", "SELECT count(DISTINCT run_id) FROM kpi_summary")[0][0]
    assert complete == stored  # every stored run has all its rows
    assert not (tmp_path / "t.duckdb.lock").exists()


@pytest.fixture
def dask_cluster():
    """A real Dask scheduler on 127.0.0.1 with no worker (tests add or remove them)."""
    import logging

    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=0, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                           dashboard_address=None, silence_logs=logging.CRITICAL)  # fmt: skip
    try:
        yield cluster
    finally:
        cluster.close()


def test_a_dask_study_without_a_worker_fails_with_one_line_and_is_marked_failed(tmp_path, dask_cluster):
    _study_file(tmp_path, scenarios=2, horizon_h=100)
    address = dask_cluster.scheduler_address
    t0 = time.time()
    r = run_twin("study", "s.yaml", "--executor", "dask", "--address", address, "--dask-timeout", "2",
                 "--db", "t.duckdb", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == [
        f"error: study stop-me: the Dask scheduler at {address} had no worker for 2 s (start one with `dask worker "
        f"{address}` or raise --dask-timeout); kept 0 of 2 completed scenario runs in t.duckdb (study id 1, "
        "marked failed)"
    ]
    assert 2 <= time.time() - t0 < 60
    assert _db_rows(tmp_path / "t.duckdb", "SELECT status FROM studies") == [("failed",)]
    assert _db_rows(tmp_path / "t.duckdb", "SELECT count(*) FROM runs") == [(0,)]


def test_a_dask_study_whose_only_worker_leaves_fails_and_keeps_what_it_stored(tmp_path, dask_cluster):
    _study_file(tmp_path, scenarios=3, horizon_h=100)
    dask_cluster.scale(1)
    dask_cluster.wait_for_workers(1, timeout=30)
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done == 2:  # the first scenario's both replications are in: its run is stored next
            dask_cluster.scale(0)

    ex = DaskExecutor(address=dask_cluster.scheduler_address, worker_timeout_s=2.0)
    with pytest.raises(TwinError) as err:
        run_study(tmp_path / "s.yaml", executor=ex, db=tmp_path / "t.duckdb", progress=progress)
    msg = str(err.value)
    assert msg.startswith(
        f"study stop-me: the Dask scheduler at {dask_cluster.scheduler_address} had no worker"
    )
    assert "\n" not in msg
    stored = _db_rows(tmp_path / "t.duckdb", "SELECT count(*) FROM runs")[0][0]
    assert f"kept {stored} of 3 completed scenario runs" in msg and 1 <= stored < 3
    assert _db_rows(tmp_path / "t.duckdb", "SELECT status FROM studies") == [("failed",)]


def test_dask_timeout_is_checked_and_the_cli_default_is_the_executors():
    from twin.executors import DEFAULT_DASK_TIMEOUT_S

    with pytest.raises(TwinError, match="--dask-timeout is for --executor dask, not processes"):
        make_executor("processes", dask_timeout_s=5)
    with pytest.raises(TwinError, match="--dask-timeout must be a finite number of seconds > 0"):
        make_executor("dask", dask_timeout_s=float("nan"))
    assert make_executor("dask", dask_timeout_s=3).worker_timeout_s == 3
    assert DaskExecutor().worker_timeout_s == DEFAULT_DASK_TIMEOUT_S
    r = run_twin("study", "--help")
    assert f"(default {DEFAULT_DASK_TIMEOUT_S:g})" in " ".join(r.stdout.split())
