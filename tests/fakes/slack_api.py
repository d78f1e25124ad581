"""A loopback fake of the Slack Web API (and of `response_url`) that records every call.

Runs an aiohttp server on 127.0.0.1 and an ephemeral port; point `AsyncWebClient(base_url=fake.api_url)`
at it. Behaves like Slack where our code depends on it (chat-platforms.md §2.4, §2.12):
- every method answers HTTP 200 with `{"ok": ...}`; unknown tokens get `invalid_auth`;
- `fail(method, status=429, retry_after=1)` scripts rate limiting (HTTP 429 + `Retry-After`), and
  `fail(method, error="channel_not_found")` scripts `ok:false` errors;
- `chat.postMessage` hands out increasing `ts` values; `users.info` answers from `users`;
- `/webhook/...` stands in for `response_url` and records what was posted there.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Failure:
    status: int
    error: str | None
    retry_after: int | None
    times: int


class FakeSlackApi:
    def __init__(self, *, team_id: str = "T0001", bot_user_id: str = "UBOT", bot_id: str = "BBOT",
                 tokens: tuple[str, ...] = ("xoxb-test-token",)) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.tokens = set(tokens)
        self.calls: list[Call] = []
        self.webhooks: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._ts = 1_700_000_000
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------ control

    def add_user(self, user_id: str, *, email: str | None = None, name: str = "", is_admin: bool = False,
                 team_id: str | None = None) -> None:
        self.users[user_id] = {"id": user_id, "team_id": team_id or self.team_id, "name": name or user_id,
                               "real_name": name or user_id, "is_admin": is_admin, "is_owner": False,
                               "is_bot": False, "profile": {"email": email, "real_name": name or user_id}}

    def fail(self, method: str, *, status: int = 200, error: str | None = None, retry_after: int | None = None,
             times: int = 1) -> None:
        self._failures.setdefault(method, []).append(_Failure(status, error, retry_after, times))

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def clear(self) -> None:
        self.calls.clear()
        self.webhooks.clear()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"http://127.0.0.1:{self.port}/webhook/{name}"

    # ------------------------------------------------------------ server

    async def start(self) -> FakeSlackApi:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # slack_sdk sends some methods (users.info) as GET
        app.router.add_post("/webhook/{name}", self._webhook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _args(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw:
            return dict(request.query)
        if request.content_type == "application/json":
            return json.loads(raw)
        out: dict[str, Any] = {}
        for k, v in parse_qsl(raw.decode(), keep_blank_values=True):
            if k in ("blocks", "view", "metadata") and v.startswith(("[", "{")):
                out[k] = json.loads(v)
            else:
                out[k] = v
        return out

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await self._args(request)
        self.webhooks.append({"name": request.match_info["name"], **body})
        return web.Response(text="ok")

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() or args.get("token") or None
        self.calls.append(Call(method, args, token))
        pending = self._failures.get(method)
        if pending:
            f = pending[0]
            f.times -= 1
            if f.times <= 0:
                pending.pop(0)
            headers = {"Retry-After": str(f.retry_after)} if f.retry_after is not None else {}
            body = {"ok": False, "error": f.error or ("ratelimited" if f.status == 429 else "fatal_error")}
            return web.json_response(body, status=f.status, headers=headers)
        if method == "oauth.v2.access":
            return web.json_response(self._oauth(args))
        if token not in self.tokens:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return web.json_response(self._answer(method, args))

    def _next_ts(self) -> str:
        self._ts += 1
        return f"{self._ts}.000100"

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://fake.slack.invalid/", "team": "Fake MSP", "team_id": self.team_id,
                    "user": "deskbridge", "user_id": self.bot_user_id, "bot_id": self.bot_id}
        if method == "chat.postMessage":
            ts = self._next_ts()
            return {"ok": True, "channel": args.get("channel"), "ts": ts,
                    "message": {"text": args.get("text"), "ts": ts, "bot_id": self.bot_id,
                                "thread_ts": args.get("thread_ts")}}
        if method == "chat.update":
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts"), "text": args.get("text")}
        if method in ("views.open", "views.publish", "views.update", "views.push"):
            view = args.get("view") or {}
            return {"ok": True, "view": {**(view if isinstance(view, dict) else {}), "id": "V0001", "hash": "h1"}}
        if method == "users.info":
            user = self.users.get(str(args.get("user")))
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        if method == "conversations.info":
            return {"ok": True, "channel": {"id": args.get("channel"), "is_ext_shared": False, "is_shared": False}}
        if method == "chat.getPermalink":
            return {"ok": True, "permalink": f"https://fake.slack.invalid/archives/{args.get('channel')}/p1"}
        return {"ok": True}

    def _oauth(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("code") != "good-code":
            return {"ok": False, "error": "invalid_code"}
        self.tokens.add("xoxb-installed-token")
        return {"ok": True, "access_token": "xoxb-installed-token", "token_type": "bot", "scope": "chat:write,commands",
                "bot_user_id": "UBOT2", "app_id": "A0001", "team": {"id": "T0002", "name": "Second MSP"},
                "enterprise": None, "is_enterprise_install": False,
                "authed_user": {"id": "U0009", "scope": "", "token_type": None}}
