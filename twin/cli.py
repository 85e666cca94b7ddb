"""The Typer app `twin`: each command parses its arguments, calls one function of `twin`, renders the result.

Command groups live in `twin/commands/<group>.py`, each exposing `register(app)`. User errors (`TwinError`)
end in one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import signal
import sys

import typer

from twin.errors import user_error_types

app = typer.Typer(
    name="twin",
    help="Digital twin of an ALD + mild-anneal cathode powder line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    import importlib
    import pkgutil

    import twin.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"twin.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_commands()


def main() -> None:
    """Entry point of the `twin` console script.

    Typer's standalone mode renders usage errors (missing argument, bad option value) as a short usage message
    and exit code 2; a TwinError (or an adapter's user error) raised by a command ends in one line
    `error: ...` and exit code 2; Ctrl-C in one line saying what was stored, and exit code 130.
    """
    try:
        try:
            app()
        except user_error_types() as exc:
            code = getattr(exc, "exit_code", 2)
            print(f"{'' if code == 130 else 'error: '}{exc}", file=sys.stderr)
            sys.exit(code)
        except KeyboardInterrupt:
            from twin import interrupts

            print(interrupts.message(), file=sys.stderr)
            sys.exit(130)
    except SystemExit as stop:
        if stop.code == 130:  # the line is out: a Ctrl-C still pending (DuckDB can leave one) or a second one
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # must not end the exit in a traceback
        raise
