"""`twin plant serve | cert | user add`: run the simulated line as an OPC UA server, make its certificates
and its hashed user list. Parsing only; the server lives in adapters/opcua/server.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from twin.errors import TwinError

CLIENT_URI = "urn:ald-anneal-twin:client"


def register(app: typer.Typer) -> None:
    plant = typer.Typer(help="The simulated line as a virtual plant: an OPC UA server.", no_args_is_help=True)
    user = typer.Typer(
        help="The server's user list (passwords stored as salted scrypt hashes).", no_args_is_help=True
    )
    plant.add_typer(user, name="user")
    app.add_typer(plant, name="plant")
    plant.command("serve")(serve)
    plant.command("cert")(cert)
    from twin.commands.mirror import plant_write

    plant.command("write")(plant_write)
    user.command("add")(user_add)


def serve(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file", show_default=False)],
    endpoint: Annotated[str, typer.Option(help="where to listen, opc.tcp://HOST:PORT")] = "opc.tcp://127.0.0.1:4840",
    speed: Annotated[float, typer.Option(help="simulated seconds per wall-clock second")] = 3600.0,
    seed: Annotated[int | None, typer.Option(help="seed (default: the scenario's)")] = None,
    security: Annotated[str, typer.Option(help="offered endpoints, comma separated: None, Sign, SignAndEncrypt (Basic256Sha256)")] = "None",
    cert: Annotated[Path | None, typer.Option(help="server certificate (DER), from `twin plant cert`")] = None,
    key: Annotated[Path | None, typer.Option(help="server private key (PEM)")] = None,
    users: Annotated[Path | None, typer.Option(help="users file (YAML user -> hash), from `twin plant user add`")] = None,
    no_anonymous: Annotated[bool, typer.Option("--no-anonymous", help="refuse anonymous sessions")] = False,
    trust_dir: Annotated[Path | None, typer.Option(help="directory of trusted client certificates; others are refused")] = None,
    allow_writes: Annotated[bool, typer.Option("--allow-writes", help="accept authenticated writes to Setpoint_C and Hold")] = False,
    max_sessions_per_client: Annotated[int, typer.Option(help="open sessions per client host")] = 4,
    max_subscriptions: Annotated[int, typer.Option(help="subscriptions per session")] = 4,
    max_monitored_items: Annotated[int, typer.Option(help="monitored items per session, over its subscriptions")] = 1000,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log every client request")] = False,
) -> None:  # fmt: skip
    """Run the line in real time scaled by --speed and publish it under Objects/Plant until Ctrl-C."""
    import asyncio

    from adapters.opcua.server import ServeConfig, serve_forever
    from twin.scenario import load_scenario

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not verbose:
        logging.getLogger("asyncua").setLevel(logging.ERROR)
    cfg = ServeConfig(
        scenario=load_scenario(scenario),
        endpoint=endpoint,
        speed=speed,
        seed=seed,
        security=tuple(m.strip() for m in security.split(",") if m.strip()),
        cert=cert,
        key=key,
        users_file=users,
        allow_anonymous=not no_anonymous,
        trust_dir=trust_dir,
        allow_writes=allow_writes,
        max_sessions_per_client=max_sessions_per_client,
        max_subscriptions_per_session=max_subscriptions,
        max_monitored_items_per_session=max_monitored_items,
    )

    def ready(ps) -> None:
        modes = ", ".join(cfg.security)
        anon = "refused" if no_anonymous else "allowed"
        typer.echo(f"serving {cfg.scenario.name} at {ps.endpoint} (speed {speed:g}, security {modes}, anonymous {anon}, "
                   f"writes {'on' if allow_writes else 'off'}); Ctrl-C stops", err=True)  # fmt: skip

    try:
        asyncio.run(serve_forever(cfg, on_ready=ready))
    except KeyboardInterrupt:
        typer.echo("server stopped", err=True)


def cert(
    out: Annotated[Path, typer.Option(help="directory for the certificate and its private key")] = Path("pki"),
    name: Annotated[str | None, typer.Option(help="file stem (default: server, or client with --client)")] = None,
    host: Annotated[str, typer.Option(help="host name in the certificate")] = "localhost",
    app_uri: Annotated[str | None, typer.Option(help="application URI (must match the application using it)")] = None,
    client: Annotated[bool, typer.Option("--client", help="a client certificate instead of the server's")] = False,
    trust: Annotated[Path | None, typer.Option(help="also copy the certificate, never the key, into this trust-list directory (e.g. the server's --trust-dir)")] = None,
) -> None:  # fmt: skip
    """Generate a self-signed certificate (DER) and private key (PEM) in --out; kept if they exist and are valid.

    The private key stays in --out; --trust DIR puts a copy of the certificate alone into a trust list."""
    import asyncio

    from adapters.opcua.security import make_certificate
    from adapters.opcua.server import APPLICATION_URI
    from twin.outputs import write_bytes_atomic

    if trust is not None and trust.resolve() == out.resolve():
        raise TwinError(
            f"--trust {trust} is the --out directory: the private key must not go into a trust list; "
            f"give --out another directory"
        )
    stem = name or ("client" if client else "server")
    uri = app_uri or (CLIENT_URI if client else APPLICATION_URI)
    cert_path, key_path = out / f"{stem}_cert.der", out / f"{stem}_key.pem"
    try:
        asyncio.run(make_certificate(cert_path, key_path, uri, host, client=client))
    except OSError as exc:
        raise TwinError(f"cannot write certificate to {out}: {exc.strerror or exc}") from None
    lines = [f"certificate {cert_path}", f"private key {key_path}"]
    if trust is not None:
        copy = write_bytes_atomic(trust / cert_path.name, cert_path.read_bytes())
        lines.append(f"trusted copy {copy}")
    typer.echo("\n".join([*lines, f"application URI {uri}"]))


def user_add(
    users_file: Annotated[Path, typer.Argument(help="users file (created if missing)", show_default=False)],
    name: Annotated[str, typer.Argument(help="user name", show_default=False)],
    password: Annotated[str | None, typer.Option(help="password (default: the TWIN_OPCUA_PASSWORD variable, else a prompt)", envvar="TWIN_OPCUA_PASSWORD", show_envvar=False)] = None,
) -> None:  # fmt: skip
    """Add or replace a user; the password is stored as a salted scrypt hash.

    The password comes from --password, else the TWIN_OPCUA_PASSWORD variable (which the client commands also
    read), else a prompt."""
    from adapters.opcua.security import add_user

    if password is None:
        password = typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)
    if not password:
        raise TwinError("empty password")
    try:
        add_user(users_file, name, password)
    except OSError as exc:
        raise TwinError(f"cannot write {users_file}: {exc.strerror or exc}") from None
    typer.echo(f"user {name} written to {users_file}")
