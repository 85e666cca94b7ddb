"""The DuckDB run history: open with schema-version check, write one run in one transaction, read-only queries.

The tables themselves are defined in `twin.schema`. Simulation happens elsewhere (`twin.runner`); this module only
moves Arrow tables in and out of the database.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from twin import dblock, interrupts, schema
from twin.errors import TwinError

DEFAULT_DB = "twin.duckdb"

ROW_GROUP_SIZE = 16_384
"""Rows per row group when the twin writes. DuckDB's default (122,880) suits bulk loads: an append smaller than a
row group goes to the write-ahead log uncompressed and is compressed again at the next checkpoint. A run appends
10^4-10^5 rows per table, so with the default nearly all of it took that double path (a 10.8 MB log for five
one-year replications). With 16,384 rows most of a run is compressed and written once, during its insert: the
write of five one-year replications takes 0.24 s instead of 0.33 s, and open + write + close 0.37 s instead of
0.52 s (`benchmarks/run.py --only shares`). The size is not stored in the file, so every writer attaches with it."""

MAX_VACUUM_TASKS = 0
"""Vacuum tasks a writer's checkpoints may run: none. A run leaves each table's last row group partial, and at
the close after a write DuckDB checkpointed and vacuumed: it merged the partial row groups of the runs before by
rewriting them, all of them when they fitted in fewer row groups (tests/test_store.py shows run 1 rewritten by
run 3's close). Ten one-year runs of five replications, each written by its own open + write + close as
`twin run` does: 389-420 ms a run with the vacuum, 309-325 ms without; the file is 9 % larger (7.2 MB a run, not
6.6). A study writing 40 runs of two replications into one store takes as long either way (5.75-6.49 s), its
file 5 % larger. The run history only appends (a study's status is the one row ever updated), so vacuuming had
nothing else to reclaim; a command that deletes runs would want it back for its own checkpoint."""

READ_WAIT_S = 5.0
"""Seconds a reader waits, silently, for a writer to let go of the file (a study writing a run, say) before it
says the database is locked."""

HEADLINE_KPIS = ("good_kg_per_h", "final_yield", "lead_time_mean_h", "r_int_good_mean")
"""KPIs shown per run by `twin runs list`."""


def _connect(path: Path, read_only: bool, sandbox: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the database file `path`. Readers connect plainly (`sandbox`: inside twin.sandbox); a
    writer attaches the file to an in-memory session with the twin's ROW_GROUP_SIZE and makes it the default,
    under the name DuckDB itself would give it (the file's stem), so that unqualified table names and
    `current_database()` are unchanged."""
    if sandbox:
        from twin import sandbox as sb

        return sb.connect(path)
    if read_only:
        return duckdb.connect(str(path), read_only=True)
    con = duckdb.connect(":memory:")
    alias = path.stem if path.stem.lower() not in ("memory", "system", "temp", "main") else f"{path.stem}_db"
    quoted = '"' + alias.replace('"', '""') + '"'
    try:
        literal = "'" + str(path).replace("'", "''") + "'"
        con.execute(f"ATTACH {literal} AS {quoted} (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
        con.execute(f"USE {quoted}")
        con.execute(f"SET max_vacuum_tasks = {MAX_VACUUM_TASKS}")
    except BaseException:
        con.close()
        raise
    return con


def _lock_conflict(exc: BaseException) -> str | None:
    """The PID (or "") of the process whose DuckDB lock refused this connection; None for any other error."""
    msg = str(exc)
    if "Could not set lock" not in msg:
        return None
    pid = re.search(r"PID (\d+)", msg)
    return pid.group(1) if pid else ""


def _connect_waiting(
    path: Path, read_only: bool, sandbox: bool, wait_s: float, notify: dblock.Notify | None
) -> duckdb.DuckDBPyConnection:
    """`_connect`, trying again for up to `wait_s` seconds while another process holds DuckDB's lock on the
    file; `notify` (if given) gets one line when the wait begins."""
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        try:
            return _connect(path, read_only, sandbox)
        except duckdb.Error as exc:
            pid = _lock_conflict(exc)
            if pid is None or time.monotonic() >= deadline:
                raise
            if notify is not None and not told:
                notify(dblock.waiting_line(path, pid, wait_s))
                told = True
            time.sleep(min(dblock.POLL_S, max(0.0, deadline - time.monotonic())))


def _connect_error(path: Path, exc: Exception, read_only: bool, wait_s: float = 0.0) -> TwinError:
    msg = str(exc)
    if "Could not set lock" in msg or "Conflicting lock" in msg:
        pid = re.search(r"PID (\d+)", msg)
        who = f" (pid {pid.group(1)})" if pid else ""
        waited = f"; waited {wait_s:g} s" if wait_s > 0 else ""
        return TwinError(
            f"database {path} is locked by another process{who}{waited}; wait for it or use another --db"
        )
    if "different configuration" in msg or "Unique file handle conflict" in msg:
        return TwinError(f"database {path} is already open in this process; close it first")
    if "not a valid DuckDB database" in msg or "database file" in msg and "invalid" in msg.lower():
        return TwinError(f"{path} is not a DuckDB database file")
    first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
    first = re.sub(r"^(IO|Catalog|Serialization|Invalid Input) Error: ", "", first)
    mode = "read" if read_only else "write"
    return TwinError(f"cannot open database {path} to {mode}: {first}")


@functools.cache
def code_version() -> str:
    """Package version plus the git commit of the working tree, when there is one (read once per process: it
    parses the package's metadata, a few ms for every run stored)."""
    from importlib import metadata

    try:
        version = metadata.version("ald-anneal-twin")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    head = Path(__file__).resolve().parent.parent / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref_file = head.parent / ref[5:]
            if ref_file.exists():
                ref = ref_file.read_text().strip()
            else:
                packed = (head.parent / "packed-refs").read_text()
                ref = next(line.split()[0] for line in packed.splitlines() if line.endswith(ref[5:]))
        return f"{version}+g{ref[:10]}"
    except (OSError, StopIteration):
        return version


class Store:
    """An open run-history database. Use `open_store()`; close it (or use `with`) to release the file lock."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        read_only: bool = False,
        check_schema: bool = True,
        sandbox: bool = False,
        wait_s: float | None = None,
        notify: dblock.Notify | None = dblock.stderr_line,
    ):
        """`sandbox` (read-only): the connection of `twin sql`, which reads no file but this one (twin.sandbox).

        A writer first takes the writer lock (twin.dblock), waiting up to `wait_s` seconds (default
        dblock.DEFAULT_WAIT_S) for another writer, and holds it until `close()`; both readers and writers wait
        up to `wait_s` (readers: READ_WAIT_S, silently) for DuckDB's lock on the file. `notify` gets the line a
        waiting writer prints."""
        self.path = Path(path)
        self.read_only = read_only = read_only or sandbox
        self._lock: Path | None = None
        if read_only and not self.path.exists():
            raise TwinError(f"database {self.path} does not exist (run `twin run` first or pass --db)")
        if not read_only and self.path.is_dir():
            raise TwinError(f"database path {self.path} is a directory")
        if read_only:
            wait = READ_WAIT_S if wait_s is None else dblock.check_wait(wait_s)
            notify = None
        else:
            wait = dblock.DEFAULT_WAIT_S if wait_s is None else dblock.check_wait(wait_s)
            self._lock = dblock.acquire(self.path, wait, notify or (lambda line: None))
        try:
            try:
                self.con = _connect_waiting(self.path, read_only, sandbox, wait, notify)
            except (duckdb.Error, OSError) as exc:
                raise _connect_error(self.path, exc, read_only, wait) from None
            try:
                if check_schema:
                    self._check_schema()
                if not read_only:
                    verify_blocks(self.con, self.path)  # a damaged file is refused before anything is added
            except duckdb.Error as exc:
                self.con.close()
                raise _damaged_error(self.path, exc, read_only) from None
            except BaseException:
                self.con.close()
                raise
        except BaseException:
            self._release()
            raise

    # -- schema -------------------------------------------------------------------------------------------
    def _tables(self) -> set[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND table_schema = 'main'"
        ).fetchall()
        return {r[0] for r in rows}

    def schema_version(self) -> str | None:
        """The schema version the file was written with; None if it is not a twin database (no `meta` table)."""
        if "meta" not in self._tables():
            return None
        try:
            rows = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        except duckdb.Error as exc:
            raise _damaged_error(self.path, exc, self.read_only) from None
        return str(rows[0][0]) if rows else "unknown"

    def _check_schema(self) -> None:
        existing = self._tables()
        if "meta" in existing:
            found = self.schema_version()
            if found != str(schema.SCHEMA_VERSION):
                raise TwinError(
                    f"database {self.path} was written by schema version {found}, this twin uses "
                    f"{schema.SCHEMA_VERSION}; use another --db or migrate it"
                )
            missing = [t for t in schema.TABLES if t.name not in existing]
            if missing and not self.read_only:
                self._create(missing, with_meta=False)
            return
        if existing:
            raise TwinError(
                f"database {self.path} has tables but no twin schema version (not a twin database or an "
                f"older one); use another --db"
            )
        if not self.read_only:
            self._create(list(schema.TABLES), with_meta=True)

    def _create(self, tables: Sequence[schema.Table], with_meta: bool) -> None:
        try:
            self.con.execute("BEGIN")
            for t in tables:
                self.con.execute(t.ddl())
            if with_meta:
                self.con.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?), ('created_at', ?), ('created_by', ?)",
                    [str(schema.SCHEMA_VERSION), datetime.now(UTC).isoformat(), code_version()],
                )
            self.con.execute("COMMIT")
        except duckdb.Error as exc:
            self.con.execute("ROLLBACK")
            raise TwinError(f"cannot initialise database {self.path}: {str(exc).splitlines()[0]}") from None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def close(self) -> None:
        try:
            self.con.close()
            if not self.read_only:
                _remember_verified(self.path)
        finally:
            self._release()

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            dblock.release(lock)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------------------------
    def _require_writable(self) -> None:
        if self.read_only:
            raise TwinError(f"database {self.path} is open read-only")

    def create_study(self, name: str, study_json: str, study_hash: str) -> int:
        """Insert a `studies` row with status `running`; returns its id."""
        self._require_writable()
        self.con.execute("BEGIN")
        try:
            study_id = self.con.execute("SELECT coalesce(max(study_id), 0) + 1 FROM studies").fetchall()[0][0]
            self.con.execute(
                "INSERT INTO studies VALUES (?, ?, ?, ?, ?, ?, 'running')",
                [
                    study_id,
                    name,
                    study_json,
                    study_hash,
                    code_version(),
                    datetime.now(UTC).replace(tzinfo=None),
                ],
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return int(study_id)

    def finish_study(self, study_id: int, status: str = "done") -> None:
        """Set a study's status (`done` or `failed`)."""
        self._require_writable()
        self.con.execute("UPDATE studies SET status = ? WHERE study_id = ?", [status, study_id])

    def write_run(
        self,
        run: Mapping[str, Any],
        tables: Mapping[str, pa.Table],
        kpis: pa.Table,
        summary: pa.Table,
    ) -> int:
        """Store one run in ONE transaction and return its new run id.

        `run` holds the `runs` columns except `run_id`/`created_at`; `tables` the trace tables (events, lots,
        batches, units) of all replications concatenated, each with a leading `replication` column; `kpis` the
        long KPI table (replication, kpi, value); `summary` the per-KPI summary (kpi, unit, n, mean, std,
        ci_low, ci_high). Nothing is visible to readers until COMMIT; a killed process leaves no rows, and Ctrl-C
        is held back until the COMMIT (or ROLLBACK) is done, then raised.
        """
        self._require_writable()
        # Ctrl-C waits for COMMIT or ROLLBACK, so that it is known what was stored
        with interrupts.deferred():
            run_id = self._write_run(run, tables, kpis, summary)
            interrupts.stored.append((str(self.path), run_id))
        return run_id

    def _write_run(
        self, run: Mapping[str, Any], tables: Mapping[str, pa.Table], kpis: pa.Table, summary: pa.Table
    ) -> int:
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            row = dict(run)
            row["created_at"] = datetime.now(UTC).replace(tzinfo=None)
            cols = [c for c in schema.RUNS.column_names if c != "run_id"]
            run_id = int(  # the next id and the row in one statement
                con.execute(
                    f"INSERT INTO runs (run_id, {', '.join(cols)}) "
                    f"SELECT coalesce(max(run_id), 0) + 1, {', '.join('?' * len(cols))} FROM runs RETURNING run_id",
                    [row.get(c) for c in cols],
                ).fetchall()[0][0]
            )
            for name, tbl in tables.items():
                self._insert(name, tbl, run_id)
                _hold_for_test()
            self._insert("kpis", kpis, run_id)
            self._insert("kpi_summary", summary, run_id)
            con.execute("COMMIT")
        except BaseException as exc:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            if isinstance(exc, duckdb.Error):
                raise TwinError(
                    f"cannot store the run in {self.path} (nothing was written): {_one_line(exc)}"
                ) from exc
            raise
        return run_id

    def _insert(self, name: str, tbl: pa.Table, run_id: int) -> None:
        """Bulk insert an Arrow table by column name (missing columns become NULL, unknown ones are dropped)."""
        known = schema.table(name).column_names
        keep = [c for c in tbl.column_names if c in known and c != "run_id"]
        tbl = _nan_to_null(tbl.select(keep))
        tbl = tbl.add_column(0, "run_id", pa.repeat(pa.scalar(run_id, pa.int64()), tbl.num_rows))
        insert_arrow(self.con, name, tbl)

    # -- reading ------------------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run SQL and return an Arrow table; SQL errors become a one-line TwinError."""
        try:
            with interrupts.query_interrupts():
                return interrupts.interruptible(self.con, lambda: _fetch(self.con.sql(sql, params=params)))
        except duckdb.Error as exc:  # (an interrupted query is a KeyboardInterrupt by now)
            raise TwinError(f"SQL error: {_one_line(exc)}") from None

    def query_user(self, sql: str, read: str | os.PathLike[str] | None = None) -> pa.Table:
        """Run one statement of user SQL (the `twin sql` path; open the store with `sandbox=True`), with the
        files of the directory `read` as tables."""
        from twin import sandbox

        if read is not None:
            sandbox.register_dir(self.con, Path(read), {t.lower() for t in self._tables()})

        def run() -> pa.Table:
            rel = sandbox.run(self.con, sql)
            try:
                return _fetch(rel)
            except duckdb.InterruptException:
                raise
            except duckdb.Error as exc:
                raise sandbox.sandbox_error(exc) from None

        with interrupts.query_interrupts():
            return interrupts.interruptible(self.con, run)

    def runs(self, limit: int | None = None) -> pa.Table:
        """Runs, newest first, with headline KPI means as extra columns."""
        pivots = ", ".join(f"max(CASE WHEN s.kpi = '{k}' THEN s.mean END) AS {k}" for k in HEADLINE_KPIS)
        sql = f"""
            SELECT r.run_id, r.study_id, r.scenario_name, r.seed, r.replications, r.horizon_h,
                   r.created_at, r.wall_s, r.status, {pivots}
            FROM runs r LEFT JOIN kpi_summary s USING (run_id)
            GROUP BY ALL ORDER BY r.run_id DESC
        """
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.query(sql)

    def run(self, run_id: int | str) -> dict[str, Any]:
        """The `runs` row of `run_id` as a dict; TwinError when there is none."""
        rid = parse_run_id(run_id)
        tbl = self.query("SELECT * FROM runs WHERE run_id = ?", [rid])
        if tbl.num_rows == 0:
            last = self.con.execute("SELECT max(run_id) FROM runs").fetchall()[0][0]
            hint = f"runs are 1..{last}" if last else "the database has no runs yet"
            raise TwinError(f"unknown run id {run_id} in {self.path} ({hint})")
        return tbl.to_pylist()[0]

    def summary(self, run_id: int | str) -> pa.Table:
        """The KPI summary of a run (kpi, unit, n, mean, std, ci_low, ci_high)."""
        rid = self.run(run_id)["run_id"]
        return self.query(
            "SELECT kpi, unit, n, mean, std, ci_low, ci_high FROM kpi_summary WHERE run_id = ? ORDER BY rowid",
            [rid],
        )

    def run_tables(self, run_id: int | str) -> dict[str, pa.Table]:
        """Every per-run table's rows of one run."""
        rid = self.run(run_id)["run_id"]
        existing = self._tables()
        return {
            t.name: self.query(f"SELECT * FROM {t.name} WHERE run_id = ?", [rid])
            for t in schema.TABLES
            if t.per_run and t.name in existing
        }

    def export(self, run_id: int | str, directory: str | os.PathLike[str], force: bool = False) -> list[Path]:
        """Write every per-run table of one run as `<table>.parquet` into `directory`, all files or none
        (twin.outputs.write_directory_atomic: a non-empty directory is refused unless `force`)."""
        import pyarrow.parquet as pq

        from twin.outputs import write_directory_atomic

        tables = self.run_tables(run_id)

        def writer(tbl: pa.Table) -> Any:
            return lambda path: pq.write_table(tbl, path)

        files = {f"{name}.parquet": writer(tbl) for name, tbl in tables.items()}
        return write_directory_atomic(directory, files, force=force)


def insert_arrow(con: duckdb.DuckDBPyConnection, name: str, tbl: pa.Table) -> None:
    """Bulk insert an Arrow table into table `name` by column name, in the caller's transaction.

    DuckDB reads the Arrow table from this function's local variable `_twin_arrow_rows`: a replacement scan, which
    looks for the name in the frame that calls `execute` (so `con` must be DuckDB's own connection, not a Python
    wrapper of it). Registering the table as a view and unregistering it cost 1.2 ms a table: a run's write of
    five one-year replications took 240 ms instead of 252 (medians of 8, interleaved).

    A table longer than a row group is handed over in batches of exactly ROW_GROUP_SIZE rows. DuckDB's insert
    gives each batch to a thread, and a thread that holds a full row group compresses and writes it at once; the
    replications' own chunks (45,000 events each) left every thread a remainder, and the remainders were merged and
    written by one thread at the end, as partial row groups between full ones. The write of five one-year
    replications: 227-239 ms -> 209-215 ms; of one, 101 -> 93 ms (medians of 12-18, interleaved). Rows keep their
    order (DuckDB preserves insertion order); tests/test_store.py checks both."""
    if tbl.num_rows > ROW_GROUP_SIZE:
        tbl = pa.Table.from_batches(tbl.combine_chunks().to_batches(max_chunksize=ROW_GROUP_SIZE), tbl.schema)
    _twin_arrow_rows = tbl  # noqa: F841 (DuckDB reads it by name)
    con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _twin_arrow_rows")


def _nan_to_null(tbl: pa.Table) -> pa.Table:
    """NaN (the trace's "not applicable") becomes SQL NULL, so that avg(), count() and comparisons behave. (In the
    INSERT, as `nullif(x, 'NaN')` for every floating column, DuckDB took 15 ms longer a run than this.)"""
    import pyarrow.compute as pc

    for i, f in enumerate(tbl.schema):
        if pa.types.is_floating(f.type):
            col = tbl.column(i)
            nan = pc.is_nan(col)
            if any(chunk.true_count for chunk in nan.chunks):  # most columns have none: leave them be
                tbl = tbl.set_column(i, f.name, pc.if_else(nan, pa.scalar(None, f.type), col))
    return tbl


def _fetch(rel: duckdb.DuckDBPyRelation | None) -> pa.Table:
    if rel is None:
        return pa.table({})
    fetch = getattr(rel, "to_arrow_table", None) or rel.arrow  # duckdb 2 / 1.x
    return fetch()


def _one_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return " ".join(lines[:2]) if lines else type(exc).__name__


def parse_run_id(run_id: int | str) -> int:
    try:
        return int(run_id)
    except (TypeError, ValueError):
        raise TwinError(
            f"unknown run id {run_id!r}: run ids are whole numbers (see `twin runs list`)"
        ) from None


def open_store(
    path: str | os.PathLike[str] = DEFAULT_DB, read_only: bool = False, wait_s: float | None = None
) -> Store:
    """Open (and create if needed) a run-history database; checks the schema version. A writer holds the
    writer lock (twin.dblock) until it is closed."""
    return Store(path, read_only=read_only, wait_s=wait_s)


def _hold_for_test() -> None:
    """Test hook: with TWIN_TEST_HOLD_WRITE=FILE set, touch FILE inside the write transaction and sleep.

    Lets the atomicity test kill a process that is halfway through writing a run.
    """
    flag = os.environ.get("TWIN_TEST_HOLD_WRITE")
    if flag:
        Path(flag).write_text(json.dumps({"pid": os.getpid()}))
        time.sleep(float(os.environ.get("TWIN_TEST_HOLD_WRITE_S", "60")))


# -- damaged files ------------------------------------------------------------------------------------------
_VERIFIED: dict[Path, tuple[int, int, int, int]] = {}
"""Files this process has verified, or written itself since: their identity, size and mtime at that time."""


def _file_key(path: Path) -> tuple[Path, tuple[int, int, int, int]] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return path.resolve(), (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _remember_verified(path: Path) -> None:
    key = _file_key(path)
    if key is not None:
        _VERIFIED[key[0]] = key[1]


def verify_blocks(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Read every column of every table of the file once, so that DuckDB checks the checksum of every block in
    use; raises duckdb.Error on the first damaged one. A writer only reads the blocks it appends to: without
    this, `twin run` stored runs into a file whose older blocks were overwritten, and reads failed later.

    About 50 ms for a 20 MB history; done once per file and process (a study reopens its file between writes),
    again when another process has changed the file since."""
    key = _file_key(path)
    if key is not None and _VERIFIED.get(key[0]) == key[1]:
        return
    tables = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = 'main' AND table_type = 'BASE TABLE'"
    ).fetchall()
    for (name,) in tables:
        quoted = '"' + name.replace('"', '""') + '"'
        con.execute(f"SELECT count(hash(t)) FROM {quoted} AS t").fetchall()
    _remember_verified(path)


def _damaged_error(path: Path, exc: duckdb.Error, read_only: bool) -> TwinError:
    """A one-line error for a database DuckDB cannot read (a block whose checksum does not match, ...)."""
    detail = re.sub(r"^(IO|Internal|Serialization|Invalid Input) Error: ", "", _one_line(exc))
    if "Corrupt database file" in detail or "checksum" in detail:
        todo = "" if read_only else "; nothing was written"
        return TwinError(
            f"database {path} is damaged ({detail}){todo}: restore it from a backup or use another --db"
        )
    return TwinError(f"cannot open database {path} to {'read' if read_only else 'write'}: {detail}")
