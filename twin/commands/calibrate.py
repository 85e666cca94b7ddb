"""`twin calibrate QC.csv`: fit the quality model's kinetic parameters to measured lots, print them with standard
errors, and write a scenario fragment (`quality:` overrides) that uses them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from twin.commands.history import cli_errors


@cli_errors
def calibrate_cmd(
    qc_csv: Annotated[Path, typer.Argument(help="QC data: one measured lot per row (see docs/report-and-calibration.md)", show_default=False)],
    scenario: Annotated[Path | None, typer.Option("--scenario", "-s", help="scenario giving start values, coating, recipes and furnace temperatures")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="scenario fragment to write")] = Path("calibrated-quality.yaml"),
    fit: Annotated[str | None, typer.Option(help="comma-separated subset of ea_d_kj,k_d_per_h,n_d,ea_u_kj,k_u_per_h,k_w_ppm2_per_h")] = None,
) -> None:  # fmt: skip
    """Fit the densification and Li-uptake kinetics and K_w to measured QC data; print them with standard errors."""
    from twin import calibrate

    names = [n.strip() for n in fit.split(",") if n.strip()] if fit else None
    result = calibrate.calibrate(qc_csv, scenario, names)
    print(calibrate.format_fit(result))
    source = str(qc_csv) + (f" --scenario {scenario}" if scenario else "")
    path = calibrate.write_fragment(result, output, source)
    print(f"wrote {path}: merge its `quality:` section into a scenario to use the fitted values")


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_cmd)
