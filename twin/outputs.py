"""Files the commands write: written to a temporary name beside the target and moved into place, so a failure
never leaves a half-written file or overwrites a good one with a broken one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from twin.errors import TwinError


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically; TwinError naming the path when it cannot be written."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise TwinError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise TwinError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target
