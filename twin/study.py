"""Study files: a base scenario plus a design (full factorial or named strategies) -> a list of named scenarios,
each run once per sample of the uncertain quality parameters when the study asks for `uncertainty:`.

Every generated scenario is validated by the Scenario model and shares the study's seed, so replication r of every
scenario sees the same random numbers (common random numbers; differences between scenarios are paired).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from twin.errors import TwinError
from twin.inputs import load_yaml
from twin.limits import Limits, expected_lots
from twin.scenario import Int64, Scenario, _format_errors, load_scenario, scenario_from_dict
from twin.uncertainty import MAX_SAMPLES, NOMINAL, ParameterSamples, param_ranges, sample_parameters


class Strategy(BaseModel):
    """A named strategy: dotted field paths of the scenario -> values (`recipes.mild-400.soak_h: 2`)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)

    def overrides(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Uncertainty(BaseModel):
    """Sampling of the uncertain quality parameters: N Latin-hypercube samples over their PARAM_RANGES."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    samples: int = Field(
        description="number of samples (each runs every strategy; the nominal model runs too)"
    )
    seed: int | None = Field(
        None, ge=0, le=Int64, description="seed of the Latin hypercube (default: the study's seed)"
    )
    params: list[str] | None = Field(
        None, description="parameters to sample (default: every one with a range)"
    )

    @field_validator("samples")
    @classmethod
    def _samples(cls, v: int) -> int:
        if v < 2:
            raise ValueError(f"at least 2 samples are needed, got {v}")
        if v > MAX_SAMPLES:
            raise ValueError(
                f"at most {MAX_SAMPLES} samples, got {v} (each sample runs every strategy with every replication)"
            )
        return v

    @field_validator("params")
    @classmethod
    def _params(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("an empty list samples nothing; leave params out to sample every parameter")
        ranges = param_ranges()
        for name in v:
            if name not in ranges:
                raise ValueError(f"unknown parameter {name!r}; valid: {', '.join(sorted(ranges))}")
        dup = sorted({n for n in v if v.count(n) > 1})
        if dup:
            raise ValueError(f"parameter(s) listed twice: {', '.join(dup)}")
        return v


class Study(BaseModel):
    """A study: base scenario file, replications, seed, optional horizon/warm-up, a design and a baseline."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str = "study"
    description: str = ""
    base: str = Field(description="base scenario YAML, relative to the study file")
    replications: int = Field(5, ge=1)
    seed: int = Field(1, ge=0, le=Int64)
    horizon_h: float | None = Field(None, gt=0)
    warmup_h: float | None = Field(None, ge=0)
    design: Literal["factorial", "strategies"]
    factors: dict[str, list[Any]] | None = Field(None, description="factorial: dotted field path -> levels")
    strategies: list[Strategy] | None = Field(None, description="strategies: named sets of field overrides")
    baseline: str | None = Field(None, description="scenario the others are compared with")
    uncertainty: Uncertainty | None = Field(
        None, description="run every scenario under sampled quality parameters"
    )
    limits: Limits | None = Field(
        None,
        description="raise the base scenario's limits for every scenario of the study (and the study's own)",
    )

    @model_validator(mode="after")
    def _design_fields(self) -> Study:
        if self.design == "factorial":
            if not self.factors:
                raise ValueError("design 'factorial' needs factors (field path -> list of levels)")
            for key, levels in self.factors.items():
                if not levels:
                    raise ValueError(f"factor {key!r} has no levels")
            if self.strategies:
                raise ValueError("design 'factorial' takes factors, not strategies")
        else:
            if not self.strategies:
                raise ValueError("design 'strategies' needs a list of strategies (name + field overrides)")
            names = [s.name for s in self.strategies]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"duplicate strategy name(s): {', '.join(dup)}")
            if self.factors:
                raise ValueError("design 'strategies' takes strategies, not factors")
        return self


class StudyPlan(BaseModel):
    """A loaded study with its generated scenarios and the resolved baseline name.

    Without uncertainty, `scenarios` are the design's scenarios in design order and `strategies` their names. With
    it, `scenarios` holds every strategy x sample, sample by sample (the nominal sample 0 first), named
    `<strategy>@u<k>`; `strategies` are the design's names and `samples` the sampled parameter values."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    study: Study
    path: str
    scenarios: list[Scenario]
    baseline: str
    strategies: list[str] = Field(default_factory=list)
    samples: ParameterSamples | None = None

    @property
    def name(self) -> str:
        return self.study.name

    @property
    def n_runs(self) -> int:
        return len(self.scenarios) * self.study.replications

    def scenario(self, name: str) -> Scenario:
        for s in self.scenarios:
            if s.name == name:
                return s
        raise TwinError(f"{self.path}: no scenario named {name!r} in study {self.name}")

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "path": self.path,
            "study": self.study.model_dump(
                mode="json", exclude={"uncertainty"} if self.samples is None else None
            ),
            "baseline": self.baseline,
        }
        if self.samples is not None:
            data["uncertainty"] = self.samples.to_dict() | {"strategies": self.strategies}
        return json.dumps(data, sort_keys=True)

    def hash(self) -> str:
        text = json.dumps([s.model_dump(mode="json") for s in self.scenarios], sort_keys=True)
        return hashlib.sha256((self.to_json() + text).encode()).hexdigest()[:16]


# -- naming ---------------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        rest = {k: v for k, v in value.items() if k != "name"}
        inner = ",".join(f"{k}={_fmt(v)}" for k, v in rest.items())
        if "name" in value:
            return f"{value['name']}({inner})" if inner else str(value["name"])
        return f"({inner})"
    if isinstance(value, list):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)


def _labels(paths: list[str]) -> dict[str, str]:
    """Readable label per factor path: its last segment, or as many trailing segments as make labels unique."""
    depth_max = max(len(p.split(".")) for p in paths)
    for depth in range(1, depth_max + 1):
        labels = {p: ".".join(p.split(".")[-depth:]) for p in paths}
        if len(set(labels.values())) == len(paths):
            return labels
    return {p: p for p in paths}


def _is_level_set(level: Any) -> bool:
    return isinstance(level, dict) and set(level) == {"label", "set"} and isinstance(level["set"], dict)


def factorial_names(factors: dict[str, list[Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every combination of levels (first factor varies slowest) with its readable name `a=1,b=2`.

    A level may also be `{label: dry, set: {buffer.environment: dry_room, buffer.rh_pct: 1}}`: several fields
    that change together; the factor's key is then only its name in the scenario names.
    """
    paths = list(factors)
    labels = _labels(paths)
    out = []
    for combo in itertools.product(*(factors[p] for p in paths)):
        parts, overrides = [], {}
        for p, v in zip(paths, combo):
            if _is_level_set(v):
                parts.append(f"{labels[p]}={_fmt(v['label'])}")
                overrides.update(v["set"])
            else:
                parts.append(f"{labels[p]}={_fmt(v)}")
                overrides[p] = v
        out.append((",".join(parts), overrides))
    return out


# -- applying overrides ---------------------------------------------------------------------------------------
def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set `a.b.c` in nested dicts (missing levels are created; the Scenario model rejects unknown fields)."""
    keys = path.split(".")
    node = data
    for i, key in enumerate(keys[:-1]):
        nxt = node.get(key)
        if nxt is None:
            nxt = node[key] = {}
        if not isinstance(nxt, dict):
            raise ValueError(f"{'.'.join(keys[: i + 1])} is not a section (it holds {nxt!r})")
        node = nxt
    node[keys[-1]] = copy.deepcopy(value)


def apply_overrides(base: Scenario, name: str, overrides: dict[str, Any], where: str) -> Scenario:
    """A copy of `base` named `name` with the dotted-path overrides, validated; TwinError names `where` + field."""
    data = base.model_dump(mode="json")
    for path, value in overrides.items():
        if not isinstance(path, str):
            raise TwinError(
                f"{where}: scenario {name!r}: {path!r}: a field path must be text, e.g. furnaces.count"
            )
        try:
            set_path(data, path, value)
        except ValueError as exc:
            raise TwinError(f"{where}: scenario {name!r}: {path}: {exc}") from None
    data["name"] = name
    return scenario_from_dict(data, where=f"{where}: scenario {name!r}")


# -- loading --------------------------------------------------------------------------------------------------
def parse_study(data: dict[str, Any], where: str) -> Study:
    """Validate a study mapping; TwinError with the first error as `file: field: message`."""
    try:
        return Study.model_validate(data)
    except ValidationError as err:
        lines = _format_errors(where, err)
        raise TwinError(lines[0] + (f" (and {len(lines) - 1} more)" if len(lines) > 1 else "")) from None


def plan_study(study: Study, path: str | Path, base: Scenario | None = None) -> StudyPlan:
    """Expand a study into its validated scenarios; `base` overrides reading `study.base` next to `path`."""
    where = str(path)
    if base is None:
        base = load_scenario(Path(path).parent / study.base)
    update: dict[str, Any] = {"seed": study.seed, "replications": study.replications}
    if study.horizon_h is not None:
        update["horizon_h"] = study.horizon_h
    if study.warmup_h is not None:
        update["warmup_h"] = study.warmup_h
    if study.limits is not None:
        update["limits"] = base.limits.model_dump() | study.limits.model_dump(exclude_unset=True)
    data = base.model_dump(mode="json") | update
    base = scenario_from_dict(data, where=f"{where}: base {study.base}")

    per_design = 1 + (study.uncertainty.samples if study.uncertainty is not None else 0)
    if study.design == "factorial":
        assert study.factors is not None
        _check_runs(
            math.prod(len(levels) for levels in study.factors.values()), per_design, base.limits, where
        )
        items = factorial_names(study.factors)
    else:
        assert study.strategies is not None
        _check_runs(len(study.strategies), per_design, base.limits, where)
        items = [(s.name, s.overrides()) for s in study.strategies]
    scenarios = [apply_overrides(base, name, over, where) for name, over in items]
    _check_lots(scenarios, per_design, base.limits, where)
    names = [s.name for s in scenarios]
    if study.baseline is None:
        baseline = names[0]
    elif study.baseline in names:
        baseline = study.baseline
    else:
        raise TwinError(
            f"{where}: baseline: no scenario named {study.baseline!r} (scenarios: {', '.join(names)})"
        )
    if study.uncertainty is None:
        return StudyPlan(study=study, path=where, scenarios=scenarios, baseline=baseline, strategies=names)
    samples = _samples(study, where)
    runs = [_with_sample(sc, samples, k, where) for k in range(NOMINAL, samples.n + 1) for sc in scenarios]
    return StudyPlan(
        study=study, path=where, scenarios=runs, baseline=baseline, strategies=names, samples=samples
    )


def _check_runs(n_design: int, per_design: int, limits: Limits, where: str) -> None:
    """TwinError when the study would run more scenario runs than limits.runs_per_study (checked before the
    design's scenarios are generated)."""
    runs = n_design * per_design
    if runs > limits.runs_per_study:
        times = f" x {per_design} (nominal + uncertainty samples)" if per_design > 1 else ""
        raise TwinError(
            f"{where}: {n_design} scenarios{times} = {runs} runs is over the limit of {limits.runs_per_study} "
            "runs per study; raise limits.runs_per_study in the study file to allow it"
        )


def _check_lots(scenarios: list[Scenario], per_design: int, limits: Limits, where: str) -> None:
    """TwinError when every run of the study together would release more lots than limits.lots_per_study."""
    total = per_design * sum(sc.replications * expected_lots(sc)[0] for sc in scenarios)
    if total > limits.lots_per_study:
        runs = len(scenarios) * per_design
        raise TwinError(
            f"{where}: {runs} runs add up to about {total:.3g} lots (replications x lots per replication), over "
            f"the limit of {limits.lots_per_study} lots per study; raise limits.lots_per_study in the study file "
            "to allow it"
        )


def _samples(study: Study, where: str) -> ParameterSamples:
    unc = study.uncertainty
    assert unc is not None
    seed = study.seed if unc.seed is None else unc.seed
    try:
        return sample_parameters(unc.samples, seed, unc.params)
    except ValueError as exc:
        raise TwinError(f"{where}: uncertainty: {exc}") from None


def _with_sample(scenario: Scenario, samples: ParameterSamples, k: int, where: str) -> Scenario:
    """Strategy `scenario` under sample k: its own quality overrides with the sampled values on top."""
    name = samples.run_name(scenario.name, k)
    data = scenario.model_dump(mode="json")
    data["quality"] = {**scenario.quality, **samples.overrides(k)}
    data["name"] = name
    return scenario_from_dict(data, where=f"{where}: scenario {name!r}")


def study_name(path: str | Path) -> str:
    """The `name` of a study YAML file (its file stem when it has none); TwinError naming a bad file."""
    path = Path(path)
    name = load_yaml(path, "a study").get("name")
    return str(name) if name else path.stem


def load_study(path: str | Path, uncertainty: int | None = None) -> StudyPlan:
    """Load a study YAML file and expand it into named, validated scenarios; `uncertainty` sets (or overrides)
    the number of samples of `uncertainty:` (the study's own seed and params, if any, are kept)."""
    path = Path(path)
    data = load_yaml(path, "a study")
    data.setdefault("name", path.stem)
    if uncertainty is not None:
        if not 2 <= uncertainty <= MAX_SAMPLES:
            raise TwinError(f"--uncertainty must be between 2 and {MAX_SAMPLES} samples, got {uncertainty}")
        section = data.get("uncertainty")
        data["uncertainty"] = (section if isinstance(section, dict) else {}) | {"samples": uncertainty}
    study = parse_study(data, str(path))
    return plan_study(study, path)
