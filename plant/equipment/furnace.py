"""Batch anneal furnaces and their dispatcher.

A furnace runs one recipe per batch: setup (purge when the atmosphere changes, re-tune when the setpoint
changes), load, the thermal profile (ramp, soak, cool; the quality model integrates it), unload. Energy and gas
are booked per batch. Loading and unloading need an operator; setup and the thermal cycle run unattended. A
failure (on operating or calendar time) is detected at the end of the cycle it happened in (the controller
finishes the profile on its safety ramp) or, if it fell due while idle, at the next start; the furnace is then
down for repair. The dispatcher asks the scheduling policy what an idle furnace should do.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

from plant import physics
from plant.equipment.unit import Unit
from plant.policies import FurnacePolicy, Start
from plant.trace import BATCH_END, BATCH_START, LOAD_START, SETUP_END, SETUP_START

if TYPE_CHECKING:
    from plant.line import Line
    from plant.lot import Lot


class Furnace(Unit):
    """One batch furnace holding up to `capacity_lots` lots."""

    kind = "furnace"

    def __init__(self, line: Line, index: int) -> None:
        super().__init__(f"F{index + 1}", line)
        cfg = line.scenario.furnaces
        self.cfg = cfg
        self.capacity_lots = cfg.capacity_lots
        self.recipe: str | None = None
        self.setpoint_c: float | None = None
        self.atmosphere: str | None = None
        self.idle = True
        self.setpoint_override: float | None = (
            None  # an operator's setpoint for the next batches (OPC UA write)
        )
        self.setups = 0
        self.open_batch: list[Any] | None = None  # the batch row being run, from loading on (end fields NaN)
        self._plans: dict[tuple[str, float | None], _Plan] = {}
        self.staffed = line.calendar.never_waits
        self.init_failures(
            cfg.mtbf_h, cfg.mttr_h, cfg.failure_clock, line.streams.draws("failures", "exponential", 1, index)
        )

    def setup_h(self, recipe: str) -> float:
        """Setup before a batch of `recipe`: purge on atmosphere change, re-tune on setpoint change."""
        if self.recipe is None or recipe == self.recipe:
            return 0.0
        r = self.line.recipes[recipe]
        h = 0.0
        if r.atmosphere != self.atmosphere:
            h += self.cfg.atmosphere_change_h
        if r.setpoint_c != self.setpoint_c:
            h += self.cfg.setpoint_change_h
        return h

    def lead_h(self, recipe: str) -> float:
        return self.setup_h(recipe) + self.cfg.load_h

    def _plan(self, recipe_name: str) -> _Plan:
        """The recipe as run now (with the operator's setpoint, if any), its dose and its per-batch utilities."""
        key = (recipe_name, self.setpoint_override)
        plan = self._plans.get(key)
        if plan is None:
            line, cfg = self.line, self.cfg
            recipe = line.recipe_for(recipe_name, self.setpoint_override)
            dose = line.dose_of(recipe)
            heat = (recipe.setpoint_c - cfg.start_c) / (400.0 - cfg.start_c)
            ramp_h = (recipe.setpoint_c - cfg.start_c) / recipe.ramp_c_per_min / 60.0
            gas = cfg.gas_nm3_per_h * dose.duration_h
            plan = self._plans[key] = _Plan(
                recipe, dose, heat, ramp_h, gas, gas if recipe.atmosphere == "O2" else 0.0
            )
        return plan

    def run_batch(self, lots: list[Lot], reason: str, elapsed_h: float = 0.0):
        """One batch. `elapsed_h` > 0: a batch already heating for that long at time 0 (forecasts)."""
        line, cfg = self.line, self.cfg
        env = line.env
        recipe_name = lots[0].recipe
        plan = self._plan(recipe_name)
        recipe = plan.recipe
        batch_id = line.new_batch_id()
        now = env.now
        line.trace.event(now, LOAD_START, self.code, -1, batch_id)
        setup = 0.0
        if elapsed_h > 0:  # loaded before time 0: loading took load_h before the heating began
            self.recipe, self.setpoint_c, self.atmosphere = recipe_name, recipe.setpoint_c, recipe.atmosphere
            load_start = now - elapsed_h - cfg.load_h
            yield from self._cycle(lots, recipe_name, plan, batch_id, load_start, setup, reason, elapsed_h)
            return
        if self.failure_due():  # failed while idle (calendar clock): found when the operator starts
            yield from self.repair("standby")
        setup = self.setup_h(recipe_name)
        if setup > 0:
            line.trace.event(env.now, SETUP_START, self.code, -1, batch_id)
            self.to(env.now, "setup")
            self.setups += 1
            yield env.timeout(setup)
            line.trace.event(env.now, SETUP_END, self.code, -1, batch_id)
        self.recipe, self.setpoint_c, self.atmosphere = recipe_name, recipe.setpoint_c, recipe.atmosphere
        if not self.staffed:
            yield from self.wait_ready(staff=True)
        load_start = env.now
        self.open_batch = self._row(batch_id, recipe_name, plan, lots, setup, load_start, reason)
        if cfg.load_h > 0:
            self.to(env.now, "productive")
            yield env.timeout(cfg.load_h)
        yield from self._cycle(lots, recipe_name, plan, batch_id, load_start, setup, reason, 0.0)

    def _cycle(self, lots, recipe_name, plan, batch_id, load_start, setup, reason, elapsed_h):
        """Heating, soak and cooling (the profile the quality model integrates), unloading, booking."""
        line, cfg = self.line, self.cfg
        env, record, pack, code = line.env, line.trace.record, line.trace.pack, self.code
        recipe, dose = plan.recipe, plan.dose
        start = env.now - elapsed_h
        wait = line.buffer.wait
        rework_lots = 0
        for lot in lots:
            wait(lot.coating, start - lot.exposed_since_h)
            if lot.anneals == 0:
                lot.wait_h = start - lot.ald_end_h
                lot.anneal_start_h = start
                lot.batch_id = batch_id
            else:
                lot.rework_batch_id = batch_id
                rework_lots += 1
            record(pack(start, BATCH_START, code, lot.lot_id, batch_id))
        row = self.open_batch or self._row(batch_id, recipe_name, plan, lots, setup, load_start, reason)
        row[13], row[18] = start, rework_lots
        self.open_batch = row
        cycle_h = dose.duration_h
        self.to(env.now, "productive")
        yield env.timeout(max(0.0, cycle_h - elapsed_h))
        if self.failure_clock == "operating":
            self.ttf_h -= cycle_h
        anneal, atmosphere = line.anneal, recipe.atmosphere
        for lot in lots:
            anneal(lot.coating, dose, atmosphere)
            lot.anneals += 1
        if not self.staffed:
            yield from self.wait_ready(staff=True)
        if cfg.unload_h > 0:
            self.to(env.now, "productive")
            yield env.timeout(cfg.unload_h)
        end = env.now
        submit = line.qc.submit
        for lot in lots:
            lot.anneal_end_h = end
            record(pack(end, BATCH_END, code, lot.lot_id, batch_id))
            submit(lot)
        row = self.open_batch
        row[14] = end
        line.trace.batches.append(tuple(row))
        self.open_batch = None
        self.batches += 1
        self.to(end, "standby")
        if self.failure_due():
            yield from self.repair("standby")
        self.idle = True
        line.dispatcher.notify()

    def _row(self, batch_id, recipe_name, plan, lots, setup, load_start, reason) -> list[Any]:
        """A batches-table row (BATCHES_SCHEMA order) with start and end still unknown (NaN). Energy and gas are booked
        for the whole batch when it is loaded (a batch open at the horizon has them, as a started batch)."""
        r, cfg = plan.recipe, self.cfg
        mass = sum(lot.mass_kg for lot in lots)
        energy = (cfg.heat_kwh_fixed + cfg.heat_kwh_per_kg * mass) * plan.heat + cfg.holding_kw * (
            plan.ramp_h + r.soak_h
        )
        return [
            batch_id, self.name, recipe_name, r.setpoint_c, r.ramp_c_per_min, r.soak_h, r.cool_c_per_min,
            r.atmosphere, len(lots), self.capacity_lots, mass, setup, load_start, math.nan, math.nan, energy,
            plan.o2_nm3, plan.gas_nm3, 0, reason,
        ]  # fmt: skip


class _Plan(NamedTuple):
    """A recipe as a furnace runs it: the recipe, its dose and its utilities per batch."""

    recipe: Any
    dose: physics.AnnealDose
    heat: float  # heating energy relative to a 400 °C batch
    ramp_h: float
    gas_nm3: float
    o2_nm3: float


class Dispatcher:
    """Wakes when a lot enters the buffer, a furnace frees up, or a policy's timer falls due."""

    def __init__(self, line: Line, policy: FurnacePolicy, furnaces: list[Furnace]) -> None:
        self.line = line
        self.policy = policy
        self.furnaces = furnaces
        self._wake = line.env.event()

    def notify(self) -> None:
        if not self._wake.triggered:
            self._wake.succeed()

    def run(self):
        env = self.line.env
        buffer = self.line.buffer
        queue = buffer.queue
        decide = self.policy.decide
        while True:
            due = math.inf
            for furnace in self.furnaces:
                if not queue:
                    break
                if not furnace.idle:
                    continue
                decision = decide(env.now, queue, furnace)
                if decision is None:
                    continue
                if isinstance(decision, Start):
                    buffer.take(decision.lots)
                    furnace.idle = False
                    env.process(furnace.run_batch(decision.lots, decision.reason))
                elif decision < due:
                    due = decision
            if self._wake.triggered:
                self._wake = env.event()
            if due < math.inf:
                yield self._wake | env.timeout(max(due - env.now, 0.0))
            else:
                yield self._wake
