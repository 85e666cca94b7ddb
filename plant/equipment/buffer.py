"""The buffer between ALD and anneal: finite capacity (a full buffer blocks the reactor that wants to unload)
and a humid or dry environment in which waiting lots grow residual lithium.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from plant import physics
from plant.trace import BLOCKED_END, BLOCKED_START, BUFFER_IN, BUFFER_OUT

if TYPE_CHECKING:
    from plant.equipment.unit import Unit
    from plant.line import Line
    from plant.lot import Lot


class Buffer:
    """Waiting lots in arrival order. Rework lots come back from QC on a separate rack (no slot needed)."""

    kind = "buffer"
    name = "BUF"

    def __init__(self, line: Line) -> None:
        cfg = line.scenario.buffer
        self.line = line
        self.code = line.trace.unit_code(self.name)
        self.capacity = cfg.capacity_lots
        self.rh_pct = cfg.effective_rh_pct
        self.temp_c = cfg.temp_c
        self.free_slots = cfg.capacity_lots
        self.wait = physics.waiter(self.rh_pct, self.temp_c, line.qp)  # wait(coating, hours): exposure here
        self._blocked: deque = deque()  # reactors waiting for a slot (their events), first come first served
        self.queue: list[Lot] = []

    def try_put(self, lot: Lot) -> bool:
        """Take a slot for a coated lot if one is free (the common case of `put`, without a generator)."""
        if self.free_slots <= 0:
            return False
        self.free_slots -= 1
        self.add(lot)
        return True

    def put(self, lot: Lot, reactor: Unit):
        """Take a slot for a coated lot (waiting while the buffer is full: the reactor is blocked)."""
        env, trace = self.line.env, self.line.trace
        if self.free_slots > 0:
            self.free_slots -= 1
        else:
            trace.event(env.now, BLOCKED_START, reactor.code, lot.lot_id)
            reactor.to(env.now, "blocked")
            granted = env.event()
            self._blocked.append(granted)
            yield granted  # a slot handed over by take()
            trace.event(env.now, BLOCKED_END, reactor.code, lot.lot_id)
        self.add(lot)

    def add(self, lot: Lot) -> None:
        """A lot enters the queue (coated lot with a slot, or a rework lot from QC)."""
        line = self.line
        now = line.env.now
        lot.ready_h = now
        if line.policy.uses_deadlines:
            budget = physics.wait_budget_h(
                lot.coating, self.rh_pct, self.temp_c, line.dose(lot.recipe), line.recipes[lot.recipe].atmosphere,
                line.qp, margin=line.policy.rl_margin,
            )  # fmt: skip
            lot.deadline_h = lot.exposed_since_h + budget  # the budget counts from the end of ALD (or of QC)
        self.queue.append(lot)
        trace = line.trace
        trace.record(trace.pack(now, BUFFER_IN, self.code, lot.lot_id, -1))
        line.dispatcher.notify()

    def take(self, lots: list[Lot]) -> None:
        """Remove lots loaded into a furnace; free their slots (which may unblock a reactor)."""
        env, trace = self.line.env, self.line.trace
        record, pack, code = trace.record, trace.pack, self.code
        for lot in lots:
            self.queue.remove(lot)
            record(pack(env.now, BUFFER_OUT, code, lot.lot_id, -1))
            if not lot.rework:
                if self._blocked:
                    self._blocked.popleft().succeed()
                else:
                    self.free_slots += 1
