"""Run history commands: `twin runs list|show`, `twin sql`, `twin export`; plus the small rendering helpers
(error wrapper, rich consoles, KPI and Arrow tables) that `twin run` and `twin scenario` share."""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from twin.errors import TwinError, user_error_types
from twin.inputs import one_line

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.console import Console
    from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])

DB_OPTION = typer.Option(help="DuckDB run-history file")


# -- helpers shared by the command modules ------------------------------------------------------------------
def cli_errors(fn: F) -> F:
    """Turn a TwinError into `error: <message>` on stderr and its exit code (2; an interrupted study's: 130), also
    under Typer's CliRunner, and Ctrl-C into one line saying what was stored, and exit code 130. A float option
    or argument given as NaN or infinity is refused the same way before the command runs."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from twin import interrupts

        interrupts.forget()
        try:
            _refuse_non_finite(kwargs)
            with interrupts.query_interrupts():  # DuckDB's "Query interrupted" anywhere: Ctrl-C
                return fn(*args, **kwargs)
        except user_error_types() as exc:
            code = getattr(exc, "exit_code", 2)
            print(f"{'' if code == 130 else 'error: '}{one_line(str(exc))}", file=sys.stderr)
            # SystemExit, not typer.Exit: `app(standalone_mode=False)` returns typer.Exit's code instead of exiting
            sys.exit(code)
        except KeyboardInterrupt:
            print(interrupts.message(), file=sys.stderr)
            sys.exit(130)  # typer would turn it into Exit(130), which `main()` does not pass on

    return wrapper  # type: ignore[return-value]


def _refuse_non_finite(params: dict[str, Any]) -> None:
    """TwinError naming the first float parameter (or item of a repeated one) that is NaN or infinite; the
    option is named as Typer derives it from the parameter (`min_yield` -> `--min-yield`)."""
    for name, value in params.items():
        for v in value if isinstance(value, list | tuple) else (value,):
            if isinstance(v, float) and not math.isfinite(v):
                raise TwinError(f"--{name.replace('_', '-')} must be a finite number, got {v}")


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def fmt(value: Any) -> str:
    """A number with 4 significant digits, NaN/None as '-', anything else as text."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4g}"
    return str(value)


def kpi_table(summary: pa.Table, title: str | None = None, bounds: bool | None = None) -> Table:
    """Rich table of a KPI summary: mean, 95 % CI half-width, n; and the CI bounds when `bounds` (default: when
    the terminal is at least 100 columns wide)."""
    from rich.table import Table

    if bounds is None:
        bounds = console().width >= 100
    t = Table(title=title, title_justify="left")
    width = max([len(k) for k in summary.column("kpi").to_pylist()] + [3])
    t.add_column("KPI", no_wrap=True, min_width=width)
    t.add_column("unit", no_wrap=True)
    cols = ("mean", "± 95 % CI", "CI low", "CI high", "n") if bounds else ("mean", "± 95 % CI", "n")
    for col in cols:
        t.add_column(col, justify="right", no_wrap=True)
    for r in summary.to_pylist():
        half = (r["ci_high"] - r["mean"]) if r["ci_high"] is not None and r["mean"] is not None else None
        cells = [fmt(r["mean"]), fmt(half)] + ([fmt(r["ci_low"]), fmt(r["ci_high"])] if bounds else [])
        t.add_row(r["kpi"], r["unit"], *cells, str(r["n"]))
    return t


def arrow_table(tbl: pa.Table, limit: int | None = None, title: str | None = None) -> Table:
    """Rich table of any Arrow table (first `limit` rows)."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    import pyarrow as pa

    for f in tbl.schema:
        numeric = pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_decimal(f.type)
        t.add_column(f.name, justify="right" if numeric else "left")
    shown = tbl if limit is None else tbl.slice(0, limit)
    for row in shown.to_pylist():
        t.add_row(*(fmt(v) for v in row.values()))
    return t


# -- twin runs ----------------------------------------------------------------------------------------------
runs_app = typer.Typer(help="The run history: list runs, show one.", no_args_is_help=True)


@runs_app.command("list")
@cli_errors
def runs_list(
    db: Annotated[Path, DB_OPTION] = Path("twin.duckdb"),
    limit: Annotated[int, typer.Option(help="newest N runs")] = 50,
) -> None:
    """List runs, newest first: id, study, scenario, seed, replications, when, wall time, headline KPIs."""
    from twin.store import Store

    with Store(db, read_only=True) as store:
        tbl = store.runs(limit=limit)
    out = console()
    if tbl.num_rows == 0:
        out.print(f"no runs in {db}")
        return
    from rich import box
    from rich.table import Table

    t = Table(
        title=f"runs in {db}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    cols = [("run", "run_id"), ("study", "study_id"), ("scenario", "scenario_name"), ("seed", "seed"),
            ("reps", "replications"), ("stored UTC", "created_at"), ("wall s", "wall_s"),
            ("kg/h", "good_kg_per_h"), ("yield", "final_yield"), ("lead h", "lead_time_mean_h"),
            ("R_int", "r_int_good_mean")]  # fmt: skip
    rows = tbl.to_pylist()
    if all(r["study_id"] is None for r in rows):
        cols = [c for c in cols if c[1] != "study_id"]
    for label, key in cols:
        t.add_column(label, no_wrap=key in ("run_id", "scenario_name", "created_at"))
    for r in rows:
        when = r["created_at"].strftime("%m-%d %H:%M") if r["created_at"] else "-"
        wall = f"{r['wall_s']:.1f}" if r["wall_s"] is not None else "-"
        t.add_row(
            *(when if key == "created_at" else wall if key == "wall_s" else fmt(r[key]) for _, key in cols)
        )
    out.print(t)


@runs_app.command("show")
@cli_errors
def runs_show(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="run id (see `twin runs list`)")],
    db: Annotated[Path, DB_OPTION] = Path("twin.duckdb"),
    warmup: Annotated[
        float | None,
        typer.Option(
            help="recompute the KPIs from the stored tables with this warm-up (hours); nothing is re-run"
        ),
    ] = None,
) -> None:
    """Show one run: its settings, row counts per table, and its KPI summary."""
    from twin import api
    from twin.store import Store

    with Store(db, read_only=True) as store:
        run = store.run(run_id)
        summary = store.summary(run_id) if warmup is None else None
        counts = {
            name: store.query(f"SELECT count(*) FROM {name} WHERE run_id = ?", [run["run_id"]])
            .column(0)[0]
            .as_py()
            for name in ("lots", "batches", "events", "units", "kpis")
        }
    out = console()
    out.print(
        f"[bold]run {run['run_id']}[/bold]  scenario {run['scenario_name']} (hash {run['scenario_hash']})"
    )
    study = f", study {run['study_id']}" if run["study_id"] is not None else ""
    out.print(
        f"seed {run['seed']}, {run['replications']} replications x {run['horizon_h']:g} h, warm-up "
        f"{run['warmup_h']:g} h{study}"
    )
    out.print(
        f"stored {run['created_at']:%Y-%m-%d %H:%M:%S} UTC, wall {run['wall_s']:.1f} s, status {run['status']}, "
        f"code {run['code_version']}"
    )
    out.print("rows: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if warmup is not None:
        summary = api.kpis_with_warmup(run_id, warmup, db)
        out.print(
            f"KPIs recomputed with a warm-up of {warmup:g} h (stored with the run: {run['warmup_h']:g} h)"
        )
    out.print(kpi_table(summary))


# -- twin sql -----------------------------------------------------------------------------------------------
def sql(
    query: Annotated[str, typer.Argument(metavar="SQL", help="one SELECT query over the run history")],
    db: Annotated[Path, DB_OPTION] = Path("twin.duckdb"),
    read: Annotated[Path | None, typer.Option("--read", help="a directory whose CSV, TSV, Parquet and JSON-lines files are tables named after them (qc.csv -> qc), read-only")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table, csv, json or parquet")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write to this file (required for parquet)")] = None,
    limit: Annotated[int, typer.Option(help="rows shown in table format")] = 200,
) -> None:  # fmt: skip
    """Run one read-only SQL statement on the run history.

    DuckDB itself keeps the query in: it reads the database and no other file (only the files of --read DIR, as
    tables), writes nothing, installs and loads no extension, reaches no network, and its settings are locked.
    Several statements in one call are refused: run them one by one."""
    from twin import api

    fmt_name = format.lower()
    if fmt_name not in ("table", "csv", "json", "parquet"):
        raise TwinError(f"--format must be table, csv, json or parquet, not {format!r}")
    if fmt_name == "parquet" and output is None:
        raise TwinError("--format parquet needs --output FILE")
    if fmt_name == "table" and output is not None:
        raise TwinError("--output needs --format csv, json or parquet")
    tbl, mismatch = api.query_checked(query, db=db, read=read)
    if mismatch:
        typer.echo(mismatch, err=True)
    if fmt_name == "table":
        out = console()
        out.print(arrow_table(tbl, limit=limit))
        more = tbl.num_rows - limit
        note = f" ({more} more not shown; use --limit or --format csv --output FILE)" if more > 0 else ""
        console(stderr=True).print(f"{tbl.num_rows} rows{note}")
        return
    _write_result(tbl, fmt_name, output)


def _write_result(tbl: pa.Table, fmt_name: str, output: Path | None) -> None:
    """Write a query result as csv, json or parquet to `output` (moved into place whole, see twin.outputs) or
    to stdout. A result the format cannot hold (a list column in CSV, an interval in Parquet) is one line."""
    import io
    import json

    import pyarrow as pa

    from twin.outputs import write_parquet_atomic

    try:
        if fmt_name == "parquet":
            write_parquet_atomic(output, tbl)
        elif fmt_name == "csv":
            import pyarrow.csv as pacsv

            buf = io.BytesIO()
            pacsv.write_csv(tbl, buf)
            _emit(buf.getvalue().decode(), output)
        else:
            rows = tbl.to_pylist()
            text = json.dumps(rows, default=str, indent=None, allow_nan=False, cls=_NanEncoder)
            _emit(text + "\n", output)
    except pa.ArrowException as exc:
        where = f" to {output}" if output is not None else ""
        reason = str(exc).strip().splitlines()[0]
        raise TwinError(f"cannot write the result as {fmt_name}{where}: {reason}") from None
    except OSError as exc:
        raise TwinError(f"cannot write {output or 'to stdout'}: {exc.strerror or exc}") from None
    if output is not None:
        console(stderr=True).print(f"{tbl.num_rows} rows written to {output}")


class _NanEncoder:
    """json.dumps `cls` that writes NaN as null (JSON has no NaN)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        import json

        class Enc(json.JSONEncoder):
            def iterencode(self, o: Any, _one_shot: bool = False) -> Any:
                return super().iterencode(_nan_to_none(o), _one_shot)

        kwargs.pop("allow_nan", None)
        return Enc(*args, allow_nan=False, **kwargs)


def _nan_to_none(o: Any) -> Any:
    if isinstance(o, float) and math.isnan(o):
        return None
    if isinstance(o, list):
        return [_nan_to_none(x) for x in o]
    if isinstance(o, dict):
        return {k: _nan_to_none(v) for k, v in o.items()}
    return o


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        from twin.outputs import write_text_atomic

        write_text_atomic(output, text)


# -- twin export --------------------------------------------------------------------------------------------
def export(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="run id (see `twin runs list`)")],
    to: Annotated[Path, typer.Option("--to", help="directory for the Parquet files (new or empty)")],
    db: Annotated[Path, DB_OPTION] = Path("twin.duckdb"),
    force: Annotated[bool, typer.Option("--force", help="write into a non-empty directory, replacing files of the same names")] = False,
) -> None:  # fmt: skip
    """Export one run as Parquet files, one per table (runs, lots, batches, events, units, kpis, kpi_summary).

    All files or none: they are written beside the directory first and moved into it at the end."""
    from twin.store import Store

    with Store(db, read_only=True) as store:
        paths = store.export(run_id, to, force=force)
    console().print(f"run {run_id}: wrote " + ", ".join(p.name for p in paths) + f" to {to}")


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
    app.command("sql")(cli_errors(sql))
    app.command("export")(cli_errors(export))
