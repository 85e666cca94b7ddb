"""Ctrl-C and what was stored: a write (or a study's bookkeeping) holds Ctrl-C back until it is complete, and the
runs this process stored are remembered, so that the line an interrupted command prints counts what is stored.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

stored: list[tuple[str, int]] = []
"""(database, run id) of every run this process committed since `forget()`."""


def forget() -> None:
    """Start counting anew (each CLI command does, so that runs of an earlier command in this process do not
    count)."""
    stored.clear()


@contextmanager
def deferred(reraise: bool = True) -> Iterator[list[int]]:
    """Hold Ctrl-C (SIGINT) back in this block; at its end raise KeyboardInterrupt if one came meanwhile
    (`reraise=False`: only note it in the list the block gets, for code that is already handling one).

    Outside the main thread (where Python cannot set signal handlers) the block runs unprotected."""
    came: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield came
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: came.append(signum))
    try:
        yield came
    except BaseException as exc:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
        if came and reraise and not isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt from exc
        raise
    signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    if came and reraise:
        raise KeyboardInterrupt


@contextmanager
def query_interrupts() -> Iterator[None]:
    """DuckDB stops a query on Ctrl-C and raises RuntimeError("Query interrupted") (or its InterruptException):
    raise the KeyboardInterrupt it was instead."""
    try:
        yield
    except Exception as exc:
        if type(exc).__name__ == "InterruptException" or (
            isinstance(exc, RuntimeError) and "interrupted" in str(exc).lower()
        ):
            raise KeyboardInterrupt from None
        raise


def interruptible(con: Any, fn: Callable[[], T]) -> T:
    """`fn()`, a query on the DuckDB connection `con`, run in a thread while this one waits, so that Ctrl-C
    interrupts it at once (`con.interrupt()`). DuckDB notices a signal by itself only at some points of a plan:
    an aggregate over a long range ran on for minutes."""
    if threading.current_thread() is not threading.main_thread():
        return fn()
    box: dict[str, Any] = {}
    # an Event, not Thread.join: a join that Ctrl-C cut short can return early on the next call
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - raised again in the waiting thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="twin-query", daemon=True).start()
    try:
        while not done.wait(0.1):
            pass
    except KeyboardInterrupt:
        with deferred(reraise=False):  # until the query has stopped (milliseconds), the connection is busy
            con.interrupt()
            while not done.wait(0.05):
                con.interrupt()  # the thread may have been between two statements
        raise
    if "error" in box:
        raise box["error"]
    return box["value"]


def message() -> str:
    """The one line for Ctrl-C: what this process stored before it (nothing, or the run ids per database)."""
    if not stored:
        return "interrupted: nothing was stored"
    by_db: dict[str, list[int]] = {}
    for db, run_id in stored:
        by_db.setdefault(db, []).append(run_id)
    parts = []
    for db, ids in by_db.items():
        if len(ids) == 1:
            parts.append(f"run {ids[0]} was stored in {db}")
        else:
            parts.append(f"{len(ids)} runs were stored in {db} (run ids {', '.join(map(str, ids))})")
    return "interrupted: " + "; ".join(parts)
