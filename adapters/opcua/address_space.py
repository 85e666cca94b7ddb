"""The virtual plant's OPC UA address space: object types per unit kind, Objects/Plant with one object per unit,
and the LotMoveEventType. Builds nodes only; values come from `line_view.LineView`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asyncua import Server, ua
from asyncua.common.node import Node

from adapters.opcua.line_view import TAGS, WRITABLE

NAMESPACE_URI = "urn:ald-anneal-twin:plant"

_VTYPES = {
    "Double": ua.VariantType.Double,
    "Int64": ua.VariantType.Int64,
    "String": ua.VariantType.String,
    "Boolean": ua.VariantType.Boolean,
    "StringArray": ua.VariantType.String,
}
_TYPE_NAMES = {
    "ald": "AldReactorType",
    "buffer": "BufferType",
    "furnace": "FurnaceType",
    "qc": "QcType",
    "line": "LineTotalsType",
}
# EngineeringUnits of the process values, by tag suffix: UNECE Recommendation 20 common codes as OPC UA
# EUInformation (OPC 10000-8, 5.6.3; the UnitId packs the code's characters, 8 bits each)
UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
UNITS = {
    "_C": ("CEL", "°C", "degree Celsius"),
    "_Pa": ("PAL", "Pa", "pascal"),
    "_h": ("HUR", "h", "hour"),
    "_pct": ("P1", "%", "percent"),
    "_slpm": ("L2", "l/min", "litre per minute (at standard conditions)"),
}
EVENT_FIELDS = (
    ("LotId", ua.VariantType.Int64),
    ("BatchId", ua.VariantType.Int64),
    ("Move", ua.VariantType.String),
    ("Unit", ua.VariantType.String),
    ("SimTime_h", ua.VariantType.Double),
)


@dataclass
class PlantNodes:
    """Handles to what the server writes: tag -> (NodeId, VariantType), the Plant object, the event type."""

    idx: int
    plant: Node
    event_type: Node
    tags: dict[tuple[str, str], tuple[ua.NodeId, ua.VariantType]] = field(default_factory=dict)
    writable: dict[ua.NodeId, tuple[str, str]] = field(default_factory=dict)


def variant(value: object, vtype: ua.VariantType) -> ua.Variant:
    """A typed variant (lists become one-dimensional arrays)."""
    return ua.Variant(value, vtype)


def unece_unit_id(code: str) -> int:
    """The OPC UA UnitId of a UNECE common code: its characters packed 8 bits each (`CEL` -> 4408652)."""
    unit_id = 0
    for ch in code:
        unit_id = (unit_id << 8) | ord(ch)
    return unit_id


def engineering_units(tag: str) -> ua.EUInformation | None:
    """The EUInformation of a tag, from its suffix (`Temperature_C` -> degree Celsius); None if it has no unit."""
    for suffix, (code, symbol, name) in UNITS.items():
        if tag.endswith(suffix):
            return ua.EUInformation(
                NamespaceUri=UNECE_NAMESPACE,
                UnitId=unece_unit_id(code),
                DisplayName=ua.LocalizedText(symbol),
                Description=ua.LocalizedText(name),
            )
    return None


def _initial(type_name: str) -> ua.Variant:
    vt = _VTYPES[type_name]
    if type_name == "StringArray":
        return ua.Variant([], vt)
    return ua.Variant({"Double": 0.0, "Int64": 0, "String": "", "Boolean": False}[type_name], vt)


async def build(server: Server, units: dict[str, str], allow_writes: bool) -> PlantNodes:
    """Register the namespace, the object types and Objects/Plant/<unit> for `units` (name -> kind).

    Every variable is read-only; the WRITABLE tags get write access only when `allow_writes` is set.
    """
    idx = await server.register_namespace(NAMESPACE_URI)
    types: dict[str, Node] = {}
    for kind, type_name in _TYPE_NAMES.items():
        otype = await server.nodes.base_object_type.add_object_type(idx, type_name)
        for tag, tname in TAGS[kind]:
            var = await otype.add_variable(idx, tag, _initial(tname))
            if tname == "StringArray":
                await var.write_value_rank(ua.ValueRank.OneDimension)
                await var.write_array_dimensions([0])
            await var.set_modelling_rule(True)
            eu = engineering_units(tag)
            if eu is not None:  # the standard property, copied to every instance with the variable
                prop = await var.add_property(
                    ua.NodeId(0, idx),
                    ua.QualifiedName("EngineeringUnits", 0),
                    eu,
                    datatype=ua.NodeId(ua.ObjectIds.EUInformation),
                )
                await prop.set_modelling_rule(True)
        types[kind] = otype
    event_type = await server.create_custom_event_type(
        idx, "LotMoveEventType", ua.ObjectIds.BaseEventType, list(EVENT_FIELDS)
    )
    plant = await server.nodes.objects.add_object(
        ua.NodeId("Plant", idx), ua.QualifiedName("Plant", idx), objecttype=ua.ObjectIds.FolderType
    )
    nodes = PlantNodes(idx=idx, plant=plant, event_type=event_type)
    writable = set(WRITABLE)
    for unit, kind in units.items():
        await plant.add_object(
            ua.NodeId(f"Plant.{unit}", idx), ua.QualifiedName(unit, idx), objecttype=types[kind]
        )
        for tag, tname in TAGS[kind]:
            nid = ua.NodeId(f"Plant.{unit}.{tag}", idx)
            nodes.tags[(unit, tag)] = (nid, _VTYPES[tname])
            if (kind, tag) in writable:
                nodes.writable[nid] = (unit, tag)
                if allow_writes:
                    await server.get_node(nid).set_writable(True)
    return nodes
