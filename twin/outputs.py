"""Files the commands write: written under a temporary name beside the target and moved into place, so a failure
never leaves a half-written file behind or replaces a good one with a broken one.

Every file output of the CLI goes through here: `write_text_atomic` / `write_bytes_atomic` for content in memory,
`write_with` for a library that writes a file itself (Parquet, a plot, a profile), and `write_directory_atomic`
for a set of files that belong together (`twin export`). A failed write raises TwinError naming the target and
leaves neither the target nor a temporary file (a process killed with SIGKILL can leave a temporary file, named
`.<target>.<random>.tmp`, never a partial target).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from twin.errors import TwinError

Writer = Callable[[Path], Any]
"""Writes a whole file at the path it is given (a temporary one)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(exc: OSError) -> str:
    """The system's words for the error ("No space left on device"), also for Arrow's OSErrors, which only
    carry the number in their message ("Error writing bytes to file. Detail: [errno 28] ...")."""
    found = re.search(r"\[errno (\d+)\]", str(exc))
    if found:
        return os.strerror(int(found.group(1)))
    return exc.strerror or str(exc).strip().splitlines()[0]


def _make_parents(directory: Path) -> list[Path]:
    """Create `directory` and its missing parents; returns those created, deepest first (to undo them)."""
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    directory.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(dirs: list[Path]) -> None:
    for d in dirs:
        with contextlib.suppress(OSError):
            d.rmdir()


def write_with(path: str | os.PathLike[str], write: Writer, *, mode: int | None = None) -> Path:
    """Let `write(tmp)` write the whole file at a temporary path beside `path`, then move it onto `path`.

    The file gets `mode`, else the mode of the file it replaces, else the umask's default. OSError (also from
    `write`) becomes a TwinError naming `path`; any other exception of `write` is re-raised as is. Either way
    `path` is unchanged and the temporary file is gone; directories created for it are removed again.
    """
    target = Path(path)
    if target.is_dir():
        raise TwinError(f"cannot write {target}: it is a directory")
    created: list[Path] = []
    try:
        created = _make_parents(target.parent)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        _remove_empty(created)
        raise TwinError(f"cannot write {target}: {_reason(exc)}") from None
    tmp = Path(name)
    try:
        os.close(fd)
        if mode is None:
            mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        write(tmp)
        with open(tmp, "rb+") as fh:  # on disk before it has the target's name
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        _remove_empty(created)
        if isinstance(exc, OSError):
            raise TwinError(f"cannot write {target}: {_reason(exc)}") from None
        raise
    return target


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> Path:
    """Write `data` to `path` atomically (see `write_with`)."""
    return write_with(path, lambda tmp: tmp.write_bytes(data), mode=mode)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, mode: int | None = None) -> Path:
    """Write `text` (UTF-8) to `path` atomically; TwinError naming the path when it cannot be written."""
    return write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), mode=mode)


def write_parquet_atomic(path: str | os.PathLike[str], table: Any) -> Path:
    """Write an Arrow table as a Parquet file atomically. A table Parquet cannot hold (e.g. an interval column)
    is a TwinError naming the file and the reason; nothing is left behind."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return write_with(path, lambda tmp: pq.write_table(table, tmp))
    except pa.ArrowException as exc:
        raise TwinError(f"cannot write {path} as Parquet: {str(exc).strip().splitlines()[0]}") from None


def write_directory_atomic(
    directory: str | os.PathLike[str], files: Mapping[str, Writer], *, force: bool = False
) -> list[Path]:
    """Write a set of files into `directory`, all or nothing: `files` maps a file name to its writer.

    Every file is first written into a temporary directory beside `directory`. If `directory` does not exist
    or is empty, the temporary directory is then renamed onto it in one step. A non-empty `directory` is refused
    (TwinError) unless `force`: then each file replaces the file of the same name there, and the directory's
    other files are left alone. On any failure `directory` is as it was and the temporary directory is gone.
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise TwinError(f"cannot write to {target}: it is a file, not a directory")
    if target.is_dir() and not force:
        present = sorted(p.name for p in target.iterdir())
        if present:
            shown = ", ".join(present[:3]) + (", ..." if len(present) > 3 else "")
            raise TwinError(
                f"{target} is not empty ({len(present)} entries: {shown}); use another directory, or --force "
                f"to replace the files of the same names"
            )
    created: list[Path] = []
    try:
        created = _make_parents(target.parent)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        _remove_empty(created)
        raise TwinError(f"cannot write to {target}: {_reason(exc)}") from None
    try:
        mask = _umask()
        os.chmod(staging, 0o777 & ~mask)
        mode = 0o666 & ~mask
        for name, write in files.items():
            p = staging / name
            write(p)
            os.chmod(p, mode)
            with open(p, "rb+") as fh:
                os.fsync(fh.fileno())
        if not target.exists() or not any(target.iterdir()):
            os.replace(staging, target)  # rename(2) replaces an empty directory
        else:
            for name in files:
                os.replace(staging / name, target / name)
            staging.rmdir()
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        if isinstance(exc, OSError):
            raise TwinError(f"cannot write to {target}: {_reason(exc)}") from None
        raise
    return [target / name for name in files]
