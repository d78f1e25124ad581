"""Posting to Slack within its limits: ~1 message/s per channel, 429 + Retry-After honoured.

`chat.postMessage` allows about one message per second per channel (chat-platforms.md §2.4). Every post
and card update goes through `SlackOutbound` (outbound.py): the caller only queues it and goes on, and
the channel's own drain task spaces and sends it, so a busy channel never holds up a post-ack worker,
the outbox worker or the SLA monitor. The Web API client itself retries HTTP 429 after the
`Retry-After` it was given (slack_sdk's RateLimitErrorRetryHandler).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.outbound import Posted, Render, SlackOutbound, Then
from core.chat import PostRecord

Recorder = Callable[[PostRecord, str], Awaitable[None]]

log = logging.getLogger("deskbridge.slack")


class ConnectionRetryExceptPosts(AsyncConnectionErrorRetryHandler):
    """Connection errors are retried, except for chat.postMessage: a post whose answer was lost may have
    landed, so the outbound queue looks for it before sending it again (outbound.py)."""

    async def _can_retry_async(self, *, state: Any, request: Any, response: Any = None,
                               error: Exception | None = None) -> bool:
        if str(getattr(request, "url", "")).endswith("chat.postMessage"):
            return False
        return await super()._can_retry_async(state=state, request=request, response=response, error=error)


def retry_handlers(max_429_retries: int = 3) -> list[Any]:
    """Connection errors (not for posts) and 429s (waiting Retry-After) are retried; nothing else is."""
    return [ConnectionRetryExceptPosts(max_retry_count=1),
            AsyncRateLimitErrorRetryHandler(max_retry_count=max_429_retries)]


class SdkLog(logging.LoggerAdapter[logging.Logger]):
    """slack_sdk's own logger, with a `level` that says whether its DEBUG records would be handled.

    slack_sdk decides whether to format its debug lines (the whole request and response, a modal's every block)
    by `logger.level <= DEBUG`, and a logger nobody set a level on has level 0: every Web API call and
    response_url post formatted both lines and then dropped them (~3% of a click's CPU). Records still go to the
    same logger, so `DESKBRIDGE_LOG_LEVELS=slack_sdk=DEBUG` shows them as before."""

    @property
    def level(self) -> int:
        return logging.DEBUG if self.logger.isEnabledFor(logging.DEBUG) else logging.INFO


def sdk_log(name: str) -> logging.Logger:
    """`name`'s logger as slack_sdk reads it (SdkLog: the same records, formatted only when wanted)."""
    return cast("logging.Logger", SdkLog(logging.getLogger(name)))  # slack_sdk uses level, debug..error only


WEB_LOG = sdk_log("slack_sdk.web.async_base_client")  # the logger slack_sdk's Web API client uses by default


def make_client(base_url: str, token: str | None = None, session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    """A Web API client for our base URL (Slack, GovSlack or a test fake) with our retry policy. `session`: the
    process's shared HTTP session (kept-alive connections); without one (or once it is closed) slack_sdk opens a
    session, and a connection with its TLS handshake, for every call. bolt's client for each request takes
    this client's logger (SdkLog)."""
    return AsyncWebClient(token=token, base_url=base_url, retry_handlers=retry_handlers(), timeout=10, session=session,
                          logger=WEB_LOG)


class SlackPoster:
    """chat.postMessage / chat.update through the per-channel queues; Slack errors are logged there.

    A post given a `record` (what it holds: whose ticket, for whom) is remembered once Slack accepted it
    (core/chat/posts.py), so it can be redacted if the channel's readers change.
    """

    def __init__(self, outbound: SlackOutbound | None = None, recorder: Recorder | None = None) -> None:
        self.outbound = outbound or SlackOutbound()
        self.recorder = recorder

    async def post(self, client: AsyncWebClient, channel: str, *, text: str, blocks: list[dict[str, Any]],
                   thread_ts: str | None = None, record: PostRecord | None = None) -> None:
        """Queue a post and return at once (it goes out when the channel's pacing allows)."""
        then = self._recording(record, None) if record is not None else None
        self.outbound.post(client, channel, text=text, blocks=blocks, thread_ts=thread_ts, then=then)

    def post_then(self, client: AsyncWebClient, channel: str, *, text: str = "",
                  blocks: list[dict[str, Any]] | None = None, then: Then, thread_ts: str | None = None,
                  record: PostRecord | None = None, render: Render | None = None) -> None:
        """Queue a post; `then(Posted)` runs in its own task once Slack answered (e.g. record the thread).
        `render` instead of text and blocks: the message is built when its turn comes (outbound.py)."""
        if record is not None:
            then = self._recording(record, then)
        self.outbound.post(client, channel, text=text, blocks=blocks, thread_ts=thread_ts, then=then, render=render)

    def _recording(self, record: PostRecord, then: Then | None) -> Then:
        async def recorded(result: Posted) -> None:
            try:
                if result.ts is not None and self.recorder is not None:
                    await self.recorder(record, result.ts)
            except Exception:  # noqa: BLE001 - the post is out; a lost record must not break its follow-up
                log.exception("could not record a bot post", extra={"channel": record.channel_id})
            if then is not None:
                await then(result)
        return recorded

    async def update(self, client: AsyncWebClient, channel: str, ts: str, *, text: str = "",
                     blocks: list[dict[str, Any]] | None = None, urgent: bool = False, hold: float = 0.0,
                     render: Render | None = None) -> None:
        """Queue a card update and return at once; queued updates of the same card collapse into the last.
        `urgent`: a card someone just acted on; it goes before bulk refreshes (bot/slack/outbound.py).
        `hold`: wait up to this long for a newer state (the outcome of a write) and send only that.
        `render` instead of text and blocks: the card is built when the update is sent (the newest state)."""
        self.outbound.update(client, channel, ts, text=text, blocks=blocks, urgent=urgent, hold=hold, render=render)
