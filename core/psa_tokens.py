"""The database TokenCache (connectors/tokens.py): one bearer token per PSA tenant and API application,
shared by every instance of Deskbridge (reference/psa-apis.md §4.1, gotcha 34: a new HaloPSA token may
invalidate the older ones, so per-instance caches would invalidate each other in turn).

- A row of `psa_token` per key; the key is stored hashed (it names the tenant and client id) and the token
  encrypted with the credential cipher, bound to that key (a ciphertext copied to another row fails).
- Minting is serialised across instances by a database lease (`Lease` "psa-token:<hash>", the same leases
  the scheduler uses: SQLite and PostgreSQL alike) and within the process by an asyncio lock. A holder that
  dies loses the lease after `lease_seconds`. Whoever waited re-reads the row first (HaloAuth does), so one
  token is minted, not one per instance.
- `get` is served from a short in-process memo (`memo_seconds`) so a busy process does not read the row for
  every request; taking the lock drops the memo, so a refresh always sees the row.
- Nothing here logs a token; errors never carry one.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta

from connectors.errors import PsaUnavailable
from connectors.tokens import CachedToken
from core import scheduling
from store.crypto import CredentialCipher, CredentialError
from store.db import Database, Scope
from store.sql import dialect_insert
from store.tables import PsaToken

LEASE_SECONDS = 30.0
WAIT_SECONDS = 75.0
POLL_SECONDS = 0.1
MEMO_SECONDS = 2.0


def row_key(key: str) -> str:
    """The stored key: a hash of the connector's cache key (tenant and client id stay out of the table)."""
    return hashlib.sha256(key.encode()).hexdigest()


class DatabaseTokenCache:
    """A TokenCache in the database, shared by every instance using it."""

    def __init__(self, db: Database, cipher: CredentialCipher, *, holder: str = "local",
                 lease_seconds: float = LEASE_SECONDS, wait_seconds: float = WAIT_SECONDS,
                 poll_seconds: float = POLL_SECONDS, memo_seconds: float = MEMO_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.db, self.cipher = db, cipher
        self.holder = f"{holder}/{uuid.uuid4().hex[:8]}"
        self.lease_seconds, self.wait_seconds, self.poll_seconds = lease_seconds, wait_seconds, poll_seconds
        self.memo_seconds, self.clock = memo_seconds, clock
        self._memo: dict[str, tuple[float, CachedToken | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.reads = self.writes = 0

    def _aad(self, hashed: str) -> str:
        return f"psa-token:{hashed}"

    async def get(self, key: str) -> CachedToken | None:
        """The token under `key` (None when absent, expired, or unreadable with this instance's keys)."""
        hashed, now = row_key(key), self.clock()
        memo = self._memo.get(hashed)
        if memo is not None and now - memo[0] < self.memo_seconds:
            token = memo[1]
        else:
            token = await self._read(hashed)
            self._memo[hashed] = (now, token)
        return token if token is not None and token.expires_at > now else None

    async def _read(self, hashed: str) -> CachedToken | None:
        self.reads += 1
        async with self.db.read(Scope.system_wide()) as s:
            row = await s.get(PsaToken, hashed)
            if row is None:
                return None
            blob, expires = row.ciphertext, row.expires_at
        try:
            data = self.cipher.decrypt(blob, workspace_id=0, kind=self._aad(hashed))
        except CredentialError:
            return None  # another key, or a row copied from elsewhere: mint a new one
        return CachedToken(str(data["access_token"]), expires.timestamp())

    async def put(self, key: str, token: CachedToken) -> None:
        """Store (or replace) the token under `key`, encrypted."""
        hashed = row_key(key)
        blob = self.cipher.encrypt({"access_token": token.access_token}, workspace_id=0, kind=self._aad(hashed))
        values = {"ciphertext": blob, "key_id": self.cipher.primary_key_id,
                  "expires_at": datetime.fromtimestamp(token.expires_at, UTC), "updated_at": datetime.now(UTC)}
        stmt = dialect_insert(self.db.dialect, PsaToken).values(key=hashed, **values)
        stmt = stmt.on_conflict_do_update(index_elements=["key"], set_=values)
        async with self.db.write(Scope.system_wide()) as s:
            await s.execute(stmt)
        self.writes += 1
        self._memo[hashed] = (self.clock(), token)

    async def discard(self, key: str, access_token: str) -> None:
        """Delete the row only while it still holds `access_token` (another instance may have replaced it)."""
        hashed = row_key(key)
        self._memo.pop(hashed, None)
        async with self.db.write(Scope.system_wide()) as s:
            row = await s.get(PsaToken, hashed)
            if row is None:
                return
            try:
                current = self.cipher.decrypt(row.ciphertext, workspace_id=0, kind=self._aad(hashed))
            except CredentialError:
                current = {}
            if current.get("access_token") in (access_token, None):
                await s.delete(row)

    @asynccontextmanager
    async def _held(self, key: str) -> AsyncIterator[None]:
        hashed = row_key(key)
        name = f"psa-token:{hashed[:40]}"
        async with self._locks.setdefault(hashed, asyncio.Lock()):
            waited = 0.0
            while not await scheduling.acquire_lease(self.db, name, self.holder,
                                                     timedelta(seconds=self.lease_seconds), datetime.now(UTC)):
                if waited >= self.wait_seconds:
                    raise PsaUnavailable("Another instance has been fetching this PSA's token for too long.")
                await asyncio.sleep(self.poll_seconds)
                waited += self.poll_seconds
            self._memo.pop(hashed, None)  # under the lock, read what the last holder stored
            try:
                yield
            finally:
                await scheduling.release_lease(self.db, name, self.holder)

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """Held while a token for `key` is minted: across instances (a lease) and in this process."""
        return self._held(key)
