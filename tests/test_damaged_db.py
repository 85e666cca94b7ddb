"""A run-history file whose blocks were overwritten is refused for writes as it is for reads: one line, exit 2,
nothing added to it (DuckDB checks a block's checksum only when it reads the block, and a writer reads few)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import duckdb
import pytest
from conftest import SMALL_SCENARIO, run_twin

from twin import store as store_module
from twin.errors import TwinError
from twin.store import Store

DAMAGED = (
    r"^error: database .*h\.duckdb is damaged \(Corrupt database file: computed checksum \d+ does not match "
    r"stored checksum \d+ in block at location \d+\){todo}: restore it from a backup or use another --db$"
)


def _one_line(proc) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _damage_block_of(db: Path, table: str) -> None:
    """Overwrite 1 KB of the first data segment of `table` (the file header is 3 x 4 KB, then the blocks, each
    with an 8-byte checksum before its data)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        block_size = con.execute("SELECT block_size FROM pragma_database_size()").fetchall()[0][0]
        block_id, block_offset = con.execute(
            f"SELECT block_id, block_offset FROM pragma_storage_info('{table}') WHERE block_id >= 0 "
            "ORDER BY block_id, block_offset LIMIT 1"
        ).fetchall()[0]
    finally:
        con.close()
    with db.open("r+b") as fh:
        fh.seek(3 * 4096 + block_id * block_size + 8 + block_offset)
        fh.write(b"\xde\xad\xbe\xef" * 256)


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def history(tmp_path) -> Path:
    (tmp_path / "s.yaml").write_text(SMALL_SCENARIO.format(hours=120, warmup=20))
    proc = run_twin("run", "s.yaml", "-n", "2", "--db", "h.duckdb", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "h.duckdb"


@pytest.mark.parametrize("table", ["lots", "events", "meta"])
def test_a_damaged_database_is_refused_for_writes_as_for_reads(history, table):
    _damage_block_of(history, table)
    con = duckdb.connect(str(history), read_only=True)  # the damage is real: DuckDB cannot read that table
    with pytest.raises(duckdb.Error, match="Corrupt database file"):
        con.execute(f"SELECT count(hash(t)) FROM {table} t").fetchall()
    con.close()
    before = _sha(history)
    proc = run_twin("run", "s.yaml", "-n", "1", "--db", "h.duckdb", cwd=history.parent)
    assert proc.returncode == 2 and "stored" not in proc.stdout
    assert re.match(DAMAGED.format(todo="; nothing was written"), _one_line(proc))
    assert _sha(history) == before  # not a byte added
    proc = run_twin("sql", f"SELECT * FROM {table}", "--db", "h.duckdb", cwd=history.parent)
    assert proc.returncode == 2 and "Corrupt database file" in _one_line(proc)


def test_reading_a_damaged_catalog_is_one_line(history):
    """The block holding the `meta` table is read when any command opens the file: one line, not a traceback."""
    _damage_block_of(history, "meta")
    for args in (["runs", "list"], ["sql", "SELECT 1"], ["runs", "show", "1"]):
        proc = run_twin(*args, "--db", "h.duckdb", cwd=history.parent)
        assert proc.returncode == 2, args
        assert re.match(DAMAGED.format(todo=""), _one_line(proc)), args


def test_a_file_is_verified_once_per_process_until_someone_else_changes_it(history, monkeypatch):
    """A study reopens its file between writes: the whole-file check runs once, and again only when the file
    changed behind this process's back."""
    scans: list[str] = []
    real = store_module.verify_blocks

    def counting(con, path):
        key = store_module._file_key(path)
        if store_module._VERIFIED.get(key[0]) != key[1]:
            scans.append(str(path))
        return real(con, path)

    monkeypatch.setattr(store_module, "verify_blocks", counting)
    for _ in range(3):
        Store(history).close()
    assert len(scans) == 1
    _damage_block_of(history, "lots")
    with pytest.raises(TwinError, match=r"is damaged \(Corrupt database file"):
        Store(history)
    assert len(scans) == 2
