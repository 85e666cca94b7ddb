"""`twin scenario check FILE` (one line per error, with the field path) and `twin scenario schema` (JSON schema)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from twin.commands.history import cli_errors

scenario_app = typer.Typer(help="Scenario files: validate one, print the JSON schema.", no_args_is_help=True)


@scenario_app.command("check")
@cli_errors
def check(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="scenario YAML file(s)")],
) -> None:
    """Validate scenario files; prints one line per error ("file: field.path: message"), exit 1 if any."""
    from twin.scenario import load_scenario, scenario_errors

    bad = 0
    for f in files:
        errors = scenario_errors(f)
        if errors:
            bad += 1
            for line in errors:
                print(line, file=sys.stderr)
            continue
        sc = load_scenario(f)
        print(
            f"{f}: ok (scenario {sc.name}, {sc.horizon_h:g} h, {sc.replications} replications, seed {sc.seed})"
        )
    if bad:
        sys.exit(1)


@scenario_app.command("schema")
def schema() -> None:
    """Print the JSON schema of a scenario file (for editors and validators)."""
    from twin.scenario import Scenario

    print(json.dumps(Scenario.model_json_schema(), indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(scenario_app, name="scenario")
