"""Time accounting shared by every unit: processing, setup, down, maintenance and blocked hours.

Durations are clipped to the horizon when they are booked, so totals describe [0, horizon] exactly.
"""

from __future__ import annotations


class Unit:
    """A named piece of equipment with hour counters (plain attributes, booked when an activity starts)."""

    kind = "unit"

    def __init__(self, name: str, horizon_h: float) -> None:
        self.name = name
        self.horizon_h = horizon_h
        self.busy_h = 0.0
        self.setup_h_total = 0.0
        self.down_h = 0.0
        self.pm_h = 0.0
        self.blocked_h = 0.0
        self.batches = 0

    def clip(self, start_h: float, dur_h: float) -> float:
        """The part of [start_h, start_h + dur_h] inside the horizon."""
        end = start_h + dur_h
        h = self.horizon_h
        if end <= h:
            return dur_h
        return h - start_h if start_h < h else 0.0

    def row(self) -> tuple:
        return (self.name, self.kind, self.busy_h, self.setup_h_total, self.down_h, self.pm_h, self.blocked_h,
                self.batches)  # fmt: skip
