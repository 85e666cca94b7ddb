"""Robustness of a strategy choice to model-parameter uncertainty: probability of being best and expected regret
per objective and strategy over an uncertainty study's parameter samples. One sample, throughput means a 20.1,
b 19.4, c 20.1 kg/h (same random numbers, so a paired comparison): a and c win 1/2 each, b's regret is 0.7 kg/h."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from twin import stats
from twin.compare import OBJECTIVES, Constraint, Selection, System, _all_kpis, _unit
from twin.errors import TwinError
from twin.uncertainty import NOMINAL, ParameterSamples, run_name


@dataclass
class UncertainSystems:
    """An uncertainty study's systems: the nominal ones (named by strategy), one per strategy per sample."""

    samples: ParameterSamples
    strategies: list[str]
    nominal: Selection  # the nominal model's systems, named by strategy: what the plain comparison shows
    by_sample: dict[int, list[System]]  # sample k (1..N) -> one system per strategy, in strategy order
    incomplete: list[int]  # samples left out because a strategy has no run of them (an interrupted study)


def split_uncertainty(selection: Selection) -> UncertainSystems | None:
    """Group the systems of an uncertainty study by strategy and sample; None for any other selection."""
    info = (selection.study or {}).get("uncertainty")
    if not info:
        return None
    samples = ParameterSamples.from_dict(info)
    strategies = [str(s) for s in info["strategies"]]
    by_name = {s.name: s for s in selection.systems}
    nominal = [
        replace(by_name[run_name(st, NOMINAL, samples.n)], name=st)
        for st in strategies
        if run_name(st, NOMINAL, samples.n) in by_name
    ]
    by_sample: dict[int, list[System]] = {}
    incomplete = []
    for k in range(1, samples.n + 1):
        names = [run_name(st, k, samples.n) for st in strategies]
        if all(n in by_name for n in names):
            by_sample[k] = [by_name[n] for n in names]
        else:
            incomplete.append(k)
    nominal_sel = replace(selection, systems=nominal)
    return UncertainSystems(samples, strategies, nominal_sel, by_sample, incomplete)


def best_and_regret(
    values: np.ndarray, maximize: bool, feasible: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From a samples x strategies array of means: per strategy, the fraction of samples in which it is best
    (ties split), its mean regret |best - value| over the samples in which it is feasible (NaN if in none),
    and the fraction of samples in which it is feasible. A strategy is feasible in a sample if `feasible` says
    so and its value is finite; a sample with no feasible strategy has no best, so the probabilities then sum
    to less than 1."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[0] == 0:
        raise ValueError(f"need a samples x strategies array with at least one sample, got shape {v.shape}")
    ok = np.isfinite(v) if feasible is None else np.asarray(feasible, dtype=bool) & np.isfinite(v)
    n, m = v.shape
    wins = np.zeros(m)
    regret = np.zeros(m)
    for k in range(n):
        if not ok[k].any():
            continue
        best = v[k][ok[k]].max() if maximize else v[k][ok[k]].min()
        winners = ok[k] & (v[k] == best)
        wins[winners] += 1.0 / winners.sum()
        regret[ok[k]] += np.abs(best - v[k][ok[k]])
    count = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_regret = np.where(count > 0, regret / count, np.nan)
    return wins / n, mean_regret, count / n


@dataclass(frozen=True)
class StrategyRobustness:
    strategy: str
    p_best: float  # fraction of the samples in which it has the best mean (ties split)
    expected_regret: float  # mean |best - its mean| over the samples in which it is feasible, KPI units
    feasible: float  # fraction of the samples in which it meets the constraints and has a value
    nominal: float  # its mean under the nominal model (NaN if that run is missing)


@dataclass
class ObjectiveRobustness:
    objective: str
    kpi: str
    unit: str
    maximize: bool
    rows: list[StrategyRobustness]  # strategy order

    @property
    def no_best(self) -> float:
        """Fraction of the samples in which no strategy was feasible."""
        return max(0.0, 1.0 - sum(r.p_best for r in self.rows))


@dataclass
class Robustness:
    samples: ParameterSamples
    strategies: list[str]
    constraints: list[Constraint]
    objectives: list[ObjectiveRobustness]
    used: list[int]  # the samples the numbers are over
    incomplete: list[int]


def _mean(s: System, kpi: str) -> float:
    return stats.mean_ci(s.kpi(kpi))[0]


def robustness(
    systems: UncertainSystems, constraints: Sequence[Constraint] = (), objectives: Sequence[str] | None = None
) -> Robustness:
    """Probability of best and expected regret of every strategy for each objective (its first KPI), over the
    complete samples; a strategy competes in a sample only if its means there meet `constraints`."""
    objectives = list(OBJECTIVES) if objectives is None else list(objectives)
    for obj in objectives:
        if obj not in OBJECTIVES:
            raise TwinError(f"unknown objective {obj!r}; choose one of {', '.join(OBJECTIVES)}")
    used = sorted(systems.by_sample)
    if not used:
        raise TwinError(
            f"no parameter sample has a run of every strategy (samples 1..{systems.samples.n}); "
            "the study has not got past the nominal model"
        )
    grid = [systems.by_sample[k] for k in used]
    known = _all_kpis([s for row in grid for s in row])
    for c in constraints:
        if c.kpi not in known:
            raise TwinError(f"constraint on unknown KPI {c.kpi!r}; KPIs: {', '.join(known)}")
    feasible = np.array([[all(c.holds(_mean(s, c.kpi)) for c in constraints) for s in row] for row in grid])
    nominal = {s.name: s for s in systems.nominal.systems}
    out = []
    for obj in objectives:
        kpi, maximize = OBJECTIVES[obj][0]
        values = np.array([[_mean(s, kpi) for s in row] for row in grid])
        p_best, regret, frac = best_and_regret(values, maximize, feasible)
        rows = [
            StrategyRobustness(
                st,
                float(p_best[i]),
                float(regret[i]),
                float(frac[i]),
                _mean(nominal[st], kpi) if st in nominal else math.nan,
            )
            for i, st in enumerate(systems.strategies)
        ]
        out.append(ObjectiveRobustness(obj, kpi, _unit(kpi), maximize, rows))
    return Robustness(systems.samples, systems.strategies, list(constraints), out, used, systems.incomplete)


def ranked(obj: ObjectiveRobustness) -> list[StrategyRobustness]:
    """The rows most robust first: highest probability of best, then lowest expected regret."""

    def key(r: StrategyRobustness) -> tuple[float, float]:
        return (-r.p_best, r.expected_regret if math.isfinite(r.expected_regret) else math.inf)

    return sorted(obj.rows, key=key)


def robustness_json(r: Robustness) -> dict[str, Any]:
    """A plain-data view of a robustness analysis (for `--format json` and scripts)."""

    def f(x: float) -> float | None:
        return x if math.isfinite(x) else None

    s = r.samples
    return {
        "samples": s.n,
        "seed": s.seed,
        "samples_used": len(r.used),
        "samples_incomplete": r.incomplete,
        "constraints": [str(c) for c in r.constraints],
        "params": [
            {"name": n, "low": lo, "high": hi, "scale": "log" if lg else "linear"}
            for n, lo, hi, lg in zip(s.names, s.low, s.high, s.log)
        ],
        "objectives": [
            {
                "objective": o.objective,
                "kpi": o.kpi,
                "unit": o.unit,
                "maximize": o.maximize,
                "no_feasible_strategy": o.no_best,
                "strategies": [
                    {
                        "strategy": x.strategy,
                        "p_best": x.p_best,
                        "expected_regret": f(x.expected_regret),
                        "feasible": x.feasible,
                        "nominal": f(x.nominal),
                    }
                    for x in o.rows
                ],
            }
            for o in r.objectives
        ],
    }
