"""Plant events derived from mirrored samples: state changes, lots entering and leaving a unit, batch start and end.

Fed with good samples in arrival order; keeps the last good value per (unit, signal). Flagged samples never get
here. Event times are the samples' source timestamps.
"""

from __future__ import annotations

import json
from typing import Any

from adapters.opcua.client import PlantEvent, Sample

_NO_ID = ("", "-1", "None")


def _ids(value: Any) -> list[str]:
    """Lot or batch ids held by a signal value (scalar id, JSON array text); 'no id' values give []."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if str(v) not in _NO_ID]
    s = str(value)
    if s.startswith("["):
        try:
            return [str(v) for v in json.loads(s) if str(v) not in _NO_ID]
        except json.JSONDecodeError:
            return []
    return [] if s in _NO_ID else [s]


def sample_value(s: Sample) -> Any:
    """The value a derivation works with: mapped state, text, or the number (ints shown without '.0')."""
    if s.mapped is not None:
        return s.mapped
    if s.value_text is not None:
        return s.value_text
    if s.value is not None and float(s.value).is_integer():
        return str(int(s.value))
    return s.value


class Deriver:
    """Turns a stream of good samples into plant events; `feed(sample)` returns the new events."""

    def __init__(self, kinds: dict[str, str]) -> None:
        self.kinds = kinds  # unit -> kind
        self.last: dict[tuple[str, str], Any] = {}

    def feed(self, s: Sample) -> list[PlantEvent]:
        if s.flag:
            return []
        key = (s.unit, s.signal)
        new = sample_value(s)
        first = key not in self.last
        old = self.last.get(key)
        self.last[key] = new
        if not first and new == old:
            return []
        t, src, unit = s.source_ts, s.source, s.unit
        out: list[PlantEvent] = []
        if s.signal == "state":
            out.append(PlantEvent(src, t, "state", unit, value=str(new), origin="derived",
                                  detail="initial" if first else f"from {old}"))  # fmt: skip
        elif s.signal in ("lot_id", "lot_ids"):
            before = [] if first else _ids(old)
            after = _ids(new)
            batch = self.last.get((unit, "batch_id"))
            b = _ids(batch)
            bid = b[0] if b else None
            for lot in before:
                if lot not in after:
                    out.append(PlantEvent(src, t, "lot_out", unit, lot, bid, origin="derived"))
            for lot in after:
                if lot not in before:
                    out.append(PlantEvent(src, t, "lot_in", unit, lot, bid, origin="derived",
                                          detail="initial" if first else None))  # fmt: skip
        elif s.signal == "batch_id":
            before = [] if first else _ids(old)
            after = _ids(new)
            for b in before:
                out.append(PlantEvent(src, t, "batch_end", unit, batch_id=b, origin="derived"))
            for b in after:
                out.append(PlantEvent(src, t, "batch_start", unit, batch_id=b, origin="derived",
                                      detail="initial" if first else None))  # fmt: skip
        return out
