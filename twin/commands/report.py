"""`twin report STUDY_OR_RUN -o report.html`: one self-contained HTML file with the KPI table and the plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from twin.commands.history import cli_errors


@cli_errors
def report_cmd(
    target: Annotated[str, typer.Argument(help="run id (N or run:N), study id (study:N) or study name", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write")] = Path("report.html"),
    db: Annotated[Path, typer.Option(help="DuckDB run-history file")] = Path("twin.duckdb"),
) -> None:  # fmt: skip
    """Write an offline HTML report (KPIs, furnace Gantt, queue/WIP, waits, recipe effects, Pareto, warm-up)."""
    from twin.report import write_report

    path, t = write_report(target, output, db)
    size_kb = path.stat().st_size / 1024
    print(f"wrote {path} ({size_kb:.0f} kB): {t.label}, {len(t.runs)} scenario(s)")


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
