"""`twin plant cert | user add`, `twin tagmap discover --writable` and `twin mirror` as a user meets them: private
keys never land in a trust list, a trust list holding one is one line (not a traceback), a mirror that never
connected fails, and a certificate made by `twin plant cert --client` is accepted with its own URI."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
import yaml
from conftest import run_twin
from test_mirror_plant import SCENARIO
from typer.testing import CliRunner

from adapters.opcua.security import load_users, verify_password
from adapters.opcua.server import ServeConfig, ServerThread
from twin.cli import app
from twin.scenario import Scenario

F1_MAP = """\
name: virtual-plant
namespaces: {p: "urn:ald-anneal-twin:plant"}
units:
  F1:
    kind: furnace
    signals:
      temperature_c: {node: /Objects/p:Plant/p:F1/p:Temperature_C}
      setpoint_c: {node: "nsu=p;s=Plant.F1.Setpoint_C"}
"""
runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})


def invoke(*args: str, **kw):
    return runner.invoke(app, list(args), **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line(proc) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# -- certificates ------------------------------------------------------------------------------------------
def test_client_certificate_key_stays_out_of_the_trust_list(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke("plant", "cert", "--client", "--out", "pki/client", "--trust", "pki/trusted")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == [
        "certificate pki/client/client_cert.der",
        "private key pki/client/client_key.pem",
        "trusted copy pki/trusted/client_cert.der",
        "application URI urn:ald-anneal-twin:client",
    ]
    pki = tmp_path / "pki"
    assert sorted(p.name for p in (pki / "trusted").iterdir()) == ["client_cert.der"]  # the certificate alone
    assert (pki / "trusted" / "client_cert.der").read_bytes() == (
        pki / "client" / "client_cert.der"
    ).read_bytes()
    key = pki / "client" / "client_key.pem"
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = {p: p.read_bytes() for p in pki.rglob("*.*")}
    assert invoke("plant", "cert", "--client", "--out", "pki/client", "--trust", "pki/trusted").exit_code == 0
    assert {p: p.read_bytes() for p in pki.rglob("*.*")} == before  # valid files are kept
    assert not list(pki.rglob(".*.tmp"))


def test_trust_directory_as_output_is_refused(tmp_path):
    proc = run_twin(
        "plant", "cert", "--client", "--out", "pki/trusted", "--trust", "pki/trusted", cwd=tmp_path
    )
    assert proc.returncode == 2
    assert one_line(proc) == (
        "error: --trust pki/trusted is the --out directory: the private key must not go into a trust list; give "
        "--out another directory"
    )
    assert not (tmp_path / "pki").exists()


def test_server_refuses_a_trust_list_holding_a_private_key(tmp_path):
    """What `twin plant cert --out pki/trusted --client` used to make: the key beside the certificate. The server
    says so in one line instead of a 65-line traceback."""
    (tmp_path / "s.yaml").write_text(SCENARIO)
    assert run_twin("plant", "cert", "--out", "pki", cwd=tmp_path).returncode == 0
    assert run_twin("plant", "cert", "--client", "--out", "pki/trusted", cwd=tmp_path).returncode == 0
    serve = ["plant", "serve", "s.yaml", "--endpoint", f"opc.tcp://127.0.0.1:{free_port()}", "--security",
             "SignAndEncrypt", "--cert", "pki/server_cert.der", "--key", "pki/server_key.pem", "--trust-dir",
             "pki/trusted"]  # fmt: skip
    proc = run_twin(*serve, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert one_line(proc) == (
        "error: trust list directory pki/trusted holds a private key (client_key.pem): a trust list takes "
        "certificates only; move the key elsewhere (`twin plant cert --client --trust pki/trusted` copies just "
        "the certificate)"
    )
    (tmp_path / "pki" / "trusted" / "client_key.pem").unlink()
    (tmp_path / "pki" / "trusted" / "notes.txt").write_text("trusted: the line PC")
    proc = run_twin(*serve, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert (
        one_line(proc)
        == "error: trust list directory pki/trusted: notes.txt is not a certificate (DER or PEM)"
    )


def test_user_add_reads_the_password_variable_or_prompts(tmp_path):
    users = tmp_path / "users.yaml"
    r = invoke("plant", "user", "add", str(users), "operator", env={"TWIN_OPCUA_PASSWORD": "from-env"})
    assert r.exit_code == 0, r.stderr
    assert verify_password("from-env", load_users(users)["operator"])
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    r = invoke("plant", "user", "add", str(users), "viewer", input="typed-pw\ntyped-pw\n")
    assert r.exit_code == 0, r.stderr
    found = load_users(users)
    assert verify_password("typed-pw", found["viewer"]) and verify_password("from-env", found["operator"])
    r = invoke(
        "plant", "user", "add", str(users), "x", input="one\ntwo\none\none\n"
    )  # asks again on a mismatch
    assert r.exit_code == 0 and verify_password("one", load_users(users)["x"])


# -- tag maps and the mirror ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def plant():
    sc = Scenario.model_validate(yaml.safe_load(SCENARIO))
    with ServerThread(ServeConfig(sc, endpoint=f"opc.tcp://127.0.0.1:{free_port()}", speed=3600.0)) as st:
        yield f"opc.tcp://127.0.0.1:{st.port}"


def test_discover_marks_only_the_named_signals_writable(plant, tmp_path):
    out = tmp_path / "plant.yaml"
    r = invoke("tagmap", "discover", plant, "--out", str(out), "--writable", "F1.setpoint_c")
    assert r.exit_code == 0, r.stderr
    draft = yaml.safe_load(out.read_text())
    writable = [
        f"{u}.{s}"
        for u, x in draft["units"].items()
        for s, sig in x["signals"].items()
        if sig.get("writable")
    ]
    assert writable == ["F1.setpoint_c"]
    r = invoke(
        "tagmap", "discover", plant, "--out", str(tmp_path / "other.yaml"), "--writable", "F9.setpoint_c"
    )
    assert r.exit_code == 2 and r.stderr.startswith(
        "error: --writable F9.setpoint_c: the server has no such signal (found: "
    )
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "other.yaml").exists()


def test_mirror_that_never_connected_fails(tmp_path):
    (tmp_path / "m.yaml").write_text(
        "name: m\nunits:\n  F1:\n    kind: furnace\n    signals:\n      t: {node: i=2258}\n"
    )
    url = f"opc.tcp://127.0.0.1:{free_port()}"  # nothing listens there
    proc = run_twin("mirror", url, "--tags", "m.yaml", "--duration", "2", "--quiet", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    line = one_line(proc)
    assert line.startswith(f"error: never connected to {url} in ") and line.endswith(
        " (last attempt: connection refused); nothing was mirrored"
    )
    proc = run_twin(
        "mirror", url, "--tags", "m.yaml", "--duration", "1", cwd=tmp_path
    )  # with the status line
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith(f"error: never connected to {url}")


def test_mirror_of_a_plant_that_answers_succeeds(plant, tmp_path):
    assert invoke("tagmap", "discover", plant, "--out", str(tmp_path / "p.yaml")).exit_code == 0
    proc = run_twin("mirror", plant, "--tags", "p.yaml", "--duration", "2", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1 connection(s)" in proc.stdout


def test_secured_server_and_client_from_the_cli_certificates(tmp_path, monkeypatch):
    """The secured set-up of the README with a real server on 127.0.0.1: server and client certificates, the
    client's copied into the trust list, a hashed user; the twin's client connects with SignAndEncrypt, user and
    password, with the application URI of its certificate (here a site's own)."""
    import asyncio

    from adapters.opcua.client import MirrorOptions, build_client, force_close

    monkeypatch.chdir(tmp_path)
    assert invoke("plant", "cert", "--out", "pki").exit_code == 0
    r = invoke("plant", "cert", "--client", "--out", "pki/client", "--trust", "pki/trusted", "--app-uri",
               "urn:site:line-pc")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert (
        invoke(
            "plant", "user", "add", "users.yaml", "operator", env={"TWIN_OPCUA_PASSWORD": "pw-0p"}
        ).exit_code
        == 0
    )
    sc = Scenario.model_validate(yaml.safe_load(SCENARIO))
    cfg = ServeConfig(sc, endpoint=f"opc.tcp://127.0.0.1:{free_port()}", speed=3600.0,
                      security=("SignAndEncrypt",), cert=Path("pki/server_cert.der"), key=Path("pki/server_key.pem"),
                      users_file=Path("users.yaml"), allow_anonymous=False, trust_dir=Path("pki/trusted"))  # fmt: skip
    security = "Basic256Sha256,SignAndEncrypt,pki/client/client_cert.der,pki/client/client_key.pem"
    Path("f1.yaml").write_text(F1_MAP)
    with ServerThread(cfg) as st:
        url = f"opc.tcp://127.0.0.1:{st.port}"

        async def uri() -> str:
            client = await build_client(url, MirrorOptions(security=security))
            await force_close(client)
            return client.application_uri

        assert asyncio.run(uri()) == "urn:site:line-pc"
        env = {"TWIN_OPCUA_PASSWORD": "pw-0p"}
        r = invoke("tagmap", "check", "f1.yaml", url, "--user", "operator", "--security", security, env=env)
        assert r.exit_code == 0, r.stderr
        assert r.stdout.strip().endswith("0 missing, 0 of the wrong type")
        r = invoke("tagmap", "check", "f1.yaml", url, "--user", "operator", "--security", security,
                   env={"TWIN_OPCUA_PASSWORD": "wrong"})  # fmt: skip
        assert (
            r.exit_code == 2 and r.stderr.strip() == f"error: {url} refused the session: BadUserAccessDenied"
        )


def test_discovered_map_has_no_writable_tag_by_default(plant, tmp_path):
    out = Path(tmp_path / "plant.yaml")
    assert invoke("tagmap", "discover", plant, "--out", str(out)).exit_code == 0
    assert "writable" not in out.read_text()
