"""`twin study`: run every scenario x replication of a study file on an executor, store each run as it completes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from twin.commands.history import cli_errors, console, fmt
from twin.commands.run import WAIT_HELP
from twin.dblock import DEFAULT_WAIT_S

EXECUTOR_HELP = "serial, processes (all cores, default) or dask (--address, or a local cluster)"


@cli_errors
def study(
    study_file: Annotated[Path, typer.Argument(help="study YAML file", show_default=False)],
    executor: Annotated[str, typer.Option("--executor", "-e", help=EXECUTOR_HELP)] = "processes",
    workers: Annotated[int | None, typer.Option("--workers", "-w", help="worker processes (default: every core)")] = None,
    address: Annotated[str | None, typer.Option(help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (with --executor dask)")] = None,
    db: Annotated[Path, typer.Option(help="DuckDB run-history file")] = Path("twin.duckdb"),
    list_only: Annotated[bool, typer.Option("--list", help="only list the generated scenarios, run nothing")] = False,
    uncertainty: Annotated[int | None, typer.Option(help="run every scenario under N samples of the uncertain quality parameters (sets the study's uncertainty.samples)")] = None,
    wait: Annotated[float, typer.Option(help=WAIT_HELP)] = DEFAULT_WAIT_S,
    dask_timeout: Annotated[float | None, typer.Option(help="with --executor dask: fail when the cluster has had no worker for this many seconds (default 60)")] = None,
) -> None:  # fmt: skip
    """Run a study: every generated scenario with the study's replications and one seed (common random numbers).

    With uncertainty samples, every scenario also runs once per sample of the quality model's uncertain
    parameters (Latin hypercube over their ranges), as `<scenario>@u<k>`; `@u00` is the nominal model.

    One process at a time writes to a database: while another does, the study waits (up to --wait seconds, saying
    so on stderr) before it simulates; it then holds the database for its whole length, but opens the file only
    to write, so `twin runs list` and `twin sql` can read between its writes. Ctrl-C stops it with one line
    giving the runs stored (exit code 130)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from twin.executors import make_executor, run_study
    from twin.study import load_study

    plan = load_study(study_file, uncertainty)
    out = console()
    samples = plan.samples
    per = f" x (1 nominal + {samples.n} samples)" if samples is not None else ""
    if list_only:
        tbl = Table(
            title=f"study {plan.name}: {len(plan.strategies)} scenarios x {plan.study.replications} replications"
        )
        tbl.add_column("#", justify="right")
        tbl.add_column("scenario")
        for i, name in enumerate(plan.strategies, start=1):
            tbl.add_row(str(i), name + ("  (baseline)" if name == plan.baseline else ""))
        out.print(tbl)
        if samples is not None:
            out.print(
                f"each scenario runs under the nominal model and {samples.n} parameter samples: "
                f"{len(plan.scenarios)} runs, {plan.n_runs} replications; {_sampled(samples)}",
                markup=False,
            )
        return
    ex = make_executor(executor, workers, address, dask_timeout)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=True,
    ) as bar:
        what = "scenario x sample x replication" if samples is not None else "scenario x replication"
        task = bar.add_task(f"{plan.name}: {what}", total=plan.n_runs)
        res = run_study(
            plan, ex, db=db, progress=lambda done, total: bar.update(task, completed=done), wait_s=wait
        )
    shown = [(r.scenario.name, r) for r in res.runs]
    if samples is not None:  # the nominal model's runs, named by strategy
        nominal = {samples.run_name(name, 0): name for name in plan.strategies}
        shown = [(nominal[r.scenario.name], r) for r in res.runs if r.scenario.name in nominal]
    title = f"study {plan.name} (id {res.study_id}): {len(plan.strategies)} scenarios{per} x {plan.study.replications} replications, seed {plan.study.seed}"  # fmt: skip
    tbl = Table(title=title + (", nominal model" if samples is not None else ""))
    for col in ("scenario", "run", "good kg/h", "final yield", "R_int good (ohm cm2)", "wait p95 (h)"):
        tbl.add_column(col, justify="left" if col == "scenario" else "right")
    for name, run in shown:
        s = {r["kpi"]: r["mean"] for r in run.summary.to_pylist()}
        label = name + (" (baseline)" if name == plan.baseline else "")
        tbl.add_row(label, str(run.run_id), *(fmt(s.get(k)) for k in ("good_kg_per_h", "final_yield", "r_int_good_mean", "wait_p95_h")))  # fmt: skip
    out.print(tbl)
    if samples is not None:
        out.print(f"{len(res.runs)} runs stored; {_sampled(samples)}", markup=False)
    plural = "s" if res.workers > 1 else ""
    out.print(
        f"{res.tasks} replications on {res.executor} ({res.workers} worker{plural}) in {res.wall_s:.1f} s "
        f"(simulation {res.sim_s:.1f} s); stored in {db}. Compare: `twin compare {study_file} --db {db}`"
    )


def _sampled(samples: object) -> str:
    from twin.uncertainty import ParameterSamples

    assert isinstance(samples, ParameterSamples)
    names = ", ".join(samples.names)
    return f"{samples.n} Latin-hypercube samples (seed {samples.seed}) of {len(samples.names)} parameters: {names}"


def register(app: typer.Typer) -> None:
    app.command("study")(study)
