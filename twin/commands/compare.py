"""`twin compare`: KPI means with 95 % CIs, paired differences to a baseline, ranking, and KN selection of the best."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from twin.commands.history import cli_errors, console, fmt
from twin.commands.run import WAIT_HELP
from twin.dblock import DEFAULT_WAIT_S

OBJECTIVE_HELP = (
    "throughput (good kg/h), yield (final yield), power (lowest R_int of good lots), cycle-life (highest "
    "retention, then bonding) or cost (EUR per good kg)"
)


def _ci(mean: float, half: float) -> str:
    if not math.isfinite(mean):
        return "-"
    if not math.isfinite(half):
        return fmt(mean)
    return f"{fmt(mean)} ± {half:.2g}"


def _diff(d: object) -> tuple[str, str]:
    from twin.compare import Diff

    assert isinstance(d, Diff)
    if not math.isfinite(d.mean):
        return "-", ""
    text = f"{d.mean:+.4g}" + (f" [{d.low:+.3g}, {d.high:+.3g}]" if math.isfinite(d.half) else "")
    mark = "*" if d.significant else ""
    if not d.paired:
        mark += " (unpaired)"
    return text, mark


@cli_errors
def compare_cmd(
    items: Annotated[list[str], typer.Argument(help="a study (YAML file, name or study:ID) or run ids", show_default=False)],
    baseline: Annotated[str | None, typer.Option(help="scenario the others are compared with (default: the study's baseline)")] = None,
    objective: Annotated[str, typer.Option(help=OBJECTIVE_HELP)] = "throughput",
    min_yield: Annotated[float | None, typer.Option(help="constraint: final_yield >= this")] = None,
    constraint: Annotated[list[str] | None, typer.Option(help="constraint KPI>=VALUE or KPI<=VALUE (repeatable)")] = None,
    kpi: Annotated[list[str] | None, typer.Option(help="show only this KPI (repeatable; default: every KPI)")] = None,
    price: Annotated[list[str] | None, typer.Option(help="cost unit price NAME=VALUE, e.g. electricity_eur_per_kwh=0.25 (repeatable)")] = None,
    select_best: Annotated[bool, typer.Option("--select-best", help="select the best with a probability guarantee; simulates more replications if needed")] = False,
    procedure: Annotated[str, typer.Option(help="ranking-and-selection procedure of --select-best: kn (Kim & Nelson, sequential) or rinott (two-stage)")] = "kn",
    delta: Annotated[float | None, typer.Option(help="indifference zone of --select-best, in the objective's unit")] = None,
    alpha: Annotated[float, typer.Option(help="1 - guaranteed probability of correct selection")] = 0.05,
    n0: Annotated[int | None, typer.Option(help="first-stage replications of KN (default: those stored)")] = None,
    max_reps: Annotated[int, typer.Option(help="at most this many replications per scenario in --select-best")] = 200,
    output_format: Annotated[str, typer.Option("--format", "-f", help="table or json")] = "table",
    db: Annotated[Path, typer.Option(help="DuckDB run-history file")] = Path("twin.duckdb"),
    wait: Annotated[float, typer.Option(help="with --select-best: " + WAIT_HELP)] = DEFAULT_WAIT_S,
) -> None:  # fmt: skip
    """Compare the scenarios of a study (or runs): KPIs with 95 % CIs, differences to the baseline, ranking."""
    from twin import compare as cmp
    from twin import robustness as rob
    from twin.errors import TwinError
    from twin.store import Store

    if output_format not in ("table", "json"):
        raise TwinError(f"--format must be table or json, got {output_format!r}")
    if select_best and delta is None:
        raise TwinError("--select-best needs --delta (the smallest difference worth detecting)")
    if not db.is_file():
        raise TwinError(f"database {db} not found; run `twin study` or `twin run` first")
    constraints = [cmp.Constraint.parse(c) for c in constraint or []]
    if min_yield is not None:
        constraints.insert(0, cmp.Constraint("final_yield", ">=", min_yield))
    prices = cmp.CostPrices.parse(price or [])
    with Store(db, read_only=True) as store:
        sel = cmp.load_selection(store, items, prices)
    uncertain = rob.split_uncertainty(sel)
    robust = None
    if uncertain is not None:  # the plain comparison is of the nominal model's runs
        sel = uncertain.nominal
        if uncertain.by_sample:
            robust = rob.robustness(uncertain, constraints)
    comp = cmp.compare(sel.systems, baseline or sel.baseline, objective, constraints, kpi)
    best = None
    if select_best:
        assert delta is not None
        best = cmp.select_best(
            sel,
            objective,
            delta,
            constraints,
            alpha,
            n0,
            max_reps,
            db=db,
            prices=prices,
            procedure=procedure,
            wait_s=wait,
        )
    if output_format == "json":
        data = cmp.comparison_json(comp)
        if best is not None:
            data["select_best"] = {**best.__dict__, "statement": best.statement()}
        if robust is not None:
            data["robustness"] = rob.robustness_json(robust)
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    _render(comp, sel, best)
    if robust is not None:
        _render_robustness(robust)
    elif uncertain is not None:
        console().print(
            f"no parameter sample has a run of every strategy yet (samples 1..{uncertain.samples.n})"
        )


def _render(comp: object, sel: object, best: object) -> None:
    from rich.table import Table

    from twin.compare import BestSelection, Comparison, Selection

    assert isinstance(comp, Comparison) and isinstance(sel, Selection)
    out = console()
    what = f"study {sel.study_name} (id {sel.study_id})" if sel.study_id is not None else "runs"
    if (sel.study or {}).get("uncertainty"):
        what += ", nominal model"
    tbl = Table(
        title=f"{what}: KPI means with 95 % CI; difference to {comp.baseline} (paired, * = significant)"
    )
    for col in ("kpi", "scenario", "n", "mean ± 95 % CI", f"Δ vs {comp.baseline} [95 % CI]", "sig"):
        tbl.add_column(col, justify="right" if col in ("n",) else "left")
    last = None
    for r in comp.rows:
        label = f"{r.kpi} ({r.unit})" if r.kpi != last and r.unit else (r.kpi if r.kpi != last else "")
        if r.kpi != last and last is not None:
            tbl.add_section()
        last = r.kpi
        d, mark = ("(baseline)", "") if r.diff is None else _diff(r.diff)
        tbl.add_row(label, r.system, str(r.n), _ci(r.mean, r.half), d, mark)
    out.print(tbl)

    cons = "; ".join(str(c) for c in comp.constraints) or "none"
    rk = Table(title=f"ranking by {comp.objective} (constraints: {cons})")
    rk.add_column("rank", justify="right")
    rk.add_column("scenario")
    for k, _, _ in comp.ranking[0].values if comp.ranking else []:
        rk.add_column(f"{k} ± 95 % CI")
    rk.add_column("Δ to best [95 % CI]")
    rk.add_column("note")
    for r in comp.ranking:
        vals = [_ci(m, h) for _, m, h in r.values]
        if r.rank is None:
            rk.add_row("-", r.system, *vals, "", "excluded: " + ", ".join(r.violations))
            continue
        d, mark = ("", "best") if r.to_best is None else _diff(r.to_best)
        note = (
            mark
            if r.to_best is None
            else ("worse (significant)" if r.to_best.significant else "not distinguishable")
        )
        rk.add_row(str(r.rank), r.system, *vals, d, note)
    out.print(rk)
    if comp.best is None:
        out.print("no scenario meets the constraints")
    if isinstance(best, BestSelection):
        out.print(f"select-best: {best.statement()}")
        reps = ", ".join(f"{k} {v}" for k, v in best.n_per_system.items())
        out.print(f"  replications used: {reps}; {best.new_replications} new replications simulated")
        if best.stored_run_ids:
            out.print(
                f"  stored as run(s) {', '.join(map(str, best.stored_run_ids))} of study {sel.study_id}"
            )


def _render_robustness(robust: object) -> None:
    from rich.markup import escape
    from rich.table import Table

    from twin.robustness import Robustness, ranked

    assert isinstance(robust, Robustness)
    out = console()
    s = robust.samples
    cons = "; ".join(str(c) for c in robust.constraints) or "none"
    tbl = Table(
        title=f"robustness to model-parameter uncertainty: {len(robust.used)} samples of {len(s.names)} "
        f"parameters (Latin hypercube, seed {s.seed}; constraints: {cons})"
    )
    for col in ("objective (kpi, unit)", "strategy", "nominal", "P(best)", "E[regret]", "feasible"):
        tbl.add_column(
            escape(col), justify="left" if col in ("objective (kpi, unit)", "strategy") else "right"
        )
    for i, obj in enumerate(robust.objectives):
        if i:
            tbl.add_section()
        label = f"{obj.objective} ({obj.kpi}, {'max' if obj.maximize else 'min'}" + (
            f", {obj.unit})" if obj.unit else ")"
        )
        for j, r in enumerate(ranked(obj)):
            tbl.add_row(
                label if j == 0 else "",
                r.strategy,
                fmt(r.nominal),
                f"{r.p_best:.2f}",
                fmt(r.expected_regret),
                f"{r.feasible:.0%}",
            )
    out.print(tbl)
    notes = [
        "P(best): share of the samples in which the strategy has the best mean (ties split); E[regret]: mean "
        "distance to that sample's best, in the KPI's unit, over the samples in which it is feasible (has a "
        "value and meets the constraints)."
    ]
    meeting = " meeting the constraints" if robust.constraints else ""
    for obj in robust.objectives:
        if obj.no_best > 0:
            notes.append(
                f"{obj.objective}: no strategy has a value{meeting} in {obj.no_best:.0%} of the samples"
            )
    if robust.incomplete:
        notes.append(
            f"samples without a run of every strategy, left out: {', '.join(map(str, robust.incomplete))}"
        )
    params = ", ".join(
        f"{n} [{lo:.3g}, {hi:.3g}{' log' if lg else ''}]"
        for n, lo, hi, lg in zip(s.names, s.low, s.high, s.log)
    )
    notes.append(f"sampled: {params}")
    for line in notes:
        out.print(line, markup=False)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_cmd)
