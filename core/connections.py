"""PSA connections: credentials checked before they are saved, encrypted at rest, re-auth in place."""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import col, select

from connectors.base import (
    AccountInfo,
    CallbackRegistrar,
    ConnectionConfig,
    ConnectorFactory,
    CredentialChecker,
    PsaConnector,
)
from connectors.errors import (
    PsaAuthError,
    PsaError,
    PsaNotFound,
    PsaRateLimited,
    PsaTimeout,
    PsaUnavailable,
    PsaValidationError,
)
from core import ticket_refs
from core.admin_audit import record_change
from core.context import Actor
from core.errors import Conflict, ConnectionProblem, InvalidInput, NotFound
from store.crypto import CredentialCipher, CredentialError
from store.db import Database, Scope
from store.tables import PsaConnection
from store.types import utcnow

log = logging.getLogger(__name__)
TAKEN_HINT = ("Pick another name, or re-enter that connection's credentials on its admin page (open it from the "
              "Overview, /admin) or with `deskbridge connection reauth NAME`.")


@dataclass(frozen=True, slots=True)
class CallbackSetup:
    """Where the PSA's callbacks point, and whether the connector registered them itself."""

    url: str
    registered: bool  # False: this PSA's callbacks are set up in the PSA by hand (the URL is what to paste)
    changes: dict[str, Any]


def check_failure(kind: str, exc: PsaError) -> tuple[str, str]:
    """(message, hint) for a failed connection check: a missing setting, an unreachable host, refused keys
    and a refused request are different problems with different fixes. Nothing was saved in any case."""
    if isinstance(exc, PsaValidationError) and exc.fields:
        names = ", ".join(sorted(exc.fields))
        return (f"The {kind} settings are incomplete or invalid ({names}): {exc.message}",
                "Fill them in (the admin page's form, or --set NAME=VALUE / --secret NAME with "
                "`deskbridge connection add`) and try again. Nothing was saved.")
    if isinstance(exc, PsaAuthError):
        return (f"The {kind} server refused these credentials: {exc.message}",
                "Check the keys and the API member's role, then try again. Nothing was saved.")
    if isinstance(exc, PsaRateLimited):
        return (f"The {kind} server is rate limiting us right now: {exc.message}",
                "Wait a minute and try again. Nothing was saved.")
    if isinstance(exc, (PsaUnavailable, PsaTimeout)):
        return (f"Could not reach the {kind} server: {exc.message}",
                "Check the host name (site / URL setting), DNS and that this machine may reach it. Nothing was saved.")
    if isinstance(exc, PsaNotFound):
        return (f"The {kind} server does not know this tenant or API path: {exc.message}",
                "Check the company id / tenant and the site or API URL. Nothing was saved.")
    return (f"The {kind} server refused the check: {exc.message}", "Nothing was saved.")


class ConnectionService:
    def __init__(
        self,
        db: Database,
        *,
        cipher: CredentialCipher,
        checker: CredentialChecker,
        factory: ConnectorFactory,
        known_kinds: frozenset[str],
    ) -> None:
        self.db = db
        self.cipher = cipher
        self._checker = checker
        self._factory = factory
        self.known_kinds = known_kinds
        self._shared: dict[int, tuple[str, _Shared]] = {}
        self._retired: list[PsaConnector] = []

    async def _check(self, kind: str, settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> AccountInfo:
        """Prove the settings and credentials work; each kind of failure is told as what it is."""
        try:
            return await self._checker(kind, settings, credentials)
        except PsaError as exc:
            message, hint = check_failure(kind, exc)
            raise ConnectionProblem(message, hint=hint) from exc

    async def add(
        self,
        workspace_id: int,
        *,
        kind: str,
        name: str,
        settings: Mapping[str, Any],
        credentials: Mapping[str, Any],
        make_default: bool = True,
        actor: Actor | None = None,
    ) -> tuple[PsaConnection, AccountInfo]:
        """Check the credentials against the PSA, then save them encrypted (never before the check); audited with
        the kind, name and the names of the settings and credentials (never a credential's value)."""
        if kind not in self.known_kinds:
            raise InvalidInput(f"Unknown PSA kind '{kind}'.", hint="Known kinds: " + ", ".join(sorted(self.known_kinds)))
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInput("A connection needs a name of 1-100 characters.", field="name",
                               hint="Give it a short name people will recognise, e.g. 'cw' or 'halo'.")
        async with self.db.read(Scope.workspace(workspace_id)) as session:  # before asking the PSA anything
            if (await session.exec(select(PsaConnection.id).where(PsaConnection.name == name))).first():
                raise Conflict(f"A connection named '{name}' already exists.", hint=TAKEN_HINT)
        info = await self._check(kind, settings, credentials)
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            if (await session.exec(select(PsaConnection).where(PsaConnection.name == name))).first():
                raise Conflict(f"A connection named '{name}' already exists.", hint=TAKEN_HINT)
            if make_default:
                await session.execute(sa.update(PsaConnection).values(is_default=False))
            conn = PsaConnection(
                workspace_id=workspace_id,
                kind=kind,
                name=name,
                settings=dict(settings),
                credentials_ciphertext=self.cipher.encrypt(dict(credentials), workspace_id=workspace_id, kind=kind),
                credentials_key_id=self.cipher.primary_key_id,
                is_default=make_default,
                last_checked_at=utcnow(),
            )
            session.add(conn)
            await session.flush()
            record_change(session, actor, workspace_id, "connection.add", {
                "kind": kind, "name": name, "default": make_default, "settings": sorted(settings),
                "stored_encrypted": sorted(credentials)}, connection_id=conn.id)  # names, never values
        ticket_refs.forget(workspace_id)  # ticket names gain (or change) their connection prefix
        log.info("psa connection saved", extra={"workspace_id": workspace_id, "kind": kind, "connection": name})
        return conn, info

    async def reauth(self, workspace_id: int, connection_id: int, credentials: Mapping[str, Any], *,
                     actor: Actor | None = None) -> AccountInfo:
        """Replace a connection's credentials (checked first); its tickets, cursors and mappings stay."""
        conn = await self.get(workspace_id, connection_id)
        info = await self._check(conn.kind, conn.settings, credentials)
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            row = await session.get(PsaConnection, connection_id)
            assert row is not None
            row.credentials_ciphertext = self.cipher.encrypt(dict(credentials), workspace_id=workspace_id, kind=row.kind)
            row.credentials_key_id = self.cipher.primary_key_id
            row.last_checked_at = utcnow()
            row.last_error = None
            row.enabled = True
            record_change(session, actor, workspace_id, "connection.reauth", {"replaced": sorted(credentials)},
                          connection_id=connection_id)  # which credentials, never their values
        return info

    async def install_callbacks(self, workspace_id: int, connection_id: int, public_url: str | None, *,
                                actor: Actor | None = None) -> CallbackSetup:
        """Register the PSA's callbacks to this instance itself (housekeeping included: one per type, stale
        ones pointing at our host removed). The URL carries a token of the connection's, made on first use."""
        conn = await self.get(workspace_id, connection_id)
        if not public_url or not public_url.lower().startswith(("https://", "http://")):
            raise InvalidInput("Deskbridge does not know its public URL, so the PSA cannot reach it.",
                               hint="Set DESKBRIDGE_PUBLIC_URL (e.g. https://deskbridge.example.com), then "
                                    f"register the callbacks again (the connection's admin page, or "
                                    f"`deskbridge connection callbacks {conn.name}`).")
        token = str((conn.settings or {}).get("webhook_token") or "")
        if not token:
            token = secrets.token_urlsafe(24)
            async with self.db.write(Scope.workspace(workspace_id)) as session:
                row = await session.get(PsaConnection, connection_id)
                assert row is not None
                row.settings = {**(row.settings or {}), "webhook_token": token}
            conn = await self.get(workspace_id, connection_id)
        url = f"{public_url.rstrip('/')}/webhooks/{conn.id}/{token}"
        async with self.open(conn) as connector:
            if not isinstance(connector, CallbackRegistrar):
                setup = CallbackSetup(url=url, registered=False, changes={})
            else:
                try:
                    setup = CallbackSetup(url=url, registered=True, changes=dict(await connector.ensure_callbacks(url)))
                except PsaError as exc:
                    message, hint = check_failure(conn.kind, exc)
                    raise ConnectionProblem(f"Could not register the callbacks: {message}", hint=hint) from exc
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            record_change(session, actor, workspace_id, "connection.callbacks",
                          {"registered": setup.registered, "changes": sorted(setup.changes)},
                          connection_id=connection_id)  # the URL carries the token: never recorded
        return setup

    async def get(self, workspace_id: int, connection_id: int) -> PsaConnection:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            conn = await session.get(PsaConnection, connection_id)
        if conn is None or conn.workspace_id != workspace_id:
            raise NotFound(f"Connection {connection_id} was not found.",
                           hint="See them on the admin overview (/admin) or with `deskbridge connection list`.")
        return conn

    async def by_name(self, workspace_id: int, name: str) -> PsaConnection:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            conn = (await session.exec(select(PsaConnection).where(PsaConnection.name == name))).first()
        if conn is None:
            raise NotFound(f"Connection '{name}' was not found.",
                           hint="See them on the admin overview (/admin) or with `deskbridge connection list`.")
        return conn

    async def list(self, workspace_id: int) -> list[PsaConnection]:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            return list((await session.exec(select(PsaConnection).order_by(col(PsaConnection.id)))).all())

    async def all_enabled(self) -> builtins.list[PsaConnection]:  # `list` is a method of this class
        """Every enabled connection of every workspace (for the scheduler and the outbox worker)."""
        async with self.db.read(Scope.system_wide()) as session:
            return list((await session.exec(
                select(PsaConnection).where(PsaConnection.enabled == sa.true()).order_by(col(PsaConnection.id)))).all())

    def config_for(self, conn: PsaConnection) -> ConnectionConfig:
        """Decrypt a connection's credentials into a config for its connector."""
        creds: dict[str, Any] = {}
        if conn.credentials_ciphertext:
            try:
                creds = self.cipher.decrypt(conn.credentials_ciphertext, workspace_id=conn.workspace_id, kind=conn.kind)
            except CredentialError as exc:
                raise ConnectionProblem(f"Connection '{conn.name}': {exc}",
                                        hint=f"Re-enter them with `deskbridge connection reauth {conn.name}`.") from exc
        return ConnectionConfig(connection_id=conn.id, workspace_id=conn.workspace_id,  # type: ignore[arg-type]
                                kind=conn.kind, settings=dict(conn.settings), credentials=creds)

    def build(self, conn: PsaConnection) -> PsaConnector:
        """A new connector of the caller's own (the caller closes it)."""
        return self._factory(self.config_for(conn))

    def shared(self, conn: PsaConnection) -> PsaConnector:
        """This process's long-lived connector for a connection (keeps its HTTP pool and what it discovered,
        e.g. ConnectWise's codebase, across sync runs). New credentials or settings get a new one. Closing
        it is a no-op; `aclose()` of this service closes them all."""
        fingerprint = hashlib.sha256(
            (conn.credentials_ciphertext or b"") + json.dumps(conn.settings, sort_keys=True, default=str).encode()
        ).hexdigest()
        cached = self._shared.get(conn.id)  # type: ignore[arg-type]
        if cached is not None and cached[0] == fingerprint:
            return cast("PsaConnector", cached[1])  # a proxy: every attribute is the connector's
        if cached is not None:
            self._retired.append(cached[1].inner)
        proxy = _Shared(self.build(conn))
        self._shared[conn.id] = (fingerprint, proxy)  # type: ignore[index]
        return cast("PsaConnector", proxy)

    async def aclose(self) -> None:
        """Close every shared connector (at shutdown)."""
        connectors = [c.inner for _, c in self._shared.values()] + self._retired
        self._shared.clear()
        self._retired = []
        for connector in connectors:
            try:
                await connector.aclose()
            except Exception:  # noqa: BLE001 - shutting down: log and go on
                log.warning("closing a connector failed", exc_info=True)

    @asynccontextmanager
    async def open(self, conn: PsaConnection) -> AsyncIterator[PsaConnector]:
        """A connector for one use; closed afterwards."""
        connector = self.build(conn)
        try:
            yield connector
        finally:
            await connector.aclose()


class _Shared:
    """A shared connector handed to one user: everything delegates, except that `aclose` does nothing."""

    def __init__(self, inner: PsaConnector) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def aclose(self) -> None:
        return None
