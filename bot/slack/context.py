"""Per-request plumbing shared by the Slack listeners: who is acting, replying, posting ticket cards.

Over 400 lines because it is every listener's toolbox (actor, answers, modals on a trigger, cards, thread
confirmations); the modal-opening part (open_form/open_modal/_fill_modal) is the next thing to move out."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from slack_sdk.errors import SlackApiError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.slack import blocks as bk
from bot.slack import text as t
from bot.slack.channels import SharedChannels
from bot.slack.confirm import Confirmations
from bot.slack.home import HomeRefresher
from bot.slack.install import WORKSPACE_KEY
from bot.slack.outbound import Posted, Render
from bot.slack.poster import SlackPoster, sdk_log
from bot.slack.redact import RedactionReport, Redactor
from bot.slack.work import FILL, AfterAck
from core.chat import (
    ChannelInfo,
    ChatCommands,
    ChatService,
    ChatUser,
    ChatViews,
    PostRecord,
    card_audience,
    error_view,
    may_post_ticket,
)
from core.context import Actor
from core.errors import DeskbridgeError, PermissionDenied
from core.intake.help_post import HelpPosts
from core.intake.offers import AlertOffers
from core.intake.requests import EndUserRequests
from core.markup import slack_plain, slack_user_ids
from core.tenant_actions import QuickActions
from core.tenant_context import TenantContextService
from core.views import FormView, TicketView

log = logging.getLogger("deskbridge.slack")
PLATFORM = "slack"
RESPONSE_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})
SLOW_WORKERS = 2
SLOW_BACKLOG = 500
FORM_BUDGET_S = 1.0  # build a form this long before showing "Loading…" (the trigger lives 3 s)
NAME_TTL_S = 600.0  # a mentioned user's name is looked up again after this long
# After a write from chat, the thread's confirmation says "queued" at once; the card waits this long for the
# write's outcome (chat.update is ~50/min per workspace: one update per action instead of two).
ACTION_CARD_HOLD_S = 2.0
# A clicked card confirmed through the click's response_url shows "queued" only when its write takes longer than
# this (a PSA that is down or refusing for a while): a build in every slow burst would slow the writes further.
CLICK_QUEUED_AFTER_S = 10.0
TRIGGER_SAFE_S = 2.0  # past this age (since the ack) a trigger is used at once for "Loading…"
# In a burst (other clicks waiting for a worker): a trigger younger than this builds its modal for up to
# BUSY_BUDGET_S and opens it in one call; an older one opens "Loading…" at once (see open_modal).
YOUNG_TRIGGER_S = 1.0
BUSY_BUDGET_S = 0.25
WEBHOOK_LOG = sdk_log("slack_sdk.webhook.async_client")  # formats its debug lines only when they are wanted
_acked_at: contextvars.ContextVar[float | None] = contextvars.ContextVar("slack_acked_at", default=None)


def trigger_age() -> float:
    """Seconds since the request whose work is running was acked (0 outside such work)."""
    acked = _acked_at.get()
    return 0.0 if acked is None else time.monotonic() - acked


class Overloaded(Exception):
    """Raised before the ack when work after it could not be queued."""


class SlackContext:
    """Services and helpers the listeners share (one per app)."""

    def __init__(self, *, chat: ChatService, views: ChatViews, commands: ChatCommands,
                 poster: SlackPoster, api_url: str = "https://slack.com/api/",
                 shared: SharedChannels | None = None, redactor: Redactor | None = None,
                 requests: EndUserRequests | None = None, tenant: TenantContextService | None = None,
                 quick_actions: QuickActions | None = None, alert_offers: AlertOffers | None = None,
                 confirmations: Confirmations | None = None) -> None:
        self.chat = chat
        # clicks' response_urls and thread messages awaiting their write's outcome (shared with the notifier)
        self.confirmations = confirmations or Confirmations()
        self._held: set[asyncio.Task[None]] = set()  # clicked cards waiting CLICK_QUEUED_AFTER_S for their outcome
        self.alert_offers = alert_offers  # "Create ticket" for alerts that made none (core/intake/offers.py)
        self.tenant = tenant  # Microsoft 365 context beside a ticket (bot/slack/listeners/tenant.py)
        self.quick_actions = quick_actions
        self.requests = requests  # end users asking for help in customer channels (core/intake/requests.py)
        self.help_posts = HelpPosts(requests.db) if requests is not None else None  # the pinned "Get help"
        self.redactor = redactor
        self.views = views
        self.commands = commands
        self.poster = poster
        self.shared = shared or SharedChannels()
        # response_urls are only ever sent to Slack (or to the configured API host: GovSlack, a test fake)
        api = urlsplit(api_url)
        self.response_hosts = RESPONSE_HOSTS | {api.hostname or ""}
        self._plain_http_host = api.hostname if api.scheme == "http" else None  # a local fake only
        self.work = AfterAck()
        self._overran = 0  # burst builds that overran BUSY_BUDGET_S and are still running (open_modal)
        self.homes: HomeRefresher | None = None  # App Home refreshes (the notifier's): who has Home open
        self.session: Any = None  # the surface's shared aiohttp session, once started (SlackSurface.start)
        self._names: dict[str, tuple[str, float]] = {}  # Slack user id -> (display name, valid until)
        # Long transfers (files a technician drops into a thread: up to 120 s each) get their own small pool,
        # so they never occupy the workers that open modals before a click's trigger expires.
        self.slow_work = AfterAck(workers=SLOW_WORKERS, max_backlog=SLOW_BACKLOG)

    def background(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run work after the ack, on the bounded pool; failures are logged."""
        if not self.work.submit(lambda: coro):
            coro.close()

    def after_ack(self, fn: Callable[..., Awaitable[Any]], *,
                  slow: Callable[[dict[str, Any]], bool] | None = None,
                  urgent: Callable[[dict[str, Any]], bool] | None = None,
                  claim: Callable[[dict[str, Any], Any], tuple[str, str]] | None = None,
                  ) -> Callable[..., Awaitable[None]]:
        """A bolt listener that acks at once and queues `fn` (taking any of body, context, client, respond).

        Requests for which `slow(body)` is true go to the slow pool (long downloads); those for which
        `urgent(body)` is true (they will open a modal on the request's trigger id) run ahead of the rest.
        `claim(body, context)` names the event id that `fn` claims first (`first_time`): the claim begins at the
        ack, so a burst's claims are written in a few transactions while its work waits for the workers.

        Used instead of bolt's lazy listeners, which deep-copy every request (about 0.7 ms of CPU each) and
        start one unbounded task per request on the loop that must ack the next ones.
        """
        names = tuple(inspect.signature(fn).parameters)

        async def listener(ack: Any, body: dict[str, Any], context: Any, client: Any, respond: Any) -> None:
            pool = self.slow_work if slow is not None and slow(body) else self.work
            if pool.full:  # never ack what would then be dropped: Slack retries events, users are told
                log.error("Slack request refused: the work queue is full")
                if body.get("command"):
                    await ack(text=t.BUSY)
                    return
                raise Overloaded("the post-ack work queue is full")  # bolt answers 500: Slack retries / warns
            await ack()
            acked = time.monotonic()
            if claim is not None:
                self.chat.claim_ahead(*claim(body, context))
            given = {"body": body, "context": context, "client": client, "respond": respond}
            kwargs = {n: given[n] for n in names}
            pool.submit(lambda: self._run_reporting(fn, kwargs, body, respond, client, acked),
                        urgent=urgent is not None and urgent(body))

        listener.__name__ = listener.__qualname__ = f"ack_then_{fn.__name__}"
        return listener

    async def _run_reporting(self, fn: Callable[..., Awaitable[Any]], kwargs: dict[str, Any], body: dict[str, Any],
                             respond: Any, client: Any, acked: float | None = None) -> None:
        """Run queued work; an unexpected failure is logged and told to the user where Slack lets us reach
        them (listeners answer DeskbridgeErrors themselves; this is for the rest, e.g. an expired trigger):
        through the response_url, else ephemerally in the thread the event came from, else on App Home."""
        _acked_at.set(acked)
        try:
            await fn(**kwargs)
        except Exception as exc:
            log.exception("slack work after the ack failed")
            expired = isinstance(exc, SlackApiError) and exc.response.get("error") in (
                "expired_trigger_id", "exchanged_trigger_id", "invalid_trigger_id")
            text = t.OPEN_FAILED if expired else t.INTERNAL_ERROR
            try:
                await self._tell(body, respond, client, text)
            except Exception:  # noqa: BLE001 - Slack itself failed: the log has the cause
                log.warning("could not tell the user about a failed Slack request")

    @staticmethod
    async def _tell(body: dict[str, Any], respond: Any, client: Any, text: str) -> None:
        if body.get("response_url"):
            await respond(text=text, response_type="ephemeral", replace_original=False)
            return
        event = body.get("event") or {}
        if event.get("type") == "message" and event.get("channel") and event.get("user"):
            await client.chat_postEphemeral(channel=event["channel"], user=event["user"], text=text,
                                            thread_ts=event.get("thread_ts"))
        elif body.get("type") == "message_action" and (body.get("channel") or {}).get("id") \
                and (body.get("user") or {}).get("id"):
            msg = body.get("message") or {}
            await client.chat_postEphemeral(channel=body["channel"]["id"], user=body["user"]["id"], text=text,
                                            thread_ts=msg.get("thread_ts"))
        elif event.get("type") == "app_home_opened" and event.get("user"):
            await client.views_publish(user_id=event["user"], view=bk.home_error_view(text, None))
        elif (body.get("view") or {}).get("type") == "home" and (body.get("user") or {}).get("id"):
            await client.views_publish(user_id=body["user"]["id"], view=bk.home_error_view(text, None))

    async def open_form(self, client: Any, trigger_id: str, build: Callable[[], Awaitable[FormView]],
                        meta: dict[str, Any], *, title: str = "Deskbridge", push: bool = False) -> None:
        """Open a form's modal without losing the trigger (see open_modal)."""
        async def modal() -> dict[str, Any]:
            return bk.form_modal(await build(), meta)

        await self.open_modal(client, trigger_id, modal, title=title, push=push)

    async def open_modal(self, client: Any, trigger_id: str, build: Callable[[], Awaitable[dict[str, Any]]], *,
                         title: str = "Deskbridge", push: bool = False) -> None:
        """Open a modal without losing the trigger (it expires 3 s after the click).

        The modal is built for up to FORM_BUDGET_S (less when the trigger has already waited in the queue:
        never past TRIGGER_SAFE_S of its age); if it is ready it opens as is (one call). If not, a
        "Loading…" modal opens at once on the trigger and `views.update` puts the modal (or the error) in it
        when it is ready, so a slow database or PSA-backed picklist never costs the user the click.
        `push` stacks the modal on an open one (a button inside a modal cannot open a new one).

        While other clicks wait for a worker (a burst), a young trigger (acked less than YOUNG_TRIGGER_S ago)
        still gets BUSY_BUDGET_S to build its modal and open it in one call: a form is a few milliseconds of
        work, and "Loading…" then `views.update` is two Slack calls instead of one. An older trigger, or any
        trigger while a build that overran its budget is still being finished (a slow database), uses the
        trigger for "Loading…" at once and builds afterwards, so the clicks behind never wait for builds.
        """
        show = client.views_push if push else client.views_open
        age = trigger_age()
        busy = self.work.triggers_waiting > 0
        if busy and (age >= YOUNG_TRIGGER_S or self._overran):  # use the trigger now, build later
            opened = await show(trigger_id=trigger_id, view=bk.loading_modal(title))
            self.work.submit(lambda: self._fill_modal(client, opened, asyncio.ensure_future(build()), title),
                             rank=FILL)
            return
        task = asyncio.ensure_future(build())
        limit = BUSY_BUDGET_S if busy else FORM_BUDGET_S
        budget = max(0.0, min(limit, TRIGGER_SAFE_S - age))
        done, _ = await asyncio.wait({task}, timeout=budget) if budget > 0 else (set(), set())
        if done:
            await show(trigger_id=trigger_id, view=task.result())
            return
        try:
            opened = await show(trigger_id=trigger_id, view=bk.loading_modal(title))
        except BaseException:
            task.cancel()
            raise
        if not busy:
            await self._fill_modal(client, opened, task, title)
            return
        # its build goes on outside the workers; while it does, the next clicks of the burst open "Loading…" at
        # once and start no build of their own (the database's pool is sized for the workers)
        self._overran += 1
        task.add_done_callback(self._overrun_done)
        self.work.submit(lambda: self._fill_modal(client, opened, task, title), rank=FILL)

    def _overrun_done(self, _: asyncio.Future[Any]) -> None:
        self._overran -= 1

    @staticmethod
    async def _fill_modal(client: Any, opened: Any, task: asyncio.Future[dict[str, Any]], title: str) -> None:
        """Put the built modal (or the error) into the "Loading…" modal the trigger opened."""
        view = opened.get("view") or {}
        try:
            update = await task
        except DeskbridgeError as exc:
            update = bk.error_modal(title, exc.message, exc.hint)
        await client.views_update(view_id=view.get("id"), hash=view.get("hash"), view=update)

    async def respond_to(self, response_url: str, **message: Any) -> bool:
        """Post to a response_url kept from an earlier request (valid 30 min, 5 uses); False if refused."""
        parts = urlsplit(response_url)
        plain_ok = parts.scheme == "http" and parts.hostname == self._plain_http_host
        if not (parts.scheme == "https" or plain_ok) or parts.hostname not in self.response_hosts:
            log.warning("response_url with an unexpected host ignored", extra={"host": parts.hostname})
            return False
        try:
            resp = await AsyncWebhookClient(response_url, timeout=10, session=self.session, logger=WEBHOOK_LOG
                                            ).send(**message)
        except Exception:  # noqa: BLE001 - a stale response_url: the card just isn't updated
            log.warning("response_url could not be reached", exc_info=True)
            return False
        return resp.status_code == 200

    async def drain(self) -> None:
        """Wait for work after the ack (tests)."""
        await self.work.drain()
        await self.slow_work.drain()

    @property
    def backlog(self) -> int:
        return self.work.backlog + self.slow_work.backlog

    async def close(self) -> None:
        for task in list(self._held):
            task.cancel()
        await asyncio.gather(*self._held, return_exceptions=True)
        await self.work.close()
        await self.slow_work.close()

    # ------------------------------------------------------------ identity

    @staticmethod
    def chat_user(context: Any, body: dict[str, Any], channel_id: str | None) -> ChatUser:
        user = body.get("user") if isinstance(body.get("user"), dict) else {}
        user_team = (user or {}).get("team_id") or body.get("user_team_id")
        return ChatUser(platform=PLATFORM, team_id=str(context.team_id or body.get("team_id") or ""),
                        user_id=str(context.user_id or (user or {}).get("id") or body.get("user_id") or ""),
                        channel_id=channel_id, user_team_id=user_team,
                        name=(user or {}).get("username") or body.get("user_name"),
                        is_dm=bool(channel_id and channel_id.startswith("D")))

    async def _profile(self, client: Any, user_id: str) -> dict[str, Any] | None:
        try:
            resp = await client.users_info(user=user_id)
            return resp.get("user") or None
        except SlackApiError:
            return None

    async def actor(self, context: Any, user: ChatUser, client: Any, *,
                    need_admin: bool = False, slack_lookups: bool = True) -> tuple[Actor, ChannelInfo]:
        """The acting technician/contact; unknown users get one auto-link attempt by their Slack e-mail.

        `slack_lookups=False` resolves from our database only (before an ack: no Slack API call there).
        """
        ws = int(context[WORKSPACE_KEY])
        try:
            actor, info = await self.chat.actor_for(ws, user)
        except PermissionDenied:
            if not slack_lookups:
                raise
            actor, info = await self._retry_with_profile(ws, user, client, need_admin=need_admin)
            return actor, info
        if not slack_lookups:
            return actor, info
        if need_admin and not actor.is_admin:
            profile = await self._profile(client, user.user_id)
            if profile and (profile.get("is_admin") or profile.get("is_owner")):
                return await self.chat.actor_for(ws, replace(user, platform_admin=True))
        if not actor.is_member and not user.is_external:
            linked = await self._autolink(ws, user, client)
            if linked:
                return await self.chat.actor_for(ws, user)
        return actor, info

    async def _retry_with_profile(self, ws: int, user: ChatUser, client: Any, *,
                                  need_admin: bool) -> tuple[Actor, ChannelInfo]:
        if await self._autolink(ws, user, client):
            return await self.chat.actor_for(ws, user)
        if need_admin:
            profile = await self._profile(client, user.user_id)
            if profile and (profile.get("is_admin") or profile.get("is_owner")):
                return await self.chat.actor_for(ws, replace(user, platform_admin=True))
        try:
            return await self.chat.actor_for(ws, user)
        except PermissionDenied as unknown:
            try:  # a customer's contact, by their Slack-verified e-mail (core/chat/end_users.py)
                return await self.chat.end_user_actor(ws, user, await self.email_of(client, user.user_id))
            except PermissionDenied:
                raise unknown from None  # its hint speaks to technicians and customers alike

    async def _autolink(self, ws: int, user: ChatUser, client: Any) -> bool:
        """core decides whether and how often to link; Slack only supplies the verified e-mail."""
        return await self.chat.autolink(ws, user, lambda: self.email_of(client, user.user_id))

    async def readable(self, client: Any, text: str) -> str:
        """A message's text as the people in Slack read it (core/markup.py), mentioned users by name:
        what is written to the PSA, and with `!public` mailed to the customer."""
        names: dict[str, str] = {}
        for user_id in slack_user_ids(text)[:20]:
            hit = self._names.get(user_id)
            if hit is not None and hit[1] > time.monotonic():
                names[user_id] = hit[0]
                continue
            profile = await self._profile(client, user_id) or {}
            detail = profile.get("profile") or {}
            name = str(detail.get("display_name") or detail.get("real_name") or profile.get("real_name")
                       or profile.get("name") or "")
            if name:
                self._names[user_id] = (name, time.monotonic() + NAME_TTL_S)
                names[user_id] = name
        return slack_plain(text, names)

    async def email_of(self, client: Any, user_id: str) -> str | None:
        profile = await self._profile(client, user_id)
        email = ((profile or {}).get("profile") or {}).get("email")
        return str(email).lower() if email else None

    # ------------------------------------------------------------ answering

    async def reply_error(self, respond: Callable[..., Awaitable[Any]], exc: DeskbridgeError, *,
                          body: dict[str, Any] | None = None, client: Any = None) -> None:
        """Tell the user why their request was refused: through the response_url, or, for a payload that
        has none (`body` given), the way _tell reaches them."""
        view = error_view(exc)
        if body is not None and not body.get("response_url"):
            await self._tell(body, respond, client, bk.message_fallback(view))
            return
        await respond(text=bk.message_fallback(view), blocks=bk.message_blocks(view), response_type="ephemeral",
                      replace_original=False)

    async def seen(self, client: Any, workspace_id: int, team_id: str, channel_id: str) -> ChannelInfo:
        return await self.shared.seen(self.chat, client, workspace_id, team_id, channel_id)

    async def redact_if_customer_reads(self, client: Any, workspace_id: int, team_id: str, channel_id: str,
                                       tell: Callable[[str], Awaitable[Any]] | None = None) -> bool:
        """A channel the customer now reads: sweep the bot's earlier posts there (in a task of its own) and
        tell `tell` what was done. False if the channel is internal (nothing to do)."""
        info = await self.seen(client, workspace_id, team_id, channel_id)
        if info.visibility != "customer" or self.redactor is None:
            return False

        async def report(r: RedactionReport) -> None:
            text = t.redaction_report(r.redacted, r.failed, r.foreign_threads)
            if tell is not None and text:
                try:
                    await tell(text)
                except Exception:  # noqa: BLE001 - the sweep is done; only the report was lost
                    log.warning("could not report a channel redaction", extra={"channel": channel_id})

        self.redactor.schedule(client, workspace_id, team_id, channel_id, then=report)
        return True

    async def post_card(self, client: Any, workspace_id: int, team_id: str, channel_id: str, view: TicketView, *,
                        thread_ts: str | None = None,
                        respond: Callable[..., Awaitable[Any]] | None = None) -> None:
        """Queue a ticket card for a channel; once posted it is remembered as the ticket's thread there
        (the post waits for the channel's pacing in its own task, not in this worker).

        A channel outsiders read gets the customer's card, and none at all until it is bound to their
        customer; `respond` (the user's own, private answer) then gets the card with the reason.
        """
        info = await self.seen(client, workspace_id, team_id, channel_id)
        if not may_post_ticket(info, view.summary.customer_id):
            if respond is not None:
                await self._private_card(respond, view, t.SHARED_UNBOUND)
            log.info("card not posted in a shared, unbound channel", extra={"channel": channel_id})
            return
        if card_audience(info) == "customer" and view.audience != "customer":
            view = await self.views.ticket_from_detail(Actor.system(workspace_id), view.detail, audience="customer")
        blocks = bk.ticket_blocks(view)

        async def posted(result: Posted) -> None:
            if result.ts is None:
                if respond is not None:
                    await self._private_card(respond, view, t.NOT_IN_CHANNEL)
                log.info("card not posted", extra={"channel": channel_id, "error": result.error})
                return
            await self.chat.record_post(workspace_id, ticket_id=view.summary.id, platform=PLATFORM, team_id=team_id,
                                        channel_id=channel_id, message_ts=thread_ts or result.ts,
                                        ref={"card_ts": result.ts} if thread_ts else None)

        record = PostRecord(workspace_id=workspace_id, platform=PLATFORM, team_id=team_id, channel_id=channel_id,
                            kind="card", audience=view.audience, ticket_id=view.summary.id,
                            customer_id=view.summary.customer_id, thread_ts=thread_ts)
        self.poster.post_then(client, channel_id, text=bk.ticket_fallback(view), blocks=blocks, thread_ts=thread_ts,
                              then=posted, record=record)

    @staticmethod
    async def _private_card(respond: Callable[..., Awaitable[Any]], view: TicketView, why: str) -> None:
        note = [{"type": "context", "elements": [{"type": "mrkdwn", "text": why}]}]
        await respond(text=bk.ticket_fallback(view), blocks=bk.ticket_blocks(view)[:49] + note,
                      response_type="ephemeral")

    async def confirm_in_thread(self, client: Any, workspace_id: int, team_id: str, channel_id: str,
                                thread_ts: str, card_ts: str | None, view: TicketView, confirmation: str, *,
                                user_id: str | None = None) -> None:
        """After a write: the bot says what it did, and the card shows the queued state.

        Where outsiders read the channel, the confirmation ("Internal note: queued…") goes to the author
        alone: it is about the MSP's own workflow, and the card they see is the customer's.
        `view` may be the bare ticket (ChatViews.bare): the card is built when its update is sent.
        """
        info = await self.seen(client, workspace_id, team_id, channel_id)
        msg = t.confirm_thread(confirmation)
        if card_audience(info) == "customer" and user_id:
            try:
                await client.chat_postEphemeral(channel=channel_id, user=user_id, thread_ts=thread_ts, text=msg)
            except Exception:  # noqa: BLE001 - the write is done; a lost confirmation must not look like a failure
                log.warning("private confirmation not delivered", extra={"channel": channel_id}, exc_info=True)
        else:
            if user_id:  # a shared thread: say who did it
                msg = t.confirm_thread(confirmation, by=user_id)
            await self.poster.post(client, channel_id, text=msg, thread_ts=thread_ts,
                                   blocks=[{"type": "context", "elements": [{"type": "mrkdwn", "text": msg}]}],
                                   record=PostRecord(workspace_id=workspace_id, platform=PLATFORM, team_id=team_id,
                                                     channel_id=channel_id, kind="notice", audience="tech",
                                                     ticket_id=view.summary.id,
                                                     customer_id=view.summary.customer_id, thread_ts=thread_ts))
        if not card_ts:
            return
        pending = view.detail.pending_writes > 0
        render = self.card_render(workspace_id, view.summary.id, info)
        if pending and self.confirmations.has_click(channel_id, card_ts):
            # The write's outcome replaces this card through the click's response_url (SlackNotifier); if it
            # is not there within CLICK_QUEUED_AFTER_S, the card shows "queued" the same way meanwhile.
            task = asyncio.get_running_loop().create_task(self._queued_unless_done(client, channel_id, card_ts, render))
            self._held.add(task)
            task.add_done_callback(self._held.discard)
            return
        # The card they just acted on. While its write is on the way to the PSA the card waits (up to
        # ACTION_CARD_HOLD_S) for the outcome, so one chat.update shows "in the PSA" instead of two; it is built
        # when sent, so a burst's writes are never held up by card builds.
        await self.poster.update(client, channel_id, card_ts, urgent=True, hold=ACTION_CARD_HOLD_S if pending else 0.0,
                                 render=render)

    async def _queued_unless_done(self, client: Any, channel_id: str, card_ts: str, render: Render) -> None:
        await asyncio.sleep(CLICK_QUEUED_AFTER_S)

        async def send(url: str) -> bool:
            content = await render()
            return content is not None and await self.respond_to(url, text=content[0], blocks=content[1],
                                                                 replace_original=True)
        try:
            if await self.confirmations.replace(channel_id, card_ts, send, outcome=False) is False:
                await self.poster.update(client, channel_id, card_ts, urgent=True, render=render)  # url refused
        except Exception:  # noqa: BLE001 - the outcome still refreshes the card
            log.warning("clicked card not shown as queued", extra={"channel": channel_id}, exc_info=True)

    def card_render(self, workspace_id: int, ticket_id: int, info: ChannelInfo) -> Render:
        """A ticket's card for a channel, built when its update is sent (None: nothing to show there now)."""
        actor = Actor.system(workspace_id)

        async def render() -> tuple[str, list[dict[str, Any]]] | None:
            try:
                view = await self.views.ticket_by_id(actor, ticket_id)
            except DeskbridgeError:
                return None
            if view is None or not may_post_ticket(info, view.summary.customer_id):
                return None
            if card_audience(info) == "customer":
                view = await self.views.ticket_from_detail(actor, view.detail, audience="customer")
            return bk.ticket_fallback(view), bk.ticket_blocks(view)
        return render
