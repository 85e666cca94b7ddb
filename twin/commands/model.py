"""`twin model validate`: check the quality model against the behaviours its sources expect and write the
validation page (docs/validation.md); `twin model params`: the parameters with their sources and ranges."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from twin.commands.history import cli_errors, console

model_app = typer.Typer(help="The quality model: validate it, list its parameters.", no_args_is_help=True)


@model_app.command("validate")
@cli_errors
def validate(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the validation page here (Markdown), e.g. docs/validation.md")] = None,
    executor: Annotated[str, typer.Option("--executor", "-e", help="executor of the strategy study: serial or processes")] = "processes",
    physics_only: Annotated[bool, typer.Option("--physics-only", help="skip the strategy study (the line runs)")] = False,
    scenario: Annotated[Path | None, typer.Option("--scenario", "-s", help="validate with this scenario's quality: overrides (e.g. calibrated values)")] = None,
) -> None:  # fmt: skip
    """Check every behaviour the model must show (nominal lots and the shipped strategy study); exit 1 if any fails."""
    from rich.table import Table

    from twin.errors import TwinError
    from twin.validation import render_markdown, validate

    if executor not in ("serial", "processes"):
        raise TwinError(f"--executor must be serial or processes, got {executor!r}")
    quality = None
    if scenario is not None:
        from twin.scenario import load_scenario

        quality = dict(load_scenario(scenario).quality)
    checks = validate(quality, executor=executor, study=not physics_only)
    out = console()
    tbl = Table(title=f"quality model: {sum(c.passed for c in checks)} of {len(checks)} behaviours pass")
    for col in ("behaviour", "model", "result"):
        tbl.add_column(col, overflow="fold")
    for c in checks:
        tbl.add_row(c.key, c.model, "pass" if c.passed else "[bold red]FAIL[/]")
    out.print(tbl)
    if output is not None:
        from twin.outputs import write_text_atomic

        write_text_atomic(output, render_markdown(checks))
        out.print(f"wrote {output}")
    if not all(c.passed for c in checks):
        print("error: " + ", ".join(c.key for c in checks if not c.passed) + " failed", file=sys.stderr)
        sys.exit(1)


@model_app.command("params")
@cli_errors
def params(
    uncertain: Annotated[bool, typer.Option("--uncertain", help="only the parameters an uncertainty study samples")] = False,
) -> None:  # fmt: skip
    """The quality parameters: default, unit, confidence tag, plausible range and source."""
    from rich.table import Table

    from plant.physics import PARAM_INFO, QualityParams

    p = QualityParams()
    tbl = Table(title="quality parameters (tags: S source, K literature, C computed, E estimate)")
    for col in ("name", "default", "unit", "tag", "range", "source"):
        tbl.add_column(col, overflow="fold")
    for name, info in PARAM_INFO.items():
        if uncertain and not info.uncertain:
            continue
        tbl.add_row(
            name, f"{getattr(p, name):.4g}", info.unit, info.tag, f"{info.low:g}–{info.high:g}", info.source
        )
    console().print(tbl)


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
