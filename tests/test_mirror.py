"""Mirror tests on a vendor-style asyncua server (tests/test_mirror_servers.py): its own layout and renumbered
namespaces through its own tag map, bad values flagged, missing nodes named, derived and server events,
the write guard, and the `twin tagmap` / `twin mirror` / `twin plant write` commands.
"""

from __future__ import annotations

import asyncio
import copy
import math
from pathlib import Path

import duckdb
import pytest
import yaml
from asyncua import ua
from conftest import run_twin
from test_mirror_servers import TAGMAP, AcmeThread, build_acme, free_port, set_value, tick

from adapters.opcua.client import Mirror, MirrorOptions
from adapters.opcua.tagmap import OpcUaUserError, parse_tagmap
from twin.live.telemetry import LiveRecorder

pytestmark = pytest.mark.timeout(120)

OPTS = MirrorOptions(
    stale_s=3.0, backoff_initial_s=0.2, backoff_max_s=1.0, request_timeout_s=2.0, flush_s=0.2
)


def _mirror(db: Path, pad: int, tagmap: dict, script=None, seconds: float = 2.5):
    """Start ACME with `pad` namespaces before its own, mirror it for `seconds` while `script(acme)` runs."""

    async def main():
        port = free_port()
        acme = await build_acme(port, pad)
        tm = parse_tagmap(tagmap)
        rec = LiveRecorder(db, {u: x.kind for u, x in tm.units.items()}, source=tm.name)
        async with acme.server:
            m = Mirror(f"opc.tcp://127.0.0.1:{port}", tm, rec, OPTS)
            task = asyncio.create_task(m.run(seconds))
            while m.stats.samples == 0 and not task.done():
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            if script is not None:
                await script(acme)
            for _ in range(5):
                await tick(acme)
                await asyncio.sleep(0.1)
            stats = await task
        rec.close()
        return stats, acme.idx

    return asyncio.run(main())


def _rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# -- the tag map ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (lambda m: m["units"]["OVEN_A"]["signals"]["counter"].update(node="nsu=nope;i=1"), "alias 'nope'"),
        (lambda m: m["units"]["OVEN_A"]["signals"]["counter"].update(node="F1.Temp"), "neither a NodeId"),
        (
            lambda m: m["units"]["OVEN_A"]["signals"]["state"]["map"].update({"9": "Running"}),
            "not twin states",
        ),
        (lambda m: m["units"]["OVEN_A"].update(kind="kiln"), "units.OVEN_A.kind"),
        (
            lambda m: m["units"]["OVEN_A"]["signals"]["temperature_c"].update(min=10, max=0),
            "min 10.0 > max 0.0",
        ),
    ],
)
def test_tag_map_errors_name_the_field(patch, message: str) -> None:
    data = copy.deepcopy(TAGMAP)
    patch(data)
    with pytest.raises(OpcUaUserError) as exc:
        parse_tagmap(data, "acme.yaml")
    text = str(exc.value)
    assert text.startswith("tag map acme.yaml: ") and message in text and "\n" not in text


# -- mirroring ------------------------------------------------------------------------------------------------


def test_other_layout_and_renumbered_namespaces_through_its_own_map(tmp_path: Path) -> None:
    expected = {(u, s) for u, unit in TAGMAP["units"].items() for s in unit["signals"]}
    seen_idx = []
    for pad in (0, 5):
        db = tmp_path / f"pad{pad}.duckdb"
        stats, idx = _mirror(db, pad, TAGMAP)
        seen_idx.append(idx)
        assert stats.missing == [] and stats.connects == 1
        got = {(u, s) for u, s in _rows(db, "SELECT DISTINCT unit, signal FROM telemetry")}
        assert got == expected
        # every numeric NodeId came from the ACME namespace, whatever its index on this server
        nodes = {n for (n,) in _rows(db, "SELECT DISTINCT node FROM telemetry WHERE signal = 'counter'")}
        assert nodes == {f"ns={idx};i=1005"}
        counters = [
            v for (v,) in _rows(db, "SELECT value FROM telemetry WHERE signal = 'counter' ORDER BY seq")
        ]
        assert len(counters) >= 5 and all(b - a == 1 for a, b in zip(counters, counters[1:]))
        states = _rows(db, "SELECT unit, mapped FROM telemetry WHERE signal = 'state' ORDER BY unit")
        assert states == [("COATER_1", "Idle"), ("OVEN_A", "Idle")]
        assert _rows(db, "SELECT count(*) FROM telemetry WHERE flag <> '' AND signal <> 'program'") == [(0,)]
    assert seen_idx[0] != seen_idx[1]


def test_bad_values_are_stored_with_status_and_flagged(tmp_path: Path) -> None:
    async def script(a):
        for value, vt, status in (
            (float("nan"), ua.VariantType.Double, 0),
            (9999.0, ua.VariantType.Double, 0),
            (10.0, ua.VariantType.Double, ua.StatusCodes.BadSensorFailure),
            (11.0, ua.VariantType.Double, ua.StatusCodes.UncertainLastUsableValue),
            (12.5, ua.VariantType.Double, 0),
        ):
            await set_value(a, "Flow", value, vt, status)
            await asyncio.sleep(0.05)
        await set_value(a, "Mode", 7, ua.VariantType.Int32)  # a code the value map does not know
        await asyncio.sleep(0.05)
        await set_value(a, "Mode", 1, ua.VariantType.Int32)

    db = tmp_path / "t.duckdb"
    stats, _ = _mirror(db, 1, TAGMAP, script)
    flow = _rows(db, "SELECT value, status, flag FROM telemetry WHERE signal = 'o2_flow_slpm' ORDER BY seq")
    assert [f for _, _, f in flow] == ["", "nan", "out_of_range", "bad_status", "uncertain", ""]
    assert math.isnan(flow[1][0]) and flow[2][0] == 9999.0 and flow[5][0] == 12.5
    assert flow[3][1] == "BadSensorFailure" and flow[4][1] == "UncertainLastUsableValue"
    # the map says int, the server sends a String: every sample flagged, the raw text kept
    assert _rows(db, "SELECT value_text, flag FROM telemetry WHERE signal = 'program'") == [
        ("P-17", "wrong_type")
    ]
    modes = _rows(
        db,
        "SELECT value, mapped, flag FROM telemetry WHERE unit = 'OVEN_A' AND signal = 'state' ORDER BY seq",
    )
    assert modes == [(0.0, "Idle", ""), (7.0, None, "unmapped"), (1.0, "Execute", "")]
    # flagged values never become good data: the derived state goes Idle -> Execute, never to the unmapped code
    ev = _rows(
        db, "SELECT value, detail FROM plant_events WHERE kind = 'state' AND unit = 'OVEN_A' ORDER BY t"
    )
    assert ev == [("Idle", "initial"), ("Execute", "from Idle")]
    assert stats.bad_samples == 6


def test_missing_nodes_are_named_and_the_rest_mirrored(tmp_path: Path) -> None:
    data = copy.deepcopy(TAGMAP)
    sigs = data["units"]["OVEN_A"]["signals"]
    sigs["zone2_c"] = {"node": "nsu=acme;i=4242"}
    sigs["pressure"] = {"node": "/Objects/acme:Site/acme:Ovens/acme:Oven_A/acme:Pressure"}
    db = tmp_path / "t.duckdb"
    stats, _ = _mirror(db, 2, data)
    assert len(stats.missing) == 2
    assert stats.missing[0].startswith("OVEN_A.zone2_c (nsu=acme;i=4242): node does not exist")
    assert stats.missing[1].startswith("OVEN_A.pressure (/Objects/acme:Site/")
    details = [
        d for (d,) in _rows(db, "SELECT detail FROM plant_events WHERE kind = 'missing_node' ORDER BY detail")
    ]
    assert [d.split(" ")[0] for d in details] == ["OVEN_A.pressure", "OVEN_A.zone2_c"]
    got = {s for (s,) in _rows(db, "SELECT DISTINCT signal FROM telemetry WHERE unit = 'OVEN_A'")}
    assert got == set(TAGMAP["units"]["OVEN_A"]["signals"])


def test_server_events_and_derived_lot_and_batch_events(tmp_path: Path) -> None:
    async def script(a):
        await set_value(a, "Status", "RUN", ua.VariantType.String)
        await set_value(a, "Lot", "L7", ua.VariantType.String)
        await asyncio.sleep(0.2)
        await set_value(a, "Lot", "", ua.VariantType.String)
        await set_value(a, "Status", "STOP", ua.VariantType.String)
        await asyncio.sleep(0.2)
        await set_value(a, "Charge", "B1", ua.VariantType.String)
        await set_value(a, "Lots", ["L7", "L8"], ua.VariantType.String)
        await set_value(a, "Mode", 1, ua.VariantType.Int32)
        for lot, action in (("L7", "charge"), ("L8", "charge")):
            a.evgen.event.Lot, a.evgen.event.Action, a.evgen.event.Station = lot, action, "OVEN_A"
            await a.evgen.trigger(message=f"{action} {lot}")
        await asyncio.sleep(0.2)
        await set_value(a, "Mode", 2, ua.VariantType.Int32)
        await set_value(a, "Lots", [], ua.VariantType.String)
        await set_value(a, "Charge", "", ua.VariantType.String)

    db = tmp_path / "t.duckdb"
    _mirror(db, 1, TAGMAP, script)
    server = _rows(db, "SELECT kind, unit, lot_id FROM plant_events WHERE origin = 'server' ORDER BY t")
    assert server == [("charge", "OVEN_A", "L7"), ("charge", "OVEN_A", "L8")]
    derived = _rows(
        db,
        """SELECT kind, unit, coalesce(lot_id, batch_id, value) FROM plant_events
                           WHERE origin = 'derived' AND coalesce(detail, '') <> 'initial' ORDER BY t, kind""",
    )
    assert [d for d in derived if d[1] == "COATER_1"] == [
        ("state", "COATER_1", "Execute"), ("lot_in", "COATER_1", "L7"),
        ("lot_out", "COATER_1", "L7"), ("state", "COATER_1", "Idle"),
    ]  # fmt: skip
    oven = sorted(d for d in derived if d[1] == "OVEN_A")
    assert oven == sorted([
        ("batch_start", "OVEN_A", "B1"), ("lot_in", "OVEN_A", "L7"), ("lot_in", "OVEN_A", "L8"),
        ("state", "OVEN_A", "Execute"), ("state", "OVEN_A", "Completing"),
        ("lot_out", "OVEN_A", "L7"), ("lot_out", "OVEN_A", "L8"), ("batch_end", "OVEN_A", "B1"),
    ])  # fmt: skip


# -- the commands ---------------------------------------------------------------------------------------------


def _map_file(tmp_path: Path, data: dict | None = None) -> Path:
    p = tmp_path / "acme.yaml"
    p.write_text(yaml.safe_dump(data or TAGMAP, sort_keys=False))
    return p


def test_no_write_reaches_the_server_without_allow_write(tmp_path: Path) -> None:
    tags = _map_file(tmp_path)
    db = tmp_path / "w.duckdb"
    with AcmeThread(pad=3, ticking=False) as srv:
        url = f"opc.tcp://127.0.0.1:{srv.port}"
        r = run_twin("plant", "write", url, "OVEN_A.setpoint_c", "380", "--tags", str(tags), "--db", str(db))
        assert r.returncode == 2
        assert r.stderr.strip() == (
            "error: refusing to write OVEN_A.setpoint_c: the mirror is read-only unless --allow-write is given"
        )
        assert srv.read("SP") == 400.0
        r = run_twin(
            "plant", "write", url, "OVEN_A.temperature_c", "380", "--tags", str(tags), "--allow-write"
        )
        assert r.returncode == 2 and "not marked writable" in r.stderr
        r = run_twin("plant", "write", url, "OVEN_A.setpoint_c", "900", "--tags", str(tags), "--allow-write")
        assert r.returncode == 2 and "outside the map's range [0.0, 700.0]" in r.stderr
        assert srv.read("SP") == 400.0
        r = run_twin("plant", "write", url, "OVEN_A.setpoint_c", "380", "--tags", str(tags), "--allow-write",
                     "--db", str(db))  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "wrote OVEN_A.setpoint_c: 400.0 -> 380.0" in r.stdout
        assert srv.read("SP") == 380.0
    assert _rows(db, "SELECT kind, unit, value FROM plant_events") == [("write", "OVEN_A", "380.0")]


def test_tagmap_check_discover_and_mirror_commands(tmp_path: Path) -> None:
    data = copy.deepcopy(TAGMAP)
    data["units"]["OVEN_A"]["signals"]["zone2_c"] = {"node": "nsu=acme;i=4242"}
    tags = _map_file(tmp_path, data)
    with AcmeThread(pad=4) as srv:
        url = f"opc.tcp://127.0.0.1:{srv.port}"
        r = run_twin("tagmap", "check", str(tags), url)
        assert r.returncode == 1, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0].startswith("missing: OVEN_A.zone2_c (nsu=acme;i=4242)")
        assert lines[1] == "wrong type: OVEN_A.program (nsu=acme;i=1008): server type String, map says int"
        assert lines[-1] == "11 nodes found, 1 missing, 1 of the wrong type"

        draft = tmp_path / "draft.yaml"
        r = run_twin("tagmap", "discover", url, "--out", str(draft))
        assert r.returncode == 0, r.stderr
        d = yaml.safe_load(draft.read_text())
        assert d["namespaces"] == {"ns1": "urn:acme:ovens"}
        oven = d["units"]["Oven_A"]
        assert oven["kind"] == "furnace"
        assert oven["signals"]["counter"] == {
            "node": "/Objects/ns1:Site/ns1:Ovens/ns1:Oven_A/ns1:Counter",
            "type": "int",
        }
        assert oven["signals"]["lot_ids"]["type"] == "string_array"
        assert d["units"]["Coater_1"] == {
            "kind": "ald",
            "signals": {
                "state": {"node": "/Objects/ns1:Site/ns1:Coaters/ns1:Coater_1/ns1:Status", "type": "string"},
                "lot_id": {"node": "/Objects/ns1:Site/ns1:Coaters/ns1:Coater_1/ns1:Lot", "type": "string"},
            },
        }

        db = tmp_path / "m.duckdb"
        r = run_twin("mirror", url, "--tags", str(draft), "--db", str(db), "--duration", "3", "--quiet")
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("mirrored ") and "0 gap(s)" in r.stdout
        n = _rows(db, "SELECT count(*) FROM telemetry WHERE unit = 'Oven_A' AND signal = 'counter'")[0][0]
        assert n >= 15  # 10 Hz for ~3 s
        r = run_twin("mirror", "http://x", "--tags", str(draft), "--db", str(db), "--duration", "1")
        assert r.returncode == 2 and r.stderr.startswith("error: bad endpoint URL 'http://x'")
