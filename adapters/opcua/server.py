"""`twin plant serve`: the simulated line as a real OPC UA server (asyncua), run in real time scaled by `speed`.

An asyncio task steps the SimPy environment in short wall-clock slices, hands new trace events to a
`LineView` and publishes its value changes (source timestamps = sim time mapped to wall clock) and lot-move events.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import signal
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from asyncua import Server, ua

from adapters.opcua import security
from adapters.opcua.address_space import PlantNodes, build
from adapters.opcua.clock import SimClock
from adapters.opcua.errors import OpcUaUserError
from adapters.opcua.line_view import LineView
from plant.line import Line

_log = logging.getLogger(__name__)

APPLICATION_URI = "urn:ald-anneal-twin:plant-server"
# CLI names of the offered endpoints -> asyncua policy types
SECURITY_MODES = {
    "None": ua.SecurityPolicyType.NoSecurity,
    "Sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
    "SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
}
_MESSAGES = {
    "ald_start": "lot {lot} entered {unit}",
    "ald_end": "lot {lot} left {unit}",
    "batch_start": "lot {lot} started in batch {batch} on {unit}",
    "batch_end": "lot {lot} ended batch {batch} on {unit}",
    "pass": "QC verdict for lot {lot}: pass",
    "rework": "QC verdict for lot {lot}: rework",
    "scrap": "QC verdict for lot {lot}: scrap",
}


@dataclass
class ServeConfig:
    """Everything `twin plant serve` needs; `scenario` is a validated twin.scenario.Scenario."""

    scenario: Any
    endpoint: str = "opc.tcp://127.0.0.1:4840"
    speed: float = 3600.0
    seed: int | None = None
    replication: int = 0
    security: tuple[str, ...] = ("None",)
    cert: Path | None = None
    key: Path | None = None
    users_file: Path | None = None
    allow_anonymous: bool = True
    trust_dir: Path | None = None
    allow_writes: bool = False
    max_sessions_per_client: int = 4
    max_sessions: int = 50
    max_subscriptions_per_session: int = 4
    max_monitored_items_per_session: int = 1000
    application_uri: str = APPLICATION_URI
    tick_s: float = 0.05
    slice_budget_s: float = 0.02


def parse_endpoint(url: str) -> tuple[str, int, str]:
    """(host, port, normalised URL) of an opc.tcp endpoint; OpcUaUserError naming the URL when it is not one."""
    u = urlparse(url)
    if u.scheme != "opc.tcp":
        raise OpcUaUserError(f"bad endpoint URL {url!r}: must look like opc.tcp://HOST:PORT")
    try:
        port = u.port
    except ValueError:
        raise OpcUaUserError(f"bad endpoint URL {url!r}: the port must be a number 0-65535") from None
    if not u.hostname:
        raise OpcUaUserError(f"bad endpoint URL {url!r}: no host name")
    if port is None:
        port = 4840
        url = u._replace(netloc=f"{u.netloc}:4840").geturl()
    return u.hostname, port, url


def _check_listen(host: str, port: int, url: str) -> None:
    """Fail early, in one line, when the address cannot be bound (asyncua would log a traceback)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise OpcUaUserError(f"cannot listen on {url}: unknown host {host!r}") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OpcUaUserError(f"cannot listen on {url}: port {port} is already in use") from None
            raise OpcUaUserError(f"cannot listen on {url}: {exc.strerror or exc}") from None


def check_config(cfg: ServeConfig) -> None:
    """Validate endpoint, security options and files before anything starts (OpcUaUserError, one line)."""
    parse_endpoint(cfg.endpoint)
    if not (math.isfinite(cfg.speed) and cfg.speed > 0):
        raise OpcUaUserError(f"--speed must be a positive finite number, got {cfg.speed}")
    for option, cap in (("--max-sessions-per-client", cfg.max_sessions_per_client),
                        ("--max-subscriptions", cfg.max_subscriptions_per_session),
                        ("--max-monitored-items", cfg.max_monitored_items_per_session)):  # fmt: skip
        if cap < 1:
            raise OpcUaUserError(f"{option} must be at least 1, got {cap}")
    unknown = [m for m in cfg.security if m not in SECURITY_MODES]
    if unknown or not cfg.security:
        raise OpcUaUserError(
            f"unknown security mode {unknown[0] if unknown else ''!r}; choose from None, Sign, SignAndEncrypt"
        )
    secure = any(m != "None" for m in cfg.security)
    if secure and (cfg.cert is None or cfg.key is None):
        raise OpcUaUserError(
            "security modes Sign/SignAndEncrypt need --cert and --key (make them with `twin plant cert`)"
        )
    for label, path in (("certificate", cfg.cert), ("private key", cfg.key), ("users", cfg.users_file)):
        if path is not None and not Path(path).is_file():
            raise OpcUaUserError(f"{label} file not found: {path}")
    if cfg.trust_dir is not None and not Path(cfg.trust_dir).is_dir():
        raise OpcUaUserError(f"trust list directory not found: {cfg.trust_dir}")
    if not cfg.allow_anonymous and cfg.users_file is None:
        raise OpcUaUserError("--no-anonymous needs --users FILE (make one with `twin plant user add`)")


class PlantServer:
    """The virtual plant: `await start()`, `await run(stop_event)`, `await stop()` (or `serve_forever`)."""

    def __init__(self, cfg: ServeConfig) -> None:
        check_config(cfg)
        self.cfg = cfg
        self.host, self.port, self.endpoint = parse_endpoint(cfg.endpoint)
        self.line = Line(cfg.scenario, cfg.seed, cfg.replication)
        self.view = LineView(self.line)
        self.clock = SimClock(cfg.speed)
        self.server: Server | None = None
        self.nodes: PlantNodes | None = None
        self.values_published = 0
        self.events_published = 0
        self.finished = False
        self.lag_h = 0.0

    # -- setup -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.cfg
        _check_listen(self.host, self.port, self.endpoint)
        users = security.load_users(cfg.users_file) if cfg.users_file else {}
        iserver = security.CappedInternalServer(
            security.PasswordUserManager(users, cfg.allow_anonymous),
            cfg.max_sessions_per_client,
            cfg.max_sessions,
            cfg.max_subscriptions_per_session,
            cfg.max_monitored_items_per_session,
        )
        server = Server(iserver=iserver)
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("ALD + mild-anneal line (virtual plant)")
        await server.set_application_uri(cfg.application_uri)
        server.set_security_policy([SECURITY_MODES[m] for m in cfg.security], security.NoAdminRuleset())
        iserver.require_secure_channel = "None" not in cfg.security
        tokens: list[type] = [ua.UserNameIdentityToken] if users else []
        if cfg.allow_anonymous:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        if cfg.cert is not None and cfg.key is not None:
            try:
                await server.load_certificate(str(cfg.cert))
                await server.load_private_key(str(cfg.key))
            except (ValueError, TypeError) as exc:
                raise OpcUaUserError(f"cannot read certificate {cfg.cert} or key {cfg.key}: {exc}") from None
        if cfg.trust_dir is not None:
            server.set_certificate_validator(await security.trust_list_validator(cfg.trust_dir))
        self.nodes = await build(server, self.view.kinds, cfg.allow_writes)
        attr = iserver.attribute_service
        attr.writable = set(self.nodes.writable)
        attr.allow_writes = cfg.allow_writes
        attr.on_write = self._on_write
        self._evgen = await server.get_event_generator(self.nodes.event_type, self.nodes.plant)
        self._unit_nodes = {u: ua.NodeId(f"Plant.{u}", self.nodes.idx) for u in self.view.kinds}
        try:
            await server.start()
        except OSError as exc:
            raise OpcUaUserError(f"cannot listen on {self.endpoint}: {exc.strerror or exc}") from None
        if self.port == 0 and server.bserver is not None:
            self.port = server.bserver.port
        self.server = server
        self.line.start()
        self.clock = SimClock(cfg.speed)
        await self._publish([("v", u, g, v, 0.0) for (u, g), v in self.view.values.items()])

    async def _on_write(self, nodeid: ua.NodeId, dv: ua.DataValue) -> None:
        assert self.nodes is not None
        unit, tag = self.nodes.writable[nodeid]
        value = dv.Value.Value if dv.Value is not None else None
        self.view.set_external(unit, tag, value)
        # act on the line: a furnace setpoint applies from its next batch, a hold stops a reactor after its batch
        if tag == "Setpoint_C" and value is not None:
            for f in self.line.furnaces:
                if f.name == unit:
                    f.setpoint_override = float(value)
        elif tag == "Hold":
            for r in self.line.reactors:
                if r.name == unit:
                    r.hold(bool(value))

    # -- publishing ------------------------------------------------------------------------------------
    async def _publish(self, items: list[tuple]) -> None:
        assert self.server is not None and self.nodes is not None
        write = self.server.iserver.aspace.write_attribute_value
        tags, wall = self.nodes.tags, self.clock.wall
        value_attr = ua.AttributeIds.Value
        now = datetime.now(UTC)
        for i, item in enumerate(items):
            if i & 127 == 127:
                await asyncio.sleep(
                    0
                )  # let client requests in between (keep-alives, reads) at saturating speeds
            if item[0] == "v":
                _, unit, tag, value, t_h = item
                nid, vt = tags[(unit, tag)]
                dv = ua.DataValue(ua.Variant(value, vt), SourceTimestamp=wall(t_h), ServerTimestamp=now)
                await write(nid, value_attr, dv)
                self.values_published += 1
            else:
                t_h, kind, unit, lot, batch = item[1]
                ev = self._evgen.event
                ev.LotId, ev.BatchId, ev.Move, ev.Unit, ev.SimTime_h = lot, batch, kind, unit, t_h
                ev.SourceNode = self._unit_nodes.get(unit, self.nodes.plant.nodeid)
                ev.SourceName = unit
                msg = _MESSAGES[kind].format(lot=lot, unit=unit, batch=batch)
                await self._evgen.trigger(time_attr=wall(t_h), message=msg)
                self.events_published += 1

    # -- the simulation loop ---------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Advance the line with the scaled clock and publish, until `stop` is set (serves on after the horizon)."""
        stop = stop or asyncio.Event()
        env, view, cfg = self.line.env, self.view, self.cfg
        trace = self.line.trace
        horizon = self.line.horizon_h
        seen = trace.n_events
        warned = False
        while not stop.is_set():
            if self.finished:
                await asyncio.sleep(cfg.tick_s)
                continue
            target = min(self.clock.due_h(), horizon)
            deadline = time.perf_counter() + cfg.slice_budget_s
            steps = 0
            while env.peek() < target:
                env.step()
                if trace.n_events > seen:
                    view.on_events(trace.events_since(seen))
                    seen = trace.n_events
                steps += 1
                if steps & 63 == 0 and time.perf_counter() > deadline:
                    break
            caught_up = env.peek() >= target
            view.tick(target if caught_up else env.now)
            if caught_up and target >= horizon:
                view.stop(horizon)
                self.finished = True
            await self._publish(view.take())
            self.lag_h = max(0.0, self.clock.due_h() - (target if caught_up else env.now))
            if self.lag_h > 1.0 and not warned:
                _log.warning("the line model lags the scaled clock by %.1f sim h; lower --speed", self.lag_h)
                warned = True
            await asyncio.sleep(cfg.tick_s if caught_up else 0)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None


async def serve_forever(cfg: ServeConfig, on_ready: Any = None) -> None:
    """Start the server, call `on_ready(plant_server)`, run until SIGTERM or cancellation (Ctrl-C), close it."""
    ps = PlantServer(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    except (NotImplementedError, RuntimeError):  # not the main thread, or no signals on this platform
        pass
    try:
        await ps.start()
        if on_ready is not None:
            on_ready(ps)
        await ps.run(stop)
    finally:
        await ps.stop()


class ServerThread:
    """A PlantServer on its own event loop in a background thread (tests, benchmarks, notebooks).

    `with ServerThread(cfg) as st:` starts it and waits until it listens; `st.port`, `st.plant` are then set.
    """

    def __init__(self, cfg: ServeConfig, timeout_s: float = 30.0) -> None:
        self.cfg = cfg
        self.timeout_s = timeout_s
        self.plant: PlantServer | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="plant-server", daemon=True)

    @property
    def port(self) -> int:
        assert self.plant is not None
        return self.plant.port

    def _main(self) -> None:
        asyncio.run(self._amain())

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.plant = PlantServer(self.cfg)
            await self.plant.start()
        except BaseException as exc:  # reported to the starting thread
            self.error = exc
            self._ready.set()
            if self.plant is not None:
                await self.plant.stop()
            return
        self._ready.set()
        try:
            await self.plant.run(self._stop)
        finally:
            await self.plant.stop()

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(self.timeout_s):
            raise TimeoutError("plant server did not start")
        if self.error is not None:
            self._thread.join(5)
            raise self.error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
