"""Simulated time <-> wall-clock time for the virtual plant: sim hours run `speed` times faster than real time.

A fixed origin maps simulated hour 0 to a wall-clock instant; source timestamps are origin + t_h * 3600 / speed s.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class SimClock:
    """Maps simulated hours to wall-clock datetimes (UTC) and tells the simulated hour due now."""

    def __init__(self, speed: float, origin: datetime | None = None) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self.speed = float(speed)
        self.origin = origin or datetime.now(UTC)
        self._mono0 = time.monotonic()

    def wall(self, t_h: float) -> datetime:
        """The wall-clock instant (UTC) that simulated hour `t_h` maps to."""
        return self.origin + timedelta(seconds=t_h * 3600.0 / self.speed)

    def sim_h(self, wall: datetime) -> float:
        """Inverse of `wall`: the simulated hour of a wall-clock instant."""
        return (wall - self.origin).total_seconds() * self.speed / 3600.0

    def due_h(self) -> float:
        """The simulated hour that should have been reached by now (monotonic clock)."""
        return (time.monotonic() - self._mono0) * self.speed / 3600.0
