"""Small asyncua servers for the mirror tests (no tests here): a vendor-style oven line with its own layout,
numeric and string NodeIds, state codes and renumbered namespaces. `python tests/test_mirror_servers.py PORT PAD`
runs one as a separate process (for the kill-and-restart test) and prints `ready` once it listens.
"""

from __future__ import annotations

import asyncio
import math
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from asyncua import Server, ua

ACME = "urn:acme:ovens"
TICK_S = 0.1

TAGMAP = {
    "name": "acme",
    "namespaces": {"acme": ACME},
    "publishing_interval_ms": 100,
    "units": {
        "OVEN_A": {
            "kind": "furnace",
            "signals": {
                "temperature_c": {"node": "nsu=acme;i=1001", "min": -50, "max": 1200},
                "setpoint_c": {"node": "/Objects/acme:Site/acme:Ovens/acme:Oven_A/acme:SP", "writable": True,
                               "min": 0, "max": 700},
                "state": {"node": "nsu=acme;i=1003", "type": "int",
                          "map": {"0": "Idle", "1": "Execute", "2": "Completing"}},
                "batch_id": {"node": "nsu=acme;s=OvenA.Charge", "type": "string"},
                "lot_ids": {"node": "/Objects/acme:Site/acme:Ovens/acme:Oven_A/acme:Lots", "type": "string_array"},
                "counter": {"node": "nsu=acme;i=1005", "type": "int"},
                "o2_flow_slpm": {"node": "nsu=acme;i=1006", "min": 0, "max": 500},
                "door_open": {"node": "nsu=acme;i=1007", "type": "bool"},
                "program": {"node": "nsu=acme;i=1008", "type": "int"},
            },
        },
        "COATER_1": {
            "kind": "ald",
            "signals": {
                "state": {"node": "/Objects/acme:Site/acme:Coaters/acme:Coater_1/acme:Status", "type": "string",
                          "map": {"RUN": "Execute", "STOP": "Idle"}},
                "lot_id": {"node": "/Objects/acme:Site/acme:Coaters/acme:Coater_1/acme:Lot", "type": "string"},
            },
        },
    },
    "events": [
        {"source": "/Objects/acme:Site", "type": "/Types/EventTypes/BaseEventType/acme:ChargeEvent",
         "fields": {"kind": "Action", "lot_id": "Lot", "unit": "Station"}},
    ],
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Acme:
    server: Server
    idx: int
    nodes: dict[str, ua.NodeId]
    evgen: object
    counter: int = 0


async def build_acme(port: int, pad: int = 2) -> Acme:
    """An asyncua server at 127.0.0.1:port; `pad` dummy namespaces are registered before ACME's."""
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    for i in range(pad):
        await server.register_namespace(f"urn:dummy:{i}")
    idx = await server.register_namespace(ACME)
    site = await server.nodes.objects.add_object(ua.NodeId("Site", idx), ua.QualifiedName("Site", idx))
    ovens = await site.add_folder(idx, "Ovens")
    coaters = await site.add_folder(idx, "Coaters")
    oven = await ovens.add_object(idx, "Oven_A")
    coater = await coaters.add_object(idx, "Coater_1")
    n: dict[str, ua.NodeId] = {}

    async def var(parent, nid, name, value, vt, writable=False, datatype=None):
        node = await parent.add_variable(
            nid, ua.QualifiedName(name, idx), ua.Variant(value, vt), datatype=datatype
        )
        if writable:
            await node.set_writable(True)
        n[name] = node.nodeid
        return node

    await var(oven, ua.NodeId(1001, idx), "PV", 25.0, ua.VariantType.Double)
    await var(oven, ua.NodeId(1002, idx), "SP", 400.0, ua.VariantType.Double, writable=True)
    await var(oven, ua.NodeId(1003, idx), "Mode", 0, ua.VariantType.Int32)
    await var(oven, ua.NodeId("OvenA.Charge", idx), "Charge", "", ua.VariantType.String)
    lots = await var(oven, ua.NodeId("OvenA.Lots", idx), "Lots", [], ua.VariantType.String)
    await lots.write_value_rank(ua.ValueRank.OneDimension)
    await var(oven, ua.NodeId(1005, idx), "Counter", 0, ua.VariantType.Int64)
    await var(oven, ua.NodeId(1006, idx), "Flow", 0.0, ua.VariantType.Double)
    await var(
        oven, ua.NodeId(1008, idx), "ProgramNo", "P-17", ua.VariantType.String
    )  # the map expects an int
    await var(oven, ua.NodeId(1007, idx), "Door", False, ua.VariantType.Boolean, writable=True)
    await var(coater, ua.NodeId("Coater1.Status", idx), "Status", "STOP", ua.VariantType.String)
    await var(coater, ua.NodeId("Coater1.Lot", idx), "Lot", "", ua.VariantType.String)
    etype = await server.create_custom_event_type(
        idx, "ChargeEvent", ua.ObjectIds.BaseEventType,
        [("Lot", ua.VariantType.String), ("Action", ua.VariantType.String), ("Station", ua.VariantType.String)],
    )  # fmt: skip
    evgen = await server.get_event_generator(etype, site)
    return Acme(server, idx, n, evgen)


async def set_value(a: Acme, name: str, value, vt: ua.VariantType, status: int = 0) -> None:
    """Write a value (any variant type, any status) straight into the address space, source-stamped now."""
    from datetime import UTC, datetime

    dv = ua.DataValue(ua.Variant(value, vt), StatusCode=ua.StatusCode(status), SourceTimestamp=datetime.now(UTC),
                      ServerTimestamp=datetime.now(UTC))  # fmt: skip
    await a.server.write_attribute_value(a.nodes[name], dv)


async def tick(a: Acme) -> None:
    """One step of the oven: the counter counts, PV oscillates."""
    a.counter += 1
    await set_value(a, "Counter", a.counter, ua.VariantType.Int64)
    await set_value(a, "PV", round(200.0 + 100.0 * math.sin(a.counter / 10.0), 2), ua.VariantType.Double)


async def serve(port: int, pad: int) -> None:
    a = await build_acme(port, pad)
    async with a.server:
        print("ready", flush=True)
        while True:
            await tick(a)
            await asyncio.sleep(TICK_S)


class AcmeProcess:
    """The ACME server as a child process that a test can kill (SIGKILL) and restart on the same port."""

    def __init__(self, port: int, pad: int = 2) -> None:
        self.port, self.pad = port, pad
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 20.0) -> AcmeProcess:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__)), str(self.port), str(self.pad)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        t0 = time.monotonic()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "ready" not in line or time.monotonic() - t0 > timeout_s:
            raise RuntimeError(f"ACME server did not start: {line!r}")
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))


class AcmeThread:
    """The ACME server on its own event loop in a thread (for CLI subprocess tests); `read(name)` reads a value."""

    def __init__(self, pad: int = 2, ticking: bool = True) -> None:
        import threading

        self.port = free_port()
        self.pad, self.ticking = pad, ticking
        self.acme: Acme | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.acme = await build_acme(self.port, self.pad)
        async with self.acme.server:
            self._ready.set()
            while not self._stop.is_set():
                if self.ticking:
                    await tick(self.acme)
                await asyncio.sleep(TICK_S)

    def call(self, coro_fn, *args):
        """Run `coro_fn(acme, *args)` on the server's loop and return its result."""
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(coro_fn(self.acme, *args), self._loop)
        return fut.result(10)

    def read(self, name: str):
        async def rd(a: Acme):
            return (await a.server.get_node(a.nodes[name]).read_data_value()).Value.Value

        return self.call(rd)

    def __enter__(self) -> AcmeThread:
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("ACME server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
