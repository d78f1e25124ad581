"""Redacting the bot's earlier posts in a channel the customer can now read (Slack Connect shows history).

Core decides what must go (core/chat/posts.py); this module does it in Slack: `chat.delete` for internal
posts and anything of other customers' tickets, `chat.update` to the customer's view for the technician
cards of the customer's own tickets. Calls are spaced for Slack's Tier 3 limit (~50/min) and 429s wait
their Retry-After (the client's retry handler). Messages people wrote cannot be deleted by a bot; the
admin is told how many threads of other customers' tickets remain for them to review.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.slack import blocks as bk
from bot.slack.channels import SharedChannels
from bot.slack.outbound import SlackOutbound
from core.chat import DELETE, ChatPosts, ChatService, ChatViews, Redaction
from core.context import Actor
from core.errors import DeskbridgeError

log = logging.getLogger("deskbridge.slack")
PLATFORM = "slack"
CALL_INTERVAL_S = 1.2  # chat.delete and chat.update are Tier 3: about 50 a minute per workspace
QUEUE_WAIT_S = 30.0  # posts already queued for the channel go out (and are recorded) before the sweep
GONE = frozenset({"message_not_found", "channel_not_found", "is_archived"})


@dataclass(frozen=True, slots=True)
class RedactionReport:
    redacted: int
    failed: int
    foreign_threads: int


class Redactor:
    def __init__(self, *, chat: ChatService, posts: ChatPosts, views: ChatViews, shared: SharedChannels,
                 outbound: SlackOutbound, interval: float = CALL_INTERVAL_S) -> None:
        self.chat = chat
        self.posts = posts
        self.views = views
        self.shared = shared
        self.outbound = outbound
        self.interval = interval
        self._running: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, client: Any, workspace_id: int, team_id: str, channel_id: str,
                 then: Callable[[RedactionReport], Awaitable[Any]] | None = None) -> None:
        """Sweep the channel in a task of its own (it is paced, so it may take minutes on a big channel)."""
        async def run() -> None:
            try:
                report = await self.redact(client, workspace_id, team_id, channel_id)
                if then is not None:
                    await then(report)
            except Exception:  # noqa: BLE001 - logged; the next bind or channel_shared sweeps again
                log.exception("channel redaction failed", extra={"channel": channel_id})

        task = asyncio.get_running_loop().create_task(run(), name=f"slack-redact-{channel_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def idle(self) -> bool:
        return not self._tasks

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def redact(self, client: Any, workspace_id: int, team_id: str, channel_id: str) -> RedactionReport:
        """Redact what the channel's readers may no longer see; one sweep per channel at a time."""
        lock = self._running.setdefault(channel_id, asyncio.Lock())
        async with lock:
            for _ in range(int(QUEUE_WAIT_S / 0.1)):
                if not self.outbound.queued_in(channel_id):
                    break
                await asyncio.sleep(0.1)
            info = await self.shared.seen(self.chat, client, workspace_id, team_id, channel_id)
            plan = await self.posts.redactions(workspace_id, PLATFORM, team_id, channel_id, info)
            done: list[Redaction] = []
            failed = 0
            for i, item in enumerate(plan.items):
                if i and self.interval:
                    await asyncio.sleep(self.interval)
                if await self._apply(client, workspace_id, channel_id, item):
                    done.append(item)
                else:
                    failed += 1
            await self.posts.done(workspace_id, PLATFORM, team_id, channel_id, done)
        if plan.items or plan.foreign_threads:
            log.info("channel redacted", extra={"channel": channel_id, "redacted": len(done), "failed": failed,
                                                "foreign_threads": plan.foreign_threads})
        return RedactionReport(redacted=len(done), failed=failed, foreign_threads=plan.foreign_threads)

    async def _apply(self, client: Any, workspace_id: int, channel_id: str, item: Redaction) -> bool:
        try:
            if item.action == DELETE:
                await client.chat_delete(channel=channel_id, ts=item.message_ts)
                return True
            view = await self._customer_card(workspace_id, item.ticket_id)
            if view is None:  # the ticket is gone: its card goes too
                await client.chat_delete(channel=channel_id, ts=item.message_ts)
                return True
            await client.chat_update(channel=channel_id, ts=item.message_ts, text=bk.ticket_fallback(view),
                                     blocks=bk.ticket_blocks(view))
            return True
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error in GONE:
                return True
            log.warning("could not redact a post", extra={"channel": channel_id, "error": error})
            return False

    async def _customer_card(self, workspace_id: int, ticket_id: int | None) -> Any:
        if ticket_id is None:
            return None
        actor = Actor.system(workspace_id)
        try:
            tech = await self.views.ticket_by_id(actor, ticket_id)
        except DeskbridgeError:
            return None
        if tech is None:
            return None
        return await self.views.ticket_from_detail(actor, tech.detail, audience="customer")
