"""The one httpx.AsyncClient factory every connector uses: timeouts, pool limits, safe logging hooks.

Tests swap the transport (httpx.MockTransport or a loopback fake server), never patch modules.
Logging hooks record method, host, path, status and duration only: never headers, bodies or query
strings (which can carry credentials).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import httpx

log = logging.getLogger("deskbridge.psa.http")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# Every connection may stay open: with fewer kept alive than in use, a sync reading children 8 at a time
# reconnected for nearly every request (2,995 connects for 3,010 calls; issue 20, bench/first_sync.py).
DEFAULT_LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=8)


async def _on_request(request: httpx.Request) -> None:
    request.extensions["deskbridge_start"] = time.perf_counter()


def _response_hook(path_for_log: Callable[[str], str] | None) -> Callable[[httpx.Response], Awaitable[None]]:
    async def on_response(response: httpx.Response) -> None:
        start = response.request.extensions.get("deskbridge_start")
        ms = int((time.perf_counter() - start) * 1000) if start else None
        path = response.request.url.path
        log.debug(
            "psa request",
            extra={"method": response.request.method, "host": response.request.url.host,
                   "path": path_for_log(path) if path_for_log else path, "status": response.status_code,
                   "duration_ms": ms},
        )

    return on_response


_on_response = _response_hook(None)


def redact_addresses(path: str) -> str:
    """A URL path with every segment that holds an e-mail address or UPN replaced by a short hash of it
    (personal data stays out of logs; equal addresses still hash alike, so a log can be followed)."""
    def seg(part: str) -> str:
        if "@" not in unquote(part):
            return part
        return "upn-" + hashlib.sha256(unquote(part).lower().encode()).hexdigest()[:10]

    return "/".join(seg(p) for p in path.split("/"))


def make_client(
    base_url: str,
    *,
    headers: dict[str, str] | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: httpx.Timeout | float | None = None,
    limits: httpx.Limits | None = None,
    path_for_log: Callable[[str], str] | None = None,
    **kw: Any,
) -> httpx.AsyncClient:
    """An AsyncClient for one PSA tenant; `path_for_log` rewrites the path the debug log shows (e.g.
    `redact_addresses` where paths name people)."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        auth=auth,
        transport=transport,
        timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
        limits=limits or DEFAULT_LIMITS,
        follow_redirects=False,
        event_hooks={"request": [_on_request],
                     "response": [_response_hook(path_for_log) if path_for_log else _on_response]},
        **kw,
    )


def parse_retry_after(value: str | None, *, now: float | None = None, cap: float = 3600.0) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), capped; None if absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, min(float(value), cap))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = now if now is not None else time.time()
    return max(0.0, min(when.timestamp() - current, cap))
