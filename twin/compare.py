"""Comparing the scenarios of a study: KPI means with 95 % CIs, paired differences to a baseline (common random
numbers: replication r of every scenario saw the same random numbers), ranking by an objective under constraints,
and KN selection of the best that simulates more replications when it needs them.

Cost per good kg = (energy x price + process gas x price per atmosphere + ALD precursor x price + scrapped powder x
its value) / good kg, over the KPI window; the unit prices are `CostPrices` defaults (estimates, overridable).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from twin import stats
from twin.errors import TwinError

COST_KPI = "cost_eur_per_good_kg"


@dataclass(frozen=True)
class CostPrices:
    """Unit prices of the cost objective (EUR). Estimates for a European plant (2024), meant to be overridden."""

    electricity_eur_per_kwh: float = 0.15  # industrial tariff
    o2_eur_per_nm3: float = 0.20  # bulk liquid O2
    n2_eur_per_nm3: float = 0.10  # bulk liquid N2
    dry_air_eur_per_nm3: float = 0.03  # compressed, dried air
    air_eur_per_nm3: float = 0.01  # compressed air
    precursor_eur_per_mol: float = 250.0  # TEMAHf / TMA in bulk
    scrap_eur_per_kg: float = 25.0  # value of the Ni-rich NCM powder lost

    def gas_price(self, atmosphere: str) -> float:
        return {
            "O2": self.o2_eur_per_nm3,
            "N2": self.n2_eur_per_nm3,
            "dry_air": self.dry_air_eur_per_nm3,
            "air": self.air_eur_per_nm3,
        }.get(atmosphere, self.o2_eur_per_nm3)

    @classmethod
    def parse(cls, items: Sequence[str]) -> CostPrices:
        """Overrides given as `name=value` (e.g. `electricity_eur_per_kwh=0.25`)."""
        prices = cls()
        names = [f.name for f in fields(cls)]
        for item in items:
            key, sep, val = item.partition("=")
            key = key.strip()
            if not sep or key not in names:
                raise TwinError(f"--price {item!r}: expected NAME=VALUE with NAME one of {', '.join(names)}")
            try:
                value = float(val)
            except ValueError:
                raise TwinError(f"--price {item!r}: {val!r} is not a number") from None
            if not math.isfinite(value):
                raise TwinError(f"--price {item!r}: the price must be a finite number")
            prices = replace(prices, **{key: value})
        return prices


def _col(tbl: pa.Table, name: str) -> np.ndarray:
    return np.asarray(tbl.column(name).to_numpy(zero_copy_only=False), dtype=float)


def _strs(tbl: pa.Table, name: str) -> np.ndarray:
    return np.asarray(tbl.column(name).to_numpy(zero_copy_only=False), dtype=object)


def replication_cost(
    lots: pa.Table, batches: pa.Table, warmup_h: float, horizon_h: float, prices: CostPrices = CostPrices()
) -> float:
    """Cost per good kg of one replication over [warmup_h, horizon_h] (same windows as `twin.stats` KPIs)."""
    w, h = float(warmup_h), float(horizon_h)
    done = _col(lots, "done_h")
    in_window = (done >= w) & (done <= h)
    status = _strs(lots, "status")
    mass = _col(lots, "mass_kg")
    good_kg = float(mass[in_window & (status == "good")].sum())
    scrap_kg = float(mass[in_window & (status == "scrap")].sum())
    start = _col(batches, "start_h")
    b_in = (start >= w) & (start <= h)
    energy = float(np.nansum(_col(batches, "energy_kwh")[b_in]))
    gas_col = "gas_nm3" if "gas_nm3" in batches.column_names else "o2_nm3"
    gas = _col(batches, gas_col)[b_in]
    atm = _strs(batches, "atmosphere")[b_in]
    gas_eur = float(sum(np.nansum(gas[atm == a]) * prices.gas_price(str(a)) for a in set(atm.tolist())))
    ald = _col(lots, "ald_start_h")
    precursor = float(np.nansum(_col(lots, "precursor_mol")[(ald >= w) & (ald <= h)]))
    total = (
        energy * prices.electricity_eur_per_kwh
        + gas_eur
        + precursor * prices.precursor_eur_per_mol
        + scrap_kg * prices.scrap_eur_per_kg
    )
    return total / good_kg if good_kg > 0 else float("nan")


# -- systems: one scenario's per-replication KPI values -------------------------------------------------------
@dataclass
class System:
    """A scenario (or a run) to compare: per-replication values of every KPI, indexed by replication number."""

    name: str
    seed: int
    replications: np.ndarray  # sorted replication numbers
    values: dict[str, np.ndarray]  # kpi -> value per replication (NaN when missing)
    run_ids: list[int] = field(default_factory=list)
    scenario_json: str | None = None

    @property
    def n(self) -> int:
        return int(self.replications.size)

    def kpi(self, name: str) -> np.ndarray:
        v = self.values.get(name)
        return v if v is not None else np.full(self.n, np.nan)

    def at(self, name: str, reps: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.replications, reps)
        return self.kpi(name)[pos]


def systems_from_results(runs: Sequence[Any], prices: CostPrices = CostPrices()) -> list[System]:
    """Systems from in-memory `RunResult`s (e.g. `run_study(...).runs`)."""
    out = []
    for run in runs:
        sc = run.scenario
        rows = stats.complete_kpis([r.kpis for r in run.replications])
        names = list(rows[0]) if rows else []
        values = {k: np.array([row[k] for row in rows], dtype=float) for k in names}
        values[COST_KPI] = np.array(
            [replication_cost(r.tables["lots"], r.tables["batches"], sc.warmup_h, sc.horizon_h, prices)
             for r in run.replications]
        )  # fmt: skip
        out.append(
            System(
                name=sc.name,
                seed=int(run.seed),
                replications=np.array([r.replication for r in run.replications]),
                values=values,
                run_ids=[run.run_id] if run.run_id is not None else [],
                scenario_json=sc.model_dump_json(),
            )
        )
    return out


@dataclass
class Selection:
    """What `twin compare` was asked to compare: systems in order, the study (if any) and its baseline."""

    systems: list[System]
    study_id: int | None = None
    study_name: str | None = None
    baseline: str | None = None
    study: dict[str, Any] | None = None  # the study's stored JSON (its uncertainty samples, if any)


def _study_id_for(store: Any, item: str) -> int | None:
    m = re.fullmatch(r"study:(\d+)", item)
    if m:
        sid = int(m.group(1))
        if store.query("SELECT 1 FROM studies WHERE study_id = ?", [sid]).num_rows == 0:
            raise TwinError(f"no study with id {sid} in {store.path}")
        return sid
    name = item
    p = Path(item)
    if p.suffix in (".yaml", ".yml"):
        from twin.study import study_name

        name = study_name(p)
    row = (
        store.query("SELECT max(study_id) AS sid FROM studies WHERE name = ?", [name])
        .column("sid")[0]
        .as_py()
    )
    if row is None and p.suffix in (".yaml", ".yml"):
        raise TwinError(f"no study named {name!r} ({item}) in {store.path}; run `twin study {item}` first")
    return row


def load_selection(store: Any, items: Sequence[str], prices: CostPrices = CostPrices()) -> Selection:
    """Resolve `items` (a study YAML file, a study name, `study:ID`, or run ids) into systems read from the store."""
    if not items:
        raise TwinError("give a study (YAML file, name or study:ID) or two or more run ids")
    run_ids: list[int] = []
    study_id = study_name = baseline = None
    study: dict[str, Any] | None = None
    merge = False
    for item in items:
        if item.isdigit():
            run_ids.append(int(item))
            continue
        sid = _study_id_for(store, item)
        if sid is None:
            raise TwinError(
                f"{item!r} is neither a run id nor a study in {store.path} (see `twin runs list`)"
            )
        if study_id is not None:
            raise TwinError("compare one study at a time (or a list of run ids)")
        study_id, merge = sid, True
        st = store.query("SELECT name, study_json FROM studies WHERE study_id = ?", [sid]).to_pylist()[0]
        study_name = st["name"]
        try:
            study = json.loads(st["study_json"])
            baseline = study.get("baseline")
        except (TypeError, ValueError, AttributeError):
            study = baseline = None
        ids = store.query("SELECT run_id FROM runs WHERE study_id = ? ORDER BY run_id", [sid]).column(
            "run_id"
        )
        if len(ids) == 0:
            raise TwinError(f"study {study_name} (id {sid}) in {store.path} has no completed runs yet")
        run_ids.extend(ids.to_pylist())
    if study_id is not None and len(run_ids) != len(set(run_ids)):
        raise TwinError("give either a study or run ids, not both")
    for rid in run_ids:
        store.run(rid)  # TwinError naming an unknown run id
    systems = _systems_from_store(store, run_ids, merge, prices)
    return Selection(systems, study_id, study_name, baseline, study if isinstance(study, dict) else None)


def _systems_from_store(store: Any, run_ids: list[int], merge: bool, prices: CostPrices) -> list[System]:
    ids = ",".join(str(int(r)) for r in run_ids)
    runs = store.query(
        f"SELECT run_id, scenario_name, scenario_json, seed, horizon_h, warmup_h FROM runs "
        f"WHERE run_id IN ({ids}) ORDER BY run_id"
    ).to_pylist()
    kp = store.query(f"SELECT run_id, replication, kpi, value FROM kpis WHERE run_id IN ({ids})")
    lots = store.query(
        f"SELECT run_id, replication, status, done_h, mass_kg, ald_start_h, precursor_mol FROM lots "
        f"WHERE run_id IN ({ids})"
    )
    batches = store.query(
        f"SELECT run_id, replication, atmosphere, start_h, energy_kwh, gas_nm3, o2_nm3 FROM batches "
        f"WHERE run_id IN ({ids})"
    )
    # per (run, replication): {kpi: value}
    per: dict[tuple[int, int], dict[str, float]] = {}
    for rid, rep, k, v in zip(*(kp.column(c).to_pylist() for c in ("run_id", "replication", "kpi", "value"))):
        per.setdefault((rid, rep), {})[k] = float("nan") if v is None else float(v)
    lot_groups = _split(lots)
    batch_groups = _split(batches)
    info = {run["run_id"]: run for run in runs}
    empty_l, empty_b = lots.slice(0, 0), batches.slice(0, 0)
    for (rid, rep), d in per.items():
        run = info[rid]
        d[COST_KPI] = replication_cost(
            lot_groups.get((rid, rep), empty_l),
            batch_groups.get((rid, rep), empty_b),
            run["warmup_h"],
            run["horizon_h"],
            prices,
        )

    systems: dict[str, System] = {}
    order: list[str] = []
    names_seen: dict[str, int] = {}
    for run in runs:
        names_seen[run["scenario_name"]] = names_seen.get(run["scenario_name"], 0) + 1
    for run in runs:
        rid = run["run_id"]
        name = run["scenario_name"]
        if not merge and names_seen[name] > 1:
            name = f"{name}#{rid}"
        reps = sorted(rep for (r, rep) in per if r == rid)
        rows = [per[(rid, rep)] for rep in reps]
        if name in systems:  # a top-up run of the same scenario (more replications, same seed)
            sysm = systems[name]
            if sysm.seed != run["seed"]:
                name = f"{name}#{rid}"
            else:
                old = {
                    int(r): {k: sysm.values[k][i] for k in sysm.values}
                    for i, r in enumerate(sysm.replications)
                }
                for rep, row in zip(reps, rows):
                    old.setdefault(int(rep), row)
                reps = sorted(old)
                rows = [old[r] for r in reps]
                run_list = sysm.run_ids + [rid]
                systems[name] = _system(name, run["seed"], reps, rows, run_list, sysm.scenario_json)
                continue
        systems[name] = _system(name, run["seed"], reps, rows, [rid], run["scenario_json"])
        order.append(name)
    return [systems[n] for n in order]


def _system(
    name: str, seed: int, reps: list[int], rows: list[dict[str, float]], run_ids: list[int], sj: Any
) -> System:
    names: list[str] = []
    for row in rows:
        names.extend(k for k in row if k not in names)
    values = {k: np.array([row.get(k, np.nan) for row in rows], dtype=float) for k in names}
    return System(name, int(seed), np.array(reps, dtype=int), values, list(run_ids), sj)


def _split(tbl: pa.Table) -> dict[tuple[int, int], pa.Table]:
    if tbl.num_rows == 0:
        return {}
    tbl = tbl.sort_by([("run_id", "ascending"), ("replication", "ascending")])
    rid = np.asarray(tbl.column("run_id").to_numpy(zero_copy_only=False))
    rep = np.asarray(tbl.column("replication").to_numpy(zero_copy_only=False))
    key = rid.astype(np.int64) * 1_000_003 + rep
    cuts = np.flatnonzero(np.diff(key)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(key)]])
    return {(int(rid[s]), int(rep[s])): tbl.slice(s, e - s) for s, e in zip(starts, ends)}


# -- statistics -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Diff:
    """Difference (other - baseline) of one KPI: mean, 95 % CI half-width, n, paired or not, significant."""

    mean: float
    half: float
    n: int
    paired: bool

    @property
    def low(self) -> float:
        return self.mean - self.half

    @property
    def high(self) -> float:
        return self.mean + self.half

    @property
    def significant(self) -> bool:
        return math.isfinite(self.half) and (self.low > 0 or self.high < 0)


def paired_difference(x: np.ndarray, y: np.ndarray, confidence: float = 0.95) -> Diff:
    """Paired-t CI of mean(x - y) over the replications where both have a value (same r = same random numbers)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = ~np.isnan(x) & ~np.isnan(y)
    m, half, n = stats.mean_ci(x[ok] - y[ok], confidence)
    return Diff(m, half, n, True)


def welch_difference(x: np.ndarray, y: np.ndarray, confidence: float = 0.95) -> Diff:
    """Welch CI of mean(x) - mean(y) for independent samples (runs with different seeds)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if x.size < 2 or y.size < 2:
        return Diff(float(np.mean(x) - np.mean(y)) if x.size and y.size else math.nan, math.nan, 0, False)
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1)) if se > 0 else x.size + y.size - 2
    half = float(stats.t_ppf(0.5 + confidence / 2, df) * se)
    return Diff(float(x.mean() - y.mean()), half, min(x.size, y.size), False)


def difference(a: System, b: System, kpi: str) -> Diff:
    """a - b for one KPI: paired over common replications when both ran with the same seed, else Welch."""
    if a.seed == b.seed:
        common = np.intersect1d(a.replications, b.replications)
        if common.size >= 2:
            return paired_difference(a.at(kpi, common), b.at(kpi, common))
    return welch_difference(a.kpi(kpi), b.kpi(kpi))


OBJECTIVES: dict[str, tuple[tuple[str, bool], ...]] = {
    "throughput": (("good_kg_per_h", True),),
    "yield": (("final_yield", True),),
    "power": (("rate_capability_good_mean", True), ("r_int_good_mean", False)),
    "cycle-life": (("ret100_good_mean", True), ("bonding_good_mean", True)),
    "cost": ((COST_KPI, False),),
}
"""objective -> (kpi, maximize) in priority order (power: rate capability first, interfacial resistance breaks
ties; cycle-life: retention first, bonding breaks ties)."""

_CONSTRAINT = re.compile(r"^\s*([A-Za-z0-9_]+)\s*(>=|<=)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Constraint:
    kpi: str
    op: str  # ">=" or "<="
    value: float

    @classmethod
    def parse(cls, text: str) -> Constraint:
        m = _CONSTRAINT.match(text)
        if not m:
            raise TwinError(f"--constraint {text!r}: expected KPI>=VALUE or KPI<=VALUE, e.g. wait_p95_h<=8")
        try:
            value = float(m.group(3))
        except ValueError:
            raise TwinError(f"--constraint {text!r}: {m.group(3)!r} is not a number") from None
        if not math.isfinite(value):
            raise TwinError(f"--constraint {text!r}: the bound must be a finite number")
        return cls(m.group(1), m.group(2), value)

    def holds(self, mean: float) -> bool:
        if not math.isfinite(mean):
            return False
        return mean >= self.value if self.op == ">=" else mean <= self.value

    def __str__(self) -> str:
        return f"{self.kpi} {self.op} {self.value:g}"


@dataclass
class KpiRow:
    kpi: str
    unit: str
    system: str
    mean: float
    half: float
    n: int
    diff: Diff | None  # None for the baseline itself


@dataclass
class RankRow:
    rank: int | None  # None: infeasible
    system: str
    values: list[tuple[str, float, float]]  # (kpi, mean, half) of the objective KPIs
    to_best: Diff | None  # objective difference to the best (first objective KPI)
    violations: list[str]


@dataclass
class Comparison:
    baseline: str
    objective: str
    constraints: list[Constraint]
    kpis: list[str]
    rows: list[KpiRow]
    ranking: list[RankRow]
    systems: list[System]

    @property
    def best(self) -> str | None:
        return self.ranking[0].system if self.ranking and self.ranking[0].rank == 1 else None


def _all_kpis(systems: Sequence[System]) -> list[str]:
    base = [d.name for d in stats.KPI_DEFINITIONS] + [COST_KPI]
    extra = sorted({k for s in systems for k in s.values} - set(base))
    return [k for k in base if any(k in s.values for s in systems)] + extra


def _unit(kpi: str) -> str:
    return "EUR/kg" if kpi == COST_KPI else stats.kpi_unit(kpi)


def compare(
    systems: Sequence[System],
    baseline: str | None = None,
    objective: str = "throughput",
    constraints: Sequence[Constraint] = (),
    kpis: Sequence[str] | None = None,
) -> Comparison:
    """Means and CIs of every KPI, differences to the baseline, and the ranking by `objective` under constraints."""
    if not systems:
        raise TwinError("nothing to compare")
    names = [s.name for s in systems]
    if objective not in OBJECTIVES:
        raise TwinError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    base_name = baseline or names[0]
    if base_name not in names:
        raise TwinError(f"--baseline {base_name!r} is not one of the scenarios: {', '.join(names)}")
    base = systems[names.index(base_name)]
    known = _all_kpis(systems)
    for c in constraints:
        if c.kpi not in known:
            raise TwinError(f"constraint on unknown KPI {c.kpi!r}; KPIs: {', '.join(known)}")
    if kpis:
        bad = [k for k in kpis if k not in known]
        if bad:
            raise TwinError(f"unknown KPI {bad[0]!r}; KPIs: {', '.join(known)}")
        shown = list(kpis)
    else:
        shown = known
    rows = []
    for k in shown:
        for s in systems:
            m, half, n = stats.mean_ci(s.kpi(k))
            rows.append(
                KpiRow(k, _unit(k), s.name, m, half, n, None if s is base else difference(s, base, k))
            )
    return Comparison(
        base_name,
        objective,
        list(constraints),
        shown,
        rows,
        rank(systems, objective, constraints),
        list(systems),
    )


def rank(systems: Sequence[System], objective: str, constraints: Sequence[Constraint] = ()) -> list[RankRow]:
    """Feasible systems by objective (best first; ties by the next objective KPI), then the infeasible ones."""
    keys = OBJECTIVES[objective]
    feasible, infeasible = [], []
    for s in systems:
        viol = []
        for c in constraints:
            m = stats.mean_ci(s.kpi(c.kpi))[0]
            if not c.holds(m):
                viol.append(f"{c.kpi} {m:.4g} (needs {c.op} {c.value:g})")
        vals = [(k, *stats.mean_ci(s.kpi(k))[:2]) for k, _ in keys]
        (feasible if not viol else infeasible).append((s, vals, viol))

    def sort_key(item: tuple[System, list[tuple[str, float, float]], list[str]]) -> tuple[float, ...]:
        out = []
        for (_, maximize), (_, m, _) in zip(keys, item[1]):
            v = m if math.isfinite(m) else -math.inf if maximize else math.inf
            out.append(-v if maximize else v)
        return tuple(out)

    feasible.sort(key=sort_key)
    rows = []
    best = feasible[0][0] if feasible else None
    for i, (s, vals, _) in enumerate(feasible, start=1):
        to_best = None if s is best or best is None else difference(s, best, keys[0][0])
        rows.append(RankRow(i, s.name, vals, to_best, []))
    for s, vals, viol in infeasible:
        rows.append(RankRow(None, s.name, vals, None, viol))
    return rows


# -- selection of the best (KN, or Rinott's two-stage procedure) ---------------------------------------------
@dataclass
class BestSelection:
    best: str
    objective: str
    kpi: str
    delta: float
    alpha: float
    n0: int
    n_per_system: dict[str, int]
    means: dict[str, float]
    eliminated_at: dict[str, int | None]
    new_replications: int
    stored_run_ids: list[int]
    stopped_at_max: bool
    procedure: str = "kn"

    def statement(self) -> str:
        name = {"kn": "KN", "rinott": "Rinott"}[self.procedure]
        if self.stopped_at_max:
            return (
                f"{self.best} has the best mean {self.kpi} but {name} stopped at its replication limit: no "
                f"probability guarantee"
            )
        return (
            f"{self.best} is the best by {self.kpi} with probability >= {1 - self.alpha:.0%} whenever the best "
            f"is better than every other by at least {self.delta:g} ({name}, n0 = {self.n0})"
        )


def select_best(
    selection: Selection,
    objective: str,
    delta: float,
    constraints: Sequence[Constraint] = (),
    alpha: float = 0.05,
    n0: int | None = None,
    max_reps: int = 200,
    db: Any = None,
    prices: CostPrices = CostPrices(),
    simulate: Callable[[Any, int, int], Any] | None = None,
    procedure: str = "kn",
    wait_s: float | None = None,
) -> BestSelection:
    """Selection of the best among the feasible systems with `procedure` (`kn`: Kim & Nelson's fully sequential
    procedure; `rinott`: Rinott's two-stage one): stored replications first, more simulated (and stored) on demand.

    Needs systems from one study with one seed (CRN). New replications of a scenario are stored, if `db` is given,
    as one more run of that scenario in the same study (one transaction per scenario); the writer lock
    (twin.dblock) is then taken before the first is simulated, waiting up to `wait_s` seconds for another writer.
    """
    from twin.limits import run_limit_error
    from twin.runner import simulate_replication
    from twin.scenario import scenario_from_dict
    from twin.selection import kn_select, rinott_select

    procedures = {"kn": kn_select, "rinott": rinott_select}
    if procedure not in procedures:
        raise TwinError(f"--procedure must be kn or rinott, got {procedure!r}")
    simulate = simulate or simulate_replication
    kpi, maximize = OBJECTIVES[objective][0]
    ranked = rank(selection.systems, objective, constraints)
    feasible_names = [r.system for r in ranked if r.rank is not None]
    systems = [s for s in selection.systems if s.name in feasible_names]
    if len(systems) < 2:
        raise TwinError(f"--select-best needs at least 2 feasible scenarios, got {len(systems)}")
    if len({s.seed for s in systems}) > 1:
        raise TwinError(
            "--select-best needs scenarios run with one seed (a study), for common random numbers"
        )
    stored = min(s.n for s in systems)
    n0 = stored if n0 is None else n0
    if n0 < 2:
        raise TwinError(f"--select-best needs n0 >= 2 replications, got {n0}")
    scenarios: dict[int, Any] = {}
    new: dict[int, list[Any]] = {}
    for i, s in enumerate(systems):  # more replications of a stored scenario stay within its limits
        if s.scenario_json and max(n0, max_reps) > s.n:
            scenarios[i] = scenario_from_dict(json.loads(s.scenario_json), where=f"run {s.run_ids[0]}")
            for option, n in (("--n0", n0), ("--max-reps", max_reps)):
                message = run_limit_error(scenarios[i], n, option)
                if message is not None:
                    raise TwinError(message)

    def sample(i: int, r: int) -> float:
        s = systems[i]
        pos = np.searchsorted(s.replications, r)
        if pos < s.n and s.replications[pos] == r:
            return float(s.values[kpi][pos]) if kpi in s.values else float("nan")
        for res in new.get(i, []):
            if res.replication == r:
                return _objective_value(res, scenarios[i], kpi, prices)
        if i not in scenarios:
            if not s.scenario_json:
                raise TwinError(f"scenario {s.name}: no stored scenario to simulate more replications")
            scenarios[i] = scenario_from_dict(json.loads(s.scenario_json), where=f"run {s.run_ids[0]}")
        res = simulate(scenarios[i], s.seed, r)
        new.setdefault(i, []).append(res)
        return _objective_value(res, scenarios[i], kpi, prices)

    from twin import dblock

    wait = dblock.DEFAULT_WAIT_S if wait_s is None else wait_s
    with dblock.writer_lock(db, wait) if db is not None else contextlib.nullcontext():
        result = procedures[procedure](sample, len(systems), delta, alpha, n0, maximize, max_reps=max_reps)
        stored_ids = _store_new(
            db, new, scenarios, systems, selection.study_id, max(wait, dblock.STORE_WAIT_S)
        )
    names = [s.name for s in systems]
    return BestSelection(
        best=names[result.best],
        objective=objective,
        kpi=kpi,
        delta=delta,
        alpha=alpha,
        n0=n0,
        n_per_system=dict(zip(names, result.n_per_system)),
        means=dict(zip(names, result.means)),
        eliminated_at=dict(zip(names, result.eliminated_at)),
        new_replications=sum(len(v) for v in new.values()),
        stored_run_ids=stored_ids,
        stopped_at_max=result.stopped_at_max,
        procedure=procedure,
    )


def _store_new(
    db: Any,
    new: dict[int, list[Any]],
    scenarios: dict[int, Any],
    systems: list[Any],
    study_id: Any,
    wait_s: float,
) -> list[int]:
    """Store the replications `select_best` simulated, one run per scenario; returns the new run ids."""
    from twin.runner import collect, store_run
    from twin.store import open_store

    if db is None or not new:
        return []
    stored_ids = []
    with open_store(db, wait_s=wait_s) as store:
        for i, reps in new.items():
            run = collect(scenarios[i], systems[i].seed, reps, sum(r.wall_s for r in reps), study_id=study_id)
            stored_ids.append(store_run(store, run))
    return stored_ids


def _objective_value(res: Any, scenario: Any, kpi: str, prices: CostPrices) -> float:
    if kpi == COST_KPI:
        return replication_cost(
            res.tables["lots"], res.tables["batches"], scenario.warmup_h, scenario.horizon_h, prices
        )
    return float(res.kpis.get(kpi, float("nan")))


def comparison_json(comp: Comparison) -> dict[str, Any]:
    """A plain-data view of a comparison (for `--format json` and scripts)."""

    def f(x: float) -> float | None:
        return x if isinstance(x, float) and math.isfinite(x) else None

    return {
        "baseline": comp.baseline,
        "objective": comp.objective,
        "constraints": [str(c) for c in comp.constraints],
        "kpis": [
            {
                "kpi": r.kpi,
                "unit": r.unit,
                "scenario": r.system,
                "n": r.n,
                "mean": f(r.mean),
                "ci_low": f(r.mean - r.half),
                "ci_high": f(r.mean + r.half),
                "diff": None
                if r.diff is None
                else {
                    "mean": f(r.diff.mean),
                    "ci_low": f(r.diff.low),
                    "ci_high": f(r.diff.high),
                    "paired": r.diff.paired,
                    "significant": r.diff.significant,
                },
            }
            for r in comp.rows
        ],  # fmt: skip
        "ranking": [
            {
                "rank": r.rank,
                "scenario": r.system,
                "objective": {k: {"mean": f(m), "half": f(h)} for k, m, h in r.values},
                "to_best": None
                if r.to_best is None
                else {
                    "mean": f(r.to_best.mean),
                    "half": f(r.to_best.half),
                    "significant": r.to_best.significant,
                },
                "violations": r.violations,
            }
            for r in comp.ranking
        ],  # fmt: skip
    }
