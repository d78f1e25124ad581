"""The token-cache seam: where connectors that mint short-lived bearer tokens keep them.

Some PSAs (HaloPSA, OAuth2 client credentials) mint a bearer token per API application, and a new token
may invalidate the older ones (djpsa). Every instance of Deskbridge must therefore share one token per
tenant: the composition root hands connectors a `TokenCache`. The production implementation lives in
core/ (the database: token encrypted at rest, minting serialised by a lease); connectors ship only an
in-memory one for a single process and tests. This module is part of the seam core may import
(with connectors.base and connectors.errors).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class CachedToken:
    """A bearer token and when it expires (epoch seconds)."""

    access_token: str
    expires_at: float

    def __repr__(self) -> str:  # never print the token
        return f"CachedToken(expires_at={self.expires_at:.0f})"


@runtime_checkable
class TokenCache(Protocol):
    """Where tokens live between requests; a database-backed one shares them across instances."""

    async def get(self, key: str) -> CachedToken | None:
        """The token stored under `key`, or None (implementations may drop expired ones)."""
        ...

    async def put(self, key: str, token: CachedToken) -> None:
        """Store `token` under `key` until its `expires_at`."""
        ...

    async def discard(self, key: str, access_token: str) -> None:
        """Remove the token under `key` only if it is still `access_token` (compare-and-delete)."""
        ...

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """A lock held while a token for `key` is minted (cross-instance in shared implementations)."""
        ...


class InMemoryTokenCache:
    """A TokenCache for one process (tests, and connectors built without a shared cache)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: dict[str, CachedToken] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.puts = 0

    async def get(self, key: str) -> CachedToken | None:
        """The token under `key`, None once it has expired."""
        token = self._tokens.get(key)
        if token is not None and token.expires_at <= self._clock():
            self._tokens.pop(key, None)
            return None
        return token

    async def put(self, key: str, token: CachedToken) -> None:
        """Store `token` under `key`."""
        self._tokens[key] = token
        self.puts += 1

    async def discard(self, key: str, access_token: str) -> None:
        """Remove the token under `key` if it is still `access_token`."""
        current = self._tokens.get(key)
        if current is not None and current.access_token == access_token:
            del self._tokens[key]

    @asynccontextmanager
    async def _held(self, key: str) -> AsyncIterator[None]:
        async with self._locks.setdefault(key, asyncio.Lock()):
            yield

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """A per-key asyncio lock (this process only)."""
        return self._held(key)
