"""A loopback fake of the Slack Web API (and of `response_url`) that records every call.

Runs an aiohttp server on 127.0.0.1 and an ephemeral port; point `AsyncWebClient(base_url=fake.api_url)`
at it. Behaves like Slack where our code depends on it (chat-platforms.md §2.4, §2.12):
- every method answers HTTP 200 with `{"ok": ...}`; unknown tokens get `invalid_auth`;
- `fail(method, status=429, retry_after=1)` scripts rate limiting (HTTP 429 + `Retry-After`), and
  `fail(method, error="channel_not_found")` scripts `ok:false` errors;
- `chat.postMessage` hands out increasing `ts` values; `users.info` answers from `users`;
- `/webhook/...` stands in for `response_url` and records what was posted there (with the time, `at`);
  one made with `response_url(name, message=(channel, ts))` is the url of a click on that message:
  `replace_original` replaces it (`messages`) and, as Slack's, it works 5 times (then HTTP 404 `used_url`,
  [unverified] wording; urls made without `message` are not counted);
- `reactions.add` keeps each message's reactions (`reactions`), `already_reacted` for the same one twice,
  `missing_scope` when `scopes` is set without reactions:write;
- `oauth.v2.access` exchanges a code scripted with `grant(...)` once (HTTP Basic client credentials, as
  slack_sdk sends them), answering like Slack (`invalid_code`, `code_already_used`, `bad_client_secret`,
  `bad_redirect_uri`); `auth.test` then names the granted token's own team;
- Socket Mode: `apps.connections.open` takes only an app-level (xapp-) token from `app_tokens` (a bot
  token gets `not_allowed_token_type`, an unknown one `invalid_auth`) and hands out a single-use
  `ws://.../socket?ticket=...` URL; the WebSocket says `hello` first, then carries the envelopes a test
  pushes with `socket_send(...)`; what the client sends back (acks) is kept in `socket_received`.
- files: `add_file(...)` stores bytes and returns the file object a `file_share` event carries;
  `url_private(_download)` serve the bytes only with `Authorization: Bearer <bot token>`; without it,
  as Slack does, a 302 to the workspace's sign-in page (HTML, HTTP 200); `fail_download(...)` scripts
  an HTTP error; `chunk_delay_s` makes a download slow; `file_gate` (an Event) stalls every transfer after its
  headers until the test sets it; `chunked=True` omits Content-Length;
  `downloads` records every request (authorized or not, bytes sent, whether the client went away).
- pins: `pins.add` / `pins.remove` / `pins.list` of messages with Slack's errors (`already_pinned`,
  `message_not_found`, `no_pin`; `missing_scope` when `scopes` is set without pins:write); `pins` holds
  each channel's pinned ts. `delete_message` is a person deleting a message: `chat.update` of a deleted
  message then answers `message_not_found`, as Slack does.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote

from aiohttp import WSMsgType, web

from tests.fakes import loopback

VIEW_ID, VIEW_HASH = "V0001", "h1"  # the id and hash every views.* call answers with


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None
    at: float = field(default_factory=time.monotonic)
    peer: Any = None  # the client's (host, port): calls over one kept-alive connection share it


@dataclass
class FakeFile:
    id: str
    name: str
    content: bytes
    mimetype: str
    chunk_delay_s: float = 0.0
    chunk_size: int = 64 * 1024
    chunked: bool = False
    redirect_to: str | None = None  # answer an authorized request with a 302 there (Slack's CDN hop)


@dataclass
class Download:
    file_id: str
    authorized: bool
    status: int
    sent: int = 0
    aborted: bool = False  # the client closed the connection before everything was sent


@dataclass
class _Failure:
    status: int
    error: str | None
    retry_after: int | None
    times: int


class FakeSlackApi:
    def __init__(self, *, team_id: str = "T0001", bot_user_id: str = "UBOT", bot_id: str = "BBOT",
                 tokens: tuple[str, ...] = ("xoxb-test-token",), app_tokens: tuple[str, ...] = ("xapp-1-test",),
                 app_id: str = "A0001") -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.tokens = set(tokens)
        self.calls: list[Call] = []
        self.webhooks: list[dict[str, Any]] = []
        self.shared_channels: set[str] = set()
        self.users: dict[str, dict[str, Any]] = {}
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> what chat.postMessage got
        self.deleted: set[tuple[str, str]] = set()  # messages deleted (by the bot, or by people: `delete_message`)
        self.pins: dict[str, list[str]] = {}  # channel -> pinned message ts, in pin order
        self.reactions: dict[tuple[str, str], list[str]] = {}  # (channel, ts) -> reaction names the bot added
        self._webhook_messages: dict[str, tuple[str, str]] = {}  # response_url name -> the clicked message
        self._webhook_uses: dict[str, int] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._lost: dict[str, int] = {}  # method -> answers to lose after doing the work
        self._dropped: dict[str, int] = {}  # method -> requests to drop before doing any work
        self._ts = 1_700_000_000
        self.client_id: str | None = None  # set to check oauth.v2.access client credentials
        self.client_secret: str | None = None
        self.redirect_uri: str | None = None  # the redirect URL registered for the app, if checked
        self._grants: dict[str, dict[str, Any]] = {}
        self._used_codes: set[str] = set()
        self._token_teams: dict[str, dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.app_tokens = set(app_tokens)
        self.app_id = app_id
        self.file_gate: asyncio.Event | None = None  # set to an unset Event: every file body waits until it is set
        self.socket_received: list[dict[str, Any]] = []  # acks (and anything else) the client sent
        self.socket_connections = 0
        self._tickets: set[str] = set()
        self._ticket_no = itertools.count(1)
        self._ws: web.WebSocketResponse | None = None
        self._socket_changed: asyncio.Condition | None = None
        self.socket_closed: asyncio.Event | None = None
        self.files: dict[str, FakeFile] = {}
        self.downloads: list[Download] = []
        self._download_failures: dict[str, list[int]] = {}
        self.file_readers: set[str] | None = None  # tokens with files:read (None: every bot token)
        self.scopes: set[str] | None = None  # what auth.test lists in X-OAuth-Scopes (None: no header)

    # ------------------------------------------------------------ control

    def add_user(self, user_id: str, *, email: str | None = None, name: str = "", is_admin: bool = False,
                 team_id: str | None = None) -> None:
        self.users[user_id] = {"id": user_id, "team_id": team_id or self.team_id, "name": name or user_id,
                               "real_name": name or user_id, "is_admin": is_admin, "is_owner": False,
                               "is_bot": False, "profile": {"email": email, "real_name": name or user_id}}

    def fail(self, method: str, *, status: int = 200, error: str | None = None, retry_after: int | None = None,
             times: int = 1) -> None:
        self._failures.setdefault(method, []).append(_Failure(status, error, retry_after, times))

    def lose_answer(self, method: str, times: int = 1) -> None:
        """Do the next call's work, then drop the connection before answering (a lost response)."""
        self._lost[method] = self._lost.get(method, 0) + times

    def drop_request(self, method: str, times: int = 1) -> None:
        """Drop the connection of the next call before doing anything (Slack never got it)."""
        self._dropped[method] = self._dropped.get(method, 0) + times

    def grant(self, code: str, *, team_id: str, team_name: str = "", token: str | None = None,
              installer: str = "U_INSTALLER", bot_user_id: str = "UBOT", bot_id: str = "BBOT",
              scope: str = "commands,chat:write", app_id: str = "A0001") -> str:
        """Script the authorization `code` Slack hands the installer's browser; returns the bot token."""
        token = token or f"xoxb-{team_id.lower()}-{len(self._grants) + 1}"
        self._grants[code] = {"token": token, "team_id": team_id, "team_name": team_name or team_id,
                              "installer": installer, "bot_user_id": bot_user_id, "bot_id": bot_id,
                              "scope": scope, "app_id": app_id}
        return token

    def add_file(self, name: str, content: bytes, *, mimetype: str = "application/octet-stream",
                 size: int | None = None, mode: str = "hosted", chunk_delay_s: float = 0.0, chunk_size: int = 64 * 1024,
                 chunked: bool = False, redirect_to: str | None = None, **extra: Any) -> dict[str, Any]:
        """Store a file; returns its Slack file object (`size` may lie: it is what the event declares)."""
        fid = f"F{len(self.files) + 1:04d}"
        self.files[fid] = FakeFile(fid, name, content, mimetype, chunk_delay_s, chunk_size, chunked, redirect_to)
        base = f"http://127.0.0.1:{self.port}/files-pri/{self.team_id}-{fid}"
        obj: dict[str, Any] = {
            "id": fid, "created": 1_700_000_000, "timestamp": 1_700_000_000, "name": name, "title": name,
            "mimetype": mimetype, "filetype": name.rpartition(".")[2] if "." in name else "binary",
            "user": "U_BOB", "user_team": self.team_id, "editable": False,
            "size": len(content) if size is None else size, "mode": mode, "is_external": False,
            "external_type": "", "is_public": False, "public_url_shared": False, "display_as_bot": False,
            "url_private": f"{base}/{name}", "url_private_download": f"{base}/download/{name}",
            "permalink": f"https://fake.slack.invalid/files/U_BOB/{fid}/{name}",
        }
        if mode == "tombstone":  # Slack keeps only the id of a deleted file
            obj = {"id": fid, "mode": "tombstone"}
        elif mode == "external":
            obj.update(is_external=True, external_type="gdrive", url_private="https://drive.google.invalid/x")
            obj.pop("url_private_download")
        return {**obj, **extra}

    def delete_message(self, channel: str, ts: str) -> None:
        """Someone in the channel deleted a message (its pin goes with it, as in Slack)."""
        self.messages.pop((channel, ts), None)
        self.deleted.add((channel, ts))
        if ts in self.pins.get(channel, []):
            self.pins[channel].remove(ts)

    def fail_download(self, file_id: str, *, status: int = 500, times: int = 1) -> None:
        self._download_failures.setdefault(file_id, []).extend([status] * times)

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def clear(self) -> None:
        self.calls.clear()
        self.webhooks.clear()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str = "r1", *, message: tuple[str, str] | None = None) -> str:
        """A response_url; `message` (channel, ts): the message whose button was clicked."""
        if message is not None:
            self._webhook_messages[name] = message
        return f"http://127.0.0.1:{self.port}/webhook/{name}"

    # ------------------------------------------------------------ server

    async def start(self) -> FakeSlackApi:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # slack_sdk sends some methods (users.info) as GET
        app.router.add_post("/webhook/{name}", self._webhook)
        app.router.add_get("/socket", self._socket)
        app.router.add_get("/files-pri/{team_file}/download/{name}", self._file)
        app.router.add_get("/files-pri/{team_file}/{name}", self._file)
        app.router.add_get("/", self._sign_in)
        self._socket_changed = asyncio.Condition()
        self.socket_closed = asyncio.Event()
        self._runner, self.port = await loopback.serve(app)
        return self

    async def stop(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        await loopback.stop(self._runner)

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
        name = request.match_info["name"]
        self._webhook_uses[name] = self._webhook_uses.get(name, 0) + 1
        if name in self._webhook_messages and self._webhook_uses[name] > 5:
            return web.Response(status=404, text="used_url")
        self.webhooks.append({"name": name, **body, "at": time.monotonic(),
                              "_peer": request.transport.get_extra_info("peername") if request.transport else None})
        target = self._webhook_messages.get(name)
        if target is not None and body.get("replace_original") in (True, "true") and target in self.messages:
            self.messages[target] = {**self.messages[target], "text": body.get("text"), "blocks": body.get("blocks")}
        return web.Response(text="ok")

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() or args.get("token") or None
        self.calls.append(Call(method, args, token, peer=request.transport.get_extra_info("peername")
                               if request.transport is not None else None))
        if self._dropped.get(method):
            self._dropped[method] -= 1
            assert request.transport is not None
            request.transport.abort()
            return web.json_response({})
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
            return web.json_response(self._oauth(request, args))
        if method == "apps.connections.open":
            return web.json_response(self._connections_open(token))
        if token not in self.tokens:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        answer = self._answer(method, args, token)
        if self._lost.get(method):
            self._lost[method] -= 1
            assert request.transport is not None
            request.transport.abort()  # the work is done; the client never hears of it
        if method == "auth.test" and self.scopes is not None:  # as Slack: the token's scopes in a header
            return web.json_response(answer, headers={"X-OAuth-Scopes": ",".join(sorted(self.scopes))})
        return web.json_response(answer)

    def _next_ts(self) -> str:
        self._ts += 1
        return f"{self._ts}.000100"

    def _answer(self, method: str, args: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        if method == "auth.test":
            g = self._token_teams.get(token or "")
            if g is not None:
                return {"ok": True, "url": "https://fake.slack.invalid/", "team": g["team_name"],
                        "team_id": g["team_id"], "user": "deskbridge", "user_id": g["bot_user_id"],
                        "bot_id": g["bot_id"], "is_enterprise_install": False}
            return {"ok": True, "url": "https://fake.slack.invalid/", "team": "Fake MSP", "team_id": self.team_id,
                    "user": "deskbridge", "user_id": self.bot_user_id, "bot_id": self.bot_id}
        if method == "chat.postMessage":
            ts = self._next_ts()
            self.messages[(str(args.get("channel")), ts)] = args
            return {"ok": True, "channel": args.get("channel"), "ts": ts,
                    "message": {"text": args.get("text"), "ts": ts, "bot_id": self.bot_id,
                                "thread_ts": args.get("thread_ts")}}
        if method == "chat.delete":  # a bot may delete its own messages; others' are not ours to delete
            if self.messages.get((str(args.get("channel")), str(args.get("ts")))) is None:
                return {"ok": False, "error": "message_not_found"}
            self.delete_message(str(args.get("channel")), str(args.get("ts")))
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
        if method == "chat.update":
            key = (str(args.get("channel")), str(args.get("ts")))
            if key in self.deleted:
                return {"ok": False, "error": "message_not_found"}
            if key in self.messages:  # what the channel shows now
                self.messages[key] = {**self.messages[key], **args}
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts"), "text": args.get("text")}
        if method in ("views.open", "views.publish", "views.update", "views.push"):
            view = args.get("view") or {}
            return {"ok": True, "view": {**(view if isinstance(view, dict) else {}), "id": VIEW_ID, "hash": VIEW_HASH}}
        if method.startswith("pins."):
            return self._pins(method, args)
        if method == "reactions.add":
            if self.scopes is not None and "reactions:write" not in self.scopes:
                return {"ok": False, "error": "missing_scope", "needed": "reactions:write",
                        "provided": ",".join(sorted(self.scopes))}
            names = self.reactions.setdefault((str(args.get("channel")), str(args.get("timestamp"))), [])
            if args.get("name") in names:
                return {"ok": False, "error": "already_reacted"}
            names.append(str(args.get("name")))
            return {"ok": True}
        if method == "users.info":
            user = self.users.get(str(args.get("user")))
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        if method == "conversations.info":
            shared = args.get("channel") in self.shared_channels  # Slack Connect channels (another org reads them)
            return {"ok": True, "channel": {"id": args.get("channel"), "is_ext_shared": shared, "is_shared": shared}}
        if method in ("conversations.history", "conversations.replies"):
            return {"ok": True, "messages": self._history(args), "has_more": False}
        if method == "chat.getPermalink":
            return {"ok": True, "permalink": f"https://fake.slack.invalid/archives/{args.get('channel')}/p1"}
        return {"ok": True}

    def _pins(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """pins.add / pins.remove / pins.list of messages, with Slack's errors (no file pins)."""
        channel, ts = str(args.get("channel") or ""), str(args.get("timestamp") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if self.scopes is not None and method != "pins.list" and "pins:write" not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": "pins:write",
                    "provided": ",".join(sorted(self.scopes))}
        pinned = self.pins.setdefault(channel, [])
        if method == "pins.list":
            return {"ok": True, "items": [{"type": "message", "channel": channel, "message": {"ts": p}}
                                          for p in reversed(pinned)]}
        if not ts:
            return {"ok": False, "error": "no_item_specified"}
        if method == "pins.add":
            if (channel, ts) not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            if ts in pinned:
                return {"ok": False, "error": "already_pinned"}
            pinned.append(ts)
            return {"ok": True}
        if ts not in pinned:
            return {"ok": False, "error": "no_pin"}
        pinned.remove(ts)
        return {"ok": True}

    def _history(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """A channel's top-level messages (history) or one thread (replies), newest first; message
        metadata only with include_all_metadata, as Slack does."""
        channel, oldest = str(args.get("channel")), float(args.get("oldest") or 0)
        thread = args.get("ts") if "ts" in args else None
        with_meta = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        out = []
        for (ch, ts), m in self.messages.items():
            if ch != channel or float(ts) < oldest:
                continue
            if thread is not None and ts != thread and m.get("thread_ts") != thread:
                continue
            if thread is None and m.get("thread_ts"):
                continue
            msg: dict[str, Any] = {"type": "message", "ts": ts, "text": m.get("text"), "bot_id": self.bot_id}
            if with_meta and m.get("metadata"):
                msg["metadata"] = m["metadata"]
            out.append(msg)
        out.sort(key=lambda x: float(x["ts"]), reverse=True)
        return out[:int(args.get("limit") or 100)]

    def _client_ok(self, request: web.Request, args: dict[str, Any]) -> str | None:
        """The oauth.v2.access credential error, if any (HTTP Basic preferred, form fields accepted)."""
        if self.client_id is None:
            return None
        auth = request.headers.get("Authorization", "")
        cid, secret = args.get("client_id"), args.get("client_secret")
        if auth.startswith("Basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        if cid != self.client_id:
            return "invalid_client_id"
        return None if secret == self.client_secret else "bad_client_secret"

    def _oauth(self, request: web.Request, args: dict[str, Any]) -> dict[str, Any]:
        error = self._client_ok(request, args)
        if error:
            return {"ok": False, "error": error}
        code = str(args.get("code") or "")
        if code in self._used_codes:
            return {"ok": False, "error": "code_already_used"}
        g = self._grants.get(code)
        if g is None:
            return {"ok": False, "error": "invalid_code"}
        if self.redirect_uri is not None and args.get("redirect_uri") not in (None, self.redirect_uri):
            return {"ok": False, "error": "bad_redirect_uri"}
        self._used_codes.add(code)
        self.tokens.add(g["token"])
        self._token_teams[g["token"]] = g
        return {"ok": True, "access_token": g["token"], "token_type": "bot", "scope": g["scope"],
                "bot_user_id": g["bot_user_id"], "app_id": g["app_id"],
                "team": {"id": g["team_id"], "name": g["team_name"]}, "enterprise": None,
                "authed_user": {"id": g["installer"]}, "is_enterprise_install": False}

    # ------------------------------------------------------------ files

    async def _sign_in(self, request: web.Request) -> web.Response:
        return web.Response(text="<!DOCTYPE html><html><head><title>Sign in | Slack</title></head>"
                                 "<body><form action='/signin'>Sign in to Fake MSP</form></body></html>",
                            content_type="text/html")

    async def _file(self, request: web.Request) -> web.StreamResponse:
        fid = request.match_info["team_file"].rpartition("-")[2]
        f = self.files.get(fid)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        readers = self.tokens if self.file_readers is None else self.file_readers
        authorized = token in readers
        if f is None:
            self.downloads.append(Download(fid, authorized, 404))
            return web.Response(status=404, text="file not found")
        if not authorized:  # Slack answers like a browser without a session: off to the sign-in page
            self.downloads.append(Download(fid, False, 302))
            return web.Response(status=302, headers={"Location": f"/?redir={quote(request.path_qs, safe='')}"})
        pending = self._download_failures.get(fid)
        if pending:
            status = pending.pop(0)
            self.downloads.append(Download(fid, True, status))
            return web.Response(status=status, text="<html>Slack is having trouble</html>", content_type="text/html")
        if f.redirect_to:
            self.downloads.append(Download(fid, True, 302))
            return web.Response(status=302, headers={"Location": f.redirect_to})
        record = Download(fid, True, 200)
        self.downloads.append(record)
        resp = web.StreamResponse(headers={"Content-Type": f.mimetype})
        if not f.chunked:
            resp.content_length = len(f.content)
        await resp.prepare(request)
        try:
            if self.file_gate is not None:  # a stalled transfer: headers sent, the body waits for the test
                await self.file_gate.wait()
            for i in range(0, len(f.content), f.chunk_size):
                if f.chunk_delay_s:
                    await asyncio.sleep(f.chunk_delay_s)
                await resp.write(f.content[i:i + f.chunk_size])
                record.sent += len(f.content[i:i + f.chunk_size])
            await resp.write_eof()
        except ConnectionError:  # the client stopped reading and closed the connection
            record.aborted = True
        except asyncio.CancelledError:
            record.aborted = True
            raise
        return resp

    # ------------------------------------------------------------ Socket Mode

    def _connections_open(self, token: str | None) -> dict[str, Any]:
        if token in self.tokens:
            return {"ok": False, "error": "not_allowed_token_type"}
        if token not in self.app_tokens:
            return {"ok": False, "error": "invalid_auth"}
        ticket = f"t{next(self._ticket_no)}"
        self._tickets.add(ticket)
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket?ticket={ticket}&app_id={self.app_id}"}

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)  # a URL from apps.connections.open is good for one connection
        ws = web.WebSocketResponse(autoping=True)  # answers the client's pings with pongs, as Slack does
        await ws.prepare(request)
        assert self._socket_changed is not None and self.socket_closed is not None
        self._ws = ws
        self.socket_closed.clear()
        await ws.send_json({"type": "hello", "num_connections": 1,
                            "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
                            "connection_info": {"app_id": self.app_id}})
        await self._notify(lambda: setattr(self, "socket_connections", self.socket_connections + 1))
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await self._notify(lambda m=msg: self.socket_received.append(json.loads(m.data)))
        self.socket_closed.set()
        await self._notify(lambda: None)
        return ws

    async def _notify(self, change: Any) -> None:
        assert self._socket_changed is not None
        async with self._socket_changed:
            change()
            self._socket_changed.notify_all()

    async def wait_socket(self, predicate: Any, within_s: float = 30.0) -> Any:
        """Wait (up to `within_s`) until `predicate()` is truthy; returns its value."""
        assert self._socket_changed is not None
        async with self._socket_changed:
            return await asyncio.wait_for(self._socket_changed.wait_for(predicate), within_s)

    async def wait_connected(self, within_s: float = 30.0) -> None:
        """Wait until a client is connected and has been sent `hello`."""
        await self.wait_socket(lambda: self._ws is not None and not self._ws.closed and self.socket_connections,
                               within_s)

    async def socket_send(self, envelope: dict[str, Any]) -> None:
        """Push one envelope (events_api, slash_commands, interactive, disconnect) to the connected client."""
        if self._ws is None or self._ws.closed:
            raise AssertionError("no Socket Mode client is connected")
        await self._ws.send_json(envelope)

    async def socket_ack(self, envelope_id: str, within_s: float = 30.0) -> dict[str, Any]:
        """The client's acknowledgement of `envelope_id` (waiting up to `within_s` for it)."""
        def acked() -> dict[str, Any] | None:
            return next((m for m in self.socket_received if m.get("envelope_id") == envelope_id), None)
        return await self.wait_socket(acked, within_s)
