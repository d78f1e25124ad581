"""The Teams surface: the Teams SDK's `App` behind our own `POST /api/messages`, configured explicitly.

Every SDK option is passed here (the SDK would otherwise read CLIENT_ID, CLIENT_SECRET, TENANT_ID, CLOUD,
SERVICE_URL and DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS from the environment and `.env`); its outbound
calls take their token from `OutboundTokens` (ours, so a stand-in can serve it); its own HTTP route is
never mounted (bot/teams/frontdoor.py checks each request and hands the activity to the SDK's router).
Handlers answer at once; whatever touches the database beyond one small write runs after the answer, on
the same bounded pool as Slack's (bot/slack/work.py).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import APIRouter
from microsoft_teams.api import ActivityTypeAdapter, TokenCredentials
from microsoft_teams.api.auth.cloud_environment import CHINA, PUBLIC, US_GOV, US_GOV_DOD, CloudEnvironment
from microsoft_teams.api.auth.json_web_token import JsonWebToken
from microsoft_teams.apps import App
from microsoft_teams.apps.events import ActivityEvent, CoreActivity
from microsoft_teams.common import ClientOptions, LocalStorage
from pydantic import ValidationError

from bot import looptrace
from bot.slack.work import AfterAck
from bot.teams import frontdoor
from bot.teams.auth import InboundVerifier, KeySet, TokenRefused
from bot.teams.hold import WriteHolds
from bot.teams.poster import TeamsPoster
from bot.teams.tokens import Certificate, OutboundTokens, TeamsTokenError
from core.conversation_refs import ConversationRefs

if TYPE_CHECKING:
    from bot.main import Deskbridge
    from bot.settings import Settings

log = logging.getLogger("deskbridge.teams")

PLATFORM = "teams"
CLOUDS = {"public": PUBLIC, "usgov": US_GOV, "usgovdod": US_GOV_DOD, "china": CHINA}


def cloud_for(settings: Settings) -> CloudEnvironment:
    """The Microsoft cloud of the bot, with the stand-in overrides of settings applied."""
    cloud = CLOUDS[settings.teams_cloud]
    overrides: dict[str, str] = {}
    if settings.teams_openid_metadata_url:
        overrides["openid_metadata_url"] = settings.teams_openid_metadata_url
    if settings.teams_token_issuer:
        overrides["token_issuer"] = settings.teams_token_issuer
    if settings.teams_login_url:
        overrides["login_endpoint"] = settings.teams_login_url.rstrip("/")
    return replace(cloud, **overrides) if overrides else cloud


READ_ACTIONS = frozenset({"open", "my_queue", "page"})  # card buttons that change nothing (no post, no write)


def is_read(body: dict[str, Any]) -> bool:
    """An invoke that only reads: a card's refresh or "open", a queue page, a typeahead search. It writes
    nothing, so it is not recorded as processed: a redelivery is answered with the card again (an invoke
    answered with nothing shows the clicker an error), and a burst of refreshes costs no database write."""
    if body.get("type") != "invoke":
        return False
    if body.get("name") in ("application/search", "task/fetch"):  # a typeahead; a dialog's form (Get help)
        return True
    value = body.get("value")
    action = value.get("action") if isinstance(value, dict) else None
    data = action.get("data") if isinstance(action, dict) else None
    return (body.get("name") == "adaptiveCard/action" and isinstance(data, dict)
            and data.get("action") in READ_ACTIONS and not data.get("submit") and not data.get("from"))


def without_automatic_trigger(body: dict[str, Any]) -> dict[str, Any]:
    """Teams sends `value.trigger: "automatic"` when it refreshes a card by itself (the card's `refresh`) and
    "manual" on a click; the SDK 2.1's model accepts "manual" only and would refuse every automatic refresh. The
    trigger is dropped for it (it is optional there, and nothing of ours reads it)."""
    value = body.get("value")
    if body.get("type") != "invoke" or not isinstance(value, dict) or value.get("trigger") != "automatic":
        return body
    return {**body, "value": {k: v for k, v in value.items() if k != "trigger"}}


def _clicked(body: dict[str, Any]) -> bool:
    """A person's click (not Teams refreshing a card by itself as someone looks at it)."""
    value = body.get("value")
    return not (isinstance(value, dict) and value.get("trigger") == "automatic")


class _NoServer:
    """The SDK's HttpServerAdapter, minus the server: we run uvicorn and own the route (frontdoor.py)."""

    def register_route(self, method: str, path: str, handler: Any) -> None:
        return None

    def serve_static(self, path: str, directory: str) -> None:
        return None

    async def start(self, port: int) -> None:
        return None

    async def stop(self) -> None:
        return None


class TeamsSurface:
    def __init__(self, container: Deskbridge, *, http: httpx.AsyncClient | None = None) -> None:
        s = container.settings
        problems = s.teams_problems()
        if problems:
            raise TeamsTokenError("Teams is not fully configured:\n  " + "\n  ".join(problems))
        assert s.teams_app_id is not None
        self.container = container
        self.settings = s
        self.app_id = s.teams_app_id
        self.tenant_id = s.teams_tenant_id
        self.cloud = cloud_for(s)
        self.http = http or httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
        tenant = s.teams_tenant_id or self.cloud.login_tenant
        self.tokens = OutboundTokens(
            app_id=s.teams_app_id, tenant_id=tenant, login_url=self.cloud.login_endpoint, http=self.http,
            secret=s.teams_app_secret,
            certificate=Certificate(s.teams_certificate_file) if s.teams_certificate_file else None)
        self.keys = KeySet(self.cloud.openid_metadata_url, self.http)
        self.verifier = InboundVerifier(app_id=s.teams_app_id, issuer=self.cloud.token_issuer, keys=self.keys)
        self.work = AfterAck()
        self.sdk = App(
            client_id=s.teams_app_id, client_secret=None, tenant_id=s.teams_tenant_id, token=self.tokens,
            managed_identity_client_id=None, cloud=self.cloud, service_url=s.teams_service_url,
            http_server_adapter=_NoServer(), messaging_endpoint=frontdoor.ENDPOINT,
            dangerously_allow_unauthenticated_requests=False, storage=LocalStorage(), state=False,
            fetch_user_token=False, plugins=[], client=ClientOptions(timeout=15.0))
        if not isinstance(self.sdk.credentials, TokenCredentials):
            # The SDK prefers CLIENT_SECRET from the environment over our token provider.
            raise TeamsTokenError("The Teams SDK picked up other credentials from the environment (CLIENT_SECRET "
                                  "or a managed identity). Unset CLIENT_SECRET; Deskbridge reads "
                                  "DESKBRIDGE_TEAMS_* only.")
        self.poster = TeamsPoster(self.sdk.api)
        self.refs = ConversationRefs(container.db, platform=PLATFORM)
        from bot.teams import listeners  # handlers need the surface built
        from bot.teams.notifier import TeamsNotifier

        self.notifier = TeamsNotifier(self)

        self.listeners = listeners.register(self)
        self.holds = WriteHolds(self, s.teams_write_hold_seconds or None)
        self._answers_json: OrderedDict[int, tuple[Any, bytes]] = OrderedDict()
        self.light_reads = True  # read-only card clicks without the SDK's turn (see dispatch); tests compare both
        self._started = False

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._started:
            return
        await self.sdk.initialize()
        await self.keys.refresh()  # before the first activity; a failure is retried on demand
        self._started = True

    async def drain(self) -> None:
        """Wait for the work after the acks and the deliveries it caused."""
        for _ in range(3):  # work queues events, events may queue nothing further
            await self.holds.drain()
            await self.work.drain()
            await self.notifier.drain()

    async def stop(self) -> None:
        await self.holds.drain()  # held clicks' outcomes and their follow-ups
        await self.work.close()
        await self.notifier.close()
        await self.http.aclose()

    def router(self) -> APIRouter:
        return frontdoor.router(self)

    # ------------------------------------------------------------ requests

    def tenant_allowed(self, tenant: str | None) -> bool:
        if not self.settings.teams_single_tenant:
            return tenant is not None
        return tenant is not None and tenant == self.tenant_id

    async def token_looks_valid(self, authorization: str | None) -> bool:
        """Signature, issuer, audience and expiry (for a body too broken to name its serviceUrl)."""
        try:
            await self.verifier.verify(authorization, service_url=None, channel_id=None, partial=True)
            return True
        except TokenRefused:
            return False

    async def dispatch(self, body: dict[str, Any], raw_token: str) -> tuple[int, Any]:
        """Hand one checked activity to the SDK's router; (status, JSON body or None) for the response.

        A card's refresh or other read-only card click (`is_read`) is answered by the same handler on the SDK's
        validated activity, without the SDK's per-activity turn: Teams asks for a card's refresh each time someone
        looks at it, and the turn (two API clients, a stream, tracing, a second dump-and-validate of the activity)
        cost more CPU than the card (bench/teams_invoke.py, notes/session7-teams.md). It writes nothing, posts
        nothing and reads nothing of the turn's context. Every other activity goes through the SDK's router."""
        if body.get("name") == "adaptiveCard/action" and body.get("replyToId") and _clicked(body):
            # someone acted on the card: a refused form it showed is theirs to replace now (bot/teams/redraws.py)
            conversation = body.get("conversation")
            if isinstance(conversation, dict) and conversation.get("id"):
                self.notifier.redraws.clicked(str(conversation["id"]), str(body["replyToId"]), str(body.get("id")))
        body = without_automatic_trigger(body)
        try:
            activity = ActivityTypeAdapter.validate_python(body)
        except ValidationError as exc:
            errors = exc.errors()
            where = ".".join(str(p) for p in errors[0].get("loc", ()))[:80] if errors else ""
            why = str(errors[0].get("msg", "invalid")) if errors else "invalid"
            raise frontdoor.BadActivity(f"The activity is not a valid {str(body.get('type'))[:32]} activity "
                                        f"({where or 'shape'}: {why})") from None
        looptrace.mark("validated")
        if self.light_reads and body.get("name") == "adaptiveCard/action" and is_read(body):
            with self.work.acking():
                answer = await self.listeners.on_execute(
                    activity.model_dump(mode="json", by_alias=True, exclude_none=True))
            looptrace.mark("handled")
            return 200, self._answer_json(answer)
        activity_id = body.get("id")
        if self.light_reads and body.get("name") == "adaptiveCard/action" and activity_id:
            # a write click: answered within the hold budget, its outcome or "saving…" (bot/teams/hold.py), without
            # the SDK's turn (the same handler; nothing of the turn's context is read)
            key = f"{body['conversation']['id']}|{activity_id}"[-200:]
            answer = await self.holds.answer(key, activity.model_dump(mode="json", by_alias=True, exclude_none=True))
            looptrace.mark("handled")
            return (200, None) if answer is None else (200, self._answer_json(answer))
        if activity_id and not is_read(body):  # Teams redelivers when it saw no answer in time: once each
            key = f"{body['conversation']['id']}|{activity_id}"[-200:]
            if not await self.container.chat.first_time("teams-activity", key):
                return 200, None
        event = ActivityEvent(body=CoreActivity.model_validate(body), token=JsonWebToken(raw_token))
        assert self.sdk.server.on_request is not None, "start() the Teams surface first"
        with self.work.acking():
            result = await self.sdk.server.on_request(event)
        out = result.model_dump(mode="json", by_alias=True, exclude_none=True) if result is not None else {}
        return int(out.get("status") or 200), out.get("body")

    def _answer_json(self, answer: Any) -> bytes:
        """The answer's JSON, as FastAPI's JSONResponse would write it; the same answer object (a kept card's,
        bot/teams/listeners.py `_card_answer`) is serialised once."""
        memo = self._answers_json.get(id(answer))
        if memo is not None and memo[0] is answer:
            return memo[1]
        raw = json.dumps(answer.model_dump(mode="json", by_alias=True, exclude_none=True), ensure_ascii=False,
                         allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")
        self._answers_json[id(answer)] = (answer, raw)  # the answer is held: its id is not reused meanwhile
        while len(self._answers_json) > 64:
            self._answers_json.popitem(last=False)
        return raw
