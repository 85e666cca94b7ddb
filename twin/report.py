"""`twin report`: one self-contained HTML file (inline SVG, inline CSS, no network) about a stored run or study.

Reads the run history read-only, picks what each section needs (KPI summaries, one replication's batches and
events, the lots' waits), draws the figures with `twin.plots` and writes the page. Sections and their ids are in
SECTIONS; a section that needs several scenarios shows a short note for a single run.
"""

from __future__ import annotations

import html
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from twin import plots
from twin.errors import TwinError

SECTIONS = (
    ("kpis", "KPIs with 95 % confidence intervals"),
    ("gantt", "Furnace schedule"),
    ("queue-wip", "Buffer queue and WIP over time"),
    ("wait", "Wait before anneal"),
    ("recipe-effects", "Yield and resistance against setpoint and soak time"),
    ("pareto", "Throughput against yield"),
    ("robustness", "Robustness to model-parameter uncertainty"),
    ("warmup", "Warm-up (Welch plot)"),
    ("equipment", "Equipment: OEE and bottleneck"),
)
"""(section id, heading) of every section, in page order."""

HEADLINE_KPIS = (
    "good_kg_per_h",
    "final_yield",
    "first_pass_yield",
    "wait_mean_h",
    "lead_time_mean_h",
    "furnace_util",
    "setups",
    "r_int_good_mean",
    "bonding_good_mean",
    "ret100_good_mean",
    "energy_kwh_per_good_kg",
)
"""KPI columns of the main table (every KPI is in the full table below it)."""

_EVENT_KINDS = ("arrive", "pass", "scrap", "buffer_in", "buffer_out", "down", "up")


# ---------------------------------------------------------------------------------------------------------
# What the report is about


@dataclass
class ScenarioRun:
    """One stored run (one scenario of a study, or a plain run) and what the plots need from its scenario."""

    run_id: int
    name: str
    scenario: dict[str, Any]
    replications: int
    horizon_h: float
    warmup_h: float
    summary: dict[str, dict[str, float]] = field(default_factory=dict)  # kpi -> {mean, ci_low, ci_high, unit}

    def recipe(self) -> dict[str, Any]:
        """The main anneal recipe: the arrivals' recipe, or the heaviest of a recipe mix, or the first defined."""
        arr = self.scenario.get("arrivals") or {}
        recipes = self.scenario.get("recipes") or {}
        name = arr.get("recipe")
        if arr.get("recipe_mix"):
            name = max(arr["recipe_mix"].items(), key=lambda kv: kv[1])[0]
        if name not in recipes and recipes:
            name = next(iter(recipes))
        return dict(recipes.get(name) or {}, name=name)

    def kpi(self, name: str) -> plots.Point:
        s = self.summary.get(name, {})
        return plots.Point(self.name, _f(s.get("mean")), _f(s.get("ci_low")), _f(s.get("ci_high")))


@dataclass
class ReportTarget:
    """A resolved `STUDY_OR_RUN`: a study (several runs) or a single run."""

    kind: str  # "study" | "run"
    label: str
    runs: list[ScenarioRun]
    focus: ScenarioRun  # the run whose timelines are drawn (the study's baseline, else its first run)
    study: dict[str, Any] | None = None


def _f(v: Any) -> float:
    return float(v) if v is not None else math.nan


def resolve(store: Any, target: str) -> ReportTarget:
    """`run:N` or `N` is a run id; `study:N` a study id; a `.yaml` file the study it defines (by its name);
    any other text the newest study with that name."""
    text = str(target).strip()
    low = text.lower()
    if low.startswith("run:") or text.isdigit():
        rid = text.split(":", 1)[-1].strip()
        row = store.run(rid)  # TwinError naming the id when unknown
        runs = _load_runs(store, [int(row["run_id"])])
        return ReportTarget("run", f"run {row['run_id']} ({row['scenario_name']})", runs, runs[0])
    if low.endswith((".yaml", ".yml")):
        text = _study_name_from_file(Path(text))
        rows = store.query(
            "SELECT * FROM studies WHERE name = ? ORDER BY study_id DESC LIMIT 1", [text]
        ).to_pylist()
        if not rows:
            raise TwinError(
                f"study {text!r} ({target}) has no runs in {store.path}; run `twin study {target}` first"
            )
    elif low.startswith("study:"):
        sid_text = text.split(":", 1)[1].strip()
        if not sid_text.isdigit():
            raise TwinError(f"unknown study id {sid_text!r}: study ids are whole numbers")
        rows = store.query("SELECT * FROM studies WHERE study_id = ?", [int(sid_text)]).to_pylist()
    else:
        rows = store.query(
            "SELECT * FROM studies WHERE name = ? ORDER BY study_id DESC LIMIT 1", [text]
        ).to_pylist()
    if not rows:
        names = store.query("SELECT DISTINCT name FROM studies ORDER BY name").column("name").to_pylist()
        known = f"studies: {', '.join(names)}" if names else "the database has no studies"
        raise TwinError(
            f"no study or run {text!r} in {store.path} ({known}; runs are addressed as run:N or by number)"
        )
    study = rows[0]
    ids = (
        store.query("SELECT run_id FROM runs WHERE study_id = ? ORDER BY run_id", [study["study_id"]])
        .column("run_id")
        .to_pylist()
    )
    if not ids:
        raise TwinError(f"study {study['study_id']} ({study['name']}) in {store.path} has no stored runs yet")
    runs = _load_runs(store, ids)
    try:
        baseline = json.loads(study.get("study_json") or "{}").get("baseline")
    except (ValueError, AttributeError):
        baseline = None
    runs = _nominal_runs(runs, _uncertainty(study)) or runs
    focus = next((r for r in runs if r.name == baseline), runs[0])
    return ReportTarget("study", f"study {study['study_id']} ({study['name']})", runs, focus, study)


def _uncertainty(study: dict[str, Any] | None) -> dict[str, Any] | None:
    """The parameter samples stored with an uncertainty study (None for any other study or a run)."""
    try:
        info = json.loads((study or {}).get("study_json") or "{}").get("uncertainty")
    except (ValueError, AttributeError):
        return None
    return info if isinstance(info, dict) else None


def _nominal_runs(runs: list[ScenarioRun], info: dict[str, Any] | None) -> list[ScenarioRun]:
    """An uncertainty study's runs of the nominal model, named by strategy: what the other sections show."""
    if not info:
        return []
    from twin.uncertainty import NOMINAL, run_name

    names = {run_name(st, NOMINAL, int(info["samples"])): st for st in info.get("strategies", [])}
    out = [r for r in runs if r.name in names]
    for r in out:
        r.name = names[r.name]
    return out


def _study_name_from_file(path: Path) -> str:
    """The `name` of a study YAML file (its file stem when it has none)."""
    from twin.study import study_name

    return study_name(path)


def _load_runs(store: Any, run_ids: list[int]) -> list[ScenarioRun]:
    marks = ", ".join("?" * len(run_ids))
    rows = store.query(
        f"SELECT run_id, scenario_name, scenario_json, replications, horizon_h, warmup_h FROM runs "
        f"WHERE run_id IN ({marks}) ORDER BY run_id",
        run_ids,
    ).to_pylist()
    summ = store.query(
        f"SELECT run_id, kpi, unit, mean, ci_low, ci_high FROM kpi_summary WHERE run_id IN ({marks})", run_ids
    ).to_pylist()
    runs = []
    for r in rows:
        try:
            sc = json.loads(r["scenario_json"] or "{}")
        except ValueError:
            sc = {}
        runs.append(
            ScenarioRun(
                int(r["run_id"]),
                str(r["scenario_name"]),
                sc,
                int(r["replications"] or 0),
                _f(r["horizon_h"]),
                _f(r["warmup_h"]) if r["warmup_h"] is not None else 0.0,
            )
        )
    by_id = {r.run_id: r for r in runs}
    for s in summ:
        by_id[int(s["run_id"])].summary[s["kpi"]] = s
    return runs


# ---------------------------------------------------------------------------------------------------------
# Sections


@dataclass
class Section:
    id: str
    heading: str
    body: str  # HTML: figures, tables, notes


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _fmt(v: float, unit: str = "") -> str:
    if v is None or not math.isfinite(v):
        return "–"
    if unit == "fraction":
        return f"{100 * v:.1f} %"
    return f"{v:.4g}"


def _cell(s: dict[str, Any] | None) -> str:
    if not s:
        return "<td>–</td>"
    unit = s.get("unit") or ""
    m, lo, hi = _f(s.get("mean")), _f(s.get("ci_low")), _f(s.get("ci_high"))
    if math.isfinite(lo) and math.isfinite(hi):
        half = (hi - lo) / 2
        return f'<td title="95 % CI [{_fmt(lo, unit)}, {_fmt(hi, unit)}]">{_fmt(m, unit)} ± {_fmt(half, unit)}</td>'
    return f"<td>{_fmt(m, unit)}</td>"


def _scenario_columns(run: ScenarioRun) -> list[str]:
    sc = run.scenario
    r = run.recipe()
    pol = (sc.get("furnaces") or {}).get("policy") or {}
    pol_text = str(pol.get("name", "?")) + "".join(
        f" {k}={v}" for k, v in pol.items() if k != "name" and v is not None
    )
    buf = sc.get("buffer") or {}
    rh = buf.get("rh_pct")
    rh_text = f"{buf.get('environment', '?')}" + (f" {rh:g} % RH" if isinstance(rh, int | float) else "")
    recipe = f"{_num(r.get('setpoint_c'))} °C, {_num(r.get('soak_h'))} h, {r.get('atmosphere', '?')}"
    return [recipe, pol_text, str((sc.get("furnaces") or {}).get("count", "?")), rh_text]


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, int | float) else "?"


def kpi_section(t: ReportTarget) -> Section:
    units = {}
    for run in t.runs:
        for k, s in run.summary.items():
            units.setdefault(k, s.get("unit") or "")
    heads = [k for k in HEADLINE_KPIS if k in units]
    th = "".join(f"<th>{html.escape(k)}<br><small>{html.escape(units[k])}</small></th>" for k in heads)
    rows = []
    for run in t.runs:
        name = html.escape(run.name) + (
            " <small>(baseline)</small>" if t.kind == "study" and run is t.focus else ""
        )
        meta = "".join(f"<td>{html.escape(c)}</td>" for c in _scenario_columns(run))
        cells = "".join(_cell(run.summary.get(k)) for k in heads)
        rows.append(f"<tr><th>{name}</th><td>{run.run_id}</td>{meta}{cells}</tr>")
    main = (
        '<table class="kpi"><thead><tr><th>scenario</th><th>run</th><th>recipe</th><th>policy</th>'
        f"<th>furnaces</th><th>buffer</th>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    all_kpis = list(units)
    full_head = "".join(f"<th>{html.escape(r.name)}</th>" for r in t.runs)
    full_rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(units[k])}</td>"
        + "".join(_cell(r.summary.get(k)) for r in t.runs)
        + "</tr>"
        for k in all_kpis
    )
    full = (
        f'<details><summary>All {len(all_kpis)} KPIs</summary><table class="kpi"><thead><tr><th>KPI</th>'
        f"<th>unit</th>{full_head}</tr></thead><tbody>{full_rows}</tbody></table></details>"
    )
    reps = sorted({r.replications for r in t.runs})
    text = (
        f"Mean ± half-width of the 95 % Student-t confidence interval over {'/'.join(map(str, reps))} "
        "replications (hover a cell for the interval). Lot KPIs use lots released after the warm-up; time KPIs "
        "the window after it."
    )
    return Section("kpis", dict(SECTIONS)["kpis"], f"<p>{html.escape(text)}</p>{main}{full}")


def _focus_tables(store: Any, run: ScenarioRun) -> dict[str, Any]:
    rid = run.run_id
    batches = store.query(
        "SELECT furnace, recipe, setup_h, load_start_h, end_h FROM batches WHERE run_id = ? AND replication = 0",
        [rid],
    ).to_pydict()
    kinds = ", ".join(f"'{k}'" for k in _EVENT_KINDS)
    events = store.query(
        f"SELECT t_h, kind, unit FROM events WHERE run_id = ? AND replication = 0 AND kind IN ({kinds}) "
        "ORDER BY t_h",
        [rid],
    ).to_pydict()
    lots = store.query(
        "SELECT replication, release_h, wait_h FROM lots WHERE run_id = ? ORDER BY replication, release_h",
        [rid],
    ).to_pydict()
    return {"batches": batches, "events": events, "lots": lots}


def gantt_section(run: ScenarioRun, data: dict[str, Any], where: str) -> Section:
    b = data["batches"]
    h = run.horizon_h
    items = []
    for f, r, setup, load, end in zip(
        b["furnace"], b["recipe"], b["setup_h"], b["load_start_h"], b["end_h"], strict=True
    ):
        if load is None:
            continue
        setup = float(setup or 0.0)
        open_at_horizon = end is None or math.isnan(end)
        items.append(plots.GanttBatch(f, r, load - setup, setup, load, h if open_at_horizon else float(end)))
    ev = data["events"]
    downs, open_at = [], {}
    for t, kind, unit in zip(ev["t_h"], ev["kind"], ev["unit"], strict=True):
        if not unit.startswith("F"):
            continue
        if kind == "down":
            open_at[unit] = t
        elif kind == "up" and unit in open_at:
            downs.append((unit, open_at.pop(unit), t))
    downs += [(u, t0, h) for u, t0 in open_at.items()]
    if not items:
        return Section(
            "gantt", dict(SECTIONS)["gantt"], _note(f"{where}: no furnace batch in replication 0.")
        )
    svg = plots.gantt(items, downs, h, run.warmup_h, f"{run.name}, replication 0: batches per furnace")
    n_setups = sum(1 for i in items if i.setup_h > 0)
    cap = (
        f"{len(items)} batches of {where}, replication 0 (bars from loading to unloading, coloured by recipe); "
        f"{n_setups} setups hatched red; breakdowns grey; dotted line: end of warm-up."
    )
    return Section("gantt", dict(SECTIONS)["gantt"], _figure(svg, cap))


def queue_section(run: ScenarioRun, data: dict[str, Any], where: str) -> Section:
    ev = data["events"]
    t = np.asarray(ev["t_h"], dtype=float)
    kind = np.asarray(ev["kind"], dtype=object)
    buf_delta = np.where(kind == "buffer_in", 1.0, np.where(kind == "buffer_out", -1.0, 0.0))
    wip_delta = np.where(kind == "arrive", 1.0, np.where((kind == "pass") | (kind == "scrap"), -1.0, 0.0))
    b = plots.steps(t[buf_delta != 0], buf_delta[buf_delta != 0])
    w = plots.steps(t[wip_delta != 0], wip_delta[wip_delta != 0])
    cap = (run.scenario.get("buffer") or {}).get("capacity_lots")
    svg = plots.queue_wip(b, w, cap, run.horizon_h, run.warmup_h, f"{run.name}, replication 0")
    text = (
        f"From the events of {where}, replication 0: lots in the buffer between ALD and anneal (buffer_in - "
        "buffer_out) and lots in the line (arrive - pass - scrap); dashed: time average after the warm-up."
    )
    return Section("queue-wip", dict(SECTIONS)["queue-wip"], _figure(svg, text))


def _waits(lots: dict[str, Any], warmup_h: float) -> np.ndarray:
    rel = np.asarray(lots["release_h"], dtype=float)
    w = np.array([np.nan if v is None else v for v in lots["wait_h"]], dtype=float)
    return w[(rel >= warmup_h) & np.isfinite(w)]


def wait_section(store: Any, t: ReportTarget, data: dict[str, Any]) -> Section:
    head = dict(SECTIONS)["wait"]
    if t.kind == "run" or len(t.runs) == 1:
        w = _waits(data["lots"], t.focus.warmup_h)
        if not w.size:
            return Section("wait", head, _note("No lot released after the warm-up reached the anneal."))
        svg = plots.wait_histogram(w, f"{t.focus.name}: {w.size} lots, all replications")
        cap = "Hours between ALD end and first anneal start of the lots released after the warm-up."
        return Section("wait", head, _figure(svg, cap))
    ids = [r.run_id for r in t.runs]
    marks = ", ".join("?" * len(ids))
    tbl = store.query(
        f"SELECT l.run_id, l.wait_h FROM lots l JOIN runs r USING (run_id) WHERE l.run_id IN ({marks}) "
        "AND l.wait_h IS NOT NULL AND l.release_h >= r.warmup_h",
        ids,
    ).to_pydict()
    rid = np.asarray(tbl["run_id"], dtype=np.int64)
    w = np.asarray(tbl["wait_h"], dtype=float)
    by = {r.name if r.name not in [x.name for x in t.runs if x is not r] else f"{r.name} (run {r.run_id})":
          w[rid == r.run_id] for r in t.runs}  # fmt: skip
    svg = plots.wait_boxplots(by, f"{t.label}: wait before anneal per scenario")
    cap = "Hours between ALD end and first anneal start, lots released after the warm-up, all replications."
    return Section("wait", head, _figure(svg, cap))


def recipe_section(t: ReportTarget) -> Section:
    head = dict(SECTIONS)["recipe-effects"]
    if t.kind == "run" or len(t.runs) < 2:
        return Section(
            "recipe-effects", head, _note("Needs a study: a single run has one setpoint and soak time.")
        )
    sp = [_f(r.recipe().get("setpoint_c")) for r in t.runs]
    sk = [_f(r.recipe().get("soak_h")) for r in t.runs]
    if len(set(sp)) < 2 and len(set(sk)) < 2:
        return Section(
            "recipe-effects", head, _note("The scenarios of this study share one setpoint and one soak time.")
        )
    svg = plots.recipe_effects(
        sp,
        sk,
        [r.kpi("final_yield") for r in t.runs],
        [r.kpi("r_int_good_mean") for r in t.runs],
        f"{t.label}: one point per scenario",
        atmosphere=[str(r.recipe().get("atmosphere", "")) for r in t.runs],
    )
    cap = (
        "Final yield and mean interfacial resistance of good lots (95 % intervals) against the main recipe's "
        "setpoint (lines: soak times) and soak time (lines: setpoints), per atmosphere; scenarios that differ in "
        "another factor appear as unconnected points."
    )
    return Section("recipe-effects", head, _figure(svg, cap))


def pareto_section(t: ReportTarget) -> Section:
    head = dict(SECTIONS)["pareto"]
    if t.kind == "run" or len(t.runs) < 2:
        return Section("pareto", head, _note("Needs a study: a Pareto front compares several strategies."))
    thr = [r.kpi("good_kg_per_h") for r in t.runs]
    yl = [r.kpi("final_yield") for r in t.runs]
    front = plots.pareto_front([p.mean for p in thr], [p.mean for p in yl])
    svg = plots.pareto(thr, yl, f"{t.label}: every strategy")
    names = ", ".join(r.name for r, on in zip(t.runs, front, strict=True) if on)
    cap = (
        f"Throughput (good kg/h) against final yield, 95 % intervals; red: the Pareto front (no other strategy is "
        f"at least as good in both and better in one), here: {names}."
    )
    return Section("pareto", head, _figure(svg, cap))


def robustness_section(store: Any, t: ReportTarget) -> Section:
    """Probability of best and expected regret per objective over the parameter samples; what was sampled."""
    from twin import robustness as rob
    from twin.compare import load_selection

    head = dict(SECTIONS)["robustness"]
    if t.kind == "run" or t.study is None or _uncertainty(t.study) is None:
        text = (
            "Needs an uncertainty study: one that runs every strategy under samples of the quality model's "
            "uncertain parameters (`uncertainty: {samples: 20}` in the study file, or `twin study FILE "
            "--uncertainty 20`)."
        )
        return Section("robustness", head, _note(text))
    groups = rob.split_uncertainty(load_selection(store, [f"study:{t.study['study_id']}"]))
    assert groups is not None
    try:
        r = rob.robustness(groups)
    except TwinError as exc:
        return Section("robustness", head, _note(str(exc)))
    rows = []
    for obj in r.objectives:
        ranked = rob.ranked(obj)
        sense = ("max" if obj.maximize else "min") + (f", {obj.unit}" if obj.unit else "")
        label = f"{obj.objective}<br><small>{html.escape(obj.kpi)} ({html.escape(sense)})</small>"
        for i, x in enumerate(ranked):
            first = f'<th rowspan="{len(ranked)}">{label}</th>' if i == 0 else ""
            cells = (
                f"<td>{_fmt(x.nominal)}</td><td>{x.p_best:.2f}</td><td>{_fmt(x.expected_regret)}</td>"
                f"<td>{100 * x.feasible:.0f} %</td>"
            )
            rows.append(f"<tr>{first}<th>{html.escape(x.strategy)}</th>{cells}</tr>")
    table = (
        '<table class="kpi"><thead><tr><th>objective</th><th>strategy</th><th>nominal model</th>'
        "<th>probability of best</th><th>expected regret<br><small>KPI unit</small></th><th>with a value</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    s = r.samples
    par_rows = "".join(
        f"<tr><th>{html.escape(n)}</th><td>{_fmt(lo)}</td><td>{_fmt(hi)}</td>"
        f"<td>{'log' if lg else 'linear'}</td></tr>"
        for n, lo, hi, lg in zip(s.names, s.low, s.high, s.log)
    )
    params = (
        '<table class="kpi"><thead><tr><th>parameter</th><th>low</th><th>high</th><th>sampled in</th></tr>'
        f"</thead><tbody>{par_rows}</tbody></table>"
    )
    head_cells = "".join(f"<th>{html.escape(n)}</th>" for n in s.names)
    value_rows = "".join(
        f"<tr><th>{k}</th>" + "".join(f"<td>{_fmt(v)}</td>" for v in s.values[k - 1]) + "</tr>"
        for k in range(1, s.n + 1)
    )
    values = (
        f'<details><summary>The {s.n} samples</summary><table class="kpi"><thead><tr><th>sample</th>'
        f"{head_cells}</tr></thead><tbody>{value_rows}</tbody></table></details>"
    )
    text = (
        f"Every strategy ran under the nominal model and under {s.n} Latin-hypercube samples (seed {s.seed}) "
        f"of {len(s.names)} uncertain quality parameters, with the same random numbers. Probability of best: "
        "the share of the samples in which a strategy has the best mean over its replications (ties split). "
        "Expected regret: the mean distance between that sample's best and the strategy's mean, in the KPI's "
        "unit, over the samples in which it has a value. The other sections show the nominal model's runs."
    )
    notes = "".join(
        _note(f"{o.objective}: no strategy has a value in {100 * o.no_best:.0f} % of the samples.")
        for o in r.objectives
        if o.no_best > 0
    )
    if r.incomplete:
        left = ", ".join(map(str, r.incomplete))
        notes += _note(f"Samples without a run of every strategy, left out: {left}.")
    return Section(
        "robustness",
        head,
        f"<p>{html.escape(text)}</p>{table}{notes}<h3>Sampled parameters</h3>{params}{values}",
    )


def warmup_section(run: ScenarioRun, data: dict[str, Any]) -> Section:
    head = dict(SECTIONS)["warmup"]
    try:
        from twin import warmup
    except ImportError:
        return Section(
            "warmup", head, _note("Warm-up analysis not available (twin.warmup is not installed).")
        )
    lots = data["lots"]
    rep = np.asarray(lots["replication"], dtype=np.int64)
    rel = np.asarray(lots["release_h"], dtype=float)
    wait = np.array([np.nan if v is None else v for v in lots["wait_h"]], dtype=float)
    reps = sorted(set(rep.tolist()))
    times = [rel[rep == r] for r in reps]
    values = [wait[rep == r] for r in reps]
    try:
        with warnings.catch_warnings():  # empty bins give NaN means by design (filled by interpolation)
            warnings.simplefilter("ignore", RuntimeWarning)
            ws = warmup.warmup_series(times, values, run.horizon_h, kind="points")
        window = max(1, ws.averaged.size // 25)
        _, ma = warmup.welch_curve([ws.averaged], window)
    except (TwinError, ValueError) as exc:
        return Section("warmup", head, _note(f"No warm-up analysis for {run.name}: {exc}"))
    t_h = (np.arange(ws.averaged.size) + 0.5) * ws.bin_h
    svg = plots.welch(
        t_h,
        ws.averaged,
        ma,
        ws.warmup_h,
        run.warmup_h,
        "wait before anneal (h)",
        f"{run.name}: wait before anneal by release time, {len(reps)} replication(s)",
    )
    cap = (
        f"Welch's method on the wait before anneal (bins of {ws.bin_h:.1f} h, moving-average window ±{window} "
        f"bins); MSER-5 suggests a warm-up of {ws.warmup_h:.0f} h, the scenario uses {run.warmup_h:g} h."
    )
    return Section("warmup", head, _figure(svg, cap))


# ---------------------------------------------------------------------------------------------------------
# Page

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1150px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:2em} .meta{color:#666;font-size:.9em} nav ol{columns:2;font-size:.95em}
table.kpi{border-collapse:collapse;font-size:.8em;margin:.5em 0;display:block;overflow-x:auto}
table.kpi th,table.kpi td{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}
table.kpi thead th{background:#f4f4f4;text-align:center;vertical-align:bottom}
table.kpi tbody th{text-align:left} figure{margin:.5em 0} figure svg{max-width:100%;height:auto}
figcaption{font-size:.85em;color:#555} .note{background:#f7f7f0;border-left:3px solid #cc9;padding:.4em .8em}
details{margin:.5em 0} summary{cursor:pointer;color:#335}
"""


def equipment_section(run: ScenarioRun) -> Section:
    """OEE (availability x performance x quality) and active-period bottleneck share per unit (twin/oee.py)."""
    units = sorted(
        (k.removeprefix("oee_") for k in run.summary if k.startswith("oee_") and not k.endswith("_mean")),
        key=plots._natural,
    )
    if not units:
        return Section("equipment", dict(SECTIONS)["equipment"], _note("This run has no equipment KPIs."))
    oee = [_f(run.summary[f"oee_{u}"].get("mean")) for u in units]
    share = [_f(run.summary.get(f"bottleneck_share_{u}", {}).get("mean", 0.0)) for u in units]
    best = units[int(np.nanargmax(share))] if share else ""
    rows = "".join(
        f"<tr><th>{html.escape(u)}</th><td>{_fmt(o)}</td><td>{_fmt(b)}</td></tr>"
        for u, o, b in zip(units, oee, share)
    )
    table = (
        '<table class="kpi"><thead><tr><th>unit</th><th>OEE</th><th>bottleneck share</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )
    svg = plots.equipment(units, oee, share, f"OEE and bottleneck share, {run.name}")
    text = (
        f"Bottleneck: {best} (the unit with the longest current active period for the largest share of the "
        "window, Roser's active-period method). OEE = availability x performance x quality; `qc` pools the QC "
        "stations. Means over replications."
    )
    return Section(
        "equipment", dict(SECTIONS)["equipment"], f"<p>{html.escape(text)}</p>" + _figure(svg, "") + table
    )


def render(t: ReportTarget, sections: list[Section], db_path: str, build_s: float) -> str:
    """The HTML page."""
    title = f"Twin report: {t.label}"
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    focus = f"; timelines from {t.focus.name} (run {t.focus.run_id})" if t.kind == "study" else ""
    meta = (
        f"{len(t.runs)} scenario(s), database {db_path}, horizon {t.focus.horizon_h:g} h, warm-up "
        f"{t.focus.warmup_h:g} h{focus}. Built {now} in {build_s:.1f} s."
    )
    desc = (t.study or {}).get("name") if t.study else None
    toc = "".join(f'<li><a href="#{s.id}">{html.escape(s.heading)}</a></li>' for s in sections)
    body = "".join(
        f'<section id="{s.id}"><h2>{html.escape(s.heading)}</h2>{s.body}</section>' for s in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{html.escape(title)}</h1><p class="meta">{html.escape(meta)}</p>'
        + (f"<p>{html.escape(str(desc))}</p>" if desc else "")
        + f"</header><nav><ol>{toc}</ol></nav><main>{body}</main></body></html>\n"
    )


def build_report(store: Any, target: str) -> tuple[str, ReportTarget]:
    """The report page of a run or study in `store` (see `resolve` for the target syntax)."""
    t0 = time.perf_counter()
    t = resolve(store, target)
    data = _focus_tables(store, t.focus)
    where = f"{t.focus.name} (run {t.focus.run_id})"
    sections = [
        kpi_section(t),
        gantt_section(t.focus, data, where),
        queue_section(t.focus, data, where),
        wait_section(store, t, data),
        recipe_section(t),
        pareto_section(t),
        robustness_section(store, t),
        warmup_section(t.focus, data),
        equipment_section(t.focus),
    ]
    return render(t, sections, str(store.path), time.perf_counter() - t0), t


def write_report(
    target: str, output: str | os.PathLike[str], db: str | os.PathLike[str]
) -> tuple[Path, ReportTarget]:
    """Build the report of `target` from the database `db` (opened read-only) and write it to `output`."""
    from twin.store import Store

    with Store(db, read_only=True) as store:
        page, t = build_report(store, target)
    from twin.outputs import write_text_atomic

    out = Path(output)
    if out.parent and not out.parent.exists():
        raise TwinError(f"cannot write {out}: directory {out.parent} does not exist")
    write_text_atomic(out, page)
    return out, t
