"""`twin warmup RUN_OR_STUDY`: MSER-5 warm-up suggestion from stored lots, with an optional Welch plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from twin.commands.history import cli_errors, console
from twin.errors import TwinError

KPI_HELP = "series to analyse (repeatable): wait, wip, lead_time, output (default: wait and wip)"


@cli_errors
def warmup(
    item: Annotated[str, typer.Argument(metavar="RUN_OR_STUDY", help="a run id, study:ID, a study name or study YAML", show_default=False)],
    kpi: Annotated[list[str] | None, typer.Option(help=KPI_HELP)] = None,
    batch: Annotated[int, typer.Option(help="MSER batch size (5: MSER-5)")] = 5,
    bins: Annotated[int | None, typer.Option(help="time bins per series (default: ~1 lot per bin, 40-200)")] = None,
    window: Annotated[int | None, typer.Option(help="Welch moving-average half-window in bins (default: bins/40)")] = None,
    plot: Annotated[Path | None, typer.Option(help="write the Welch plot to this .svg, .png or .pdf file")] = None,
    db: Annotated[Path, typer.Option(help="DuckDB run-history file")] = Path("twin.duckdb"),
) -> None:  # fmt: skip
    """Suggest a warm-up (MSER-5 on the replication-averaged series) for a stored run or every run of a study."""
    from rich.table import Table

    from twin.store import open_store
    from twin.warmup import DEFAULT_SERIES, SERIES, analyze_runs, plot_welch

    if batch < 1:
        raise TwinError(f"--batch must be at least 1, got {batch}")
    if bins is not None and bins < 4 * batch:
        raise TwinError(f"--bins must be at least {4 * batch} for MSER-{batch}, got {bins}")
    if window is not None and window < 0:
        raise TwinError(f"--window must be zero or positive, got {window}")
    if plot is not None and plot.suffix.lower() not in (".svg", ".png", ".pdf"):
        raise TwinError(f"--plot {plot}: use a .svg, .png or .pdf file name")
    if not db.is_file():
        raise TwinError(f"database {db} not found; run `twin run` or `twin study` first (or pass --db)")
    kpis = list(dict.fromkeys(kpi or DEFAULT_SERIES))
    with open_store(db, read_only=True) as store:
        results = analyze_runs(store, item, kpis, batch=batch, n_bins=bins)

    tbl = Table(title=f"warm-up of {item}: MSER-{batch} on the replication-averaged series")
    for col in (
        "run",
        "scenario",
        "kpi",
        "reps",
        "bins",
        "series to",
        f"MSER-{batch} warm-up",
        "stored warm-up",
    ):
        tbl.add_column(col, justify="left" if col in ("scenario", "kpi") else "right")
    for r in results:
        ws = r.series
        tbl.add_row(
            str(r.run_id), r.scenario, f"{r.kpi} [{SERIES[r.kpi].unit}]", str(r.replications),
            f"{ws.averaged.size} x {ws.bin_h:.3g} h", f"{ws.averaged.size * ws.bin_h:.0f} h",
            f"{r.warmup_h:.1f} h", f"{r.stored_warmup_h:g} h",
        )  # fmt: skip
    out = console()
    out.print(tbl)
    worst = max(results, key=lambda r: r.warmup_h)
    suggest_h = math.ceil(worst.warmup_h)
    stored = sorted({r.stored_warmup_h for r in results})
    stored_text = ", ".join(f"{s:g} h" for s in stored)
    out.print(
        f"suggested warm-up: {suggest_h} h (largest MSER-{batch} truncation: {worst.kpi} of run {worst.run_id}); "
        f"stored: {stored_text}"
    )
    for r in results:
        if r.warmup_h > 0.5 * r.series.averaged.size * r.series.bin_h * 0.8:
            out.print(
                f"note: run {r.run_id} {r.kpi}: the truncation is near the half-series limit; the run may be too "
                f"short to reach steady state (try more hours)"
            )
            break
    if plot is not None:
        plot_welch(results, str(plot), window=window)
        out.print(f"Welch plot written to {plot}")


def register(app: typer.Typer) -> None:
    app.command("warmup")(warmup)
