"""Per-key rate limiting (token bucket) and the request body size limit of the REST API.

Buckets live in this process: with several instances each enforces the limit on its own share of traffic
(a load balancer spreading requests evenly makes the effective limit roughly rate x instances).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.api import problems

MAX_TRACKED_KEYS = 10_000
# Failed authentications per client address: a burst of 20, then one every 2 s. Past it the client gets 429
# without a database lookup (a key this instance recently verified still works from that address).
AUTH_FAILURE_BURST = 20
AUTH_FAILURE_RATE = 0.5


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per API key: `burst` requests at once, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst, self._clock = rate, burst, clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """Spend one token; returns 0 when allowed, else the seconds until a token is available."""
        now = self._clock()
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket(float(self.burst), now)
            if len(self._buckets) > MAX_TRACKED_KEYS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            b.tokens = min(float(self.burst), b.tokens + (now - b.at) * self.rate)
            b.at = now
        if b.tokens >= 1:
            b.tokens -= 1
            return 0.0
        return (1 - b.tokens) / self.rate

    def wait(self, key: str) -> float:
        """Seconds until `key` has a token again (0 when it has one now); spends nothing."""
        b = self._buckets.get(key)
        if b is None:
            return 0.0
        tokens = min(float(self.burst), b.tokens + (self._clock() - b.at) * self.rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate


class BodyLimit:
    """ASGI middleware: requests under `prefix` with a body over `max_bytes` get a 413 problem.

    Checks Content-Length first, then counts the bytes actually received (chunked bodies)."""

    def __init__(self, app: ASGIApp, *, prefix: str, max_bytes: int) -> None:
        self.app, self.prefix, self.max_bytes = app, prefix, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(scope, send)
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise problems.PayloadTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        exc = problems.PayloadTooLarge(self.max_bytes)
        body = {"type": problems.TYPE_BASE + "request-body-too-large", "title": "Request body too large",
                "status": 413, "detail": exc.detail, "instance": scope["path"],
                "hint": "Send a smaller body: a description takes up to 100,000 characters, a comment 30,000 (files go on the ticket in chat or in the PSA)."}
        resp = problems.response(413, body, {"Connection": "close"})
        await resp(scope, _drain, send)


async def _drain() -> Message:
    return {"type": "http.disconnect"}
