"""Access control of the virtual plant server: hashed user list, password-checking user manager, client
certificate trust list, a service ruleset without admin rights, guarded writes, and per-client caps on
sessions, subscriptions and monitored items (asyncua 2.1.0 defaults accept any password and any client
certificate).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from pathlib import Path
from typing import Any

import yaml
from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import USER_TYPES, PermissionRuleset, User, UserRole
from asyncua.server.address_space import AttributeService
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession, SessionState
from asyncua.server.user_managers import UserManager

from adapters.opcua.errors import OpcUaUserError

_log = logging.getLogger(__name__)
_ADMIN = User(role=UserRole.Admin)
_ANONYMOUS = User(role=UserRole.Anonymous)

# scrypt parameters (RFC 7914 interactive-login values: N=2^14, r=8, p=1, 16-byte salt, 32-byte key)
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


# -- user list -------------------------------------------------------------------------------------------
def hash_password(password: str, salt: bytes | None = None) -> str:
    """A salted scrypt hash as one string: `scrypt$N$r$p$salt_b64$key_b64`."""
    salt = os.urandom(16) if salt is None else salt
    key = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches a hash made by `hash_password` (constant-time comparison)."""
    try:
        algo, n, r, p, salt_b64, key_b64 = stored.split("$")
        if algo != "scrypt":
            return False
        salt, key = base64.b64decode(salt_b64), base64.b64decode(key_b64)
        got = hashlib.scrypt(password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(key))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, key)


def load_users(path: str | Path) -> dict[str, str]:
    """Read a users file (YAML mapping user name -> hash from `hash_password`); OpcUaUserError naming the problem."""
    p = Path(path)
    if not p.is_file():
        raise OpcUaUserError(f"users file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise OpcUaUserError(f"{p}: YAML syntax error: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise OpcUaUserError(f"{p}: a users file must map user names to password hashes")
    users: dict[str, str] = {}
    for name, stored in data.items():
        if not isinstance(stored, str) or not stored.startswith("scrypt$") or stored.count("$") != 5:
            raise OpcUaUserError(
                f"{p}: user {name!r}: not a password hash (make one with `twin plant user add`)"
            )
        users[str(name)] = stored
    return users


def add_user(path: str | Path, name: str, password: str) -> None:
    """Add or replace a user in a users file (created if missing)."""
    p = Path(path)
    users = load_users(p) if p.exists() else {}
    if not name or any(c.isspace() for c in name):
        raise OpcUaUserError(f"user name must be non-empty without spaces, got {name!r}")
    users[name] = hash_password(password)
    write_file_atomic(p, yaml.safe_dump(users, sort_keys=True).encode(), 0o600)


def write_file_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write `data` under a temporary name beside `path` with `mode`, then move it onto `path`: a failure leaves
    the old file (or none) and no temporary file. (twin.outputs does the same for the twin's own files; the
    adapters may not import twin.)"""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


class PasswordUserManager(UserManager):
    """Checks user name and password against the hashed user list; anonymous only when allowed.

    Nobody is ever Admin (admins bypass every write check in asyncua): password users get UserRole.User.
    """

    def __init__(self, users: dict[str, str], allow_anonymous: bool) -> None:
        self.users = users
        self.allow_anonymous = allow_anonymous

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:  # fmt: skip
        if username is None:
            return User(role=UserRole.Anonymous) if self.allow_anonymous else None
        stored = self.users.get(username)
        if stored is None or password is None or not verify_password(password, stored):
            _log.warning("rejected user %r: wrong user name or password", username)
            return None
        return User(role=UserRole.User, name=username)


class NoAdminRuleset(PermissionRuleset):
    """Every session (anonymous or user) may use the ordinary services; nobody may add or delete nodes."""

    def __init__(self) -> None:
        self._allowed = {ua.NodeId(i) for i in USER_TYPES}

    def check_validity(self, user: User, action_type_id: ua.NodeId, body: Any) -> bool:
        return action_type_id in self._allowed


# -- writes ----------------------------------------------------------------------------------------------
class GuardedAttributeService(AttributeService):
    """Client writes: BadNotWritable unless the node is one of the writable tags and writes are enabled;
    BadUserAccessDenied for anonymous sessions and for any attribute other than Value.

    `on_write(nodeid, datavalue)` is called after an accepted write.
    """

    def __init__(self, aspace: Any) -> None:
        super().__init__(aspace)
        self.writable: set[ua.NodeId] = set()
        self.allow_writes = False
        self.on_write: Any = None

    async def write(self, params: ua.WriteParameters, user: User = _ADMIN) -> list[ua.StatusCode]:
        if user.role == UserRole.Admin and user.name is None:  # the server's own internal session
            return await super().write(params, user)
        res: list[ua.StatusCode] = []
        for wv in params.NodesToWrite:
            if wv.AttributeId != ua.AttributeIds.Value:
                res.append(ua.StatusCode(ua.StatusCodes.BadUserAccessDenied))
            elif not self.allow_writes or wv.NodeId not in self.writable:
                res.append(ua.StatusCode(ua.StatusCodes.BadNotWritable))
            elif user.role != UserRole.User:
                res.append(ua.StatusCode(ua.StatusCodes.BadUserAccessDenied))
            else:
                status = (await super().write(ua.WriteParameters(NodesToWrite=[wv]), user))[0]
                if status.is_good():
                    _log.info("client write by %s: %s = %s", user.name, wv.NodeId.to_string(), wv.Value.Value)
                    if self.on_write is not None:
                        await self.on_write(wv.NodeId, wv.Value)
                res.append(status)
        return res


# -- caps ------------------------------------------------------------------------------------------------
def _host(name: Any) -> str:
    return str(name[0]) if isinstance(name, tuple) and name else str(name)


class CappedSession(InternalSession):
    """A session refusing more than `max_subscriptions_per_session` subscriptions (BadTooManySubscriptions) and,
    over all its subscriptions, more than `max_monitored_items_per_session` monitored items (the items beyond it
    get BadTooManyMonitoredItems, the others are created)."""

    max_subscriptions_per_session = 10
    max_monitored_items_per_session = 1000

    def _own_subscriptions(self) -> list[Any]:
        return [
            s for s in self.subscription_service.subscriptions.values() if s.session_id == self.session_id
        ]

    def _monitored_items(self) -> int:
        return sum(
            len(getattr(s.monitored_item_srv, "_monitored_items", ())) for s in self._own_subscriptions()
        )

    async def create_monitored_items(self, params: Any) -> Any:
        room = max(0, self.max_monitored_items_per_session - self._monitored_items())
        items = list(params.ItemsToCreate)
        if len(items) <= room:
            return await super().create_monitored_items(params)
        _log.warning("refusing %d monitored items for %s: %d allowed", len(items) - room, self.name, room)
        params.ItemsToCreate = items[:room]
        results = list(await super().create_monitored_items(params)) if room else []
        refused = ua.MonitoredItemCreateResult()
        refused.StatusCode = ua.StatusCode(ua.StatusCodes.BadTooManyMonitoredItems)
        return results + [refused] * (len(items) - room)

    async def create_subscription(self, params: Any, callback: Any, request_callback: Any = None) -> Any:
        own = len(self._own_subscriptions())
        if own >= self.max_subscriptions_per_session:
            _log.warning("refusing subscription for %s: %d already", self.name, own)
            raise ServiceError(ua.StatusCodes.BadTooManySubscriptions)
        return await super().create_subscription(params, callback, request_callback=request_callback)

    def activate_session(self, params: Any, peer_certificate: bytes | None) -> Any:
        # asyncua 2.1.0 opens a None channel for any client (discovery needs it) and then lets it create and
        # activate a session even when no None endpoint is offered: refuse that here.
        if not peer_certificate and getattr(self.iserver, "require_secure_channel", False):
            _log.warning("refusing session of %s on an unsecured channel", self.name)
            raise ServiceError(ua.StatusCodes.BadSecurityModeRejected)
        return super().activate_session(params, peer_certificate)


class CappedInternalServer(InternalServer):
    """InternalServer with guarded writes and caps on sessions per client host and in total.

    A session counts until it is closed (asyncua keeps sessions with subscriptions after a lost connection,
    until their timeout), so one client cannot pile up orphaned sessions and subscriptions.
    """

    def __init__(self, user_manager: UserManager, max_sessions_per_client: int, max_sessions: int,
                 max_subscriptions_per_session: int, max_monitored_items_per_session: int = 1000) -> None:  # fmt: skip
        super().__init__(user_manager=user_manager)
        self.attribute_service = GuardedAttributeService(self.aspace)
        self.max_sessions_per_client = max_sessions_per_client
        self.max_sessions = max_sessions
        self.max_subscriptions_per_session = max_subscriptions_per_session
        self.max_subscriptions = max_sessions * max_subscriptions_per_session
        self.max_monitored_items_per_session = max_monitored_items_per_session
        self.require_secure_channel = False  # set when no None endpoint is offered

    def create_session(self, name: Any, user: User = _ANONYMOUS, external: bool = False) -> Any:
        if not external:
            return super().create_session(name, user=user, external=external)
        live = [s for s in self._external_sessions.values() if s.state != SessionState.Closed]
        host = _host(name)
        mine = sum(1 for s in live if _host(s.name) == host)
        if mine >= self.max_sessions_per_client or len(live) >= self.max_sessions:
            _log.warning("refusing session for %s: %d from this client, %d in total", host, mine, len(live))
            raise ServiceError(ua.StatusCodes.BadTooManySessions)
        session = CappedSession(self, self.aspace, self.subscription_service, name, user=user, external=True)
        session.max_subscriptions_per_session = self.max_subscriptions_per_session
        session.max_monitored_items_per_session = self.max_monitored_items_per_session
        return session


# -- certificates ----------------------------------------------------------------------------------------
def _trusted_certificates(d: Path) -> list[Any]:
    """The certificates of a trust-list directory, each file checked: DER or PEM certificates only."""
    from cryptography import x509

    certs = []
    for f in sorted(d.iterdir()):
        if f.name.startswith(".") or not f.is_file():
            continue
        data = f.read_bytes()
        if b"PRIVATE KEY-----" in data:
            raise OpcUaUserError(
                f"trust list directory {d} holds a private key ({f.name}): a trust list takes certificates "
                f"only; move the key elsewhere (`twin plant cert --client --trust {d}` copies just the "
                f"certificate)"
            )
        try:
            pem = data.lstrip().startswith(b"-----BEGIN")
            certs.append(
                x509.load_pem_x509_certificate(data) if pem else x509.load_der_x509_certificate(data)
            )
        except ValueError:
            raise OpcUaUserError(
                f"trust list directory {d}: {f.name} is not a certificate (DER or PEM)"
            ) from None
    return certs


async def trust_list_validator(trust_dir: str | Path) -> Any:
    """A certificate validator accepting only client certificates found in `trust_dir` (DER or PEM files). A
    private key or any other file that is not a certificate there is a one-line OpcUaUserError."""
    from asyncua.crypto.truststore import TrustStore
    from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
    from cryptography import x509

    d = Path(trust_dir)
    if not d.is_dir():
        raise OpcUaUserError(f"trust list directory not found: {d}")
    certs = _trusted_certificates(d)

    class _Checked(TrustStore):
        async def load_trust(self) -> None:  # the certificates checked above, not asyncua's file loader
            self._trust_store = x509.verification.Store(certs) if certs else None

    store = _Checked([d], [])
    await store.load()
    opts = CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT
    return CertificateValidator(opts, store)


async def make_certificate(cert: Path, key: Path, app_uri: str, host: str, client: bool = False) -> None:
    """A self-signed certificate (DER) and RSA key (PEM, mode 0600) whose URI SAN is `app_uri`. An existing key
    is kept, and so is an existing certificate that is still valid for `app_uri` and `host`. Each file is written
    under a temporary name and moved into place."""
    from asyncua.crypto import cert_gen
    from asyncua.crypto.uacrypto import check_certificate, load_certificate, load_private_key
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import ExtendedKeyUsageOID

    use = (
        [ExtendedKeyUsageOID.CLIENT_AUTH]
        if client
        else [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    subject = {"commonName": f"ald-anneal-twin {'client' if client else 'plant server'}",
               "organizationName": "ald-anneal-twin"}  # fmt: skip
    new_key = not key.is_file()
    if new_key:
        private_key = cert_gen.generate_private_key()
        write_file_atomic(key, cert_gen.dump_private_key_as_pem(private_key), 0o600)
    else:
        private_key = await load_private_key(key)
    renew = new_key or not cert.is_file() or check_certificate(await load_certificate(cert), app_uri, host)
    if renew:
        names = [x509.UniformResourceIdentifier(app_uri), x509.DNSName(host)]
        made = cert_gen.generate_self_signed_app_certificate(
            private_key, app_uri, subject, names, use, days=365
        )
        write_file_atomic(cert, made.public_bytes(encoding=Encoding.DER), 0o644)
