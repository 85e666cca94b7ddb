"""Shadow mode: the mirrored plant in DuckDB (telemetry, plant events), the soft sensor and the forecast from now.

The OPC UA side lives in `adapters.opcua.client`; this package stores and interprets what it receives. The
functions here are what the CLI (`twin mirror`, `twin tagmap`, `twin plant write`) and notebooks call.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twin.errors import TwinError


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """OpcUaUserError (adapters may not import twin) -> TwinError."""
    import functools

    from adapters.opcua.tagmap import OpcUaUserError

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OpcUaUserError as exc:
            raise TwinError(str(exc)) from None

    return wrapper


def load_tagmap(path: str | os.PathLike[str]) -> Any:
    """A validated tag map (TwinError naming file and field)."""
    from adapters.opcua.tagmap import load_tagmap as _load

    return _user_errors(_load)(path)


def _check_endpoint(endpoint: str) -> None:
    if not endpoint.startswith("opc.tcp://"):
        raise TwinError(f"bad endpoint URL {endpoint!r}: must look like opc.tcp://HOST:PORT")


@_user_errors
def run_mirror(
    endpoint: str,
    tags: str | os.PathLike[str],
    db: str | os.PathLike[str] = "twin.duckdb",
    options: Any = None,
    duration_s: float | None = None,
    scenario: Any = None,
    on_status: Callable[[Any], None] | None = None,
) -> Any:
    """Mirror `endpoint` by the tag map into `db` (until duration_s or Ctrl-C; what is buffered is flushed).

    With a scenario the soft sensor predicts each finished furnace batch. Returns the mirror's stats.
    """
    from adapters.opcua.client import Mirror
    from twin.live.softsensor import SoftSensor, SoftSensorConfig
    from twin.live.telemetry import LiveRecorder

    _check_endpoint(endpoint)
    tm = load_tagmap(tags)
    kinds = {u: unit.kind for u, unit in tm.units.items()}
    soft = None
    if scenario is not None:
        soft = SoftSensor(SoftSensorConfig.from_scenario(scenario, tm.time_scale), kinds, source=tm.name)
    rec = LiveRecorder(db, kinds, soft, source=tm.name)
    mirror = Mirror(endpoint, tm, rec, options, source=tm.name, on_status=on_status)
    try:
        asyncio.run(mirror.run(duration_s))
    except KeyboardInterrupt:
        pass
    finally:
        rec.close()
    return mirror.stats


async def _session(endpoint: str, options: Any, job: Callable[[Any], Any]) -> Any:
    """Connect (a failure becomes one OpcUaUserError line), run `await job(client)`, always close."""
    from adapters.opcua.client import MirrorOptions, connect, force_close
    from adapters.opcua.tagmap import OpcUaUserError

    try:
        client = await connect(endpoint, options or MirrorOptions())
    except OpcUaUserError:
        raise
    except (TimeoutError, Exception) as exc:  # noqa: BLE001
        raise OpcUaUserError(f"cannot connect to {endpoint}: {_reason(exc)}") from None
    try:
        return await job(client)
    finally:
        await force_close(client, graceful_s=1.0)


@_user_errors
def check_tagmap(tags: str | os.PathLike[str], endpoint: str, options: Any = None) -> Any:
    """Resolve every node of a map on a server: returns `Resolved` (missing and wrong-type lines by name)."""
    from adapters.opcua.tagmap import resolve

    _check_endpoint(endpoint)
    tm = load_tagmap(tags)
    return asyncio.run(_session(endpoint, options, lambda client: resolve(client, tm, check_types=True)))


@_user_errors
def discover_tagmap(
    endpoint: str, root: str = "/Objects", options: Any = None, writable: tuple[str, ...] = ()
) -> str:
    """Browse a server and return a draft tag map as YAML text. Nothing in it is writable but the signals named
    in `writable` (`UNIT.SIGNAL` as the draft names them)."""
    from adapters.opcua.tagmap import OpcUaUserError, discover, dump_tagmap

    _check_endpoint(endpoint)
    for target in writable:
        if "." not in target:
            raise TwinError(f"--writable {target!r} must be UNIT.SIGNAL, e.g. F1.setpoint_c")

    async def job(client: Any) -> str:
        try:
            tm = await discover(client, root)
        except LookupError as exc:
            raise OpcUaUserError(f"--root {root}: {exc}") from None
        for target in writable:
            unit, _, signal = target.partition(".")
            sig = tm.units[unit].signals.get(signal) if unit in tm.units else None
            if sig is None:
                known = ", ".join(f"{u}.{s}" for u, x in tm.units.items() for s in x.signals)
                raise OpcUaUserError(f"--writable {target}: the server has no such signal (found: {known})")
            sig.writable = True
        return dump_tagmap(tm)

    return asyncio.run(_session(endpoint, options, job))


@_user_errors
def write_tag(
    endpoint: str,
    tags: str | os.PathLike[str],
    target: str,
    value: str,
    allow_write: bool = False,
    db: str | os.PathLike[str] | None = None,
    options: Any = None,
) -> tuple[Any, Any]:
    """Write one value to `UNIT.SIGNAL` after the guard (--allow-write and a writable tag); logged to plant_events
    in `db` when given. Returns (old, new)."""
    from adapters.opcua.client import PlantEvent, check_write, utcnow, write_signal

    _check_endpoint(endpoint)
    tm = load_tagmap(tags)
    unit, _, signal = target.partition(".")
    if not signal:
        raise TwinError(f"write target {target!r} must be UNIT.SIGNAL, e.g. F1.setpoint_c")
    check_write(tm, unit, signal, allow_write)  # refuse before any connection is made
    old, new = asyncio.run(write_signal(endpoint, tm, unit, signal, value, allow_write, options))
    if db is not None:
        from twin.live.telemetry import LiveRecorder

        rec = LiveRecorder(Path(db), {}, source=tm.name)
        rec.add_event(
            PlantEvent(
                tm.name, utcnow(), "write", unit, value=str(new), detail=f"{signal}: {old!r} -> {new!r}"
            )
        )
        rec.close()
    return old, new


def _reason(exc: BaseException) -> str:
    from adapters.opcua.client import _describe

    return _describe(exc)
