"""Profiling helper for `twin run --profile FILE`: run a function under cProfile and write the stats file.

Read the file with `python -m pstats FILE` or a viewer such as snakeviz; nothing here depends on the benchmarks.
"""

from __future__ import annotations

import cProfile
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from twin.errors import TwinError

T = TypeVar("T")


def profile_to(path: str | os.PathLike[str], fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call `fn(*args, **kwargs)` under cProfile, write the stats to `path` (pstats format), return its result.

    The stats are written even when `fn` raises, so a slow failing run can still be inspected (its own error is
    raised, not one of writing the stats).
    """
    out = Path(path)
    if out.is_dir():
        raise TwinError(f"--profile {out}: is a directory, give a file name (e.g. run.prof)")
    if not out.parent.exists():
        raise TwinError(f"--profile {out}: directory {out.parent} does not exist")
    prof = cProfile.Profile()
    try:
        result = prof.runcall(fn, *args, **kwargs)
    except BaseException:
        try:
            _dump(prof, out)
        except TwinError:
            pass  # the run's own error is the one to report
        raise
    _dump(prof, out)
    return result


def _dump(prof: cProfile.Profile, out: Path) -> None:
    from twin.outputs import write_with

    try:
        write_with(out, lambda tmp: prof.dump_stats(str(tmp)))
    except TwinError as exc:
        raise TwinError(f"--profile {out}: {exc}") from None


def top_functions(path: str | os.PathLike[str], n: int = 15, sort: str = "cumulative") -> str:
    """The `n` top entries of a profile file as text (what `twin run --profile` may print at the end)."""
    import io
    import pstats

    buf = io.StringIO()
    pstats.Stats(str(path), stream=buf).strip_dirs().sort_stats(sort).print_stats(n)
    return buf.getvalue()
