"""Ceilings on the work a scenario or study may ask for (a scenario's or study's `limits:` section raises them),
and the estimates of lots and events per replication that are checked against them.

A scenario of 1e9 lots/h is valid YAML but would fill the memory for hours before failing; the checks here turn
it into one line naming the field, the limit and the `limits:` field that raises it. The defaults let a
replication use at most a few GB (about 2.6 KB per lot while it runs, measured by benchmarks/run.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# a trace packs unit codes as unsigned 16-bit integers (plant/trace.py EVENT_ROW): ALD reactors, furnaces and QC
# stations each take one code, and the arrivals, the buffer and the QC queue one each
UNIT_CODES = 2**16
FIXED_UNITS = 3
MAX_UNITS = UNIT_CODES - FIXED_UNITS

# events recorded per lot (arrive, ALD start/end, buffer, furnace load/start/end, QC start/verdict, ...): about
# 10 in the shipped scenarios, 12 counts a re-anneal; every failure and maintenance stop adds 2 (down, up)
EVENTS_PER_LOT = 12
EVENTS_PER_STOP = 2

PositiveInt = Annotated[int, Field(ge=1)]


class Limits(BaseModel):
    """Ceilings on the work of one scenario (and of a study built on it). Raise one here to run bigger."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False, defer_build=True)

    horizon_h: Annotated[float, Field(gt=0)] = Field(100_000.0, description="longest horizon_h, h (11 years)")
    replications: PositiveInt = Field(1_000, description="most replications of one run")
    units: Annotated[int, Field(ge=1, le=MAX_UNITS)] = Field(
        1_000, description=f"most ALD reactors, furnaces or QC stations, each (at most {MAX_UNITS})"
    )
    lots_per_replication: PositiveInt = Field(
        1_000_000, description="most expected lots per replication (about 2.6 KB of memory each)"
    )
    events_per_replication: PositiveInt = Field(
        20_000_000, description="most estimated events per replication (lots and equipment stops)"
    )
    lots_per_run: PositiveInt = Field(
        2_000_000,
        description="most expected lots of all replications of a run (held until the run is stored)",
    )
    runs_per_study: PositiveInt = Field(
        10_000, description="most scenario runs of a study (design scenarios x (1 + uncertainty samples))"
    )
    lots_per_study: PositiveInt = Field(
        20_000_000, description="most expected lots of a whole study (every run, every replication)"
    )


RAISE = "raise limits.{field} in the scenario or study file to allow it"


def expected_lots(scenario: Any) -> tuple[float, tuple[str, ...], str]:
    """Expected lots released per replication, the field that sets them, and how they follow from it."""
    a, h = scenario.arrivals, scenario.horizon_h
    if a.kind == "plan":
        n = len(a.plan or [])
        return float(n), ("arrivals", "plan"), f"{n} plan rows"
    if a.kind == "takt":
        return h / a.takt_h, ("arrivals", "takt_h"), f"horizon_h {h:g} h / takt_h {a.takt_h:g} h"
    rate = a.rate_per_h or 0.0
    return rate * h, ("arrivals", "rate_per_h"), f"rate_per_h {rate:g}/h x horizon_h {h:g} h"


def expected_stops(scenario: Any, lots: float) -> tuple[float, tuple[str, ...]]:
    """Upper estimate of equipment failures and maintenance stops per replication, and the field that drives
    most of them (failures counted as if the equipment ran the whole horizon)."""
    h = scenario.horizon_h
    ald, fur = scenario.ald, scenario.furnaces
    parts = {
        ("ald", "mtbf_h"): ald.reactors * h / ald.mtbf_h if ald.mtbf_h else 0.0,
        ("furnaces", "mtbf_h"): fur.count * h / fur.mtbf_h if fur.mtbf_h else 0.0,
        ("ald", "pm_every_batches"): lots / ald.pm_every_batches if ald.pm_every_batches else 0.0,
    }
    worst = max(parts, key=lambda k: parts[k])
    return sum(parts.values()), worst


def scenario_limit_errors(scenario: Any) -> list[tuple[tuple[str, ...], str]]:
    """Every limit a validated scenario exceeds, as (field path, one-line message)."""
    lim: Limits = scenario.limits
    errors: list[tuple[tuple[str, ...], str]] = []
    if scenario.horizon_h > lim.horizon_h:
        errors.append(
            (
                ("horizon_h",),
                f"{scenario.horizon_h:g} h is over the limit of {lim.horizon_h:g} h; "
                + RAISE.format(field="horizon_h"),
            )
        )
    if scenario.replications > lim.replications:
        errors.append(
            (
                ("replications",),
                f"{scenario.replications} is over the limit of {lim.replications}; "
                + RAISE.format(field="replications"),
            )
        )
    counts = {
        ("ald", "reactors"): scenario.ald.reactors,
        ("furnaces", "count"): scenario.furnaces.count,
        ("qc", "stations"): scenario.qc.stations,
    }
    for path, n in counts.items():
        if n > lim.units:
            errors.append(
                (
                    path,
                    f"{n} is over the limit of {lim.units} units of one kind; " + RAISE.format(field="units"),
                )
            )
    total = sum(counts.values()) + FIXED_UNITS
    if total > UNIT_CODES and all(n <= lim.units for n in counts.values()):
        errors.append(
            (
                ("ald", "reactors"),
                f"ald.reactors + furnaces.count + qc.stations = {total - FIXED_UNITS}; a run records at most "
                f"{MAX_UNITS} units",
            )
        )
    if errors:  # the estimates below would only repeat a horizon or a count already reported
        return errors
    lots, lots_path, how = expected_lots(scenario)
    if lots > lim.lots_per_replication:
        errors.append(
            (
                lots_path,
                f"about {lots:.3g} lots per replication ({how}) is over the limit of {lim.lots_per_replication}; "
                + RAISE.format(field="lots_per_replication"),
            )
        )
    stops, stops_path = expected_stops(scenario, lots)
    events = EVENTS_PER_LOT * lots + EVENTS_PER_STOP * stops
    if not errors and events > lim.events_per_replication:
        path = lots_path if EVENTS_PER_LOT * lots >= EVENTS_PER_STOP * stops else stops_path
        errors.append(
            (
                path,
                f"about {events:.3g} events per replication ({lots:.3g} lots, {stops:.3g} failures and "
                f"maintenance stops) is over the limit of {lim.events_per_replication}; "
                + RAISE.format(field="events_per_replication"),
            )
        )
    run_lots = scenario.replications * lots
    if not errors and run_lots > lim.lots_per_run:
        errors.append(
            (
                ("replications",),
                f"{scenario.replications} replications x about {lots:.3g} lots = {run_lots:.3g} lots per run is "
                f"over the limit of {lim.lots_per_run} (a run is held in memory until it is stored); "
                + RAISE.format(field="lots_per_run"),
            )
        )
    return errors


def run_limit_error(scenario: Any, replications: int, option: str) -> str | None:
    """The message when `replications` (given by `option`, e.g. --replications) exceed the scenario's limits."""
    lim: Limits = scenario.limits
    if replications > lim.replications:
        return (
            f"{option} {replications} is over the limit of {lim.replications} replications (scenario "
            f"{scenario.name}); " + RAISE.format(field="replications")
        )
    lots = expected_lots(scenario)[0]
    if replications * lots > lim.lots_per_run:
        return (
            f"{option} {replications} x about {lots:.3g} lots = {replications * lots:.3g} lots per run is over the "
            f"limit of {lim.lots_per_run} (scenario {scenario.name}); " + RAISE.format(field="lots_per_run")
        )
    return None
