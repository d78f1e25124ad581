"""The one httpx.AsyncClient factory every connector uses: timeouts, pool limits, safe logging hooks.

Tests swap the transport (httpx.MockTransport or a loopback fake server), never patch modules.
Logging hooks record method, host, path, status and duration only: never headers, bodies or query
strings (which can carry credentials).
"""

from __future__ import annotations

import hashlib
import logging
import select
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import httpcore
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


class _Stream(httpcore.AsyncNetworkStream):
    """A connection's stream whose "is this idle kept-alive connection readable" check is one poll of its socket.

    The connection pool asks that of every idle connection before each request (httpcore `has_expired`: a
    readable idle socket means the server closed it). The default stream answers it by rebuilding the socket's
    attribute map each time, with a getpeername() system call in it: about a tenth of the CPU of a child read
    (py-spy, issue 20: 8 kept-alive connections asked on every request). Everything else is the inner stream's."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._sock = inner.get_extra_info("socket")

    # (`timeout` parameters: httpcore's stream and backend interface, passed through as they are)
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:  # noqa: ASYNC109
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return _readable(self._sock)
        if info == "socket" and self._sock is not None:
            return self._sock
        return self._inner.get_extra_info(info)


def _readable(sock: Any) -> bool:
    """Whether the socket has something to read (or is gone): httpcore's own test, without the attribute map."""
    fd = sock.fileno() if sock is not None else -1
    if fd == -1:
        return True
    if not hasattr(select, "poll"):  # pragma: no cover - Windows
        return bool(select.select([fd], [], [], 0)[0])
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


class _Backend(httpcore.AsyncNetworkBackend):
    """The default network backend, its streams wrapped in `_Stream`."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109
                          local_address: str | None = None, socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_tcp(host, port, timeout=timeout, local_address=local_address,
                                                     socket_options=socket_options))

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: Any = None) -> httpcore.AsyncNetworkStream:  # pragma: no cover
        return _Stream(await self._inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options))

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - not used by HTTP/1.1 pools
        await self._inner.sleep(seconds)


def _cheap_idle_checks(client: httpx.AsyncClient) -> None:
    """The client's own default transport (TLS, pool limits, timeouts, errors, proxies from the environment all as
    httpx made them) with its connections answering the pool's idle check cheaply (`_Stream`). If a newer
    httpx/httpcore lays its transport out differently, nothing is changed: slower, never wrong."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.AsyncNetworkBackend) and not isinstance(backend, _Backend):
        pool._network_backend = _Backend(backend)  # type: ignore[union-attr]


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
    client = httpx.AsyncClient(
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
    if transport is None:  # a transport given (tests, a fake) is used as it is
        _cheap_idle_checks(client)
    return client


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
