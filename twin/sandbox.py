"""The sandbox of `twin sql`: a read-only DuckDB connection that reads no file but the database, installs and loads
no extension, reaches no network and cannot change its own settings; plus the user's `--read DIR` files as tables.

What keeps a query in is DuckDB's own configuration (SANDBOX_CONFIG), not a look at the statement.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb

from twin.errors import TwinError

SANDBOX_CONFIG: dict[str, Any] = {
    # no file but the database itself: COPY, EXPORT, ATTACH, read_csv/read_text/read_blob/glob, URLs, INSTALL
    "enable_external_access": "false",
    # no extension fetched or loaded behind the query's back (httpfs for a URL, for example)
    "autoinstall_known_extensions": "false",
    "autoload_known_extensions": "false",
    "allow_community_extensions": "false",
    # no secret written to ~/.duckdb/stored_secrets
    "allow_persistent_secrets": "false",
    # a query larger than memory fails instead of spilling into `<db>.tmp/`
    "temp_directory": "",
    # last: SET, RESET, PRAGMA and CALL cannot undo any of the above
    "lock_configuration": "true",
}
"""DuckDB settings of the `twin sql` connection, given to `duckdb.connect` so they hold before any statement.

Built-in extensions (parquet, json, core functions) stay usable; they are part of DuckDB's binary."""

READ_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "json",
                ".ndjson": "json"}  # fmt: skip
"""File endings `--read DIR` makes into tables, and the Arrow dataset format that reads them."""


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the database `path` inside the sandbox."""
    return duckdb.connect(str(path), read_only=True, config=SANDBOX_CONFIG)


def register_dir(con: duckdb.DuckDBPyConnection, directory: Path, taken: set[str]) -> list[str]:
    """Make every CSV, TSV, Parquet and JSON-lines file directly in `directory` a table named after the file
    (`qc.csv` -> `qc`); returns the names. The files are read by Arrow on the Python side, so the sandbox still
    lets DuckDB open no file but the database, and nothing can write into `directory`. `taken` holds the
    database's table names (lower case); a file that would hide one is refused."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds

    if not directory.is_dir():
        raise TwinError(f"--read {directory}: not a directory")
    names: dict[str, Path] = {}  # lower-case table name -> file
    for f in sorted(directory.iterdir()):
        fmt = READ_FORMATS.get(f.suffix.lower())
        if fmt is None or not f.is_file():
            continue
        name = f.stem
        if name.lower() in taken:
            raise TwinError(
                f"--read {directory}: {f.name} has the name of the database's table {name}; rename the file"
            )
        if name.lower() in names:
            other = names[name.lower()].name
            raise TwinError(
                f"--read {directory}: {other} and {f.name} would both be table {name}; rename one"
            )
        try:
            if fmt == "tsv":
                form: Any = ds.CsvFileFormat(parse_options=pacsv.ParseOptions(delimiter="\t"))
            else:
                form = fmt
            dataset = ds.dataset(str(f), format=form)
        except (pa.ArrowException, OSError) as exc:
            raise TwinError(f"--read {directory}: cannot read {f.name}: {_arrow_line(exc)}") from None
        con.register(name, dataset)
        names[name.lower()] = f
    if not names:
        endings = ", ".join(sorted(READ_FORMATS))
        raise TwinError(f"--read {directory}: no file ending in {endings} in it")
    return [f.stem for f in names.values()]


def run(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """Run ONE statement of user SQL in the sandbox; returns DuckDB's relation (None for a statement without
    rows). Several statements are refused, so that no result is silently dropped."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise TwinError(f"SQL error: {one_line(exc)}") from None
    if not statements:
        raise TwinError("SQL error: no statement given")
    if len(statements) > 1:
        raise TwinError(f"twin sql runs one statement at a time, got {len(statements)}; run them one by one")
    try:
        return con.sql(sql)
    except duckdb.InterruptException:
        raise
    except duckdb.Error as exc:
        raise sandbox_error(exc) from None


def sandbox_error(exc: duckdb.Error) -> TwinError:
    """The one line for a DuckDB error of user SQL, saying which wall of the sandbox the query met."""
    msg = one_line(exc)
    file = re.search(r'Cannot access (?:file|directory) "([^"]*)"', msg)
    if file and "/extensions/" in file.group(1) or "external extensions is disabled" in msg:
        return TwinError("twin sql installs and loads no extensions")
    if file:
        return TwinError(
            f'twin sql reads only the database: "{file.group(1)}" is outside it (to query your own CSV or '
            "Parquet files, pass --read DIR and use each file as a table named after it)"
        )
    locked = re.search(r'Cannot change configuration option "([^"]*)"', msg)
    if locked:
        return TwinError(f"twin sql cannot change settings: {locked.group(1)} is locked")
    write = re.search(r'Cannot execute statement of type "([^"]*)" on database .* read-only mode', msg)
    if write:
        return TwinError(f"twin sql is read-only: {write.group(1)} statements are not allowed")
    return TwinError(f"SQL error: {msg}")


def one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return " ".join(lines[:2]) if lines else type(exc).__name__


def _arrow_line(exc: BaseException) -> str:
    text = one_line(exc)
    return re.sub(r"^Error creating dataset\. Could not read schema from '[^']*'\. ", "", text)
