"""ALD fluidized-bed reactors: one lot per batch (load, pump-down/heat, N cycles, vent/cool, unload),
breakdowns counted on operating time, preventive maintenance every k batches, precursor use.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from plant import physics
from plant.equipment.unit import Unit

if TYPE_CHECKING:
    from plant.line import Line


class AldReactor(Unit):
    """One reactor process: take the next lot from the ALD queue, coat it, hand it to the buffer."""

    kind = "ald"

    def __init__(self, line: Line, index: int) -> None:
        super().__init__(f"ALD{index + 1}", line.horizon_h)
        cfg = line.scenario.ald
        self.line = line
        self.nominal_h = cfg.nominal_batch_h(line.scenario.coating.cycles)
        self.mtbf_h = cfg.mtbf_h
        self.mttr_h = cfg.mttr_h
        self.pm_every = cfg.pm_every_batches
        self.pm_dur_h = cfg.pm_h
        self._fail = line.streams.draws("failures", "exponential", 0, index)
        self.ttf_h = self._fail.next() * self.mtbf_h if self.mtbf_h else math.inf

    def operate(self, dur_h: float):
        """Run `dur_h` of operating time; a failure on the way adds its repair time (preempt-resume)."""
        env, trace, name = self.line.env, self.line.trace, self.name
        while True:
            if self.ttf_h > dur_h:
                self.ttf_h -= dur_h
                self.busy_h += self.clip(env.now, dur_h)
                yield env.timeout(dur_h)
                return
            run = self.ttf_h
            self.busy_h += self.clip(env.now, run)
            yield env.timeout(run)
            dur_h -= run
            trace.event(env.now, "down", name)
            repair = self._fail.next() * self.mttr_h
            self.down_h += self.clip(env.now, repair)
            yield env.timeout(repair)
            trace.event(env.now, "up", name)
            self.ttf_h = self._fail.next() * self.mtbf_h

    def run(self):
        line = self.line
        env, trace, name = line.env, line.trace, self.name
        queue, buffer = line.ald_queue, line.buffer
        coat = line.scenario.coating
        qp = line.qp
        while True:
            lot = yield queue.get()
            lot.ald_unit = name
            lot.ald_start_h = env.now
            trace.event(env.now, "ald_start", name, lot.lot_id)
            yield from self.operate(self.nominal_h * lot.ald_factor)
            lot.ald_end_h = lot.exposed_since_h = env.now
            lot.coating = physics.new_coating(coat.material, coat.cycles, qp, lot.z_thickness)
            lot.precursor_mol = physics.precursor_mol(coat.material, coat.cycles, lot.mass_kg, qp)
            trace.event(env.now, "ald_end", name, lot.lot_id)
            self.batches += 1
            yield from buffer.put(lot, self)
            if self.pm_every and self.batches % self.pm_every == 0 and self.pm_dur_h > 0:
                trace.event(env.now, "pm_start", name)
                self.pm_h += self.clip(env.now, self.pm_dur_h)
                yield env.timeout(self.pm_dur_h)
                trace.event(env.now, "pm_end", name)
