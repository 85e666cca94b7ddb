"""The mirror against a secured virtual plant (Basic256Sha256 SignAndEncrypt, users, trust list): the right
certificate and password mirror samples; a wrong password or an untrusted certificate is a one-line error."""

from __future__ import annotations

import asyncio
import socket

import duckdb
import pytest
import yaml
from test_mirror_plant import SCENARIO, SPEED, plant_tagmap

from adapters.opcua.client import Mirror, MirrorOptions, connect, force_close
from adapters.opcua.errors import OpcUaUserError
from adapters.opcua.security import add_user, make_certificate
from adapters.opcua.server import ServeConfig, ServerThread
from adapters.opcua.tagmap import parse_tagmap
from twin.live.telemetry import LiveRecorder
from twin.scenario import Scenario

MIRROR_URI = MirrorOptions().application_uri


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    d = tmp_path_factory.mktemp("mirror-pki")

    async def make():
        await make_certificate(d / "server_cert.der", d / "server_key.pem", "urn:ald-anneal-twin:plant-server",
                               "localhost")  # fmt: skip
        await make_certificate(d / "trusted" / "mirror_cert.der", d / "mirror_key.pem", MIRROR_URI, "localhost",
                               client=True)  # fmt: skip
        await make_certificate(d / "other" / "rogue_cert.der", d / "rogue_key.pem", MIRROR_URI, "localhost",
                               client=True)  # fmt: skip

    asyncio.run(make())
    add_user(d / "users.yaml", "mirror", "pw-m1rror")
    sc = Scenario.model_validate(yaml.safe_load(SCENARIO))
    cfg = ServeConfig(sc, endpoint=f"opc.tcp://127.0.0.1:{free_port()}", speed=SPEED, security=("SignAndEncrypt",),
                      cert=d / "server_cert.der", key=d / "server_key.pem", users_file=d / "users.yaml",
                      allow_anonymous=False, trust_dir=d / "trusted")  # fmt: skip
    with ServerThread(cfg) as st:
        yield st, d


def _security(d, cert: str = "trusted/mirror_cert.der", key: str = "mirror_key.pem") -> str:
    return f"Basic256Sha256,SignAndEncrypt,{d / cert},{d / key}"


def _url(st) -> str:
    return f"opc.tcp://127.0.0.1:{st.plant.port}"


def test_secured_mirror_stores_samples(secured, tmp_path):
    st, d = secured
    tm = parse_tagmap(plant_tagmap(st.plant.view.kinds, SPEED))
    kinds = {u: x.kind for u, x in tm.units.items()}
    db = tmp_path / "m.duckdb"
    rec = LiveRecorder(db, kinds, None, source=tm.name)
    opts = MirrorOptions(user="mirror", password="pw-m1rror", security=_security(d), stale_s=3.0, flush_s=0.2)

    async def main():
        m = Mirror(_url(st), tm, rec, opts)
        task = asyncio.create_task(m.run())
        for _ in range(200):
            if m.stats.samples >= 20:
                break
            await asyncio.sleep(0.05)
        m.stop()
        await task
        return m.stats

    try:
        stats = asyncio.run(main())
    finally:
        rec.close()
    assert stats.samples >= 20
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM telemetry").fetchone()[0] >= 20
    con.close()


@pytest.mark.parametrize(
    ("user", "password", "cert", "key", "expected"),
    [
        ("mirror", "wrong", "trusted/mirror_cert.der", "mirror_key.pem", "refused the session"),
        (None, None, "trusted/mirror_cert.der", "mirror_key.pem", "refused the session"),
        ("mirror", "pw-m1rror", "other/rogue_cert.der", "rogue_key.pem", "refused"),
    ],
)
def test_refused_sessions_and_certificates_are_one_line_errors(secured, user, password, cert, key, expected):
    st, d = secured
    opts = MirrorOptions(user=user, password=password, security=_security(d, cert, key))

    async def go():
        client = await connect(_url(st), opts)
        await force_close(client)

    with pytest.raises(OpcUaUserError) as exc:
        asyncio.run(go())
    msg = str(exc.value)
    assert expected in msg and "\n" not in msg and _url(st) in msg


def test_missing_client_certificate_file_is_named(secured, tmp_path):
    st, d = secured
    opts = MirrorOptions(
        user="mirror", password="pw-m1rror", security=_security(d, "nope.der", "mirror_key.pem")
    )
    with pytest.raises(OpcUaUserError, match="nope.der"):
        asyncio.run(connect(_url(st), opts))
