"""The line: builds arrivals, ALD reactors, buffer, furnaces with their policy and QC from a scenario, runs the
SimPy environment to the horizon and returns the trace.

The scenario is read by attribute (see docs/architecture.md); this module never imports the twin application.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace
from typing import Any

import simpy

from plant import physics
from plant.calendar import Calendar
from plant.equipment.ald import AldReactor
from plant.equipment.buffer import Buffer
from plant.equipment.furnace import Dispatcher, Furnace
from plant.equipment.lot_queue import LotQueue
from plant.equipment.qc import Qc
from plant.initial import InitialState
from plant.lot import Lot
from plant.policies import POLICIES
from plant.random import Streams
from plant.trace import ARRIVE, Trace, gc_paused


class Line:
    """One replication of one scenario: `Line(scenario, seed, replication).run()` -> Trace."""

    def __init__(
        self,
        scenario: Any,
        seed: int | None = None,
        replication: int = 0,
        initial: InitialState | None = None,
        keep_lots: bool = True,
    ) -> None:
        self.scenario = scenario
        self.initial = initial
        self.seed = scenario.seed if seed is None else int(seed)
        self.replication = int(replication)
        self.horizon_h = float(scenario.horizon_h)
        self.env = simpy.Environment()
        self.streams = Streams(self.seed, self.replication)
        # keep_lots=False: a lot that left the line is dropped from trace.lots (its row is kept packed); batch runs
        # use it (less memory, fewer cache misses); live views that look lots up keep them
        self.trace = Trace(self.horizon_h, float(getattr(scenario, "warmup_h", 0.0)), keep_lots)
        self._src = self.trace.unit_code("SRC")  # arrivals are booked under the unit name SRC
        self.recipes = scenario.recipes
        self.calendar = Calendar(getattr(scenario, "calendar", None), self.horizon_h)
        self.qp = scenario.quality_params()
        self.anneal = physics.annealer(
            self.qp
        )  # anneal(coating, dose, atmosphere), the parameters bound once
        self._doses: dict[tuple[float, float, float, float], physics.AnnealDose] = {}
        self._batch_ids = 0
        pol = scenario.furnaces.policy
        self.policy = POLICIES[pol.name](**pol.options())
        self.ald_queue = LotQueue(self.env)
        self.buffer = Buffer(self)
        self.reactors = [AldReactor(self, i) for i in range(scenario.ald.reactors)]
        self.furnaces = [Furnace(self, i) for i in range(scenario.furnaces.count)]
        self.dispatcher = Dispatcher(self, self.policy, self.furnaces)
        self.qc = Qc(self)

    # -- helpers used by the units ---------------------------------------------------------------------
    def dose(self, recipe_name: str) -> physics.AnnealDose:
        """The anneal dose of a recipe's nominal profile (computed once per recipe)."""
        return self.dose_of(self.recipes[recipe_name])

    def dose_of(self, recipe: Any) -> physics.AnnealDose:
        """The anneal dose of a recipe-like object (setpoint_c, ramp_c_per_min, soak_h, cool_c_per_min)."""
        key = (recipe.setpoint_c, recipe.ramp_c_per_min, recipe.soak_h, recipe.cool_c_per_min)
        dose = self._doses.get(key)
        if dose is None:
            f = self.scenario.furnaces
            dose = self._doses[key] = _nominal_dose(key, f.start_c, f.unload_c, self.qp)
        return dose

    def recipe_for(self, recipe_name: str, setpoint_c: float | None = None) -> Any:
        """The recipe, or a copy of it at another setpoint (an operator's override)."""
        recipe = self.recipes[recipe_name]
        if setpoint_c is None or setpoint_c == recipe.setpoint_c:
            return recipe
        return SimpleNamespace(
            setpoint_c=float(setpoint_c), ramp_c_per_min=recipe.ramp_c_per_min, soak_h=recipe.soak_h,
            atmosphere=recipe.atmosphere, cool_c_per_min=recipe.cool_c_per_min,
        )  # fmt: skip

    def new_batch_id(self) -> int:
        self._batch_ids += 1
        return self._batch_ids

    # -- arrivals --------------------------------------------------------------------------------------
    def _lot_draws(self):
        cfg = self.scenario
        dist = cfg.ald.time_distribution
        kind = {"fixed": "one", "gamma": "gamma", "exponential": "exponential"}[dist]
        ald = self.streams.draws("ald_time", kind, cv=cfg.ald.time_cv)
        quality = self.streams.draws("quality", "normal", width=9)  # per lot: thickness + 2 x 4 QC deviates
        mix = cfg.arrivals.recipe_mix
        if mix:
            names = list(mix)
            total = sum(mix.values())
            cum, acc = [], 0.0
            for n in names:
                acc += mix[n] / total
                cum.append(acc)
            uni = self.streams.draws("mix", "uniform")

            def pick() -> str:
                u = uni.next()
                for n, c in zip(names, cum):
                    if u < c:
                        return n
                return names[-1]
        else:
            default = cfg.arrivals.recipe

            def pick() -> str:
                return default

        return ald, quality, pick

    def release(self, lot: Lot, ald, quality) -> None:
        lot.ald_factor = ald.next()
        lot.noise = noise = quality.next()
        lot.z_thickness = noise[0]
        trace = self.trace
        trace.add_lot(lot)
        trace.record(trace.pack(self.env.now, ARRIVE, self._src, lot.lot_id, -1))
        self.ald_queue.put(lot)

    def arrivals(self):
        env = self.env
        arr = self.scenario.arrivals
        ald, quality, pick = self._lot_draws()
        mass = arr.mass_kg
        if arr.kind == "plan":
            for row in arr.plan:
                if row.release_h > env.now:
                    yield env.timeout(row.release_h - env.now)
                self.release(Lot(row.lot_id, row.recipe, row.mass_kg, env.now), ald, quality)
            return
        lot_id = max(self.initial.lot_ids(), default=-1) + 1 if self.initial else 0
        if arr.kind == "takt":
            while True:
                self.release(Lot(lot_id, pick(), mass, env.now), ald, quality)
                lot_id += 1
                yield env.timeout(arr.takt_h)
        gaps = self.streams.draws("arrivals", "exponential")
        mean_gap = 1.0 / arr.rate_per_h
        while True:
            yield env.timeout(gaps.next() * mean_gap)
            self.release(Lot(lot_id, pick(), mass, env.now), ald, quality)
            lot_id += 1

    # -- run -------------------------------------------------------------------------------------------
    def _inject(self, state: InitialState) -> dict[str, tuple[Lot, float]]:
        """Place the lots of a starting state (nominal thickness, no lot noise); returns the reactors' first lots.

        Lots that were annealed before time 0 (rework lots in the buffer, lots in QC) get their earlier anneals
        with the nominal profile of their recipe."""
        coat, qp = self.scenario.coating, self.qp

        def lot_of(spec) -> Lot:
            lot = Lot(spec.lot_id, spec.recipe, spec.mass_kg, 0.0)
            lot.ald_factor = 1.0
            self.trace.add_lot(lot)
            return lot

        def coated(lot: Lot, ald_end_h: float, anneals: int = 0) -> Lot:
            lot.ald_end_h = lot.exposed_since_h = lot.release_h = ald_end_h
            lot.coating = physics.new_coating(coat.material, coat.cycles, qp, 0.0)
            lot.precursor_mol = physics.precursor_mol(coat.material, coat.cycles, lot.mass_kg, qp)
            for _ in range(anneals):
                physics.anneal(lot.coating, self.dose(lot.recipe), self.recipes[lot.recipe].atmosphere, qp)
            lot.anneals = anneals
            lot.rework = anneals > 0
            return lot

        for spec in state.ald_queue:
            self.ald_queue.put(lot_of(spec))
        # units named in the state but unknown to the scenario (another plant's names) take the free ones in order
        names = [r.name for r in self.reactors]
        free = [n for n in names if n not in {r.unit for r in state.reactors}]
        first: dict[str, tuple[Lot, float]] = {}
        for r in state.reactors:
            unit = r.unit if r.unit in names and r.unit not in first else (free.pop(0) if free else None)
            if unit is None:
                self.ald_queue.put(lot_of(r.lot))  # more lots in reactors than the scenario has reactors
            else:
                first[unit] = (lot_of(r.lot), r.lot.elapsed_h)
        for spec in state.buffer:
            lot = coated(lot_of(spec), -spec.elapsed_h, spec.anneals)
            if not lot.rework:
                self.buffer.free_slots -= 1
            self.buffer.add(lot)
        furnaces = {f.name: f for f in self.furnaces}
        spare = [f for f in self.furnaces if f.name not in {b.unit for b in state.furnaces}]
        for b in state.furnaces:
            lots = [coated(lot_of(spec), -b.elapsed_h - spec.wait_h, spec.anneals) for spec in b.lots]
            f = furnaces.get(b.unit)
            if f is None or not f.idle:
                f = spare.pop(0) if spare else None
            if f is None:  # more batches than furnaces: the lots wait in the buffer
                for lot in lots:
                    self.buffer.add(lot)
                continue
            f.idle = False
            self.env.process(f.run_batch(lots, "initial", elapsed_h=b.elapsed_h))
        for spec in state.qc:
            lot = coated(lot_of(spec), -spec.elapsed_h, max(1, spec.anneals))
            lot.rework = spec.anneals > 1
            self.qc.submit(lot)
        return first

    def start(self) -> None:
        env = self.env
        first = self._inject(self.initial) if self.initial else {}
        env.process(self.arrivals())
        for r in self.reactors:
            env.process(r.run(first.get(r.name)))
        env.process(self.dispatcher.run())
        self.qc.start()

    def run(self, until_h: float | None = None) -> Trace:
        """Run to the horizon (or `until_h`) and return the trace, with unit totals."""
        self.start()
        horizon = self.horizon_h if until_h is None else until_h
        with gc_paused():  # a run makes no reference cycles: the collector would only rescan the trace
            self.env.run(until=horizon)
        tr = self.trace
        units = (*self.reactors, *self.furnaces, *self.qc.stations)
        for u in units:
            u.close(horizon)
        tr.units = [u.row() for u in units]
        # batches still in a furnace at the horizon, with their end, energy and gas unknown (NaN)
        tr.batches.extend(tuple(f.open_batch) for f in self.furnaces if f.open_batch is not None)
        tr.states = [(u.name, bytes(u.intervals)) for u in units]
        return tr


@functools.lru_cache(maxsize=256)
def _nominal_dose(
    recipe: tuple[float, float, float, float], start_c: float, unload_c: float, qp: physics.QualityParams
) -> physics.AnnealDose:
    """The dose of a recipe's nominal profile (setpoint, ramp, soak, cool), shared by every line of the process
    (QualityParams is frozen and hashable): a replication used to integrate it again (5 kinetic integrals, about
    0.3 ms, a tenth of a one-day run)."""
    setpoint_c, ramp_c_per_min, soak_h, cool_c_per_min = recipe
    t_h, temp_c = physics.recipe_profile(
        setpoint_c, ramp_c_per_min, soak_h, cool_c_per_min, start_c=start_c, unload_c=unload_c
    )
    return physics.anneal_dose(t_h, temp_c, qp)


def simulate(scenario: Any, seed: int | None = None, replication: int = 0) -> Trace:
    """Convenience: one replication of a scenario."""
    return Line(scenario, seed, replication).run()


def nominal_capacity_lots_per_h(scenario: Any) -> dict[str, float]:
    """Back-of-envelope capacity of each stage in lots/h (ignores failures and setups)."""
    ald = scenario.ald.reactors / scenario.ald.nominal_batch_h(scenario.coating.cycles)
    f = scenario.furnaces
    r = next(iter(scenario.recipes.values()))
    t_h, _ = physics.recipe_profile(
        r.setpoint_c, r.ramp_c_per_min, r.soak_h, r.cool_c_per_min, f.start_c, f.unload_c
    )
    cycle = f.load_h + float(t_h[-1]) + f.unload_h
    return {
        "ald": ald,
        "furnace": f.count * f.capacity_lots / cycle if cycle > 0 else math.inf,
        "qc": scenario.qc.stations / scenario.qc.test_h,
    }
