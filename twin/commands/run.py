"""`twin run`: replications of one scenario with a progress bar, a KPI table, and the run stored in DuckDB."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from twin.commands.history import cli_errors, console, kpi_table
from twin.dblock import DEFAULT_WAIT_S
from twin.errors import TwinError

DB_HELP = "DuckDB run-history file"
WAIT_HELP = "seconds to wait, before simulating, while another process writes to --db (0: fail at once)"


@cli_errors
def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file", show_default=False)],
    replications: Annotated[int | None, typer.Option("--replications", "-n", help="replications (default: the scenario's)")] = None,
    seed: Annotated[int | None, typer.Option(help="base seed (default: the scenario's)")] = None,
    hours: Annotated[float | None, typer.Option(help="simulated hours per replication (default: the scenario's horizon_h)")] = None,
    warmup: Annotated[float | None, typer.Option(help="warm-up hours excluded from KPIs (default: the scenario's warmup_h)")] = None,
    db: Annotated[Path, typer.Option(help=DB_HELP)] = Path("twin.duckdb"),
    precision: Annotated[float | None, typer.Option(help="add replications until the 95 % CI of --kpi has this relative half-width (e.g. 0.02)")] = None,
    kpi: Annotated[str, typer.Option(help="KPI that --precision applies to")] = "good_kg_per_h",
    max_replications: Annotated[int, typer.Option(help="upper bound on replications with --precision")] = 100,
    profile: Annotated[Path | None, typer.Option(help="write a cProfile file of the run (read with `python -m pstats FILE`)")] = None,
    wait: Annotated[float, typer.Option(help=WAIT_HELP)] = DEFAULT_WAIT_S,
) -> None:  # fmt: skip
    """Run a scenario's replications, print KPI means with 95 % confidence intervals, store the run.

    With --precision, replications are added (at least --replications, default 5) until the KPI's 95 %
    interval is narrow enough or --max-replications is reached. One process at a time writes to a database:
    while another does, this one waits (up to --wait seconds, saying so on stderr) before it simulates."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from twin import api

    sc = api.with_overrides(api.load_scenario(scenario), hours, warmup)
    n = replications if replications is not None else sc.replications
    if n < 1:
        raise TwinError(f"--replications must be at least 1, got {n}")
    reached = None
    if precision is not None:
        min_n = replications if replications is not None else 5
        n = max_replications

        def simulate(progress):
            nonlocal reached
            result, reached = api.run_to_precision(
                sc, precision, kpi, min_n, max_replications, seed=seed, db=db, progress=progress, wait_s=wait
            )
            return result
    else:

        def simulate(progress):
            return api.run_scenario(sc, replications=n, seed=seed, db=db, progress=progress, wait_s=wait)

    if profile is not None:
        from twin.profiling import profile_to

        plain = simulate

        def simulate(progress):
            return profile_to(profile, plain, progress)

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
            result = simulate(lambda done, total: bar.update(task, completed=done))
    else:  # logs and pipes: a plain line after the first replication, then at most every 10 s
        last = [0.0]

        def log(done: int, total: int) -> None:
            now = time.monotonic()
            if done == 1 or done == total or now - last[0] >= 10.0:
                last[0] = now
                print(f"{sc.name}: {done}/{total} replications", file=sys.stderr, flush=True)

        result = simulate(log)
    n = len(result.replications)
    out = console()
    out.print(
        kpi_table(
            result.summary,
            title=f"{sc.name}: {n} replications x {sc.horizon_h:g} h (warm-up {sc.warmup_h:g} h), seed {result.seed}",
        )
    )
    wall = f"{result.wall_s:.1f} s" if math.isfinite(result.wall_s) else "?"
    out.print(f"run {result.run_id} stored in {db} ({wall}); see `twin runs show {result.run_id} --db {db}`")
    if reached is not None:
        verdict = "reached" if reached.reached else "NOT reached (raise --max-replications)"
        out.print(
            f"precision on {kpi}: relative half-width {reached.rel_half_width:.2%} after {reached.n} replications, "
            f"target {precision:.2%} {verdict}"
        )
    if profile is not None:
        out.print(f"profile written to {profile} (`python -m pstats {profile}`)")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
