"""The OPC UA mirror: subscribe to a plant server's nodes by a tag map and hand every sample, server event and
connection event to a sink; reconnect with capped exponential backoff, a data-freshness watchdog that rebuilds
the client when data stops (asyncua's own auto-reconnect can report success while nothing flows), gap records,
bad-value flags. Read-only: the only write path is `write_signal`, guarded by allow_write and the map.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent, OpcEvent, OverflowPolicy, StatusChangeEvent

from adapters.opcua.tagmap import OpcUaUserError, Resolved, Signal, TagMap, resolve, type_ok, value_ok

log = logging.getLogger("twin.mirror")

# Status codes that mean "the server refuses us": retrying will not help, the user must act.
_FATAL = (
    "BadUserAccessDenied", "BadIdentityTokenInvalid", "BadIdentityTokenRejected", "BadCertificateUntrusted",
    "BadCertificateInvalid", "BadCertificateUriInvalid", "BadCertificateTimeInvalid", "BadCertificateRevoked",
    "BadSecurityChecksFailed", "BadSecurityModeRejected", "BadSecurityPolicyRejected", "BadApplicationSignatureInvalid",
)  # fmt: skip


class Sample(NamedTuple):
    """One received value: the columns of the `telemetry` table (timestamps are naive UTC)."""

    source: str
    seq: int
    unit: str
    signal: str
    node: str
    source_ts: datetime
    server_ts: datetime | None
    received_ts: datetime
    value: float | None
    value_text: str | None
    mapped: str | None
    status_code: int
    status: str
    flag: str  # '' = good; bad_status, uncertain, wrong_type, nan, out_of_range, unmapped
    replayed: bool


class PlantEvent(NamedTuple):
    """One row of `plant_events`; origin is `server` (an OPC UA event), `derived` or `mirror` (link events)."""

    source: str
    t: datetime
    kind: str
    unit: str | None = None
    lot_id: str | None = None
    batch_id: str | None = None
    value: str | None = None
    origin: str = "mirror"
    t_end: datetime | None = None
    sim_time_h: float | None = None
    detail: str | None = None


class Sink(Protocol):
    """Where the mirror puts what it receives (twin.live.telemetry.LiveRecorder implements it)."""

    def add_sample(self, sample: Sample) -> None: ...

    def add_event(self, event: PlantEvent) -> None: ...

    def flush(self) -> None: ...


@dataclass
class MirrorOptions:
    """Connection, watchdog and backoff settings (seconds)."""

    user: str | None = None
    password: str | None = None
    security: str | None = None  # "Basic256Sha256,SignAndEncrypt,cert.der,key.pem[,server_cert.der]"
    application_uri: str = "urn:ald-anneal-twin:mirror"
    request_timeout_s: float = 4.0
    stale_s: float = 5.0  # no notification (heartbeat included) for this long -> rebuild the client
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 5.0
    flush_s: float = 0.5
    queue_size: int = 1000  # per monitored item: every change survives a publishing interval
    session_timeout_ms: int = 30_000


@dataclass
class MirrorStats:
    """What happened during a mirror run (also shown by the live status line)."""

    state: str = "starting"
    samples: int = 0
    bad_samples: int = 0
    events: int = 0
    connects: int = 0
    attempts: int = 0  # connection attempts, failed or not
    last_error: str = ""  # why the last failed attempt failed
    gaps: int = 0
    missing: list[str] = field(default_factory=list)
    last_by_unit: dict[str, datetime] = field(default_factory=dict)
    last_rx_mono: float = 0.0
    started_mono: float = field(default_factory=time.monotonic)


def _naive(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def classify(sig: Signal, dv: ua.DataValue) -> tuple[float | None, str | None, str | None, str]:
    """(value, value_text, mapped state, flag) of a DataValue for a signal of the map; flag '' = good."""
    status = dv.StatusCode or ua.StatusCode(0)
    var = dv.Value
    raw = var.Value if var is not None else None
    vt = var.VariantType.name if var is not None else "Null"
    is_arr = isinstance(raw, list)
    value: float | None = None
    text: str | None = None
    if isinstance(raw, bool):
        value = 1.0 if raw else 0.0
    elif isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        text = raw
    elif is_arr:
        text = json.dumps([str(x) for x in raw])
    elif raw is not None:
        text = repr(raw)[:200]
    mapped: str | None = None
    if status.is_bad():
        return value, text, None, "bad_status"
    if not status.is_good():
        return value, text, None, "uncertain"
    int_as_double = sig.type == "double" and not is_arr and type_ok("int", vt, False)
    if raw is None or not (type_ok(sig.type, vt, is_arr) or int_as_double):
        return value, text, None, "wrong_type"
    flag = value_ok(sig, float(raw) if int_as_double else raw)
    if flag:
        return value, text, None, flag
    if sig.map:
        key = str(raw).lower() if isinstance(raw, bool) else str(raw)
        mapped = sig.map.get(key)
        if mapped is None:
            return value, text, None, "unmapped"
    return value, text, mapped, ""


def _fatal_name(exc: BaseException) -> str | None:
    name = type(exc).__name__
    if name in _FATAL:
        return name
    code = getattr(exc, "code", None)
    if code is not None:
        try:
            cname = ua.StatusCode(code).name
        except Exception:  # noqa: BLE001 - unknown code
            cname = ""
        if cname in _FATAL:
            return cname
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _certificate_uri(security: str) -> str | None:
    """The URI in the Subject Alternative Name of the client certificate named by a security string: OPC UA
    requires the client's application URI to be that one (node-opcua refuses others, BadCertificateUriInvalid),
    so a certificate from `twin plant cert --client` works whatever URI it was made with. None when unreadable
    (asyncua then reports the file)."""
    from cryptography import x509

    parts = [p.strip() for p in security.split(",")]
    if len(parts) < 4:
        return None
    try:
        data = Path(parts[2]).read_bytes()
        pem = data.lstrip().startswith(b"-----BEGIN")
        cert = x509.load_pem_x509_certificate(data) if pem else x509.load_der_x509_certificate(data)
        uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        found = uris.get_values_for_type(x509.UniformResourceIdentifier)
    except (OSError, ValueError, x509.ExtensionNotFound):
        return None
    return found[0] if found else None


async def build_client(endpoint: str, opts: MirrorOptions) -> Client:
    """A fresh asyncua Client (never reused after a loss, see OPCUA.md §3), security and user set."""
    client = Client(endpoint, timeout=opts.request_timeout_s, watchdog_intervall=1.0, auto_reconnect=False)
    client.session_timeout = opts.session_timeout_ms
    client.application_uri = (opts.security and _certificate_uri(opts.security)) or opts.application_uri
    if opts.user:
        client.set_user(opts.user)
    if opts.password:
        client.set_password(opts.password)
    if opts.security:
        try:
            await client.set_security_string(opts.security)
        except FileNotFoundError as exc:
            raise OpcUaUserError(
                f"--security: certificate or key file {exc.filename} does not exist"
            ) from None
        except Exception as exc:  # noqa: BLE001 - bad string or unreadable file
            raise OpcUaUserError(f"--security {opts.security!r}: {_describe(exc)}") from None
    return client


async def connect(endpoint: str, opts: MirrorOptions) -> Client:
    """Connect once; a refused session or certificate becomes a one-line OpcUaUserError, network errors raise."""
    client = await build_client(endpoint, opts)
    try:
        await asyncio.wait_for(client.connect(), opts.request_timeout_s * 2)
    except BaseException as exc:
        await force_close(client)
        fatal = _fatal_name(exc)
        if fatal:
            raise OpcUaUserError(f"{endpoint} refused the session: {fatal}") from None
        if isinstance(exc, AssertionError):  # asyncua's report of an ERR answer to OpenSecureChannel
            raise OpcUaUserError(
                f"{endpoint} refused the secure channel (certificate not trusted?)"
            ) from None
        raise
    return client


async def force_close(client: Client, graceful_s: float = 0.0) -> None:
    """Tear a client down without waiting on a dead link: optional graceful disconnect, then cancel its tasks."""
    if graceful_s > 0 and client.uaclient.state.name == "CONNECTED":
        try:
            await asyncio.wait_for(client.disconnect(), graceful_s)
        except (TimeoutError, Exception):  # noqa: BLE001 - best effort
            pass
    client.uaclient.request_disconnect()
    tasks = [client._supervisor_task, client._stale_watchdog_task, client._renew_channel_task]
    tasks.append(getattr(client.uaclient.session, "_publish_task", None))
    for t in tasks:
        if t is not None and not t.done():
            t.cancel()
    try:
        client.uaclient.disconnect_socket()
    except Exception:  # noqa: BLE001
        pass
    for t in tasks:
        if t is not None:
            try:
                await asyncio.wait_for(asyncio.shield(t), 0.5)
            except BaseException:  # noqa: BLE001 - cancelled or failed: either way it is gone
                pass


class Mirror:
    """Mirror one endpoint into a sink until `stop()` or `duration_s`; never writes to the server."""

    def __init__(
        self,
        endpoint: str,
        tagmap: TagMap,
        sink: Sink,
        options: MirrorOptions | None = None,
        source: str | None = None,
        on_status: Callable[[MirrorStats], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.tm = tagmap
        self.sink = sink
        self.opts = options or MirrorOptions()
        self.source = source or tagmap.name
        self.on_status = on_status
        self.stats = MirrorStats()
        self._seq = 0
        self._stop = asyncio.Event()
        self._by_node: dict[Any, tuple[str, str]] = {}
        self._heartbeat: Any = None
        self._events: dict[int, Any] = {}
        self._last_rx: datetime | None = None
        self._gap_start: datetime | None = None
        self._gap_reason = ""
        self._reported_missing: set[str] = set()
        self.resolved: Resolved | None = None
        self.client: Client | None = None  # the current asyncua client (a new one after every loss)

    def stop(self) -> None:
        self._stop.set()

    # -- notification handling (plain, non-blocking) --------------------------------------------------------
    def _touch(self) -> None:
        now = utcnow()
        self.stats.last_rx_mono = time.monotonic()
        if self._gap_start is not None:
            self.sink.add_event(
                PlantEvent(self.source, self._gap_start, "gap", t_end=now, detail=self._gap_reason)
            )
            log.warning("data flows again after a gap of %.1f s", (now - self._gap_start).total_seconds())
            self.stats.gaps += 1
            self._gap_start = None
        self._last_rx = now

    def _on_datachange(self, ev: DataChangeEvent) -> None:
        self._touch()
        nid = ev.node.nodeid
        if nid == self._heartbeat and nid not in self._by_node:
            return
        key = self._by_node.get(nid)
        if key is None:
            return
        unit, name = key
        sig = self.tm.units[unit].signals[name]
        dv = ev.data.monitored_item.Value
        value, text, mapped, flag = classify(sig, dv)
        now = self._last_rx or utcnow()
        src_ts = _naive(dv.SourceTimestamp) or _naive(dv.ServerTimestamp) or now
        status = dv.StatusCode or ua.StatusCode(0)
        sample = Sample(self.source, self._seq, unit, name, nid.to_string(), src_ts, _naive(dv.ServerTimestamp), now,
                        value, text, mapped, int(status.value), status.name, flag, bool(ev.replayed))  # fmt: skip
        self._seq += 1
        self.stats.samples += 1
        if flag:
            self.stats.bad_samples += 1
        self.stats.last_by_unit[unit] = src_ts
        self.sink.add_sample(sample)

    def _on_event(self, ev: OpcEvent) -> None:
        self._touch()
        spec = self._events.get(ev.event.server_handle)
        if spec is None:
            return
        fields = ev.event.get_event_props_as_fields_dict()

        def get(twin_field: str) -> Any:
            name = spec.fields.get(twin_field)
            var = fields.get(name) if name else None
            return var.Value if var is not None else None

        kind = str(get("kind"))
        kind = spec.kind_map.get(kind, kind)
        t = fields.get("Time")
        t_ev = _naive(t.Value) if t is not None and t.Value is not None else utcnow()

        def text(v: Any) -> str | None:
            return None if v is None else str(v)

        sim = get("sim_time_h")
        self.sink.add_event(PlantEvent(self.source, t_ev, kind, text(get("unit")), text(get("lot_id")),
                                       text(get("batch_id")), None, "server",
                                       sim_time_h=float(sim) if isinstance(sim, int | float) else None))  # fmt: skip
        self.stats.events += 1

    async def _consume(self, sub: Any) -> None:
        async for ev in sub:
            if isinstance(ev, DataChangeEvent):
                self._on_datachange(ev)
            elif isinstance(ev, OpcEvent):
                self._on_event(ev)
            elif isinstance(ev, StatusChangeEvent):
                log.warning("subscription status %s", ev.notification.Status)
                self._lost = f"subscription status {ev.notification.Status.name}"

    # -- session ----------------------------------------------------------------------------------------------
    async def _subscribe(self, client: Client) -> Any:
        res = await resolve(client, self.tm)
        self.resolved = res
        new_missing = [m for m in res.missing if m not in self._reported_missing]
        for m in new_missing:
            log.warning("missing node %s", m)
            self.sink.add_event(PlantEvent(self.source, utcnow(), "missing_node", detail=m))
            self._reported_missing.add(m)
        self.stats.missing = list(res.missing)
        self._by_node = {nid: key for key, nid in res.nodes.items()}
        self._heartbeat = res.heartbeat
        sub = await client.create_subscription(
            self.tm.publishing_interval_ms, queue_maxsize=1_000_000, overflow=OverflowPolicy.WARN
        )
        nodes = [client.get_node(nid) for nid in self._by_node]
        if res.heartbeat is not None and res.heartbeat not in self._by_node:
            nodes.append(client.get_node(res.heartbeat))
        for i in range(0, len(nodes), 500):
            results = await sub.subscribe_data_change(
                nodes[i : i + 500], queuesize=self.opts.queue_size, sampling_interval=0
            )
            for node, r in zip(nodes[i : i + 500], results):
                if isinstance(r, ua.StatusCode):
                    key = self._by_node.pop(node.nodeid, None)
                    m = f"{key[0]}.{key[1]}" if key else node.nodeid.to_string()
                    self.sink.add_event(PlantEvent(self.source, utcnow(), "missing_node",
                                                   detail=f"{m}: cannot monitor ({r.name})"))  # fmt: skip
        self._events = {}
        for spec, src, typ in res.events:
            handle = await sub.subscribe_events(client.get_node(src), client.get_node(typ), queuesize=10_000)
            self._events[handle] = spec  # the server handle, as in Event.server_handle
        return sub

    async def _session(self, client: Client) -> str:
        """Mirror on a connected client until the link is lost, data goes stale or stop is asked; returns why."""
        self._lost = ""
        sub = await asyncio.wait_for(self._subscribe(client), self.opts.request_timeout_s * 4)
        consumer = asyncio.create_task(self._consume(sub))
        self.stats.state = "connected"
        self.stats.last_rx_mono = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    await asyncio.wait_for(self._stop.wait(), 0.2)
                except TimeoutError:
                    pass
                if client.uaclient.state.name != "CONNECTED":
                    return f"connection lost ({client.uaclient.state.name.lower()})"
                if self._lost:
                    return self._lost
                if consumer.done():
                    return "subscription ended"
                silent = time.monotonic() - self.stats.last_rx_mono
                if silent > self.opts.stale_s:
                    return f"no data for {silent:.1f} s (watchdog)"
            return "stopped"
        finally:
            consumer.cancel()
            try:
                await consumer
            except BaseException:  # noqa: BLE001
                pass

    async def _ticker(self, deadline: float | None) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            await asyncio.sleep(self.opts.flush_s)
            self.sink.flush()
            if self.on_status is not None and time.monotonic() - last >= 1.0:
                last = time.monotonic()
                self.on_status(self.stats)
            if deadline is not None and time.monotonic() >= deadline:
                self._stop.set()

    async def run(self, duration_s: float | None = None) -> MirrorStats:
        """Mirror until stopped (or for duration_s); reconnects forever with capped backoff. Flushes at the end."""
        deadline = None if duration_s is None else time.monotonic() + duration_s
        ticker = asyncio.create_task(self._ticker(deadline))
        delay = self.opts.backoff_initial_s
        try:
            while not self._stop.is_set():
                self.stats.state = "connecting"
                client: Client | None = None
                self.stats.attempts += 1
                try:
                    client = await connect(self.endpoint, self.opts)
                except OpcUaUserError:
                    raise
                except (TimeoutError, Exception) as exc:  # noqa: BLE001 - network: retry
                    self.stats.last_error = _describe(exc)
                    log.info(
                        "connect to %s failed: %s; retry in %.1f s", self.endpoint, _describe(exc), delay
                    )
                    self._open_gap(f"connect failed: {_describe(exc)}")
                    await self._sleep(delay)
                    delay = min(delay * 2, self.opts.backoff_max_s)
                    continue
                self.stats.connects += 1
                self.client = client
                self.sink.add_event(PlantEvent(self.source, utcnow(), "connected", detail=self.endpoint))
                why = "stopped"
                try:
                    why = await self._session(client)
                    delay = self.opts.backoff_initial_s
                except OpcUaUserError:
                    raise
                except (TimeoutError, Exception) as exc:  # noqa: BLE001
                    why = f"session failed: {_describe(exc)}"
                finally:
                    stopping = self._stop.is_set()
                    await force_close(client, graceful_s=1.0 if stopping else 0.0)
                if not self._stop.is_set():
                    log.warning("mirror of %s interrupted: %s", self.endpoint, why)
                    self.stats.state = "reconnecting"
                    self._open_gap(why)
                    self.sink.add_event(PlantEvent(self.source, utcnow(), "disconnected", detail=why))
                    await self._sleep(delay)
                    delay = min(delay * 2, self.opts.backoff_max_s)
        finally:
            self._stop.set()
            ticker.cancel()
            try:
                await ticker
            except BaseException:  # noqa: BLE001
                pass
            if self._gap_start is not None:
                self.sink.add_event(PlantEvent(self.source, self._gap_start, "gap", t_end=utcnow(),
                                               detail=f"{self._gap_reason}; not recovered before the end"))  # fmt: skip
                self._gap_start = None
            self.stats.state = "stopped"
            self.sink.flush()
        return self.stats

    def _open_gap(self, why: str) -> None:
        if self._gap_start is None:
            self._gap_start = self._last_rx or utcnow()
            self._gap_reason = why

    async def _sleep(self, s: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), s)
        except TimeoutError:
            pass


# -- guarded writes -------------------------------------------------------------------------------------------

_WRITE_VT = {"double": ua.VariantType.Double, "int": ua.VariantType.Int64, "string": ua.VariantType.String,
             "bool": ua.VariantType.Boolean}  # fmt: skip


def coerce(sig: Signal, text: str, where: str) -> Any:
    """Parse a command-line value for a signal; checks its type and the map's range."""
    try:
        if sig.type == "double":
            v: Any = float(text)
            if not math.isfinite(v):
                raise ValueError
        elif sig.type == "int":
            v = int(text)
        elif sig.type == "bool":
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            v = text.lower() in ("true", "1")
        elif sig.type == "string":
            v = text
        else:
            raise OpcUaUserError(f"{where}: writing {sig.type} signals is not supported")
    except ValueError:
        raise OpcUaUserError(f"{where}: {text!r} is not a valid {sig.type}") from None
    if sig.type in ("double", "int") and (
        sig.min is not None and v < sig.min or sig.max is not None and v > sig.max
    ):
        raise OpcUaUserError(f"{where}: {v} is outside the map's range [{sig.min}, {sig.max}]")
    return v


def check_write(tm: TagMap, unit: str, signal: str, allow_write: bool) -> Signal:
    """The write guard: the tag must exist, be marked writable in the map, and writing must be allowed."""
    where = f"{unit}.{signal}"
    if unit not in tm.units:
        raise OpcUaUserError(f"unknown unit {unit!r} in tag map {tm.name} (units: {', '.join(tm.units)})")
    sig = tm.units[unit].signals.get(signal)
    if sig is None:
        raise OpcUaUserError(f"unknown signal {where} in tag map {tm.name}")
    if not sig.writable:
        raise OpcUaUserError(f"{where} is not marked writable in tag map {tm.name}; refusing to write")
    if not allow_write:
        raise OpcUaUserError(
            f"refusing to write {where}: the mirror is read-only unless --allow-write is given"
        )
    return sig


async def write_signal(
    endpoint: str,
    tm: TagMap,
    unit: str,
    signal: str,
    text: str,
    allow_write: bool,
    opts: MirrorOptions | None = None,
) -> tuple[Any, Any]:
    """Write one value to a writable tag after the guard; returns (old value, new value). Logged."""
    sig = check_write(tm, unit, signal, allow_write)
    value = coerce(sig, text, f"{unit}.{signal}")
    opts = opts or MirrorOptions()
    try:
        client = await connect(endpoint, opts)
    except OpcUaUserError:
        raise
    except (TimeoutError, Exception) as exc:  # noqa: BLE001
        raise OpcUaUserError(f"cannot connect to {endpoint}: {_describe(exc)}") from None
    try:
        ns = await client.get_namespace_array()
        from adapters.opcua.tagmap import resolve_ref

        try:
            nid = await resolve_ref(client, tm, sig.node, ns)
        except LookupError as exc:
            raise OpcUaUserError(f"{unit}.{signal} ({sig.node}): {exc}") from None
        node = client.get_node(nid)
        old = await node.read_data_value(raise_on_bad_status=False)
        vt = old.Value.VariantType if old.Value is not None else _WRITE_VT[sig.type]
        log.warning("WRITE %s %s.%s (%s): %r -> %r", endpoint, unit, signal, nid.to_string(),
                    old.Value.Value if old.Value else None, value)  # fmt: skip
        try:
            await node.write_value(ua.DataValue(ua.Variant(value, vt)))
        except ua.UaStatusCodeError as exc:
            raise OpcUaUserError(
                f"{endpoint} refused the write to {unit}.{signal}: {type(exc).__name__}"
            ) from None
        return (old.Value.Value if old.Value else None), value
    finally:
        await force_close(client, graceful_s=1.0)
