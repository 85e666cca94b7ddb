"""The virtual plant over real OPC UA: a PlantServer on 127.0.0.1 (background thread) and real asyncua clients.

Browse, live values, furnace temperature vs the recipe profile, lot-move events in causal order and equal to the
offline trace (same seed), refused writes, session/subscription caps, and the secured endpoint.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from asyncua import Client, ua

from adapters.opcua.address_space import NAMESPACE_URI
from adapters.opcua.errors import OpcUaUserError
from adapters.opcua.line_view import LOT_MOVES, STATES, TAGS
from adapters.opcua.security import add_user, make_certificate
from adapters.opcua.server import ServeConfig, ServerThread, check_config
from plant import physics
from plant.line import Line
from twin.scenario import scenario_from_dict

SEED = 11
SPEED = 3600.0 * 30  # 30 simulated hours per wall second
CLIENT_URI = "urn:ald-anneal-twin:client"

SCENARIO = {
    "name": "opcua-small",
    "horizon_h": 600,
    "seed": SEED,
    "arrivals": {"kind": "poisson", "rate_per_h": 0.8, "recipe": "fast"},
    "ald": {"reactors": 2, "cycle_min": 6, "mtbf_h": 60, "mttr_h": 2, "pm_every_batches": 10, "pm_h": 2},
    "buffer": {"capacity_lots": 4},
    "furnaces": {"count": 2, "capacity_lots": 3, "policy": {"name": "timeout", "max_wait_h": 2}},
    "recipes": {"fast": {"setpoint_c": 400, "ramp_c_per_min": 5, "soak_h": 1, "cool_c_per_min": 2}},
    "qc": {"test_h": 1, "stations": 2},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scenario():
    return scenario_from_dict(SCENARIO)


@pytest.fixture(scope="module")
def reference(scenario):
    """The same line run offline to its horizon (what `twin run` simulates for this seed)."""
    return Line(scenario, SEED, 0).run()


@pytest.fixture(scope="module")
def plant(scenario):
    cfg = ServeConfig(scenario, endpoint=f"opc.tcp://127.0.0.1:{free_port()}", speed=SPEED, seed=SEED,
                      max_sessions_per_client=3, max_subscriptions_per_session=2,
                      max_monitored_items_per_session=20)  # fmt: skip
    with ServerThread(cfg) as st:
        yield st


def url(st: ServerThread) -> str:
    return f"opc.tcp://127.0.0.1:{st.port}"


async def _plant_node(client: Client):
    idx = await client.get_namespace_index(NAMESPACE_URI)
    return idx, await client.nodes.objects.get_child(f"{idx}:Plant")


class _Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[str, object, object]] = []
        self.events: list[object] = []

    def datachange_notification(self, node, val, data) -> None:
        self.changes.append((node.nodeid.Identifier, val, data.monitored_item.Value.SourceTimestamp))

    def event_notification(self, event) -> None:
        self.events.append(event)


@pytest.fixture(scope="module")
def recording(plant):
    """One client for ~4 s: data changes of every State and line counter, every lot-move event, and
    consistent (Temperature_C, BatchId, State) samples of each furnace every 50 ms."""

    async def record():
        rec, samples = _Recorder(), []
        async with Client(url(plant), timeout=5) as client:
            idx, plant_node = await _plant_node(client)
            etype = await client.nodes.base_event_type.get_child(f"{idx}:LotMoveEventType")
            sub = await client.create_subscription(50, rec)
            await sub.subscribe_events(plant_node, etype, queuesize=10_000)
            watched = [
                client.get_node(ua.NodeId(f"Plant.{u}.State", idx))
                for u in ("ALD1", "ALD2", "F1", "F2", "QC")
            ]
            watched.append(client.get_node(ua.NodeId("Plant.Line.LotsReleased", idx)))
            await sub.subscribe_data_change(watched, queuesize=1000, sampling_interval=0)
            furnace_nodes = {
                f: [
                    client.get_node(ua.NodeId(f"Plant.{f}.{tag}", idx))
                    for tag in ("Temperature_C", "BatchId", "State")
                ]
                for f in ("F1", "F2")
            }
            t_end = time.monotonic() + 4.0
            while time.monotonic() < t_end:
                for f, nodes in furnace_nodes.items():
                    dvs = await client.read_attributes(nodes)
                    samples.append((f, *dvs))
                await asyncio.sleep(0.05)
            await sub.delete()
        return rec, samples

    return asyncio.run(record())


def test_browse_finds_every_unit_and_tag(plant, scenario):
    async def browse():
        async with Client(url(plant), timeout=5) as client:
            idx, plant_node = await _plant_node(client)
            found = {}
            for obj in await plant_node.get_children(nodeclassmask=ua.NodeClass.Object):
                name = (await obj.read_browse_name()).Name
                tags = [(await v.read_browse_name()).Name for v in await obj.get_variables()]
                tdef = await client.get_node(await obj.read_type_definition()).read_browse_name()
                found[name] = (set(tags), tdef.Name)
            return found

    found = asyncio.run(browse())
    units = {f"ALD{i + 1}": "ald" for i in range(scenario.ald.reactors)}
    units |= {"BUF": "buffer", "QC": "qc", "Line": "line"}
    units |= {f"F{i + 1}": "furnace" for i in range(scenario.furnaces.count)}
    assert set(found) == set(units)
    types = {"ald": "AldReactorType", "buffer": "BufferType", "furnace": "FurnaceType", "qc": "QcType",
             "line": "LineTotalsType"}  # fmt: skip
    for unit, kind in units.items():
        tags, tdef = found[unit]
        assert tags == {t for t, _ in TAGS[kind]}, unit
        assert tdef == types[kind]


def test_values_change_while_the_line_runs(recording):
    rec, _ = recording
    states = [(n, v) for n, v, _ in rec.changes if n.endswith(".State")]
    assert len(states) >= 20
    assert {v for _, v in states} <= set(STATES)
    assert {"Execute", "Idle"} <= {v for _, v in states}
    released = [v for n, v, _ in rec.changes if n == "Plant.Line.LotsReleased"]
    assert len(released) >= 5 and released == sorted(released) and released[-1] > released[0]
    for node in {n for n, _, _ in rec.changes}:
        stamps = [ts for n, _, ts in rec.changes if n == node]
        assert stamps == sorted(stamps), node


def test_furnace_temperature_follows_the_recipe(plant, recording, reference, scenario):
    _, samples = recording
    batches = reference.batches_table().to_pydict()
    start_h = dict(zip(batches["batch_id"], batches["start_h"]))
    r, f = scenario.recipes["fast"], scenario.furnaces
    prof_t, prof_c = physics.recipe_profile(r.setpoint_c, r.ramp_c_per_min, r.soak_h, r.cool_c_per_min,
                                            f.start_c, f.unload_c)  # fmt: skip
    checked, moving = 0, 0
    for _, temp, batch, state in samples:
        if state.Value.Value != "Execute" or batch.Value.Value not in start_h:
            continue
        t_h = plant.plant.clock.sim_h(temp.SourceTimestamp)
        expected = float(np.interp(t_h - start_h[batch.Value.Value], prof_t, prof_c))
        assert temp.Value.Value == pytest.approx(expected, abs=0.15)
        checked += 1
        moving += abs(expected - r.setpoint_c) > 1.0
    assert checked >= 10
    assert moving >= 2  # some samples on the ramp or the cooling, not only the soak


def test_lot_move_events_arrive_in_causal_order(recording):
    rec, _ = recording
    evs = rec.events
    assert len(evs) >= 30
    assert {e.Move for e in evs} <= set(LOT_MOVES)
    times = [e.Time for e in evs]
    assert times == sorted(times)
    pos: dict[tuple[int, str], int] = {}
    for i, e in enumerate(evs):
        pos.setdefault((e.LotId, e.Move), i)
        if e.Move.startswith("batch"):
            assert e.BatchId >= 1
    chains = 0
    for (lot, move), i in pos.items():
        if move == "batch_start" and (lot, "ald_end") in pos:
            assert pos[(lot, "ald_end")] < i
            chains += 1
        if move == "batch_end" and (lot, "batch_start") in pos:
            assert pos[(lot, "batch_start")] < i
        if move in ("pass", "scrap", "rework") and (lot, "batch_end") in pos:
            assert pos[(lot, "batch_end")] < i
    assert chains >= 3


def test_lot_move_events_equal_the_offline_trace(recording, reference):
    rec, _ = recording
    got = [(e.SimTime_h, e.Move, e.Unit, e.LotId, e.BatchId) for e in rec.events]
    t0, t1 = got[0][0], got[-1][0]  # drop the edges: a client may see only part of one instant
    got = [g for g in got if t0 < g[0] < t1]
    want = [e for e in reference.events if e[1] in LOT_MOVES and t0 < e[0] < t1]
    assert len(want) >= 30
    assert got == want


def test_write_to_read_only_variable_is_refused(plant):
    async def write():
        async with Client(url(plant), timeout=5) as client:
            idx, _ = await _plant_node(client)
            codes = []
            for tag in ("F1.Temperature_C", "F1.Setpoint_C"):  # Setpoint_C: writes not enabled on this server
                node = client.get_node(ua.NodeId(f"Plant.{tag}", idx))
                with pytest.raises(ua.UaStatusCodeError) as err:
                    await node.write_value(ua.DataValue(ua.Variant(999.0, ua.VariantType.Double)))
                codes.append(err.value.code)
            value = await client.get_node(ua.NodeId("Plant.F1.Setpoint_C", idx)).read_value()
            return codes, value

    codes, value = asyncio.run(write())
    assert codes == [ua.StatusCodes.BadNotWritable] * 2
    assert value == 400.0


def test_caps_on_sessions_and_subscriptions(plant):
    async def caps():
        clients = [Client(url(plant), timeout=5) for _ in range(4)]
        for c in clients[:3]:
            await c.connect()
        try:
            with pytest.raises(ua.UaStatusCodeError) as err:
                await clients[3].connect()
            assert err.value.code == ua.StatusCodes.BadTooManySessions
            await clients[0].create_subscription(100, _Recorder())
            await clients[0].create_subscription(100, _Recorder())
            with pytest.raises(ua.UaStatusCodeError) as err:
                await clients[0].create_subscription(100, _Recorder())
            assert err.value.code == ua.StatusCodes.BadTooManySubscriptions
        finally:
            for c in clients[:3]:
                await c.disconnect()

    asyncio.run(caps())


# -- security ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    trusted, untrusted = d / "trusted", d / "other"

    async def make():
        await make_certificate(d / "server_cert.der", d / "server_key.pem",
                               "urn:ald-anneal-twin:plant-server", "localhost")  # fmt: skip
        await make_certificate(
            trusted / "client_cert.der", d / "client_key.pem", CLIENT_URI, "localhost", client=True
        )
        await make_certificate(
            untrusted / "rogue_cert.der", d / "rogue_key.pem", CLIENT_URI, "localhost", client=True
        )

    asyncio.run(make())
    users = d / "users.yaml"
    add_user(users, "operator", "s3cret-pw")
    return d


@pytest.fixture(scope="module")
def secure_plant(scenario, pki):
    cfg = ServeConfig(scenario, endpoint=f"opc.tcp://127.0.0.1:{free_port()}", speed=SPEED, seed=SEED,
                      security=("SignAndEncrypt",), cert=pki / "server_cert.der", key=pki / "server_key.pem",
                      users_file=pki / "users.yaml", allow_anonymous=False, trust_dir=pki / "trusted",
                      allow_writes=True)  # fmt: skip
    with ServerThread(cfg) as st:
        yield st


async def _secure_client(st, pki: Path, user: str | None, password: str | None, cert: str = "trusted/client_cert.der",
                         key: str = "client_key.pem", mode: str = "SignAndEncrypt") -> Client:  # fmt: skip
    client = Client(url(st), timeout=5)
    client.application_uri = CLIENT_URI
    await client.set_security_string(f"Basic256Sha256,{mode},{pki / cert},{pki / key}")
    if user is not None:
        client.set_user(user)
        client.set_password(password)
    return client


def _outcome(st, pki, **kw) -> str:
    async def go():
        try:
            client = await _secure_client(st, pki, **kw)  # asyncua looks up the server's endpoints here
            await client.connect()
        except Exception as exc:  # noqa: BLE001 - the kind of failure is the result
            return f"refused: {getattr(exc, 'code', None) and ua.StatusCode(exc.code).name or type(exc).__name__}"
        try:
            idx = await client.get_namespace_index(NAMESPACE_URI)
            await client.get_node(ua.NodeId("Plant.F1.State", idx)).read_value()
            return "accepted"
        finally:
            await client.disconnect()

    return asyncio.run(go())


def test_no_anonymous_refuses_anonymous_and_accepts_the_right_password(secure_plant, pki):
    assert _outcome(secure_plant, pki, user="operator", password="s3cret-pw") == "accepted"
    assert _outcome(secure_plant, pki, user=None, password=None).startswith("refused")
    assert _outcome(secure_plant, pki, user="operator", password="wrong") == "refused: BadUserAccessDenied"
    assert _outcome(secure_plant, pki, user="nobody", password="s3cret-pw") == "refused: BadUserAccessDenied"


def test_untrusted_client_certificate_is_refused(secure_plant, pki):
    out = _outcome(secure_plant, pki, user="operator", password="s3cret-pw", cert="other/rogue_cert.der",
                   key="rogue_key.pem")  # fmt: skip
    assert out == "refused: BadCertificateUntrusted"


def test_sign_and_encrypt_refuses_a_none_security_client(secure_plant, monkeypatch):
    async def connect(client: Client) -> str:
        try:
            await client.connect()
        except Exception as exc:  # noqa: BLE001 - the kind of failure is the result
            return ua.StatusCode(exc.code).name if hasattr(exc, "code") else str(exc)
        await client.disconnect()
        return "accepted"

    def plain_client() -> Client:
        client = Client(url(secure_plant), timeout=5)
        client.set_user("operator")
        client.set_password("s3cret-pw")
        return client

    # asyncua's client already gives up: the server offers no None endpoint
    assert asyncio.run(connect(plain_client())).startswith("No matching endpoints")
    # a client that ignores the offered endpoints (as a hostile one would) is refused by the server itself
    monkeypatch.setattr(Client, "find_endpoint", staticmethod(lambda endpoints, mode, uri: endpoints[0]))
    assert asyncio.run(connect(plain_client())) == "BadSecurityModeRejected"


def test_authenticated_write_to_setpoint_is_accepted_read_only_refused(secure_plant, pki):
    async def go():
        client = await _secure_client(secure_plant, pki, user="operator", password="s3cret-pw")
        async with client:
            idx = await client.get_namespace_index(NAMESPACE_URI)
            sp = client.get_node(ua.NodeId("Plant.F2.Setpoint_C", idx))
            await sp.write_value(ua.DataValue(ua.Variant(410.0, ua.VariantType.Double)))
            hold = client.get_node(ua.NodeId("Plant.ALD1.Hold", idx))
            await hold.write_value(ua.DataValue(ua.Variant(True, ua.VariantType.Boolean)))
            with pytest.raises(ua.UaStatusCodeError) as err:
                temp = client.get_node(ua.NodeId("Plant.F2.Temperature_C", idx))
                await temp.write_value(ua.DataValue(ua.Variant(1.0, ua.VariantType.Double)))
            return await hold.read_value(), err.value.code

    held, code = asyncio.run(go())
    assert held is True
    assert code == ua.StatusCodes.BadNotWritable
    # the writes reach the line: F2 anneals its next batches at 410 °C, ALD1 takes no new lot
    line = secure_plant.plant.line
    assert {f.name: f.setpoint_override for f in line.furnaces}["F2"] == 410.0
    assert [r.name for r in line.reactors if r.held] == ["ALD1"]


def test_one_line_errors_for_bad_endpoint_missing_certificate_and_busy_port(scenario, tmp_path):
    with pytest.raises(OpcUaUserError, match="bad endpoint URL 'http://x:4840'"):
        check_config(ServeConfig(scenario, endpoint="http://x:4840"))
    with pytest.raises(OpcUaUserError, match="port must be a number"):
        check_config(ServeConfig(scenario, endpoint="opc.tcp://127.0.0.1:70000"))
    missing = tmp_path / "nope.der"
    with pytest.raises(OpcUaUserError, match=f"certificate file not found: {missing}"):
        check_config(ServeConfig(scenario, security=("Sign",), cert=missing, key=tmp_path / "k.pem"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(OpcUaUserError, match=f"port {port} is already in use"):
            ServerThread(ServeConfig(scenario, endpoint=f"opc.tcp://127.0.0.1:{port}")).start()


def test_cli_cert_and_user_add_as_documented(tmp_path):
    from conftest import run_twin  # the real CLI in a subprocess

    from adapters.opcua.security import load_users, verify_password

    out = run_twin("plant", "cert", "--out", "pki", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "pki" / "server_cert.der").stat().st_size > 500
    assert (tmp_path / "pki" / "server_key.pem").read_text().startswith("-----BEGIN")
    out = run_twin("plant", "user", "add", "users.yaml", "operator", "--password", "pw-1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    users = load_users(tmp_path / "users.yaml")
    assert verify_password("pw-1", users["operator"]) and not verify_password("pw-2", users["operator"])
    out = run_twin("plant", "serve", "missing.yaml", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == ["error: missing.yaml: file not found"]


def test_process_values_carry_their_engineering_units(plant):
    """Temperatures, pressure, hours, humidity and gas flow carry the standard EngineeringUnits property (UNECE
    codes as EUInformation) on every instance; counters and ids carry none."""
    from adapters.opcua.address_space import UNECE_NAMESPACE, unece_unit_id

    async def read():
        async with Client(url(plant), timeout=5) as client:
            idx, _ = await _plant_node(client)
            out = {}
            for tag in ("F1.Temperature_C", "F2.Setpoint_C", "ALD1.ChamberPressure_Pa", "BUF.OldestWait_h",
                        "BUF.RelativeHumidity_pct", "F1.O2Flow_slpm", "Line.SimTime_h", "F1.BatchId"):  # fmt: skip
                node = client.get_node(ua.NodeId(f"Plant.{tag}", idx))
                try:
                    prop = await node.get_child("0:EngineeringUnits")
                except ua.UaStatusCodeError:
                    out[tag] = None
                    continue
                eu = await prop.read_value()
                out[tag] = (eu.NamespaceUri, eu.UnitId, eu.DisplayName.Text)
            return out

    got = asyncio.run(read())
    cel = (UNECE_NAMESPACE, unece_unit_id("CEL"), "°C")
    assert unece_unit_id("CEL") == 4408652  # the worked example of OPC 10000-8
    assert got["F1.Temperature_C"] == cel and got["F2.Setpoint_C"] == cel
    assert got["ALD1.ChamberPressure_Pa"] == (UNECE_NAMESPACE, unece_unit_id("PAL"), "Pa")
    assert got["BUF.OldestWait_h"] == got["Line.SimTime_h"] == (UNECE_NAMESPACE, unece_unit_id("HUR"), "h")
    assert got["BUF.RelativeHumidity_pct"][2] == "%" and got["F1.O2Flow_slpm"][2] == "l/min"
    assert got["F1.BatchId"] is None


def test_monitored_items_are_capped_per_session(plant, scenario):
    """20 items per session here: of 25 asked in one call the first 20 are created, the last 5 refused with
    BadTooManyMonitoredItems; the next call is refused whole, across subscriptions; another session has its own."""

    async def subscribe():
        async with Client(url(plant), timeout=5) as client:
            idx, _ = await _plant_node(client)
            names = [(u, t) for u in ("F1", "F2") for t, _ in TAGS["furnace"]]
            names += [(f"ALD{i + 1}", t) for i in range(scenario.ald.reactors) for t, _ in TAGS["ald"]]
            nodes = [client.get_node(ua.NodeId(f"Plant.{u}.{t}", idx)) for u, t in names]
            sub = await client.create_subscription(100, _Recorder())
            first = await sub.subscribe_data_change(nodes[:25])
            sub2 = await client.create_subscription(100, _Recorder())
            second = await sub2.subscribe_data_change(nodes[25:27])
            async with Client(url(plant), timeout=5) as other:
                other_sub = await other.create_subscription(100, _Recorder())
                third = await other_sub.subscribe_data_change(nodes[:3])
            return first, second, third

    first, second, third = asyncio.run(subscribe())
    too_many = ua.StatusCode(ua.StatusCodes.BadTooManyMonitoredItems)
    assert all(isinstance(h, int) for h in first[:20]) and first[20:] == [too_many] * 5
    assert second == [too_many] * 2
    assert all(isinstance(h, int) for h in third)


def test_caps_below_one_are_one_line_errors(scenario):
    for field, option in (("max_monitored_items_per_session", "--max-monitored-items"),
                          ("max_subscriptions_per_session", "--max-subscriptions")):  # fmt: skip
        cfg = ServeConfig(scenario, endpoint=f"opc.tcp://127.0.0.1:{free_port()}", **{field: 0})
        with pytest.raises(OpcUaUserError, match=f"^{option} must be at least 1, got 0$"):
            check_config(cfg)


def test_sign_only_endpoint_accepts_signed_sessions_and_checks_users_and_certificates(scenario, pki):
    """`--security Sign`: messages signed, not encrypted. A signed session with the right password reads the
    plant; a wrong password, an untrusted certificate, and a client asking for SignAndEncrypt are refused."""
    cfg = ServeConfig(scenario, endpoint=f"opc.tcp://127.0.0.1:{free_port()}", speed=SPEED, seed=SEED,
                      security=("Sign",), cert=pki / "server_cert.der", key=pki / "server_key.pem",
                      users_file=pki / "users.yaml", allow_anonymous=False, trust_dir=pki / "trusted")  # fmt: skip
    with ServerThread(cfg) as st:
        ok = _outcome(st, pki, user="operator", password="s3cret-pw", mode="Sign")
        wrong = _outcome(st, pki, user="operator", password="wrong", mode="Sign")
        rogue = _outcome(st, pki, user="operator", password="s3cret-pw", cert="other/rogue_cert.der",
                         key="rogue_key.pem", mode="Sign")  # fmt: skip
        encrypt = _outcome(st, pki, user="operator", password="s3cret-pw", mode="SignAndEncrypt")
    assert ok == "accepted"
    assert wrong == "refused: BadUserAccessDenied"
    assert rogue == "refused: BadCertificateUntrusted"
    assert encrypt == "refused: UaError"  # no matching endpoint: the server offers no SignAndEncrypt one
