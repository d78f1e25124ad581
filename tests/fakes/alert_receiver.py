"""A loopback fake of an MSP's alert action endpoint (an RMM bridge, Rewst, n8n…) for the alert webhook.

It checks every request the way a careful receiver would, with its own HMAC code (not ours): the
signature over "<timestamp>." + raw body with the shared secret, the timestamp within 5 minutes, the
Idempotency-Key header equal to the body's key. It acts once per idempotency key, and answers what a
test scripts with `fail(...)` (e.g. 429 with Retry-After, 503, 400 with a JSON error).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import loopback


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any] | None
    signature_ok: bool
    answered: int


@dataclass
class _Script:
    status: int
    body: dict[str, Any] | str
    retry_after: str | None


@dataclass
class FakeAlertReceiver:
    secret: str
    received: list[Received] = field(default_factory=list)
    acted: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key -> body, once each
    port: int = 0
    _scripts: list[_Script] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/deskbridge?token=part-of-the-url"

    def fail(self, status: int, *, body: dict[str, Any] | str = "", retry_after: str | None = None,
             times: int = 1) -> None:
        self._scripts += [_Script(status, body, retry_after) for _ in range(times)]

    def verify(self, headers: dict[str, str], raw: bytes) -> bool:
        stamp = headers.get("X-Deskbridge-Timestamp", "")
        given = headers.get("X-Deskbridge-Signature", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
            return False
        want = "v1=" + hmac.new(self.secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(want, given)

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = dict(request.headers)
        ok = self.verify(headers, raw)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not ok:
            return self._answer(headers, raw, body, False, web.json_response({"error": "bad signature"}, status=401))
        if self._scripts:
            s = self._scripts.pop(0)
            extra = {"Retry-After": s.retry_after} if s.retry_after is not None else None
            resp = (web.json_response(s.body, status=s.status, headers=extra) if isinstance(s.body, dict)
                    else web.Response(text=s.body, status=s.status, headers=extra))
            return self._answer(headers, raw, body, True, resp)
        key = headers.get("Idempotency-Key", "")
        if body is None or body.get("idempotency_key") != key:
            return self._answer(headers, raw, body, True, web.json_response({"error": "key mismatch"}, status=400))
        self.acted.setdefault(key, body)
        return self._answer(headers, raw, body, True, web.json_response({"ok": True}))

    def _answer(self, headers: dict[str, str], raw: bytes, body: Any, ok: bool, resp: web.Response) -> web.Response:
        self.received.append(Received(headers, raw, body, ok, resp.status))
        return resp

    async def start(self) -> FakeAlertReceiver:
        return await self.start_on(0)

    async def start_on(self, port: int) -> FakeAlertReceiver:
        """Listen on `port` (0: any free one), e.g. again on the same address after `stop()`."""
        app = web.Application()
        app.router.add_post("/hooks/deskbridge", self._handle)
        self._runner, self.port = await loopback.serve(app, port)
        return self

    async def stop(self) -> None:
        await loopback.stop(self._runner)
        self._runner = None
