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


def usage_line(exc: Exception) -> str:
    """A command line Typer cannot parse (unknown option, missing argument, value of the wrong type) as one
    line: `error: twin run: No such option: --bogus (see `twin run --help`)`."""
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "twin"
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    return f"error: {command}: {' '.join(message.split())} (see `{command} --help`)"


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `twin` console script.

    A command line Typer cannot parse, a TwinError (or an adapter's user error) raised by a command: one line
    `error: ...` and exit code 2; Ctrl-C: one line saying what was stored, and exit code 130.
    """
    from typer.exceptions import TyperException

    try:
        try:
            code = app(args=argv, prog_name="twin", standalone_mode=False)
        except user_error_types() as exc:
            code = getattr(exc, "exit_code", 2)
            print(f"{'' if code == 130 else 'error: '}{exc}", file=sys.stderr)
            sys.exit(code)
        except TyperException as exc:  # click's usage errors (and Abort, a Ctrl-C at a prompt)
            if type(exc).__name__ == "Abort":
                raise KeyboardInterrupt from None
            if type(exc).__name__ == "NoArgsIsHelpError":  # `twin` or `twin plant` alone: the help, exit code 2
                if exc.format_message().strip():  # Typer's rich help is already printed; click's plain one is not
                    print(exc.format_message(), file=sys.stderr)
                sys.exit(2)
            print(usage_line(exc), file=sys.stderr)
            sys.exit(getattr(exc, "exit_code", 2))
        except KeyboardInterrupt:
            from twin import interrupts

            print(interrupts.message(), file=sys.stderr)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)
    except SystemExit as stop:
        if stop.code == 130:  # the line is out: a Ctrl-C still pending (DuckDB can leave one) or a second one
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # must not end the exit in a traceback
        raise
