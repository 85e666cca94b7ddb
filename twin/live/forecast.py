"""Forecast from now: read the mirrored state (lots in reactors with their elapsed time, buffer contents with their
wait so far, furnace batches in progress, lots in QC) from plant_events, start the line model from it and run
it forward for N replications; expected output, queue, furnace starts and lots at risk of the residual-Li spec.

The state is handed to the line model as a `plant.initial.InitialState` (`Line(..., initial=...)`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from plant.initial import BatchAt, InitialState, LotAt, ReactorAt
from plant.line import Line
from twin.errors import TwinError
from twin.stats import t_ppf

LOT_ID_BASE = 1_000_000  # mirrored lots get ids from here; new arrivals count from 0


@dataclass
class MirroredLot:
    lot: str
    where: str  # ald, buffer, furnace, qc
    unit: str
    elapsed_h: float  # in the unit (ALD, furnace) or waiting since ALD end (buffer, QC)
    batch: str | None = None
    anneals: int = 0


@dataclass
class PlantState:
    """The mirrored WIP at `now` (plant hours measured with the tag map's time scale)."""

    now: datetime
    lots: list[MirroredLot] = field(default_factory=list)

    def by_place(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {"ald": [], "buffer": [], "furnace": [], "qc": []}
        for m in self.lots:
            out[m.where].append(m.lot)
        return out


def state_from_events(
    events: list[tuple], kinds: dict[str, str], now: datetime, time_scale: float
) -> PlantState:
    """WIP from derived plant events (t, kind, unit, lot_id, batch_id) in time order; QC verdicts from the QC
    unit's last_lot_id are not needed: a lot leaves QC when the QC unit reports it (lot_out) or a verdict event."""
    h = 3600.0 / time_scale
    where: dict[str, tuple[str, str, datetime, str | None, int]] = {}
    anneals: dict[str, int] = {}
    for t, kind, unit, lot, batch in events:
        ukind = kinds.get(unit or "", "")
        if kind == "lot_in" and lot is not None:
            if ukind == "ald":
                where[lot] = ("ald", unit, t, None, 0)
            elif ukind == "furnace":
                where[lot] = ("furnace", unit, t, batch, anneals.get(lot, 0))
        elif kind == "lot_out" and lot is not None:
            if ukind == "ald":
                where[lot] = ("buffer", "BUF", t, None, 0)
            elif ukind == "furnace" and lot in where:
                anneals[lot] = anneals.get(lot, 0) + 1
                where[lot] = ("qc", "QC", t, batch, anneals[lot])
        elif kind in ("pass", "scrap") and lot is not None:
            where.pop(lot, None)
        elif kind == "rework" and lot is not None and lot in where:
            where[lot] = ("buffer", "BUF", t, None, anneals.get(lot, 1))
    st = PlantState(now)
    for lot, (place, unit, t, batch, n) in where.items():
        st.lots.append(MirroredLot(lot, place, unit, (now - t).total_seconds() / h, batch, n))
    return st


def load_state(
    db: str | os.PathLike[str], kinds: dict[str, str], time_scale: float, source: str | None = None
) -> PlantState:
    """The mirrored state from a database written by `twin mirror` (derived events plus QC verdict events)."""
    import duckdb

    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        raise TwinError(f"cannot open database {db}: {str(exc).splitlines()[0]}") from None
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "plant_events" not in tables:
            raise TwinError(f"database {db} has no plant_events (run `twin mirror` first)")
        sources = [r[0] for r in con.execute("SELECT DISTINCT source FROM plant_events").fetchall()]
        if source is None:
            if len(sources) != 1:
                raise TwinError(f"database {db} holds plants {sources}; choose one with --source")
            source = sources[0]
        elif source not in sources:
            raise TwinError(f"database {db} has no plant {source!r} (has {sources})")
        now = con.execute("SELECT max(source_ts) FROM telemetry WHERE source = ?", [source]).fetchall()[0][0]
        rows = con.execute(
            """SELECT t, kind, unit, lot_id, batch_id FROM plant_events
               WHERE source = ? AND ((origin = 'derived' AND kind IN ('lot_in', 'lot_out'))
                                     OR (origin = 'server' AND kind IN ('pass', 'scrap', 'rework')))
               ORDER BY t, CASE kind WHEN 'lot_out' THEN 0 ELSE 1 END""",
            [source],
        ).fetchall()
    finally:
        con.close()
    if now is None:
        raise TwinError(f"database {db} has no telemetry for plant {source!r}")
    return state_from_events(rows, kinds, now, time_scale)


# -- starting the line model from the state ----------------------------------------------------------------


def initial_state(state: PlantState, recipe: str, mass_kg: float) -> tuple[InitialState, dict[int, str]]:
    """The mirrored WIP as the line model's starting state; returns it and model lot id -> mirrored lot id.

    Mirrored lots get ids from LOT_ID_BASE (new arrivals count from there on), the scenario's recipe and lot
    mass, nominal quality. ALD: elapsed time in the reactor; buffer and QC: hours since the end of ALD; furnace:
    hours since heating started (the longest of its lots), each lot's wait before it as its exposure."""
    init = InitialState()
    ids: dict[int, str] = {}
    batches: dict[str, list[MirroredLot]] = {}
    for i, m in enumerate(sorted(state.lots, key=lambda m: (-m.elapsed_h, m.lot))):
        lot_id = LOT_ID_BASE + i
        ids[lot_id] = m.lot
        if m.where == "furnace":
            batches.setdefault(m.unit, []).append(m)
            continue
        at = LotAt(lot_id, recipe, mass_kg, elapsed_h=m.elapsed_h, anneals=m.anneals)
        if m.where == "ald":
            init.reactors.append(ReactorAt(m.unit, at))
        elif m.where == "buffer":
            init.buffer.append(at)
        elif m.where == "qc":
            init.qc.append(at)
    by_lot = {v: k for k, v in ids.items()}
    for unit, members in batches.items():
        elapsed = max(m.elapsed_h for m in members)
        lots = [LotAt(by_lot[m.lot], recipe, mass_kg, wait_h=0.0, anneals=m.anneals) for m in members]
        init.furnaces.append(BatchAt(unit, recipe, lots, elapsed))
    return init, ids


# -- the forecast ------------------------------------------------------------------------------------------


KPIS = ("lots_out_good", "lots_scrapped", "good_kg", "furnace_starts", "buffer_end", "rl_at_risk")


def run_from_state(
    scenario: Any, state: PlantState, hours: float, seed: int, replication: int
) -> dict[str, Any]:
    """One replication started from the mirrored state; KPIs plus the mirrored lots at risk."""
    sc = scenario.model_copy(update={"horizon_h": float(hours), "warmup_h": 0.0})
    init, ids = initial_state(state, sc.arrivals.recipe, float(sc.arrivals.mass_kg))
    line = Line(sc, seed, replication, initial=init)
    line.run()
    good = [lot for lot in line.trace.lots if lot.status == "good"]
    scrap = [lot for lot in line.trace.lots if lot.status == "scrap"]
    at_risk = sorted(ids[lot.lot_id] for lot in scrap if lot.reason == "residual_li" and lot.lot_id in ids)
    return {
        "lots_out_good": float(len(good)),
        "lots_scrapped": float(len(scrap)),
        "good_kg": float(sum(lot.mass_kg for lot in good)),
        "furnace_starts": float(len(line.trace.batches) + 0),
        "buffer_end": float(len(line.buffer.queue)),
        "rl_at_risk": float(len(at_risk)),
        "at_risk_lots": at_risk,
    }


@dataclass
class Forecast:
    hours: float
    replications: int
    state: PlantState
    kpis: dict[str, tuple[float, float, float]]  # mean, ci_low, ci_high
    risk: dict[str, float]  # mirrored lot -> share of replications in which it broke the residual-Li spec


def _check_limits(scenario: Any, hours: float, replications: int) -> None:
    """TwinError when the forecast's horizon or replications exceed the scenario's limits (docs/limits.md)."""
    from twin.scenario import scenario_from_dict

    update = {"horizon_h": float(hours), "warmup_h": 0.0, "replications": replications}
    where = f"forecast of scenario {scenario.name} with --hours {hours:g} -n {replications}"
    scenario_from_dict(scenario.model_dump() | update, where=where)


def forecast(scenario: Any, state: PlantState, hours: float, replications: int, seed: int = 1) -> Forecast:
    """N replications from the same state (common seeds), 95 % Student-t intervals."""
    if replications < 1 or not hours > 0:
        raise TwinError("--replications must be >= 1 and --hours > 0")
    _check_limits(scenario, hours, replications)
    runs = [run_from_state(scenario, state, hours, seed, r) for r in range(replications)]
    out = {}
    for k in KPIS:
        a = np.array([r[k] for r in runs])
        mean = float(a.mean())
        if len(a) > 1:
            half = float(t_ppf(0.975, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a)))
        else:
            half = math.nan
        out[k] = (mean, mean - half, mean + half)
    risk: dict[str, float] = {}
    for r in runs:
        for lot in r["at_risk_lots"]:
            risk[lot] = risk.get(lot, 0.0) + 1.0 / replications
    return Forecast(hours, replications, state, out, risk)


def forecast_from_db(
    db: str | os.PathLike[str], scenario: Any, tagmap: Any, hours: float, replications: int, seed: int = 1
) -> Forecast:
    """`twin forecast`: the state mirrored into `db` by `tagmap` (units, time scale), parameters from `scenario`."""
    kinds = {u: unit.kind for u, unit in tagmap.units.items()}
    state = load_state(db, kinds, tagmap.time_scale, tagmap.name)
    return forecast(scenario, state, hours, replications, seed)


def render(f: Forecast) -> str:
    """Plain-text table of a forecast."""
    places = f.state.by_place()
    lines = [
        f"state at {f.state.now:%Y-%m-%d %H:%M:%S} UTC: "
        + ", ".join(f"{k} {len(v)}" for k, v in places.items()),
        f"next {f.hours:g} h, {f.replications} replications (95 % CI):",
    ]
    for k, (mean, lo, hi) in f.kpis.items():
        ci = "" if math.isnan(lo) else f"  [{lo:.2f}, {hi:.2f}]"
        lines.append(f"  {k:<16} {mean:8.2f}{ci}")
    if f.risk:
        worst = sorted(f.risk.items(), key=lambda kv: -kv[1])[:10]
        lines.append(
            "lots at risk of the residual-Li spec: " + ", ".join(f"{lot} ({p:.0%})" for lot, p in worst)
        )
    else:
        lines.append("lots at risk of the residual-Li spec: none")
    return "\n".join(lines)
