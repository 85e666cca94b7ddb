"""What every piece of equipment shares: its state over time, failures, and waiting for staff.

States (SEMI E10 categories, see docs/equipment-states.md): productive, setup, standby (idle or starved),
blocked, scheduled_down (preventive maintenance, planned shutdown), unscheduled_down (failure and repair),
unstaffed (work waiting for an operator). Each unit is in exactly one state at a time; its closed intervals are
packed into bytes (`plant.trace.STATE_ROW`) next to running totals per state; the time in states sums to the
horizon.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from plant.trace import DOWN, STATE_CODES, STATE_ROW, STATES, UP

_pack = STATE_ROW.pack

if TYPE_CHECKING:
    from simpy.events import Timeout

    from plant.line import Line
    from plant.random import Draws


class Unit:
    """A named unit with a current state, per-state hour totals and an optional failure clock."""

    kind = "unit"

    def __init__(self, name: str, line: Line) -> None:
        self.name = name
        self.code = line.trace.unit_code(name)  # its events are recorded under this code
        self.line = line
        self.env = line.env
        self.state = "standby"
        self.since = 0.0
        # closed intervals as STATE_ROW records (state code, start_h, end_h), in time order
        self.intervals = bytearray()
        self._interval = self.intervals.extend
        self._hours = dict.fromkeys(STATES, 0.0)  # hours per state over the closed intervals
        self.batches = 0
        self.mtbf_h: float | None = None
        self.mttr_h = 0.0
        self.failure_clock = "operating"
        self.ttf_h = (
            math.inf
        )  # operating clock: operating hours left; calendar clock: time of the next failure
        self._fail: Draws | None = None

    # -- states -----------------------------------------------------------------------------------------
    def to(self, t: float, state: str) -> None:
        """Enter `state` at time t (closing the interval of the previous state)."""
        old = self.state
        if state == old:
            return
        since = self.since
        if t > since:
            self._interval(_pack(STATE_CODES[old], since, t))
            self._hours[old] += t - since
        self.state, self.since = state, t

    def close(self, t: float) -> None:
        """Close the open interval at the horizon."""
        since = self.since
        if t > since:
            old = self.state
            self._interval(_pack(STATE_CODES[old], since, t))
            self._hours[old] += t - since
            self.since = t

    def hours(self) -> dict[str, float]:
        """Hours spent in each state so far (from the closed intervals)."""
        return dict(self._hours)

    def row(self) -> tuple:
        h = self.hours()
        return (self.name, self.kind, h["productive"], h["setup"], h["unscheduled_down"], h["scheduled_down"],
                h["blocked"], h["standby"], h["unstaffed"], self.batches)  # fmt: skip

    # -- calendar ---------------------------------------------------------------------------------------
    def wait_ready(self, staff: bool):
        """Wait (as scheduled_down or unstaffed) until no planned shutdown and, if `staff`, an operator is on site."""
        cal = self.line.calendar
        env = self.env
        while True:
            now = env.now
            ready = cal.ready_at(now, staff)
            if ready <= now:
                return
            end = cal.shutdown_end(now)
            if end > now:
                self.to(now, "scheduled_down")
                yield env.timeout(end - now)
                continue
            self.to(now, "unstaffed")
            if ready == math.inf:
                yield env.event()  # never staffed again within the calendar: wait past the horizon
            yield env.timeout(ready - now)

    # -- failures ---------------------------------------------------------------------------------------
    def init_failures(self, mtbf_h: float | None, mttr_h: float, clock: str, draws: Draws) -> None:
        self.mtbf_h, self.mttr_h, self.failure_clock, self._fail = mtbf_h, mttr_h, clock, draws
        if mtbf_h:
            first = draws.next() * mtbf_h
            self.ttf_h = first if clock == "operating" else self.env.now + first

    def _room(self) -> float:
        return self.ttf_h if self.failure_clock == "operating" else self.ttf_h - self.env.now

    def repair(self, resume: str):
        """A failure now: unscheduled down for a repair time, then back to `resume`; draw the next failure."""
        env, trace = self.env, self.line.trace
        trace.event(env.now, DOWN, self.code)
        self.to(env.now, "unscheduled_down")
        yield env.timeout(self._fail.next() * self.mttr_h)
        trace.event(env.now, UP, self.code)
        self.to(env.now, resume)
        nxt = self._fail.next() * self.mtbf_h
        self.ttf_h = nxt if self.failure_clock == "operating" else env.now + nxt

    def failure_due(self) -> bool:
        return self.mtbf_h is not None and self._room() <= 0.0

    def uninterrupted(self, dur_h: float, state: str = "productive") -> Timeout | None:
        """The common case of `operate`, without a generator: if no failure falls within the next `dur_h` hours,
        enter `state`, book the hours on the failure clock and return the one timeout to yield; else None (the
        caller then runs `operate`)."""
        if self._room() <= dur_h:
            return None
        self.to(self.env.now, state)
        if self.failure_clock == "operating":
            self.ttf_h -= dur_h
        return self.env.timeout(dur_h)

    def operate(self, dur_h: float, state: str = "productive"):
        """Run `dur_h` hours in `state`; a failure on the way adds its repair (preempt-resume)."""
        env = self.env
        self.to(env.now, state)
        while True:
            room = self._room()
            if room > dur_h:
                if self.failure_clock == "operating":
                    self.ttf_h -= dur_h
                yield env.timeout(dur_h)
                return
            if room > 0.0:
                if self.failure_clock == "operating":
                    self.ttf_h = 0.0
                yield env.timeout(room)
                dur_h -= room
            yield from self.repair(state)
