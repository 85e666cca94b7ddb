"""ALD fluidized-bed reactors: one lot per batch (load, pump-down/heat, N cycles, vent/cool, unload),
breakdowns (on operating or calendar time), preventive maintenance every k batches, precursor use.
Loading and unloading need an operator; the cycles run unattended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plant import physics
from plant.equipment.unit import Unit
from plant.trace import ALD_END, ALD_START, PM_END, PM_START

if TYPE_CHECKING:
    from plant.line import Line


class AldReactor(Unit):
    """One reactor process: take the next lot from the ALD queue, coat it, hand it to the buffer."""

    kind = "ald"

    def __init__(self, line: Line, index: int) -> None:
        super().__init__(f"ALD{index + 1}", line)
        cfg = line.scenario.ald
        cycles = line.scenario.coating.cycles
        self.load_h = cfg.load_h
        self.auto_h = cfg.pump_heat_h + cycles * cfg.cycle_min / 60.0 + cfg.vent_cool_h
        self.unload_h = cfg.unload_h
        self.pm_every = cfg.pm_every_batches
        self.pm_dur_h = cfg.pm_h
        self.held = False
        self._release = None
        self.init_failures(
            cfg.mtbf_h, cfg.mttr_h, cfg.failure_clock, line.streams.draws("failures", "exponential", 0, index)
        )

    def hold(self, on: bool) -> None:
        """Operator hold: a held reactor finishes its current batch and takes no new lot until released."""
        self.held = bool(on)
        if not self.held and self._release is not None and not self._release.triggered:
            self._release.succeed()

    def run(self, first=None):
        """The reactor's process. `first` = (lot, elapsed_h): a lot already inside at time 0 (forecasts)."""
        line = self.line
        env, record, pack, name, code = self.env, line.trace.record, line.trace.pack, self.name, self.code
        queue, buffer = line.ald_queue, line.buffer
        take = queue.take
        coat = line.scenario.coating
        qp = line.qp
        deposit = physics.coater(coat.material, coat.cycles, qp)
        staffed = line.calendar.never_waits
        batch_h = self.load_h + self.auto_h + self.unload_h  # attended throughout when always staffed
        precursor: dict[float, float] = {}  # mol per lot mass (same chemistry for every lot)
        while True:
            if first is not None:
                (lot, elapsed), first = first, None
                lot.ald_start_h = env.now - elapsed
            else:
                elapsed = 0.0
                while self.held:
                    self.to(env.now, "scheduled_down")
                    self._release = env.event()
                    yield self._release
                    self.to(env.now, "standby")
                lot = take()
                if lot is None:
                    lot = yield queue.wait()
                if not staffed:
                    yield from self.wait_ready(staff=True)
                lot.ald_start_h = now = env.now
                record(pack(now, ALD_START, code, lot.lot_id, -1))
            lot.ald_unit = name
            f = lot.ald_factor
            if staffed:  # one timeout for the whole batch
                dur = max(0.0, batch_h * f - elapsed)
                run = self.uninterrupted(dur)
                if run is not None:
                    yield run
                else:
                    yield from self.operate(dur)
            else:  # unloading waits for an operator
                yield from self.operate(max(0.0, (self.load_h + self.auto_h) * f - elapsed))
                yield from self.wait_ready(staff=True)
                yield from self.operate(self.unload_h * f)
            lot.ald_end_h = lot.exposed_since_h = now = env.now
            lot.coating = deposit(lot.z_thickness)
            mol = precursor.get(lot.mass_kg)
            if mol is None:
                mol = precursor[lot.mass_kg] = physics.precursor_mol(
                    coat.material, coat.cycles, lot.mass_kg, qp
                )
            lot.precursor_mol = mol
            record(pack(now, ALD_END, code, lot.lot_id, -1))
            self.batches += 1
            if not buffer.try_put(lot):
                yield from buffer.put(lot, self)
            self.to(env.now, "standby")
            if self.pm_every and self.batches % self.pm_every == 0 and self.pm_dur_h > 0:
                if not staffed:
                    yield from self.wait_ready(staff=True)
                record(pack(env.now, PM_START, code, -1, -1))
                self.to(env.now, "scheduled_down")
                yield env.timeout(self.pm_dur_h)
                record(pack(env.now, PM_END, code, -1, -1))
                self.to(env.now, "standby")
