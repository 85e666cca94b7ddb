"""Scenario files: pydantic models of a line scenario, loaded from YAML with errors that name file and field.

A scenario is validated once here; the plant model then reads its attributes (duck typing, see
docs/architecture.md) and never imports this module.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from plant.calendar import PRESETS, WEEKDAYS
from plant.physics import ATMOSPHERES, MATERIALS, QualityParams
from plant.policies import POLICIES
from twin.errors import TwinError
from twin.inputs import load_yaml, one_line, read_text
from twin.limits import Limits, scenario_limit_errors

PositiveHours = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegHours = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Capacity = Annotated[int, Field(ge=1)]
Int64 = 2**63 - 1  # seeds and ids are stored as BIGINT
Temperature = Annotated[float, Field(gt=-273.15, le=1200)]


class _Model(BaseModel):
    # defer_build: the validators are built on the first validation, not at import; a study's worker process
    # receives validated scenarios and never builds them (0.04-0.08 s off every start of a process pool)
    # allow_inf_nan=False: every float field (and every float in a mapping such as `quality:`) refuses NaN and inf
    model_config = ConfigDict(
        extra="forbid", frozen=False, validate_assignment=True, defer_build=True, allow_inf_nan=False
    )


class Recipe(_Model):
    """An anneal recipe: a piecewise-linear profile (ramp, soak, cool) in one atmosphere."""

    setpoint_c: Annotated[float, Field(gt=25, le=1200, description="soak temperature, °C")] = 400.0
    ramp_c_per_min: PositiveFloat = Field(5.0, description="heating ramp, °C/min")
    soak_h: PositiveHours = Field(3.0, description="hold at setpoint, h")
    atmosphere: Literal[ATMOSPHERES] = Field("O2", description="furnace atmosphere")  # type: ignore[valid-type]
    cool_c_per_min: PositiveFloat = Field(
        0.67, description="cooling rate down to the unload temperature, °C/min"
    )

    def key(self) -> tuple[float, float, float, str, float]:
        return (self.setpoint_c, self.ramp_c_per_min, self.soak_h, self.atmosphere, self.cool_c_per_min)


class PlanRow(_Model):
    """One row of a production plan: a lot released at a given time."""

    lot_id: int = Field(ge=0, le=Int64)
    release_h: NonNegHours
    mass_kg: PositiveFloat
    recipe: str


class Arrivals(_Model):
    """How lots of calcined NCM arrive at the ALD stage."""

    kind: Literal["poisson", "takt", "plan"] = "poisson"
    rate_per_h: PositiveFloat | None = Field(0.5, description="Poisson arrival rate (kind poisson), lots/h")
    takt_h: PositiveHours | None = Field(None, description="fixed interval between lots (kind takt), h")
    plan_csv: str | None = Field(None, description="CSV with lot_id, release_h, mass_kg, recipe (kind plan)")
    plan: list[PlanRow] | None = Field(None, description="inline plan rows, or rows read from plan_csv")
    mass_kg: PositiveFloat = Field(120.0, description="mass of a lot, kg")
    recipe: str = Field("default", description="anneal recipe of every lot (unless recipe_mix or a plan)")
    recipe_mix: dict[str, PositiveFloat] | None = Field(
        None, description="recipe name -> weight (random mix)"
    )

    @model_validator(mode="after")
    def _kind_fields(self) -> Arrivals:
        if self.kind == "poisson" and self.rate_per_h is None:
            raise ValueError("kind 'poisson' needs rate_per_h")
        if self.kind == "takt" and self.takt_h is None:
            raise ValueError("kind 'takt' needs takt_h")
        if self.kind == "plan" and self.plan is None and self.plan_csv is None:
            raise ValueError("kind 'plan' needs plan_csv (or inline plan rows)")
        return self


class Coating(_Model):
    """The ALD film: material and number of cycles."""

    material: Literal[MATERIALS] = "HfO2"  # type: ignore[valid-type]
    cycles: Annotated[int, Field(ge=1, le=200)] = 10


class Ald(_Model):
    """Fluidized-bed ALD reactors, one lot per batch."""

    reactors: Capacity = 3
    load_h: NonNegHours = 0.5
    pump_heat_h: NonNegHours = 0.75
    cycle_min: PositiveFloat = Field(12.0, description="one (pulse, purge, pulse, purge) cycle, min")
    vent_cool_h: NonNegHours = 0.75
    unload_h: NonNegHours = 0.5
    time_distribution: Literal["fixed", "gamma", "exponential"] = Field(
        "gamma", description="batch time around its nominal value: fixed, gamma with time_cv, or exponential"
    )
    time_cv: Annotated[float, Field(ge=0, le=10)] = Field(
        0.1, description="coefficient of variation of the batch time (gamma)"
    )
    mtbf_h: PositiveHours | None = Field(
        300.0, description="mean operating hours between failures; null = none"
    )
    mttr_h: PositiveHours = Field(8.0, description="mean time to repair, h")
    pm_every_batches: Capacity | None = Field(
        60, description="preventive maintenance every k batches; null = none"
    )
    pm_h: NonNegHours = Field(6.0, description="duration of preventive maintenance, h")
    failure_clock: Literal["operating", "calendar"] = Field(
        "operating", description="count time between failures on operating hours or on calendar hours"
    )

    def nominal_batch_h(self, cycles: int) -> float:
        return (
            self.load_h + self.pump_heat_h + cycles * self.cycle_min / 60.0 + self.vent_cool_h + self.unload_h
        )


class Buffer(_Model):
    """The buffer between ALD and anneal; a full buffer blocks the reactors."""

    capacity_lots: Annotated[int, Field(ge=1, le=1_000_000)] = 12
    environment: Literal["ambient", "dry_room"] = "ambient"
    rh_pct: Annotated[float, Field(ge=0, le=100)] | None = Field(
        None, description="relative humidity; default 50 % ambient, 1 % dry room (-40 °C dew point)"
    )
    temp_c: Annotated[float, Field(ge=-20, le=80)] = 25.0

    @property
    def effective_rh_pct(self) -> float:
        if self.rh_pct is not None:
            return self.rh_pct
        return 50.0 if self.environment == "ambient" else 1.0


class PolicyConfig(_Model):
    """The furnace scheduling policy by name, with that policy's own options."""

    model_config = ConfigDict(extra="allow")
    name: str = "timeout"

    @model_validator(mode="after")
    def _known_policy(self) -> PolicyConfig:
        if self.name not in POLICIES:
            raise ValueError(f"unknown policy {self.name!r}; choose one of {', '.join(sorted(POLICIES))}")
        POLICIES[self.name].check_options(self.options())
        return self

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Furnaces(_Model):
    """Batch anneal furnaces (box furnaces holding several lots in saggers)."""

    count: Capacity = 2
    capacity_lots: Annotated[int, Field(ge=1, le=10_000)] = 4
    load_h: NonNegHours = 0.5
    unload_h: NonNegHours = 0.5
    start_c: Temperature = Field(25.0, description="temperature at the start of the ramp, °C")
    unload_c: Temperature = Field(80.0, description="temperature at which the door opens, °C")
    atmosphere_change_h: NonNegHours = Field(1.5, description="purge when the atmosphere changes, h")
    setpoint_change_h: NonNegHours = Field(0.5, description="extra setup when the setpoint changes, h")
    heat_kwh_fixed: NonNegFloat = Field(100.0, description="furnace and sagger heat per batch at 400 °C, kWh")
    heat_kwh_per_kg: NonNegFloat = Field(0.18, description="sensible heat of the powder at 400 °C, kWh/kg")
    holding_kw: NonNegFloat = Field(20.0, description="heat losses during ramp and soak, kW")
    gas_nm3_per_h: NonNegFloat = Field(18.0, description="process gas flow during the thermal cycle, Nm³/h")
    mtbf_h: PositiveHours | None = Field(
        3000.0, description="mean operating hours between failures; null = none"
    )
    mttr_h: PositiveHours = 8.0
    failure_clock: Literal["operating", "calendar"] = Field(
        "operating", description="count time between failures on operating hours or on calendar hours"
    )
    policy: PolicyConfig = Field(default_factory=PolicyConfig)


class Qc(_Model):
    """Fast-release quality control: a test time per lot on parallel stations."""

    test_h: PositiveHours = 8.0
    stations: Capacity = 4
    rework: bool = Field(True, description="re-anneal an under-dense lot once before scrapping it")


Weekday = Literal[WEEKDAYS]  # type: ignore[valid-type]


class Shift(_Model):
    """A staffed window on the named weekdays, in hours of the day."""

    days: list[Weekday] = Field(min_length=1)
    start_h: Annotated[float, Field(ge=0, lt=24)]
    end_h: Annotated[float, Field(gt=0, le=24)]

    @model_validator(mode="after")
    def _order(self) -> Shift:
        if self.end_h <= self.start_h:
            raise ValueError(
                f"end_h ({self.end_h}) must be after start_h ({self.start_h}); split night shifts in two"
            )
        return self


class Window(_Model):
    """A planned shutdown, in simulated hours."""

    start_h: NonNegHours
    end_h: PositiveHours

    @model_validator(mode="after")
    def _order(self) -> Window:
        if self.end_h <= self.start_h:
            raise ValueError(f"end_h ({self.end_h}) must be after start_h ({self.start_h})")
        return self


class CalendarConfig(_Model):
    """When operators are on site (loading, unloading and QC wait for them) and planned shutdowns."""

    pattern: Literal[tuple(PRESETS)] | None = Field(  # type: ignore[valid-type]
        None, description="named shift pattern (ignored when shifts are given)"
    )
    shifts: list[Shift] = Field(default_factory=list, description="staffed windows per weekday")
    holidays: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=list, description="unstaffed day numbers"
    )
    shutdowns: list[Window] = Field(
        default_factory=list, description="planned shutdowns (no new work starts)"
    )
    start_weekday: Weekday = Field("mon", description="weekday of simulated day 0")

    @model_validator(mode="after")
    def _holidays_need_shifts(self) -> CalendarConfig:
        if self.holidays and self.pattern is None and not self.shifts:
            raise ValueError("holidays need a shift pattern or shifts")
        return self


def _default_recipes() -> dict[str, Recipe]:
    return {"default": Recipe()}


class Scenario(_Model):
    """A line scenario: what arrives, the equipment, the recipes, the quality parameters and the horizon."""

    name: str = "scenario"
    description: str = ""
    horizon_h: PositiveHours = Field(720.0, description="simulated hours")
    warmup_h: NonNegHours = Field(0.0, description="hours discarded when KPIs are computed")
    seed: Annotated[int, Field(ge=0, le=Int64)] = 1
    replications: Capacity = 5
    arrivals: Arrivals = Field(default_factory=Arrivals)
    coating: Coating = Field(default_factory=Coating)
    ald: Ald = Field(default_factory=Ald)
    buffer: Buffer = Field(default_factory=Buffer)
    furnaces: Furnaces = Field(default_factory=Furnaces)
    recipes: dict[str, Recipe] = Field(default_factory=_default_recipes)
    qc: Qc = Field(default_factory=Qc)
    calendar: CalendarConfig | None = Field(
        None, description="shifts, holidays, planned shutdowns; none = 24/7"
    )
    quality: dict[str, float] = Field(default_factory=dict, description="overrides of QualityParams fields")
    limits: Limits = Field(
        default_factory=Limits,
        description="ceilings on the work of a run; raise them to run bigger scenarios",
    )

    @field_validator("quality")
    @classmethod
    def _known_quality_fields(cls, v: dict[str, float]) -> dict[str, float]:
        QualityParams().replace(**v)  # raises ValueError naming the unknown field
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        if self.warmup_h >= self.horizon_h:
            raise ValueError(f"warmup_h ({self.warmup_h}) must be shorter than horizon_h ({self.horizon_h})")
        names = set(self.recipes)
        used = (
            {self.arrivals.recipe} if self.arrivals.kind != "plan" and not self.arrivals.recipe_mix else set()
        )
        used |= set(self.arrivals.recipe_mix or {})
        used |= {row.recipe for row in self.arrivals.plan or []}
        missing = sorted(used - names)
        if missing:
            raise ValueError(
                f"recipe(s) {', '.join(missing)} not defined under recipes ({', '.join(sorted(names))})"
            )
        over = scenario_limit_errors(self)
        if over:
            raise ValidationError.from_exception_data(
                "Scenario",
                [
                    InitErrorDetails(type=PydanticCustomError("limit", msg), loc=loc, input=None)
                    for loc, msg in over
                ],
            )
        return self

    def quality_params(self) -> QualityParams:
        """The quality parameters: defaults with this scenario's overrides. The same overrides give the same
        (frozen) object, so that the quality model's caches, keyed by it, serve every replication."""
        return _quality_params(tuple(sorted(self.quality.items())))


@functools.lru_cache(maxsize=64)
def _quality_params(overrides: tuple[tuple[str, float], ...]) -> QualityParams:
    return QualityParams().replace(**dict(overrides))


def scenario_hash(scenario: Scenario) -> str:
    """A stable hash of the validated scenario (sorted JSON; its limits change no result and are left out)."""
    text = json.dumps(scenario.model_dump(mode="json", exclude={"limits"}), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _format_errors(path: str, err: ValidationError) -> list[str]:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p not in ("function-after",))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        lines.append(one_line(f"{path}: {_loc(loc)}: {msg}"))
    return lines


def _read_plan_csv(csv_path: Path, where: str) -> list[dict[str, Any]]:
    if not csv_path.is_file():
        raise _PlanError(f"{where}: arrivals.plan_csv: file not found: {csv_path}")
    rows = []
    reader = csv.DictReader(io.StringIO(read_text(csv_path), newline=""))
    try:
        need = {"lot_id", "release_h", "mass_kg", "recipe"}
        have = set(reader.fieldnames or [])
        if not need <= have:
            raise _PlanError(f"{csv_path}: missing column(s) {', '.join(sorted(need - have))}")
        for row in reader:
            i = reader.line_num
            try:
                rows.append(
                    {
                        "lot_id": int(row["lot_id"]),
                        "release_h": float(row["release_h"]),
                        "mass_kg": float(row["mass_kg"]),
                        "recipe": row["recipe"].strip(),
                    }
                )
            except (TypeError, ValueError, AttributeError):
                raise _PlanError(
                    f"{csv_path}: line {i}: non-numeric or missing lot_id, release_h, mass_kg or recipe"
                ) from None
            if not math.isfinite(rows[-1]["release_h"]):
                raise _PlanError(f"{csv_path}: line {i}: release_h must be finite")
    except csv.Error as exc:
        raise _PlanError(f"{csv_path}: line {reader.line_num}: not a valid CSV row ({exc})") from None
    rows.sort(key=lambda r: (r["release_h"], r["lot_id"]))
    return rows


class _PlanError(Exception):
    pass


def _parse(path: Path) -> tuple[Scenario | None, list[str]]:
    where = str(path)
    try:
        data = load_yaml(path, "a scenario")
    except TwinError as exc:
        return None, [one_line(str(exc))]
    arr = data.get("arrivals")
    if isinstance(arr, dict) and arr.get("plan_csv") and not arr.get("plan"):
        try:
            arr = dict(arr, plan=_read_plan_csv((path.parent / str(arr["plan_csv"])), where))
        except (_PlanError, TwinError) as exc:
            return None, [one_line(str(exc))]
        data = dict(data, arrivals=arr)
    data.setdefault("name", path.stem)
    try:
        return Scenario.model_validate(data), []
    except ValidationError as err:
        return None, _format_errors(where, err)


def scenario_errors(path: str | Path) -> list[str]:
    """Validate a scenario file; one line per error ("file: field.path: message"), empty when valid."""
    return _parse(Path(path))[1]


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file; raise TwinError with the first error line (and a count of others)."""
    scenario, errors = _parse(Path(path))
    if errors:
        more = f" (and {len(errors) - 1} more; run `twin scenario check {path}`)" if len(errors) > 1 else ""
        raise TwinError(errors[0] + more)
    assert scenario is not None
    return scenario


def scenario_from_dict(data: dict[str, Any], where: str = "<dict>") -> Scenario:
    """Validate a scenario given as a mapping (used by studies and tests)."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        lines = _format_errors(where, err)
        raise TwinError(lines[0] + (f" (and {len(lines) - 1} more)" if len(lines) > 1 else "")) from None


def scenario_json_schema() -> dict[str, Any]:
    """The JSON schema of a scenario file, for editors."""
    return Scenario.model_json_schema()
