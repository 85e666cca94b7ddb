"""The run-history store: schema creation and version guard, one-transaction writes, export (the sandbox of
user SQL: test_sql_sandbox.py)."""

from __future__ import annotations

import threading

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import synthetic_trace

from twin import schema, stats
from twin.errors import TwinError
from twin.store import ROW_GROUP_SIZE, Store, insert_arrow, open_store


def _write(store: Store, reps: int = 3, seed: int = 0, setpoint: float | None = None, copies: int = 1) -> int:
    traces = [synthetic_trace(seed + r) for r in range(reps)] * copies
    tables = {}
    for name in schema.TRACE_TABLES:
        parts = [t[name].add_column(0, "replication", pa.array([r] * t[name].num_rows, pa.int32()))
                 for r, t in enumerate(traces)]  # fmt: skip
        tables[name] = pa.concat_tables(parts)
    per_rep = [stats.replication_kpis(t, 20.0, 200.0) for t in traces]
    run = {"scenario_name": "synthetic", "scenario_json": "{}", "scenario_hash": "abc", "seed": seed,
           "replications": reps, "horizon_h": 200.0, "warmup_h": 20.0, "code_version": "test", "wall_s": 0.1,
           "status": "done"}  # fmt: skip
    return store.write_run(
        run, tables, stats.kpis_long(per_rep, range(len(traces))), stats.summarize(per_rep)
    )


def test_new_database_has_every_table_and_the_schema_version(tmp_path):
    db = tmp_path / "h.duckdb"
    with open_store(db) as s:
        names = {r[0] for r in s.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert {t.name for t in schema.TABLES} <= names
        assert s.query("SELECT value FROM meta WHERE key='schema_version'").column(0)[0].as_py() == str(
            schema.SCHEMA_VERSION
        )
        cols = [r[0] for r in s.con.execute("DESCRIBE lots").fetchall()]
        assert cols == schema.LOTS.column_names


def test_write_run_stores_all_rows_and_numbers_runs(tmp_path):
    db = tmp_path / "h.duckdb"
    with open_store(db) as s:
        assert _write(s) == 1
        assert _write(s, seed=10) == 2
    with Store(db, read_only=True) as s:
        n_lots = sum(synthetic_trace(r)["lots"].num_rows for r in range(3))
        assert s.query("SELECT count(*) FROM lots WHERE run_id = 1").column(0)[0].as_py() == n_lots
        assert (
            s.query("SELECT count(DISTINCT replication) FROM batches WHERE run_id = 2").column(0)[0].as_py()
            == 3
        )
        # NaN in the trace becomes NULL in SQL
        assert s.query("SELECT count(*) FROM lots WHERE isnan(done_h)").column(0)[0].as_py() == 0
        assert (
            s.query("SELECT count(*) FROM lots WHERE status = 'wip' AND done_h IS NULL").column(0)[0].as_py()
            > 0
        )
        runs = s.runs().to_pylist()
        assert [r["run_id"] for r in runs] == [2, 1]
        assert runs[0]["final_yield"] == pytest.approx(
            s.summary(2).to_pandas().set_index("kpi").loc["final_yield", "mean"]
        )


def test_a_write_from_another_thread_stores_every_row_and_leaves_no_view(tmp_path):
    """DuckDB finds the Arrow tables by name in the frame that writes (a replacement scan): a write from a worker
    thread finds them too, and the writer's connection is left with no view."""
    db = tmp_path / "h.duckdb"
    out: dict[str, object] = {}

    def work() -> None:
        with open_store(db) as s:
            out["run_ids"] = [_write(s, seed=3), _write(s, seed=4)]
            out["views"] = s.con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchall()

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert out == {"run_ids": [1, 2], "views": [(0,)]}
    with Store(db, read_only=True) as s:
        n_events = sum(synthetic_trace(3 + r)["events"].num_rows for r in range(3))
        assert s.query("SELECT count(*) FROM events WHERE run_id = 1").column(0)[0].as_py() == n_events
        runs = s.query(
            "SELECT run_id, seed, replications, created_at IS NOT NULL AS stamped FROM runs ORDER BY 1"
        )
        assert runs.to_pylist() == [
            {"run_id": 1, "seed": 3, "replications": 3, "stamped": True},
            {"run_id": 2, "seed": 4, "replications": 3, "stamped": True},
        ]


def test_a_long_table_is_stored_in_its_order_in_full_row_groups(tmp_path):
    """insert_arrow hands DuckDB a long table in batches of one row group, which threads write in parallel: the
    rows must come back in the order they went in, and only the last row group may be partial."""
    n = 3 * ROW_GROUP_SIZE + 1234
    rng = np.random.default_rng(7)
    t_h = np.sort(rng.uniform(0, 8760, n))
    cuts = [0, 5000, 5001, 29000, n]  # uneven chunks, as replications give them
    chunks = [
        pa.table(
            {
                "run_id": pa.array(np.full(b - a, 1), pa.int64()),
                "replication": pa.array(np.full(b - a, i), pa.int32()),
                "t_h": pa.array(t_h[a:b]),
                "kind": pa.array(rng.choice(["arrive", "qc_end", "scrap"], b - a)),
                "unit": pa.array(rng.choice(["ALD1", "F1", "QC"], b - a)),
                "lot_id": pa.array(np.arange(a, b), pa.int64()),
                "batch_id": pa.array(rng.integers(-1, 50, b - a), pa.int64()),
            }
        )
        for i, (a, b) in enumerate(zip(cuts, cuts[1:]))
    ]
    tbl = pa.concat_tables(chunks)
    with open_store(tmp_path / "h.duckdb") as s:
        s.con.execute("BEGIN")
        insert_arrow(s.con, "events", tbl)
        s.con.execute("COMMIT")
    with Store(tmp_path / "h.duckdb", read_only=True) as s:
        back = s.query(f"SELECT {', '.join(tbl.column_names)} FROM events ORDER BY rowid")
        groups = (
            s.query(
                "SELECT row_group_id, max(start + count) AS n FROM pragma_storage_info('events') "
                "WHERE column_name = 'lot_id' AND segment_type = 'BIGINT' GROUP BY 1 ORDER BY 1"
            )
            .column("n")
            .to_pylist()
        )
    assert back.equals(tbl.combine_chunks())
    assert groups == [ROW_GROUP_SIZE] * 3 + [1234]


def test_later_writes_leave_an_earlier_runs_storage_as_it_was(tmp_path):
    """Writers do not vacuum (store.MAX_VACUUM_TASKS). With vacuuming, the close after the third write below
    merged the three runs' partial row groups by rewriting all of them, run 1's included."""
    db = tmp_path / "h.duckdb"
    sql = (
        "SELECT column_name, segment_id, block_id, block_offset, count FROM pragma_storage_info(?) "
        "WHERE row_group_id = 0 ORDER BY ALL"
    )

    def run_1_storage() -> dict[str, list[tuple]]:
        with Store(db, read_only=True) as s:
            return {t: s.con.execute(sql, [t]).fetchall() for t in ("events", "lots")}

    for copies in (1, 2, 3):
        with open_store(db) as s:
            _write(s, reps=3, copies=30 * copies)  # 7,200, 14,400 and 21,600 events
        if copies == 1:
            first = run_1_storage()
    assert all(first.values()) and run_1_storage() == first
    with Store(db, read_only=True) as s:
        counts = (
            s.query("SELECT run_id, count(*) AS n FROM events GROUP BY 1 ORDER BY 1").column("n").to_pylist()
        )
    assert counts == [7200, 14400, 21600]


def test_kpis_agree_with_sql_over_stored_tables(tmp_path):
    """The stored KPI values equal an independent recomputation by SQL over lots and batches."""
    db = tmp_path / "h.duckdb"
    with open_store(db) as s:
        _write(s, reps=3, seed=5)
        got = {(r["replication"], r["kpi"]): r["value"] for r in s.query("SELECT * FROM kpis").to_pylist()}
        w, h = 20.0, 200.0
        sql = {
            "good_kg_per_h": f"SELECT replication, sum(mass_kg) / ({h} - {w}) FROM lots WHERE status = 'good' AND done_h BETWEEN {w} AND {h} GROUP BY ALL",
            "final_yield": f"SELECT replication, avg((status = 'good')::DOUBLE) FROM lots WHERE release_h >= {w} AND status IN ('good', 'scrap') GROUP BY ALL",
            "first_pass_yield": f"SELECT replication, avg(first_pass::DOUBLE) FROM lots WHERE release_h >= {w} AND status IN ('good', 'scrap') GROUP BY ALL",
            "lead_time_mean_h": f"SELECT replication, avg(done_h - release_h) FROM lots WHERE release_h >= {w} AND status IN ('good', 'scrap') GROUP BY ALL",
            "lead_time_p95_h": f"SELECT replication, quantile_cont(done_h - release_h, 0.95) FROM lots WHERE release_h >= {w} AND status IN ('good', 'scrap') GROUP BY ALL",
            "wait_p95_h": f"SELECT replication, quantile_cont(wait_h, 0.95) FROM lots WHERE release_h >= {w} GROUP BY ALL",
            "r_int_good_mean": f"SELECT replication, avg(r_int_ohm_cm2) FROM lots WHERE release_h >= {w} AND status = 'good' GROUP BY ALL",
            "furnace_fill": f"SELECT replication, avg(n_lots / capacity_lots) FROM batches WHERE start_h BETWEEN {w} AND {h} GROUP BY ALL",
            "setups": f"SELECT replication, count(*) FILTER (WHERE setup_h > 0) FROM batches WHERE start_h BETWEEN {w} AND {h} GROUP BY ALL",
            "furnace_util": f"""SELECT b.replication, sum(greatest(least(coalesce(end_h, {h}), {h}) - least(greatest(load_start_h, {w}), {h}), 0))
                                / (any_value(u.n) * ({h} - {w})) FROM batches b JOIN (SELECT replication, count(*) n FROM units
                                WHERE kind = 'furnace' GROUP BY ALL) u USING (replication) GROUP BY ALL""",
            "energy_kwh_per_good_kg": f"""SELECT replication, e / g FROM
                (SELECT replication, sum(energy_kwh) e FROM batches WHERE start_h BETWEEN {w} AND {h} GROUP BY ALL)
                JOIN (SELECT replication, sum(mass_kg) g FROM lots WHERE status = 'good' AND done_h BETWEEN {w} AND {h} GROUP BY ALL)
                USING (replication)""",
            "wip_mean": f"SELECT replication, sum(greatest(least(coalesce(done_h, {h}), {h}) - least(greatest(release_h, {w}), {h}), 0)) / ({h} - {w}) FROM lots GROUP BY ALL",
            "scrap_rate_damage": f"SELECT replication, avg((status = 'scrap' AND reason = 'damage')::DOUBLE) FROM lots WHERE release_h >= {w} AND status IN ('good', 'scrap') GROUP BY ALL",
        }
        for kpi, q in sql.items():
            rows = s.query(q).to_pylist()
            assert len(rows) == 3, kpi
            for row in rows:
                rep, value = row.values()
                assert got[(rep, kpi)] == pytest.approx(value, rel=1e-9), (kpi, rep)
        # the stored summary is the mean and t interval of the stored per-replication values
        mean = s.query("SELECT avg(value) FROM kpis WHERE kpi = 'final_yield'").column(0)[0].as_py()
        summ = s.summary(1).to_pandas().set_index("kpi")
        assert summ.loc["final_yield", "mean"] == pytest.approx(mean)


def test_failed_write_leaves_no_rows(tmp_path):
    db = tmp_path / "h.duckdb"
    with open_store(db) as s:
        _write(s)
        bad = {"lots": pa.table({"replication": [0], "lot_id": ["not-a-number"]})}
        with pytest.raises(TwinError, match=r"cannot store the run in .*h\.duckdb \(nothing was written\): "):
            s.write_run({"scenario_name": "bad", "replications": 1, "status": "done"}, bad,
                        stats.kpis_long([], []), stats.summarize([]))  # fmt: skip
        assert s.query("SELECT count(*) FROM runs").column(0)[0].as_py() == 1
        assert s.query("SELECT count(*) FROM lots WHERE run_id > 1").column(0)[0].as_py() == 0


def test_other_schema_version_is_refused_and_left_untouched(tmp_path):
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE meta (key VARCHAR, value VARCHAR); INSERT INTO meta VALUES ('schema_version', '0')"
    )
    con.execute("CREATE TABLE runs (id INTEGER)")
    con.close()
    before = db.read_bytes()
    for ro in (False, True):
        with pytest.raises(
            TwinError,
            match=rf"written by schema version 0, this twin uses {schema.SCHEMA_VERSION}; use another --db",
        ):
            Store(db, read_only=ro)
    assert db.read_bytes() == before


def test_foreign_duckdb_file_is_refused(tmp_path):
    db = tmp_path / "other.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE x (a INTEGER)")
    con.close()
    with pytest.raises(TwinError, match="no twin schema version"):
        open_store(db)


def test_unknown_run_id(tmp_path):
    with open_store(tmp_path / "h.duckdb") as s:
        _write(s)
        with pytest.raises(TwinError, match=r"unknown run id 7 .*runs are 1\.\.1"):
            s.run(7)
        with pytest.raises(TwinError, match="unknown run id 'abc'"):
            s.run("abc")


def test_export_writes_one_parquet_per_table(tmp_path):
    db = tmp_path / "h.duckdb"
    with open_store(db) as s:
        _write(s)
        _write(s, seed=3)
    with Store(db, read_only=True) as s:
        paths = s.export(2, tmp_path / "out")
    names = {p.stem for p in paths}
    assert {"runs", "lots", "batches", "events", "units", "kpis", "kpi_summary"} <= names
    lots = pq.read_table(tmp_path / "out" / "lots.parquet")
    assert set(lots.column("run_id").to_pylist()) == {2}
    assert lots.num_rows == sum(synthetic_trace(3 + r)["lots"].num_rows for r in range(3))


def test_locked_database_names_the_pid(tmp_path, capfd):
    import os
    import subprocess
    import sys
    import time

    db = tmp_path / "h.duckdb"
    open_store(db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('ok', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ok"
        t0 = time.time()
        with pytest.raises(
            TwinError,
            match=rf"database .*h.duckdb is locked by another process \(pid {holder.pid}\); waited 1 s; ",
        ):
            open_store(db, wait_s=1)
        assert 1 <= time.time() - t0 < 10
        assert capfd.readouterr().err == f"waiting for {db} (held by PID {holder.pid}) for up to 1 s ...\n"
    finally:
        holder.kill()
        holder.wait()
    assert os.path.exists(db)


def test_unwritable_path_is_one_line(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(TwinError, match=r"cannot open database .*file.txt/h.duckdb to write") as exc:
        open_store(f / "h.duckdb")
    assert "\n" not in str(exc.value)
    with pytest.raises(TwinError, match="does not exist"):
        Store(tmp_path / "nope.duckdb", read_only=True)


@pytest.mark.parametrize("name", ["h.duckdb", "it's here.duckdb", "memory.duckdb"])
def test_writer_attaches_with_small_row_groups_under_the_files_name(tmp_path, name):
    from twin.store import ROW_GROUP_SIZE

    db = tmp_path / name
    n_lots = sum(synthetic_trace(r)["lots"].num_rows for r in range(3))
    with open_store(db) as s:
        assert s.con.execute("SELECT current_database()").fetchall()[0][0] == (
            db.stem if db.stem != "memory" else "memory_db"
        )
        _write(s, copies=80)  # one run with more lots than a row group of the twin holds
        sizes = s.con.execute(
            "SELECT DISTINCT row_group_id, count FROM pragma_storage_info('lots') WHERE column_id = 0"
        ).fetchall()
        total = s.query("SELECT count(*) FROM lots").column(0)[0].as_py()
    assert total == 80 * n_lots > ROW_GROUP_SIZE
    assert max(c for _, c in sizes) <= ROW_GROUP_SIZE < total  # DuckDB's default would be one row group here
    with Store(db, read_only=True) as s:  # read back by a plain connection
        assert s.query("SELECT count(*) FROM lots").column(0)[0].as_py() == total
        assert s.query("SELECT max(run_id) FROM runs").column(0)[0].as_py() == 1


def test_same_file_twice_in_one_process_is_one_line(tmp_path):
    db = tmp_path / "h.duckdb"
    with open_store(db):
        with pytest.raises(TwinError, match="already open in this process"):
            Store(db, read_only=True)
        with pytest.raises(TwinError, match="already open in this process"):
            open_store(db)
