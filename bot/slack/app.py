"""The Slack surface: a bolt AsyncApp (HTTP mode, mounted in FastAPI; Socket Mode optional).

Modes:
- single workspace: DESKBRIDGE_SLACK_BOT_TOKEN (+ signing secret). At start-up `auth.test` names the
  token's team, which is recorded as an installation of the default workspace;
- OAuth, several workspaces: DESKBRIDGE_SLACK_CLIENT_ID / _CLIENT_SECRET; bolt serves /slack/install
  and /slack/oauth_redirect and stores installations in our database (tokens encrypted);
- Socket Mode: DESKBRIDGE_SLACK_APP_TOKEN (xapp-) opens a WebSocket instead of receiving HTTP.
Requests from a workspace with no installation are refused by `DeskbridgeAuthorize` before any
listener runs. The Web API base URL is DESKBRIDGE_SLACK_API_URL (tests, GovSlack).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import aiohttp
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler, to_starlette_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError

from bot.slack import blocks as bk
from bot.slack import text as t
from bot.slack.channels import SharedChannels
from bot.slack.confirm import Confirmations
from bot.slack.context import SlackContext
from bot.slack.frontdoor import Admitted, FrontDoor, NoBodies, Refusal, RefusalLog, bolt_request
from bot.slack.install import DbInstallationStore, DeskbridgeAuthorize, SignedStateStore
from bot.slack.listeners import register
from bot.slack.notifier import SlackNotifier
from bot.slack.poster import SlackPoster, make_client
from bot.slack.redact import Redactor
from bot.slack.respond import shared_respond

log = logging.getLogger("deskbridge.slack")
REFUSED_LOG_EVERY_S = 5.0

# Least privilege (reliability-sla.md §6.5); manifests/slack/manifest.yaml must request exactly these.
BOT_SCOPES = (
    "commands",  # /tickets, /ticket, /deskbridge and the message shortcut
    "chat:write",  # ticket cards, thread replies, SLA warnings
    "pins:write",  # pin the "Get help" message in customer channels
    "reactions:write",  # ✅ on a technician's thread message once its write is in the PSA (bot/slack/confirm.py)
    "channels:history",  # technicians' replies in ticket threads (public channels)
    "groups:history",  # the same in private customer channels
    "users:read",  # is the user a workspace admin (for /deskbridge bind)
    "users:read.email",  # link a Slack user to a technician by e-mail
    "channels:read",  # is a channel shared with another org (Slack Connect): before posting, and its events
    "groups:read",
    "files:read",  # download files technicians drop into ticket threads (they become PSA attachments)
)


_REFUSAL_TEXT = {400: "malformed request", 401: "invalid request", 413: "request too large"}


def quiet_bolt_logger() -> logging.Logger:
    """bolt's base logger, with a filter that keeps request bodies out of every line bolt logs.

    bolt copies the base logger's filters into each of its own loggers when it creates them; loggers that
    already exist (another app in the same process) get the filter here.
    """
    base = logging.getLogger("deskbridge.slack.bolt")
    if not any(isinstance(f, NoBodies) for f in base.filters):
        base.addFilter(NoBodies())
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith("slack_bolt") and isinstance(logger, logging.Logger) \
                and not any(isinstance(f, NoBodies) for f in logger.filters):
            logger.addFilter(NoBodies())
    return base


class SlackSurface:
    def __init__(self, container: Any) -> None:
        s = container.settings
        self.settings = s
        self.container = container
        self.poster = SlackPoster(recorder=container.chat_posts.record)
        self.client = make_client(s.slack_api_url)
        self.store = DbInstallationStore(container.chat, s.slack_client_id)
        oauth = None
        if s.slack_client_id and s.slack_client_secret is not None:
            secret = s.slack_client_secret.get_secret_value()
            redirect = f"{s.public_url.rstrip('/')}/slack/oauth_redirect" if s.public_url else None
            oauth = AsyncOAuthSettings(client_id=s.slack_client_id, client_secret=secret, scopes=list(BOT_SCOPES),
                                       installation_store=self.store,
                                       state_store=SignedStateStore(container.chat, secret),
                                       install_path="/slack/install", redirect_uri_path="/slack/oauth_redirect",
                                       redirect_uri=redirect)
        signing = s.slack_signing_secret.get_secret_value() if s.slack_signing_secret else ""
        # Size, signature and shape are checked by our front door before bolt reads a request (frontdoor.py),
        # so bolt's own verification (which parses first and logs rejected bodies) is off.
        self.door = FrontDoor(signing)
        self.refusals = RefusalLog()
        bolt_log = quiet_bolt_logger()
        # process_before_response: the ack listener runs inline and the response leaves as soon as it returns
        # (otherwise bolt runs it as a separate task and polls for the ack every 10 ms). Listeners only ack
        # and queue their work (SlackContext.after_ack), so nothing slow ever runs before the response.
        self.authorize = DeskbridgeAuthorize(container.chat)
        # bolt types `authorize` as a callable returning AuthorizeResult, while its own AsyncAuthorize base
        # class (ours) may return None: the ignore covers bolt's annotation only.
        self.app = AsyncApp(signing_secret=signing, client=self.client, authorize=self.authorize,  # type: ignore[arg-type]
                            oauth_settings=oauth, user_facing_authorize_error_message=t.UNKNOWN_WORKSPACE,
                            logger=bolt_log, name=bolt_log.name, process_before_response=True,
                            request_verification_enabled=False)
        self.app.middleware(shared_respond(lambda: self.http))  # response_url posts over the shared session
        self.shared = SharedChannels()  # is a channel shared with another org (asked of Slack, cached)
        self.redactor = Redactor(chat=container.chat, posts=container.chat_posts, views=container.chat_views,
                                 shared=self.shared, outbound=self.poster.outbound)
        self.confirmations = Confirmations()  # "in the PSA" without chat.update (bot/slack/confirm.py)
        self.context = SlackContext(chat=container.chat, views=container.chat_views,
                                    commands=container.chat_commands, poster=self.poster,
                                    api_url=s.slack_api_url, shared=self.shared, redactor=self.redactor,
                                    requests=container.end_user_requests, tenant=container.tenant_context,
                                    quick_actions=container.quick_actions, alert_offers=container.alert_offers,
                                    confirmations=self.confirmations)
        register(self.app, self.context)
        # Events from sync, the outbox and the SLA monitor: queued by notify() and delivered by the notifier's
        # own workers, so those callers never wait for Slack; posts and updates are paced per channel.
        self.notifier = SlackNotifier(chat=container.chat, views=container.chat_views, poster=self.poster,
                                      api_url=s.slack_api_url, commands=container.chat_commands,
                                      shared=self.shared, offers=container.alert_offers,
                                      confirmations=self.confirmations, respond=self.context.respond_to)
        self.notifier.writes_first = self.context.work.settled
        self.context.homes = self.notifier.homes  # opening App Home (a listener) turns its refreshes on
        self.handler = AsyncSlackRequestHandler(self.app)
        self.refused = 0  # requests shed because the post-ack queue was full
        self._refused_logged_at = float("-inf")
        self._socket: Any = None
        self._connecting: asyncio.Task[None] | None = None
        self.http: aiohttp.ClientSession | None = None  # shared by every Slack call once started (start)

    async def start(self) -> None:
        """Token mode: record the token's team; Socket Mode: connect. Failures are logged, not fatal.

        Socket Mode connects in the background: slack_sdk retries a refused or unreachable
        `apps.connections.open` forever (every 10 s, logged), which must not hold up the start.
        """
        s = self.settings
        if self.http is None or self.http.closed:  # one HTTP session for every Web API call and response_url post
            self.http = aiohttp.ClientSession()
            self.client.session = self.notifier.session = self.context.session = self.http
        if s.slack_bot_token is not None:
            token = s.slack_bot_token.get_secret_value()
            try:
                auth = await make_client(s.slack_api_url, token, self.http).auth_test()
                await self.container.chat.save_installation(
                    platform="slack", team_id=str(auth["team_id"]), bot_token=token,
                    bot_user_id=auth.get("user_id"), bot_id=auth.get("bot_id"), enterprise_id=auth.get("enterprise_id"),
                    workspace_id=self.container.default_workspace_id, team_name=auth.get("team"))
            except SlackApiError as exc:
                log.error("Slack bot token refused by auth.test: %s", exc.response.get("error"))
            except Exception:  # noqa: BLE001 - Slack unreachable at start: requests will be refused until fixed
                log.exception("could not reach Slack to check the bot token")
        if s.slack_app_token is not None:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            self._socket = AsyncSocketModeHandler(self.app, s.slack_app_token.get_secret_value())
            self._connecting = asyncio.create_task(self._socket.connect_async(), name="slack-socket-mode")

    async def stop(self) -> None:
        """Close the Socket Mode connection (if any); finish the work queued after acks, then the events
        and posts it queued."""
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self._socket is not None:
            await self._socket.close_async()
        await self.context.close()
        await self.redactor.drain()
        await self.flush()

    async def flush(self) -> None:
        """Deliver the queued events and posts (each within its grace period), then stop their tasks.

        Also called by Deskbridge.aclose: processes without the web app (`outbox work`, `background`)
        queue Slack deliveries through the notifier too, and must not exit before they go out.
        """
        await self.notifier.close()
        await self.poster.outbound.close()
        if self.http is not None:  # a call after this opens its own session (slack_sdk's fallback)
            await self.http.close()

    async def drain(self) -> None:
        """Wait until work after acks, queued events and queued posts/updates are all done (tests)."""
        while True:
            await self.context.drain()
            await self.notifier.drain()
            await self.poster.outbound.drain()
            await self.redactor.drain()
            if not self.context.backlog and self.poster.outbound.idle and self.notifier.idle and self.redactor.idle:
                return

    def _refuse_busy(self, admitted: Admitted) -> Response:
        """The post-ack queue is full. Slack retries events and interactions answered 503; a slash command
        is told in words. Logged at most every few seconds, with a count: an overload must not also flood
        the log."""
        self.refused += 1
        now = time.monotonic()
        if now - self._refused_logged_at >= REFUSED_LOG_EVERY_S:
            log.error("Slack requests refused: the work queue is full (%d so far)", self.refused)
            self._refused_logged_at = now
        if admitted.kind == "command":
            return JSONResponse({"response_type": "ephemeral", "text": t.BUSY})
        return Response(status_code=503, content="busy", headers={"Retry-After": "1"})

    def _refuse(self, refusal: Refusal) -> Response:
        self.refusals.note(refusal)
        return Response(status_code=refusal.status, content=_REFUSAL_TEXT.get(refusal.status, "refused"),
                        media_type="text/plain")

    async def _connected(self, admitted: Admitted) -> bool:
        """Whether the request's workspace has an installation with a token (cached; one lookup per key)."""
        if admitted.payload.get("type") in ("url_verification", "app_rate_limited"):
            return True  # Slack's own handshakes carry no team to look up
        inst = await self.authorize.installation(admitted.team_id, admitted.enterprise_id)
        return inst is not None and bool(inst.bot_token)

    @staticmethod
    def _not_connected(admitted: Admitted) -> Response:
        """The refusal is the answer itself: no Slack round trip inside the request."""
        log.warning("Slack request from a workspace that is not connected",
                    extra={"team": admitted.team_id, "kind": admitted.kind})
        if admitted.kind == "command":
            return JSONResponse({"response_type": "ephemeral", "text": t.UNKNOWN_WORKSPACE})
        if admitted.payload.get("type") == "view_submission":
            return JSONResponse({"response_action": "update", "view": bk.error_modal(
                "Deskbridge", t.UNKNOWN_WORKSPACE, None)})
        return Response(status_code=200, content="")  # events and clicks: nothing to retry, nothing to show

    async def _events(self, req: Request) -> Response:
        """/slack/events: the front door (size, signature, shape, workspace), then bolt."""
        refusal = self.door.check_headers(req.headers)
        if refusal is not None:
            return self._refuse(refusal)
        body = await self.door.read(req.stream())
        if isinstance(body, Refusal):
            return self._refuse(body)
        admitted = self.door.verify(req.headers, body) or self.door.parse(req.headers.get("content-type", ""), body)
        if isinstance(admitted, Refusal):
            return self._refuse(admitted)
        work = self.context.work
        if work.nearly_full:  # shed load before any work: never ack what could not then be done
            return self._refuse_busy(admitted)
        if not await self._connected(admitted):
            return self._not_connected(admitted)
        with work.acking():  # work queued after earlier acks waits for a quiet moment
            bolt_req = bolt_request(admitted, query=str(req.query_params),
                                    headers=dict(req.headers))
            return to_starlette_response(await self.app.async_dispatch(bolt_req))

    def router(self) -> APIRouter:
        """/slack/events (commands, interactivity, events), /slack/install, /slack/oauth_redirect."""
        router = APIRouter(tags=["slack"])
        handler = self.handler

        async def events(req: Request) -> Response:
            if self.settings.slack_signing_secret is None:  # Socket Mode only: no way to verify an HTTP request
                return Response(status_code=404, content="Slack events arrive over Socket Mode here")
            return await self._events(req)

        # A plain Starlette route: the endpoint takes the raw Request and the front door does all the checking,
        # so FastAPI's per-request dependency solving and body handling for an APIRoute would be pure cost
        # (~3% of a click's CPU). The app's middleware (security headers, body limit, idle count) still runs.
        router.add_route("/slack/events", events, methods=["POST"], include_in_schema=False)

        @router.get("/slack/install", include_in_schema=False)
        async def install(req: Request) -> Response:
            return await handler.handle(req)

        @router.get("/slack/oauth_redirect", include_in_schema=False)
        async def oauth_redirect(req: Request) -> Response:
            return await handler.handle(req)

        return router
