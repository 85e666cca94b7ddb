"""The writer lock of a run-history database: one process at a time stores into a file, and it takes the lock
before it simulates; another writer waits for it (saying so on stderr) or gives up with one line.

The lock is `flock` on `<db>.lock` beside the database, separate from DuckDB's own lock on the file, so that
readers (`twin runs list`, `twin sql`) can open the database between the writes of a run or a study.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from twin.errors import TwinError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: DuckDB's own lock is the only one
    fcntl = None  # type: ignore[assignment]

DEFAULT_WAIT_S = 600.0
"""Seconds a writer waits for another one before it gives up (`--wait`)."""

STORE_WAIT_S = DEFAULT_WAIT_S
"""Seconds a writer that has simulated waits, at least, for readers to let go of the file before it gives up
storing (so that `--wait 0` does not lose a run to a `twin runs list`)."""

POLL_S = 0.2

Notify = Callable[[str], None]


def stderr_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_wait(wait_s: float) -> float:
    """`wait_s` as a float, or TwinError unless it is a finite number of seconds >= 0."""
    try:
        value = float(wait_s)
    except (TypeError, ValueError):
        raise TwinError(f"--wait must be a number of seconds, got {wait_s!r}") from None
    if not math.isfinite(value) or value < 0:
        raise TwinError(f"--wait must be a finite number of seconds >= 0, got {wait_s}")
    return value


def lock_path(db: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(db)}.lock")


class _Held:
    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path
        self.count = 1


_held: dict[Path, _Held] = {}
_guard = threading.Lock()


@contextmanager
def writer_lock(
    db: str | os.PathLike[str], wait_s: float = DEFAULT_WAIT_S, notify: Notify = stderr_line
) -> Iterator[None]:
    """Hold the writer lock of `db` in this block; wait up to `wait_s` seconds for another process to release
    it (`notify` gets one line when the wait begins). Re-entrant within a process."""
    key = acquire(db, wait_s, notify)
    try:
        yield
    finally:
        release(key)


def acquire(db: str | os.PathLike[str], wait_s: float = DEFAULT_WAIT_S, notify: Notify = stderr_line) -> Path:
    """Take the writer lock of `db` (see `writer_lock`); returns the key for `release`."""
    wait_s = check_wait(wait_s)
    path = lock_path(db)
    key = path.resolve() if path.parent.exists() else path.absolute()
    with _guard:
        held = _held.get(key)
        if held is not None:
            held.count += 1
            return key
    if fcntl is None:  # pragma: no cover
        return key
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise TwinError(f"cannot open database {db} to write: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            pid = _holder(path)
            if time.monotonic() >= deadline:
                who = f" (PID {pid})" if pid else ""
                raise TwinError(
                    f"database {db} is in use by another writer{who}; waited {wait_s:g} s and simulated "
                    "nothing; try again later, raise --wait or use another --db"
                ) from None
            if not told:
                notify(waiting_line(db, pid, wait_s))
                told = True
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
            continue
        if not _same_file(fd, path):  # the holder removed the file as we opened it: lock the new one
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        with _guard:
            _held[key] = _Held(fd, path)
        return key


def release(key: Path) -> None:
    """Give back a lock taken by `acquire`; the last release removes the lock file."""
    with _guard:
        held = _held.get(key)
        if held is None:
            return
        held.count -= 1
        if held.count > 0:
            return
        del _held[key]
    try:
        held.path.unlink()  # before unlocking, so that a waiter that then locks the old file sees it is gone
    except OSError:
        pass
    os.close(held.fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def waiting_line(db: str | os.PathLike[str], pid: str | None, wait_s: float) -> str:
    """The line a waiting process prints once: `waiting for twin.duckdb (held by PID 123) for up to 600 s ...`."""
    who = f" (held by PID {pid})" if pid else ""
    return f"waiting for {db}{who} for up to {wait_s:g} s ..."


def _holder(path: Path) -> str | None:
    """The PID of the process holding the lock, as it wrote it into the file; None if not known."""
    try:
        pid = path.read_text().strip()
    except OSError:
        return None
    return pid if pid.isdigit() else None
