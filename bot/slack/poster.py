"""Posting to Slack within its limits: ~1 message/s per channel, 429 + Retry-After honoured.

`chat.postMessage` allows about one message per second per channel (chat-platforms.md §2.4). Every post
goes through `ChannelPacer`, which spaces posts to the same channel; the Web API client itself retries
HTTP 429 after the `Retry-After` it was given (slack_sdk's RateLimitErrorRetryHandler).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("deskbridge.slack")

POST_INTERVAL_S = 1.0


def retry_handlers(max_429_retries: int = 3) -> list[Any]:
    """Connection errors and 429s (waiting Retry-After) are retried; everything else is not."""
    return [AsyncConnectionErrorRetryHandler(max_retry_count=1),
            AsyncRateLimitErrorRetryHandler(max_retry_count=max_429_retries)]


def make_client(base_url: str, token: str | None = None) -> AsyncWebClient:
    """A Web API client for our base URL (Slack, GovSlack or a test fake) with our retry policy."""
    return AsyncWebClient(token=token, base_url=base_url, retry_handlers=retry_handlers(), timeout=10)


class ChannelPacer:
    """Spaces posts to one channel `interval` seconds apart; other channels are not held up."""

    def __init__(self, interval: float = POST_INTERVAL_S, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, channel: str) -> None:
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            now = self._clock()
            due = self._next.get(channel, now)
            if due > now:
                await self._sleep(due - now)
            self._next[channel] = max(due, now) + self.interval
            if len(self._next) > 5000:  # forget idle channels
                cutoff = self._clock()
                self._next = {k: v for k, v in self._next.items() if v > cutoff}


class SlackPoster:
    """chat.postMessage / chat.update through the pacer; Slack errors are logged and reported as None."""

    def __init__(self, pacer: ChannelPacer | None = None) -> None:
        self.pacer = pacer or ChannelPacer()

    async def post(self, client: AsyncWebClient, channel: str, *, text: str, blocks: list[dict[str, Any]],
                   thread_ts: str | None = None) -> str | None:
        await self.pacer.wait(channel)
        try:
            resp = await client.chat_postMessage(channel=channel, text=text[:3000], blocks=blocks,
                                                 thread_ts=thread_ts, unfurl_links=False, unfurl_media=False)
        except SlackApiError as exc:
            log.warning("chat.postMessage failed", extra={"channel": channel, "error": exc.response.get("error")})
            return None
        return str(resp.get("ts")) if resp.get("ts") else None

    async def update(self, client: AsyncWebClient, channel: str, ts: str, *, text: str,
                     blocks: list[dict[str, Any]]) -> bool:
        try:
            await client.chat_update(channel=channel, ts=ts, text=text[:3000], blocks=blocks)
            return True
        except SlackApiError as exc:
            log.warning("chat.update failed", extra={"channel": channel, "error": exc.response.get("error")})
            return False

    async def post_or_error(self, client: AsyncWebClient, channel: str, *, text: str, blocks: list[dict[str, Any]],
                            thread_ts: str | None = None) -> tuple[str | None, str | None]:
        """Like post, but returns (ts, Slack error code) so callers can fall back (e.g. not_in_channel)."""
        await self.pacer.wait(channel)
        try:
            resp = await client.chat_postMessage(channel=channel, text=text[:3000], blocks=blocks,
                                                 thread_ts=thread_ts, unfurl_links=False, unfurl_media=False)
            return (str(resp["ts"]) if resp.get("ts") else None), None
        except SlackApiError as exc:
            return None, str(exc.response.get("error") or "error")
