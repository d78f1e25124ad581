"""The HTTP loop Hudu and IT Glue clients share: API key header, 429/5xx retries honouring Retry-After,
errors translated once into connectors.docs errors. The key is never logged (connectors.http logs no headers)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from connectors.docs import DocsAuthError, DocsError, DocsThrottled, DocsUnavailable
from connectors.http import make_client, parse_retry_after


class DocsHttp:
    """GETs against one platform instance (base URL + x-api-key)."""

    def __init__(self, base_url: str, api_key: str, *, name: str, headers: dict[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None, max_retries: int = 3, max_wait: float = 30.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, timeout: float = 15.0) -> None:
        self.name = name
        self._http = make_client(base_url.rstrip("/"), headers={"x-api-key": api_key, **(headers or {})},
                                 transport=transport, timeout=timeout)
        self._max_retries, self._max_wait, self._sleep = max_retries, max_wait, sleep

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        attempt = 0
        while True:
            try:
                r = await self._http.get(path, params=params)
            except httpx.HTTPError as exc:
                raise DocsUnavailable(f"{self.name} could not be reached ({type(exc).__name__}).") from None
            if r.status_code == 429 or r.status_code >= 500:
                wait = parse_retry_after(r.headers.get("Retry-After"), cap=self._max_wait)
                if attempt >= self._max_retries:
                    if r.status_code == 429:
                        raise DocsThrottled(f"{self.name} is rate limiting requests.", retry_after=wait, status=429)
                    raise DocsUnavailable(f"{self.name} answered {r.status_code}.", status=r.status_code)
                attempt += 1
                await self._sleep(wait if wait is not None else min(2.0 ** attempt, self._max_wait))
                continue
            if r.status_code in (401, 403):
                raise DocsAuthError(f"{self.name} refused the API key ({r.status_code}). Check it has not expired "
                                    "and may read this data.", status=r.status_code)
            if r.status_code >= 400:
                raise DocsError(f"{self.name} refused the request ({r.status_code}).", status=r.status_code)
            try:
                return r.json()
            except ValueError:
                raise DocsUnavailable(f"{self.name} answered with a body that is not JSON.") from None
