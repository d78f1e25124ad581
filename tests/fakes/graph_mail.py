"""A loopback fake of Microsoft Graph mail for one mailbox: client-credentials token endpoint, the Inbox
delta query (pages by `Prefer: odata.maxpagesize`, nextLink within a round, a deltaLink that later returns
only what arrived since, `@removed` entries) and `/messages/{id}/$value`. Refuses a wrong client secret
(400 invalid_client, as Entra ID does) and a missing or wrong bearer token (401); `throttle` answers 429 with
Retry-After once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes import loopback


@dataclass
class FakeGraphMail:
    mailbox: str = "help@msp.example"
    tenant: str = "contoso-tenant"
    client_id: str = "app-1"
    client_secret: str = "graph-secret-1"
    messages: list[tuple[str, bytes]] = field(default_factory=list)  # (id, raw) in arrival order
    removed: list[str] = field(default_factory=list)
    throttle: int = 0
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def deliver(self, raw: bytes) -> str:
        mid = f"AAMk{len(self.messages) + 1:04d}"
        self.messages.append((mid, raw))
        return mid

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/login/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_get("/v1.0/users/{mbx}/mailFolders('Inbox')/messages/delta", self._delta)
        app.router.add_get("/v1.0/users/{mbx}/messages/{id}/$value", self._value)
        self._runner, self.port = await loopback.serve(app, access_log=True)

    async def stop(self) -> None:
        await loopback.stop(self._runner)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if (request.match_info["tenant"], form.get("client_id"), form.get("client_secret")) != (
                self.tenant, self.client_id, self.client_secret) or form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client "
                                      "secret provided."}, status=400)
        return web.json_response({"token_type": "Bearer", "expires_in": 3599, "access_token": self.token})

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}" and \
            request.match_info["mbx"] == self.mailbox

    async def _delta(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": {"code": "InvalidAuthenticationToken"}}, status=401)
        if self.throttle:
            self.throttle -= 1
            return web.json_response({"error": {"code": "TooManyRequests"}}, status=429, headers={"Retry-After": "3"})
        size = int(request.headers.get("Prefer", "odata.maxpagesize=10").split("=")[1])
        start = int(request.query.get("skip", request.query.get("since", "0")))
        entries = [{"id": mid} for mid, _ in self.messages[start:start + size]]
        entries += [{"id": r, "@removed": {"reason": "deleted"}} for r in self.removed if start == 0]
        end = start + min(size, len(self.messages) - start)
        link = f"{self.base}/v1.0/users/{self.mailbox}/mailFolders('Inbox')/messages/delta"
        body: dict = {"value": entries}
        if end < len(self.messages):
            body["@odata.nextLink"] = f"{link}?skip={end}"
        else:
            body["@odata.deltaLink"] = f"{link}?since={end}"
        return web.json_response(body)

    async def _value(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": {"code": "InvalidAuthenticationToken"}}, status=401)
        for mid, raw in self.messages:
            if mid == request.match_info["id"]:
                return web.Response(body=raw, content_type="message/rfc822")
        return web.json_response({"error": {"code": "ErrorItemNotFound"}}, status=404)
