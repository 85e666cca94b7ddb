"""Plant calendar: staffed shift windows, holidays and planned shutdowns, resolved over the run's horizon.

Simulated time 0 is the start of day 0, which is `start_weekday` (Monday by default). Equipment keeps running
through unstaffed hours once started; loading, unloading and QC wait for staff. No new activity starts during a
planned shutdown. A scenario without a calendar is staffed around the clock.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# named shift patterns: weekday -> list of staffed (start_h, end_h) windows in hours of the day
PRESETS: dict[str, list[tuple[tuple[str, ...], float, float]]] = {
    "24x7": [(WEEKDAYS, 0.0, 24.0)],
    "3x8-weekdays": [(WEEKDAYS[:5], 0.0, 24.0)],  # three 8 h shifts Monday to Friday, weekends off
    "2x12": [(WEEKDAYS, 0.0, 24.0)],  # two 12 h shifts every day
    "2x12-weekdays": [(WEEKDAYS[:5], 0.0, 24.0)],
    "2x8-weekdays": [(WEEKDAYS[:5], 6.0, 22.0)],  # early and late shift, no night, weekends off
    "1x8-weekdays": [(WEEKDAYS[:5], 7.0, 15.0)],
}


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if b <= a:
            continue
        if out and a <= out[-1][1] + 1e-12:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


class Calendar:
    """Staffed windows and shutdown windows as sorted interval lists; queries by bisection."""

    def __init__(self, cfg: Any | None, horizon_h: float) -> None:
        self.always_staffed = cfg is None or (
            cfg.pattern in (None, "24x7") and not cfg.shifts and not cfg.holidays
        )
        days = int(math.ceil(horizon_h / 24.0)) + 8
        self.shutdowns = _merge([(s.start_h, s.end_h) for s in (cfg.shutdowns if cfg else [])])
        self.never_waits = self.always_staffed and not self.shutdowns  # units can skip the calendar checks
        self._sd_starts = [a for a, _ in self.shutdowns]
        if self.always_staffed:
            self.staffed = [(0.0, math.inf)]
        else:
            shifts = (
                [(tuple(s.days), s.start_h, s.end_h) for s in cfg.shifts]
                if cfg.shifts
                else PRESETS[cfg.pattern]
            )
            first = WEEKDAYS.index(cfg.start_weekday)
            holidays = set(cfg.holidays)
            windows = []
            for day in range(days):
                if day in holidays:
                    continue
                name = WEEKDAYS[(first + day) % 7]
                for names, a, b in shifts:
                    if name in names:
                        windows.append((day * 24.0 + a, day * 24.0 + b))
            self.staffed = _merge(windows) or [(math.inf, math.inf)]
        self._st_starts = [a for a, _ in self.staffed]

    def is_staffed(self, t: float) -> bool:
        i = bisect_right(self._st_starts, t) - 1
        return i >= 0 and t < self.staffed[i][1]

    def next_staffed(self, t: float) -> float:
        """Earliest time >= t with staff on site."""
        i = bisect_right(self._st_starts, t) - 1
        if i >= 0 and t < self.staffed[i][1]:
            return t
        return self.staffed[i + 1][0] if i + 1 < len(self.staffed) else math.inf

    def shutdown_end(self, t: float) -> float:
        """End of the planned shutdown containing t, or t itself when none does."""
        i = bisect_right(self._sd_starts, t) - 1
        if i >= 0 and t < self.shutdowns[i][1]:
            return self.shutdowns[i][1]
        return t

    def ready_at(self, t: float, staff: bool) -> float:
        """Earliest time >= t outside planned shutdowns (and, if `staff`, with staff on site)."""
        while True:
            t2 = self.shutdown_end(t)
            if staff:
                t2 = self.next_staffed(t2)
            if t2 == t or t2 == math.inf:
                return t2
            t = t2
