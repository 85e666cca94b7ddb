"""`twin run`: replications of one scenario with a progress bar, a KPI table, and the run stored in DuckDB."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from twin.commands.history import cli_errors, console, kpi_table
from twin.errors import TwinError

DB_HELP = "DuckDB run-history file"


@cli_errors
def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file", show_default=False)],
    replications: Annotated[int | None, typer.Option("--replications", "-n", help="replications (default: the scenario's)")] = None,
    seed: Annotated[int | None, typer.Option(help="base seed (default: the scenario's)")] = None,
    hours: Annotated[float | None, typer.Option(help="simulated hours per replication (default: the scenario's horizon_h)")] = None,
    warmup: Annotated[float | None, typer.Option(help="warm-up hours excluded from KPIs (default: the scenario's warmup_h)")] = None,
    db: Annotated[Path, typer.Option(help=DB_HELP)] = Path("twin.duckdb"),
) -> None:  # fmt: skip
    """Run a scenario's replications, print KPI means with 95 % confidence intervals, store the run."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from twin import api

    sc = api.with_overrides(api.load_scenario(scenario), hours, warmup)
    n = replications if replications is not None else sc.replications
    if n < 1:
        raise TwinError(f"--replications must be at least 1, got {n}")
    err = console(stderr=True)
    if err.is_terminal:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task(f"{sc.name}: replications", total=n)
            result = api.run_scenario(
                sc,
                replications=n,
                seed=seed,
                db=db,
                progress=lambda done, total: bar.update(task, completed=done),
            )
    else:  # logs and pipes: a plain line after the first replication, then at most every 10 s
        last = [0.0]

        def log(done: int, total: int) -> None:
            now = time.monotonic()
            if done == 1 or done == total or now - last[0] >= 10.0:
                last[0] = now
                print(f"{sc.name}: {done}/{total} replications", file=sys.stderr, flush=True)

        result = api.run_scenario(sc, replications=n, seed=seed, db=db, progress=log)
    out = console()
    out.print(
        kpi_table(
            result.summary,
            title=f"{sc.name}: {n} replications x {sc.horizon_h:g} h (warm-up {sc.warmup_h:g} h), seed {result.seed}",
        )
    )
    wall = f"{result.wall_s:.1f} s" if math.isfinite(result.wall_s) else "?"
    out.print(f"run {result.run_id} stored in {db} ({wall}); see `twin runs show {result.run_id} --db {db}`")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
