"""`twin mirror`, `twin tagmap discover|check`, `twin plant write` (registered on the `twin plant` group), `twin forecast`: the live link to a plant's
OPC UA server. Parsing and printing only; the work is in twin.live and adapters.opcua.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from twin.commands.history import cli_errors
from twin.errors import TwinError

DB_HELP = "DuckDB file (the run history; telemetry and plant_events are added to it)"


def register(app: typer.Typer) -> None:
    app.command("mirror")(mirror)
    tagmap = typer.Typer(help="Tag maps: which OPC UA node gives which twin signal.", no_args_is_help=True)
    tagmap.command("discover")(discover)
    tagmap.command("check")(check)
    app.add_typer(tagmap, name="tagmap")
    app.command("forecast")(forecast)


def _options(user: str | None, password: str | None, security: str | None, **kw: float):
    from adapters.opcua.client import MirrorOptions

    quiet = logging.getLogger("asyncua")  # its warnings (e.g. a certificate's host name) are not the user's
    if quiet.level < logging.ERROR:
        quiet.setLevel(logging.ERROR)

    return MirrorOptions(user=user, password=password, security=security, **kw)


User = Annotated[str | None, typer.Option(help="user name for the session")]
Password = Annotated[
    str | None,
    typer.Option(help="password (prefer the TWIN_OPCUA_PASSWORD variable)", envvar="TWIN_OPCUA_PASSWORD"),
]
Security = Annotated[str | None, typer.Option(help="Basic256Sha256,Sign|SignAndEncrypt,CLIENT_CERT.der,CLIENT_KEY.pem[,SERVER_CERT.der]")]  # fmt: skip


@cli_errors
def mirror(
    endpoint: Annotated[str, typer.Argument(help="opc.tcp://HOST:PORT of the plant's server", show_default=False)],
    tags: Annotated[Path, typer.Option(help="tag map YAML", show_default=False)],
    db: Annotated[Path, typer.Option(help=DB_HELP)] = Path("twin.duckdb"),
    user: User = None,
    password: Password = None,
    security: Security = None,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds (default: until Ctrl-C)")] = None,
    scenario: Annotated[Path | None, typer.Option(help="scenario YAML: enables the soft sensor (recipes, quality model)")] = None,
    stale_s: Annotated[float, typer.Option(help="rebuild the connection when no data arrives for this long")] = 5.0,
    backoff_max_s: Annotated[float, typer.Option(help="cap of the reconnect backoff")] = 5.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no live status line")] = False,
) -> None:  # fmt: skip
    """Mirror a plant server into DuckDB: every sample, server events, derived plant events, soft sensor."""
    from twin import live

    sc = None
    if scenario is not None:
        from twin.scenario import load_scenario

        sc = load_scenario(scenario)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    if stale_s <= 0 or backoff_max_s <= 0:
        raise TwinError("--stale-s and --backoff-max-s must be > 0")
    opts = _options(user, password, security, stale_s=stale_s, backoff_max_s=backoff_max_s)
    status = None if quiet else _status_line
    stats = live.run_mirror(endpoint, tags, db, opts, duration, sc, status)
    if not quiet:
        sys.stderr.write("\n")
    if stats.connects == 0:
        why = f" (last attempt: {stats.last_error})" if stats.last_error else ""
        tries = f"{stats.attempts} attempt{'s' if stats.attempts != 1 else ''}"
        raise TwinError(f"never connected to {endpoint} in {tries}{why}; nothing was mirrored")
    typer.echo(f"mirrored {stats.samples} samples ({stats.bad_samples} flagged), {stats.events} server events, "
               f"{stats.connects} connection(s), {stats.gaps} gap(s) into {db}")  # fmt: skip
    for m in stats.missing:
        typer.echo(f"missing: {m}", err=True)


_last: list[tuple[float, int]] = []


def _status_line(stats) -> None:
    import time

    now = time.monotonic()
    _last.append((now, stats.samples))
    while len(_last) > 5:
        _last.pop(0)
    t0, n0 = _last[0]
    rate = (stats.samples - n0) / (now - t0) if now > t0 else 0.0
    units = " ".join(f"{u}@{t:%H:%M:%S}" for u, t in sorted(stats.last_by_unit.items()))
    sys.stderr.write(
        f"\r{stats.state:<12} {rate:7.1f} samples/s  total {stats.samples}  gaps {stats.gaps}  {units}"[:200]
    )
    sys.stderr.flush()


@cli_errors
def discover(
    endpoint: Annotated[str, typer.Argument(help="opc.tcp://HOST:PORT", show_default=False)],
    out: Annotated[Path | None, typer.Option(help="write the draft map here (default: print it)")] = None,
    root: Annotated[str, typer.Option(help="browse path to start from")] = "/Objects",
    writable: Annotated[list[str] | None, typer.Option("--writable", help="UNIT.SIGNAL of the draft to mark writable (repeat it; nothing else is)")] = None,
    user: User = None,
    password: Password = None,
    security: Security = None,
) -> None:  # fmt: skip
    """Browse a server and write a draft tag map (browse paths, guessed signal names and types).

    Nothing in the draft is writable unless named with --writable (`twin plant write` refuses other tags)."""
    from twin import live

    text = live.discover_tagmap(endpoint, root, _options(user, password, security), tuple(writable or ()))
    if out is None:
        typer.echo(text, nl=False)
    else:
        from twin.outputs import write_text_atomic

        write_text_atomic(out, text)
        typer.echo(f"draft tag map written to {out}")


@cli_errors
def check(
    tags: Annotated[Path, typer.Argument(help="tag map YAML", show_default=False)],
    endpoint: Annotated[str, typer.Argument(help="opc.tcp://HOST:PORT", show_default=False)],
    user: User = None,
    password: Password = None,
    security: Security = None,
) -> None:
    """Say which nodes of a tag map are missing on the server or of the wrong type (exit 1 if any)."""
    from twin import live

    res = live.check_tagmap(tags, endpoint, _options(user, password, security))
    for m in res.missing:
        typer.echo(f"missing: {m}")
    for w in res.wrong_type:
        typer.echo(f"wrong type: {w}")
    typer.echo(
        f"{len(res.nodes)} nodes found, {len(res.missing)} missing, {len(res.wrong_type)} of the wrong type"
    )
    if res.missing or res.wrong_type:
        raise typer.Exit(1)


@cli_errors
def plant_write(
    endpoint: Annotated[str, typer.Argument(help="opc.tcp://HOST:PORT", show_default=False)],
    target: Annotated[
        str, typer.Argument(help="UNIT.SIGNAL of the tag map, e.g. F1.setpoint_c", show_default=False)
    ],
    value: Annotated[str, typer.Argument(help="value to write", show_default=False)],
    tags: Annotated[
        Path, typer.Option(help="tag map YAML (the tag must be marked writable)", show_default=False)
    ],
    allow_write: Annotated[bool, typer.Option("--allow-write", help="really write to the plant")] = False,
    db: Annotated[
        Path | None, typer.Option(help="also log the write in this database's plant_events")
    ] = None,
    user: User = None,
    password: Password = None,
    security: Security = None,
) -> None:
    """Write one value to the plant (needs --allow-write and a tag marked writable; every write is logged)."""
    from twin import live

    old, new = live.write_tag(
        endpoint, tags, target, value, allow_write, db, _options(user, password, security)
    )
    typer.echo(f"wrote {target}: {old!r} -> {new!r}")


@cli_errors
def forecast(
    db: Annotated[Path, typer.Option(help=DB_HELP)] = Path("twin.duckdb"),
    scenario: Annotated[Path, typer.Option(help="scenario YAML with the line's parameters", show_default=False)] = Path("scenario.yaml"),
    hours: Annotated[float, typer.Option(help="hours to forecast")] = 24.0,
    replications: Annotated[int, typer.Option("--replications", "-n", help="replications")] = 10,
    seed: Annotated[int, typer.Option(help="base seed")] = 1,
    tags: Annotated[Path, typer.Option(help="tag map the plant was mirrored with (units, time scale)", show_default=False)] = Path("tags.yaml"),
) -> None:  # fmt: skip
    """Forecast the next hours from the mirrored state: output, queue, furnace starts, lots at risk (95 % CI)."""
    from twin import live
    from twin.live import forecast as fc
    from twin.scenario import load_scenario

    sc = load_scenario(scenario)
    res = fc.forecast_from_db(db, sc, live.load_tagmap(tags), hours, replications, seed)
    typer.echo(fc.render(res))
