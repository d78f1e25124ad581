"""REST API keys: created (shown once), listed, revoked, and turned into an Actor on each request.

A key looks like `dbk_<key_id>_<secret>`. Only the key id (a lookup prefix, not secret) and the SHA-256 of
the whole key are stored; the key has 256 bits of randomness, so a fast hash is the right tool (nothing
to brute-force). The workspace comes from the key row only, never from the request (OWASP API1/API2).
Scopes are ordered: `read` < `write` < `admin`; a key holding one has the ones below it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import select

from core.admin_audit import Who, record_change
from core.context import Actor
from core.errors import Conflict, DeskbridgeError, InvalidInput, NotFound
from core.singleflight import SingleFlight
from store.db import Database, Scope
from store.enums import Origin
from store.tables import ApiKey
from store.types import utcnow

PREFIX = "dbk"
SCOPES = ("read", "write", "admin")
_KEY = re.compile(r"^dbk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
# last_used_at is refreshed at most this often, so a busy key does not turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# A verified key is trusted this long without a database read. A revoke through this process takes effect
# at once (it clears the cache); other instances notice within this time.
AUTH_CACHE_TTL = timedelta(seconds=5)


class Unauthenticated(DeskbridgeError):
    """No key, a malformed key, an unknown key or a revoked key (the caller is told no more than that)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated key: whose workspace, which key, which scopes."""

    workspace_id: int
    key_pk: int
    key_id: str
    name: str
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        """True if the key holds `scope` or a higher one."""
        level = SCOPES.index(scope)
        return any(SCOPES.index(s) >= level for s in self.scopes if s in SCOPES)

    def actor(self) -> Actor:
        """The Actor every service call of this request runs as."""
        return Actor(workspace_id=self.workspace_id, origin=Origin.API, display=f"apikey:{self.name}",
                     is_admin=self.has("admin"))


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What `list` shows about a key (never the key itself)."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None


def hash_key(token: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Validated, de-duplicated scopes in their fixed order; InvalidInput for an unknown one."""
    wanted = {s.strip().lower() for s in scopes if s.strip()}
    unknown = wanted - set(SCOPES)
    if unknown or not wanted:
        raise InvalidInput(f"Unknown scope: {', '.join(sorted(unknown)) or '(none given)'}.",
                           hint="Use read, write or admin (each includes the ones before it).", field="scope")
    return tuple(s for s in SCOPES if s in wanted)


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(key_id=row.key_id, name=row.name, scopes=tuple(row.scopes.split(",")), created_at=row.created_at,
                   created_by=row.created_by, last_used_at=row.last_used_at, revoked_at=row.revoked_at)


class ApiKeyService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow,
                 cache_ttl: timedelta = AUTH_CACHE_TTL) -> None:
        self.db = db
        self._clock = clock
        self._ttl = cache_ttl
        # key id -> (hash of the whole key, principal, checked at); only valid, unrevoked keys.
        self._cache: dict[str, tuple[str, Principal, datetime]] = {}
        # A burst of requests with one uncached key (a client's first 50 at once) checks it once: one read and
        # at most one last-used write, not 50 writes queued for SQLite's one write turn.
        self._checks: SingleFlight[Principal] = SingleFlight()

    async def create(self, workspace_id: int, *, name: str, scopes: Iterable[str],
                     created_by: str = "cli", actor: Who = None) -> tuple[KeyInfo, str]:
        """Create a key; returns its info and the key itself, which is never shown again."""
        clean = name.strip()
        if not _NAME.match(clean):
            raise InvalidInput(f"'{name}' is not a valid key name.",
                               hint="Use 1-100 letters, digits, spaces, dots, dashes or underscores.", field="name")
        scope_list = normalize_scopes(scopes)
        key_id = secrets.token_hex(6)
        token = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            taken = (await session.exec(select(ApiKey).where(ApiKey.name == clean))).first()
            if taken is not None:
                raise Conflict(f"An API key named '{clean}' already exists.",
                               hint="Pick another name (names of revoked keys stay taken, so the audit trail stays clear).")
            row = ApiKey(workspace_id=workspace_id, key_id=key_id, secret_hash=hash_key(token), name=clean,
                         scopes=",".join(scope_list), created_by=created_by[:200], created_at=self._clock())
            session.add(row)
            record_change(session, actor or created_by, workspace_id, "apikey.create",
                          {"name": clean, "key_id": key_id, "scopes": scope_list})
        return _info(row), token

    async def list(self, workspace_id: int, *, limit: int | None = None, after: str | None = None) -> list[KeyInfo]:
        """The workspace's keys, revoked ones included: all, oldest first; or `limit` of them by name after `after`
        (keyset pages; names are unique)."""
        stmt = select(ApiKey)
        if limit is None:
            stmt = stmt.order_by(ApiKey.created_at, ApiKey.id)  # type: ignore[arg-type]
        else:
            stmt = stmt.where(ApiKey.name > after) if after else stmt
            stmt = stmt.order_by(ApiKey.name).limit(limit)
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(stmt)).all()
        return [_info(r) for r in rows]

    async def revoke(self, workspace_id: int, ref: str, *, actor: Who = None) -> KeyInfo:
        """Revoke a key by name or key id: every instance refuses it within AUTH_CACHE_TTL (5 s), this one at once."""
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            row = (await session.exec(select(ApiKey).where(
                sa.or_(ApiKey.name == ref.strip(), ApiKey.key_id == ref.strip())))).first()  # type: ignore[arg-type]
            if row is None:
                raise NotFound(f"No API key named '{ref}'.", hint="See them on the admin page API keys (/admin/api-keys) or with `deskbridge apikey list`.")
            if row.revoked_at is None:
                row.revoked_at = self._clock()
                record_change(session, actor, workspace_id, "apikey.revoke", {"name": row.name, "key_id": row.key_id})
            self._cache.pop(row.key_id, None)
            return _info(row)

    def cached(self, token: str | None) -> Principal | None:
        """The principal for a key this instance checked in the last AUTH_CACHE_TTL, without a query; else None."""
        m = _KEY.match((token or "").strip())
        hit = self._cache.get(m.group(1)) if m else None
        if m is None or hit is None or self._clock() - hit[2] >= self._ttl:
            return None
        return hit[1] if hmac.compare_digest(hit[0], hash_key(m.group(0))) else None

    async def authenticate(self, token: str | None) -> Principal:
        """The principal for a presented key, or Unauthenticated (same message for every failure)."""
        m = _KEY.match((token or "").strip())
        if not m:
            raise _denied()
        presented = hash_key(m.group(0))
        now = self._clock()
        hit = self._cache.get(m.group(1))
        if hit is not None and now - hit[2] < self._ttl and hmac.compare_digest(hit[0], presented):
            return hit[1]
        key_id = m.group(1)
        return await self._checks.run((key_id, presented), lambda: self._check(key_id, presented, now))

    async def _check(self, key_id: str, presented: str, now: datetime) -> Principal:
        # System scope: the workspace is what we are looking up; the key id alone selects one row.
        async with self.db.read(Scope.system_wide()) as session:
            row = (await session.exec(select(ApiKey).where(ApiKey.key_id == key_id))).first()
        if row is None or row.revoked_at is not None or not hmac.compare_digest(row.secret_hash, presented):
            self._cache.pop(key_id, None)
            raise _denied()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            async with self.db.write(Scope.workspace(row.workspace_id)) as session:
                await session.execute(sa.update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))  # type: ignore[arg-type]
        principal = Principal(workspace_id=row.workspace_id, key_pk=row.id, key_id=row.key_id,  # type: ignore[arg-type]
                              name=row.name, scopes=frozenset(row.scopes.split(",")))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[row.key_id] = (row.secret_hash, principal, now)
        return principal


def _denied() -> Unauthenticated:
    return Unauthenticated("The API key is missing, malformed, unknown or revoked.",
                           hint="Send `Authorization: Bearer <key>` with a key from `deskbridge apikey create`.")
