"""Tag maps: which OPC UA node gives which twin signal of which unit (YAML, pydantic-validated), and resolution
of the map's node references (NodeId strings or browse paths with namespace URIs) against a connected server.

A node reference is either a NodeId (`i=2258`, `ns=2;s=F1.Temperature`, `ns=3;g=<guid>`, `nsu=<uri or alias>;s=..`)
or a browse path from the Root folder (`/Objects/plant:Plant/plant:F1/plant:State`, `{urn:x}Name` also works),
where `plant` is an alias declared under `namespaces:`; a bare name is namespace 0. Paths and `nsu=` forms keep
working when a server renumbers its namespaces.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adapters.opcua.errors import OpcUaUserError  # noqa: F401  (re-exported)

UNIT_KINDS = ("ald", "buffer", "furnace", "qc", "line", "other")
TWIN_STATES = ("Idle", "Starting", "Execute", "Completing", "Suspended", "Held", "Aborted", "Stopped")
SIGNAL_TYPES = ("double", "int", "string", "bool", "string_array")
HEARTBEAT_NODE = "i=2258"  # Server_ServerStatus_CurrentTime
EVENT_FIELDS = ("kind", "unit", "lot_id", "batch_id", "sim_time_h")


# Signals the derivation of plant events and the soft sensor understand (others are mirrored as they are).
KNOWN_SIGNALS = {
    "state": "unit state, mapped to the twin's states",
    "lot_id": "lot being processed (single-lot units)",
    "lot_ids": "lots in the unit (batch units, string array)",
    "batch_id": "furnace batch in progress",
    "temperature_c": "process temperature, °C",
    "setpoint_c": "temperature setpoint, °C",
    "atmosphere": "furnace atmosphere (O2, dry_air, air, N2)",
    "o2_flow_slpm": "gas flow, standard l/min",
    "cycle_count": "ALD cycles done in the current batch",
    "count": "lots held (buffer)",
    "last_lot_id": "last lot tested (QC)",
    "last_verdict": "last QC verdict",
}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_NODEID = re.compile(r"^(nsu=[^;]+;|ns=\d+;)?(i=\d+|s=.+|g=[0-9A-Fa-f-]{36}|b=.+)$")


class Signal(BaseModel):
    """One mirrored variable: its node, expected type, valid range, value mapping and write permission."""

    model_config = ConfigDict(extra="forbid")

    node: str = Field(description="NodeId string or browse path starting with '/'")
    type: Literal["double", "int", "string", "bool", "string_array"] = "double"
    min: float | None = None
    max: float | None = None
    map: dict[str, str] = Field(default_factory=dict, description="vendor value (as text) -> twin state")
    writable: bool = False

    @field_validator("node")
    @classmethod
    def _node_syntax(cls, v: str) -> str:
        v = v.strip()
        if v.startswith("/"):
            if len([s for s in v.split("/") if s]) == 0:
                raise ValueError("browse path has no segment")
            return v
        if not _NODEID.match(v):
            raise ValueError(
                f"{v!r} is neither a NodeId (i=.., ns=N;s=.., nsu=URI;s=.., g=.., b=..) nor a browse path ('/...')"
            )
        return v

    @field_validator("map")
    @classmethod
    def _map_targets(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted({t for t in v.values() if t not in TWIN_STATES})
        if bad:
            raise ValueError(f"map targets {bad} are not twin states {list(TWIN_STATES)}")
        return v

    @model_validator(mode="after")
    def _range(self) -> Signal:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        return self


class Unit(BaseModel):
    """One piece of equipment: its kind and its signals by twin name."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ald", "buffer", "furnace", "qc", "line", "other"]
    signals: dict[str, Signal]

    @field_validator("signals")
    @classmethod
    def _names(cls, v: dict[str, Signal]) -> dict[str, Signal]:
        for name in v:
            if not _NAME.match(name):
                raise ValueError(f"signal name {name!r} must be an identifier")
        return v


class EventSource(BaseModel):
    """A notifier to subscribe for events, the event type, and which event field gives which twin field."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="notifier node (NodeId or browse path)")
    type: str = Field(default="i=2041", description="event type node (default BaseEventType)")
    fields: dict[str, str] = Field(
        description="twin field (kind, unit, lot_id, batch_id, sim_time_h) -> event field"
    )
    kind_map: dict[str, str] = Field(default_factory=dict, description="vendor event kind -> twin kind")

    @field_validator("source", "type")
    @classmethod
    def _ref(cls, v: str) -> str:
        return Signal._node_syntax(v)

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(set(v) - set(EVENT_FIELDS))
        if bad:
            raise ValueError(f"unknown event fields {bad}; allowed {list(EVENT_FIELDS)}")
        if "kind" not in v:
            raise ValueError("fields must name the event field that gives `kind`")
        return v


class TagMap(BaseModel):
    """A plant's tag map: namespaces by alias, units with their signals, event sources, heartbeat node."""

    model_config = ConfigDict(extra="forbid")

    name: str = "plant"
    namespaces: dict[str, str] = Field(default_factory=dict, description="alias -> namespace URI")
    heartbeat: str = HEARTBEAT_NODE
    publishing_interval_ms: float = Field(default=200.0, gt=0)
    time_scale: float = Field(
        default=1.0, gt=0, description="plant hours per wall-clock hour (virtual plant)"
    )
    units: dict[str, Unit]
    events: list[EventSource] = Field(default_factory=list)

    @field_validator("heartbeat")
    @classmethod
    def _hb(cls, v: str) -> str:
        return Signal._node_syntax(v)

    @model_validator(mode="after")
    def _aliases(self) -> TagMap:
        refs = [(f"units.{u}.signals.{s}.node", sig.node) for u, unit in self.units.items() for s, sig in
                unit.signals.items()]  # fmt: skip
        refs += [(f"events[{i}].source", e.source) for i, e in enumerate(self.events)]
        refs += [(f"events[{i}].type", e.type) for i, e in enumerate(self.events)]
        refs.append(("heartbeat", self.heartbeat))
        for where, ref in refs:
            for alias in _aliases_of(ref):
                if alias not in self.namespaces:
                    raise ValueError(f"{where}: namespace alias {alias!r} is not declared under `namespaces`")
        return self

    def signals(self) -> list[tuple[str, str, Signal]]:
        """(unit, signal name, Signal) in map order."""
        return [(u, s, sig) for u, unit in self.units.items() for s, sig in unit.signals.items()]


def _aliases_of(ref: str) -> list[str]:
    if ref.startswith("/"):
        out = []
        for seg in _split_path(ref):
            if seg.startswith("{"):
                continue
            if ":" in seg:
                prefix = seg.split(":", 1)[0]
                if not prefix.isdigit():
                    out.append(prefix)
        return out
    if ref.startswith("nsu="):
        uri = ref[4:].split(";", 1)[0]
        return [] if ":" in uri or "/" in uri else [uri]
    return []


def _split_path(path: str) -> list[str]:
    """Path segments; `/` inside `{uri}` does not split."""
    segs, cur, depth = [], "", 0
    for ch in path:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "/" and depth == 0:
            if cur:
                segs.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        segs.append(cur)
    return segs


def load_tagmap(path: str | Path) -> TagMap:
    """Read and validate a tag map YAML file; errors name the file and the field."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        raise OpcUaUserError(f"tag map {p} does not exist") from None
    except OSError as exc:
        raise OpcUaUserError(f"tag map {p}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise OpcUaUserError(f"tag map {p}: not UTF-8 text; save the file as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise OpcUaUserError(f"tag map {p}{where}: not valid YAML") from None
    return parse_tagmap(data, str(p))


def parse_tagmap(data: Any, source: str = "<tag map>") -> TagMap:
    """Validate a tag map given as a dict; the first error becomes a one-line OpcUaUserError."""
    if not isinstance(data, dict):
        raise OpcUaUserError(f"tag map {source}: expected a mapping at the top level")
    try:
        return TagMap.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        raise OpcUaUserError(f"tag map {source}: {loc}: {msg}") from None


def dump_tagmap(tm: TagMap) -> str:
    """YAML text of a tag map (defaults left out)."""
    return yaml.safe_dump(tm.model_dump(exclude_defaults=True), sort_keys=False, allow_unicode=True)


# -- resolution against a server -------------------------------------------------------------------------------


@dataclass
class Resolved:
    """Result of resolving a tag map: NodeIds per (unit, signal), the problems by name, event sources."""

    nodes: dict[tuple[str, str], Any] = field(default_factory=dict)  # (unit, signal) -> ua.NodeId
    missing: list[str] = field(default_factory=list)  # one line per node that could not be resolved
    wrong_type: list[str] = field(default_factory=list)
    heartbeat: Any = None
    events: list[tuple[EventSource, Any, Any]] = field(default_factory=list)  # (spec, source id, type id)


def _uri_of(tm: TagMap, alias_or_uri: str) -> str:
    return tm.namespaces.get(alias_or_uri, alias_or_uri)


async def resolve_ref(client: Any, tm: TagMap, ref: str, ns_array: list[str]) -> Any:
    """Resolve one node reference to a ua.NodeId that exists on the server; raises LookupError with the reason."""
    from asyncua import ua

    if ref.startswith("/"):
        qnames = []
        for seg in _split_path(ref):
            if seg.startswith("{"):
                uri, name = seg[1:].split("}", 1)
            elif ":" in seg and not seg.split(":", 1)[0].isdigit():
                alias, name = seg.split(":", 1)
                uri = _uri_of(tm, alias)
            elif ":" in seg:
                idx_s, name = seg.split(":", 1)
                uri = ns_array[int(idx_s)] if int(idx_s) < len(ns_array) else f"ns{idx_s}"
            else:
                uri, name = ns_array[0], seg
            if uri not in ns_array:
                raise LookupError(f"namespace {uri} is not on the server")
            qnames.append(ua.QualifiedName(name, ns_array.index(uri)))
        rp = ua.RelativePath()
        for q in qnames:
            el = ua.RelativePathElement()
            el.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
            el.IsInverse = False
            el.IncludeSubtypes = True
            el.TargetName = q
            rp.Elements.append(el)
        bp = ua.BrowsePath()
        bp.StartingNode = ua.NodeId(ua.ObjectIds.RootFolder)
        bp.RelativePath = rp
        res = (await client.uaclient.translate_browsepaths_to_nodeids([bp]))[0]
        if not res.StatusCode.is_good() or not res.Targets:
            raise LookupError(f"no node at that path ({res.StatusCode.name})")
        return res.Targets[0].TargetId
    text = ref
    if ref.startswith("nsu="):
        uri, rest = ref[4:].split(";", 1)
        uri = _uri_of(tm, uri)
        if uri not in ns_array:
            raise LookupError(f"namespace {uri} is not on the server")
        text = f"ns={ns_array.index(uri)};{rest}"
    nid = ua.NodeId.from_string(text)
    dv = await client.get_node(nid).read_attribute(ua.AttributeIds.NodeClass, raise_on_bad_status=False)
    if not dv.StatusCode.is_good():
        raise LookupError(f"node does not exist ({dv.StatusCode.name})")
    return nid


_VT_OK = {
    "double": {"Double", "Float"},
    "int": {"SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64"},
    "string": {"String", "LocalizedText"},
    "bool": {"Boolean"},
    "string_array": {"String"},
}


def type_ok(sig_type: str, variant_type_name: str, is_array: bool) -> bool:
    """Does a variant of this type and shape fit the signal type of the map?"""
    if (sig_type == "string_array") != is_array:
        return False
    return variant_type_name in _VT_OK[sig_type]


async def resolve(client: Any, tm: TagMap, check_types: bool = False) -> Resolved:
    """Resolve every node of the map; problems are collected by name, never raised (the rest still resolves)."""
    from asyncua import ua

    ns_array = await client.get_namespace_array()
    out = Resolved()
    for unit, name, sig in tm.signals():
        try:
            nid = await resolve_ref(client, tm, sig.node, ns_array)
        except (LookupError, ValueError, ua.UaError) as exc:
            out.missing.append(f"{unit}.{name} ({sig.node}): {exc}")
            continue
        out.nodes[(unit, name)] = nid
        if check_types:
            node = client.get_node(nid)
            try:
                dv = await node.read_data_value(raise_on_bad_status=False)
                vt = dv.Value.VariantType.name if dv.Value is not None else "Null"
                is_arr = isinstance(dv.Value.Value, list) if dv.Value is not None else False
                if dv.Value is not None and dv.Value.Value is not None and not type_ok(sig.type, vt, is_arr):
                    shape = f"{vt}[]" if is_arr else vt
                    out.wrong_type.append(
                        f"{unit}.{name} ({sig.node}): server type {shape}, map says {sig.type}"
                    )
            except ua.UaError as exc:
                out.wrong_type.append(f"{unit}.{name} ({sig.node}): cannot read ({exc})")
    try:
        out.heartbeat = await resolve_ref(client, tm, tm.heartbeat, ns_array)
    except (LookupError, ValueError, ua.UaError) as exc:
        out.missing.append(f"heartbeat ({tm.heartbeat}): {exc}")
    for i, ev in enumerate(tm.events):
        try:
            src = await resolve_ref(client, tm, ev.source, ns_array)
            typ = await resolve_ref(client, tm, ev.type, ns_array)
        except (LookupError, ValueError, ua.UaError) as exc:
            out.missing.append(f"events[{i}] ({ev.source}): {exc}")
            continue
        out.events.append((ev, src, typ))
    return out


def value_ok(sig: Signal, value: Any) -> str:
    """'' when a good-status value fits the signal, else the flag: wrong_type, nan, out_of_range."""
    if value is None:
        return "wrong_type"
    t = sig.type
    if t == "double":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "wrong_type"
        if not math.isfinite(value):
            return "nan"
    elif t == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return "wrong_type"
    elif t == "bool":
        if not isinstance(value, bool):
            return "wrong_type"
    elif t == "string":
        if not isinstance(value, str):
            return "wrong_type"
    elif t == "string_array":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "wrong_type"
    if t in ("double", "int"):
        if sig.min is not None and value < sig.min or sig.max is not None and value > sig.max:
            return "out_of_range"
    return ""


# -- discovery -------------------------------------------------------------------------------------------------

_GUESS = {
    "state": "state", "status": "state", "lotid": "lot_id", "lot": "lot_id", "lots": "lot_ids", "lotids": "lot_ids", "batchid": "batch_id",
    "temperature_c": "temperature_c", "temperature": "temperature_c", "temp": "temperature_c",
    "setpoint_c": "setpoint_c", "setpoint": "setpoint_c", "atmosphere": "atmosphere",
    "o2flow_slpm": "o2_flow_slpm", "cyclecount": "cycle_count", "count": "count", "lastlotid": "last_lot_id",
    "lastverdict": "last_verdict",
}  # fmt: skip
_KIND_GUESS = (("ald", "ald"), ("coat", "ald"), ("buf", "buffer"), ("furn", "furnace"), ("oven", "furnace"), ("qc", "qc"),
               ("f", "furnace"), ("line", "line"))  # fmt: skip


def _snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    return re.sub(r"[^a-z0-9_]+", "_", s).strip("_") or "value"


async def discover(client: Any, root_path: str = "/Objects", max_depth: int = 4) -> TagMap:
    """Browse from `root_path` and draft a map: every object with variables becomes a unit, every variable a
    signal named by a guess (State -> state, Temperature_C -> temperature_c), addressed by browse path."""
    from asyncua import ua

    ns_array = await client.get_namespace_array()
    aliases: dict[int, str] = {}
    namespaces: dict[str, str] = {}

    def alias(idx: int) -> str:
        if idx not in aliases:
            a = f"ns{len(aliases) + 1}"
            aliases[idx] = a
            namespaces[a] = ns_array[idx]
        return aliases[idx]

    def seg(q: ua.QualifiedName) -> str:
        return q.Name if q.NamespaceIndex == 0 else f"{alias(q.NamespaceIndex)}:{q.Name}"

    empty = parse_tagmap({"units": {}})
    start = await resolve_ref(client, empty, root_path, ns_array)
    units: dict[str, dict] = {}

    async def walk(node: Any, path: str, depth: int) -> None:
        if depth > max_depth:
            return
        children = await node.get_children(refs=ua.ObjectIds.HierarchicalReferences)
        variables = []
        for ch in children:
            if ch.nodeid.NamespaceIndex == 0:
                continue  # the standard address space (Server object and its children)
            nc = await ch.read_node_class()
            bn = await ch.read_browse_name()
            p = f"{path}/{seg(bn)}"
            if nc == ua.NodeClass.Variable:
                variables.append((bn.Name, p, ch))
            elif nc == ua.NodeClass.Object:
                await walk(ch, p, depth + 1)
        if variables:
            unit_name = (await node.read_browse_name()).Name
            low = unit_name.lower()
            kind = next((k for prefix, k in _KIND_GUESS if low.startswith(prefix)), "other")
            sigs = {}
            for vname, p, ch in variables:
                dv = await ch.read_data_value(raise_on_bad_status=False)
                v = dv.Value
                is_arr = v is not None and isinstance(v.Value, list)
                vt = v.VariantType.name if v is not None else "Double"
                stype = next((t for t, ok in _VT_OK.items() if vt in ok and (t == "string_array") == is_arr),
                             "double")  # fmt: skip
                name = _GUESS.get(vname.lower(), _snake(vname))
                while name in sigs:
                    name += "_"
                sigs[name] = {"node": p, "type": stype}
            units[unit_name] = {"kind": kind, "signals": sigs}

    await walk(client.get_node(start), root_path.rstrip("/"), 0)
    return parse_tagmap({"name": "discovered", "namespaces": namespaces, "units": units})
