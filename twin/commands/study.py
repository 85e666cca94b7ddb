"""`twin study`: run every scenario x replication of a study file on an executor, store each run as it completes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from twin.commands.history import cli_errors, console, fmt

EXECUTOR_HELP = "serial, processes (all cores, default) or dask (--address, or a local cluster)"


@cli_errors
def study(
    study_file: Annotated[Path, typer.Argument(help="study YAML file", show_default=False)],
    executor: Annotated[str, typer.Option("--executor", "-e", help=EXECUTOR_HELP)] = "processes",
    workers: Annotated[int | None, typer.Option("--workers", "-w", help="worker processes (default: every core)")] = None,
    address: Annotated[str | None, typer.Option(help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (with --executor dask)")] = None,
    db: Annotated[Path, typer.Option(help="DuckDB run-history file")] = Path("twin.duckdb"),
    list_only: Annotated[bool, typer.Option("--list", help="only list the generated scenarios, run nothing")] = False,
) -> None:  # fmt: skip
    """Run a study: every generated scenario with the study's replications and one seed (common random numbers)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from twin.executors import make_executor, run_study
    from twin.study import load_study

    plan = load_study(study_file)
    out = console()
    if list_only:
        tbl = Table(
            title=f"study {plan.name}: {len(plan.scenarios)} scenarios x {plan.study.replications} replications"
        )
        tbl.add_column("#", justify="right")
        tbl.add_column("scenario")
        for i, sc in enumerate(plan.scenarios, start=1):
            tbl.add_row(str(i), sc.name + ("  (baseline)" if sc.name == plan.baseline else ""))
        out.print(tbl)
        return
    ex = make_executor(executor, workers, address)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(f"{plan.name}: scenario x replication", total=plan.n_runs)
        res = run_study(plan, ex, db=db, progress=lambda done, total: bar.update(task, completed=done))
    tbl = Table(title=f"study {plan.name} (id {res.study_id}): {len(res.runs)} scenarios x {plan.study.replications} replications, seed {plan.study.seed}")  # fmt: skip
    for col in ("scenario", "run", "good kg/h", "final yield", "R_int good (ohm cm2)", "wait p95 (h)"):
        tbl.add_column(col, justify="left" if col == "scenario" else "right")
    for run in res.runs:
        s = {r["kpi"]: r["mean"] for r in run.summary.to_pylist()}
        name = run.scenario.name + (" (baseline)" if run.scenario.name == plan.baseline else "")
        tbl.add_row(name, str(run.run_id), *(fmt(s.get(k)) for k in ("good_kg_per_h", "final_yield", "r_int_good_mean", "wait_p95_h")))  # fmt: skip
    out.print(tbl)
    plural = "s" if res.workers > 1 else ""
    out.print(
        f"{res.tasks} replications on {res.executor} ({res.workers} worker{plural}) in {res.wall_s:.1f} s "
        f"(simulation {res.sim_s:.1f} s); stored in {db}. Compare: `twin compare {study_file} --db {db}`"
    )


def register(app: typer.Typer) -> None:
    app.command("study")(study)
