"""One M365Directory per customer tenant for the app registration in settings, sharing one token cache."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx

from connectors.m365.client import GRAPH_URL, LOGIN_URL, GraphClient
from connectors.m365.directory import M365Directory
from connectors.tokens import InMemoryTokenCache, TokenCache


class DirectoryPool:
    """Callable tenant id -> M365Directory (the factory core.tenant_context expects); closes its clients."""

    def __init__(self, *, client_id: str, client_secret: str, graph_url: str = GRAPH_URL,
                 login_url: str = LOGIN_URL, transport: httpx.AsyncBaseTransport | None = None,
                 token_cache: TokenCache | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        self._client_id, self._secret = client_id, client_secret
        self._graph_url, self._login_url, self._transport = graph_url, login_url, transport
        self._tokens = token_cache or InMemoryTokenCache()
        self._dirs: dict[str, M365Directory] = {}
        self._sleep = sleep or asyncio.sleep

    def __repr__(self) -> str:
        return f"DirectoryPool(tenants={len(self._dirs)})"

    def __call__(self, tenant_id: str) -> M365Directory:
        found = self._dirs.get(tenant_id)
        if found is None:
            found = self._dirs[tenant_id] = M365Directory(GraphClient(
                tenant_id=tenant_id, client_id=self._client_id, client_secret=self._secret,
                graph_url=self._graph_url, login_url=self._login_url, transport=self._transport,
                token_cache=self._tokens, sleep=self._sleep))
        return found

    async def aclose(self) -> None:
        for d in self._dirs.values():
            await d.client.aclose()
        self._dirs.clear()
