"""Posting into Teams within its limits, through the SDK's conversation client.

Teams allows a bot, per conversation, 7 operations a second, 8 in 2 s, 60 in 30 s and 1,800 an hour;
`Pacer` waits for room in every window before each call (one conversation never waits for another). The SDK
does not retry plain sends, so `TeamsPoster` does: 429, 412, 502 and 504 (and network errors) are retried
with full-jitter backoff, honouring Retry-After, up to `attempts`; anything else, or the last failure, is
raised as `PostRefused` naming the status, so a refused post is told, never dropped silently. Cards over
80 KB (UTF-16, Microsoft's advice under the 100 KB cap) are refused before sending.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from microsoft_teams.api import ApiClient
from microsoft_teams.api.activities.message.message import MessageActivityInput
from microsoft_teams.api.models.attachment.attachment import Attachment

log = logging.getLogger("deskbridge.teams")

WINDOWS = ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800))
RETRYABLE = frozenset({412, 429, 502, 504})
MAX_BYTES = 80 * 1024
CARD = "application/vnd.microsoft.card.adaptive"


class PostRefused(Exception):
    """Teams did not take a post/update/delete; `status` is the HTTP status (0: never reached Teams)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Target:
    """Where to post: a conversation (a channel's reply chain is `channel;messageid=root`) at a service."""

    conversation_id: str
    service_url: str


class Pacer:
    """Sliding windows per conversation key; `wait(key)` returns once a call may go out now."""

    def __init__(self, windows: tuple[tuple[float, int], ...] = WINDOWS, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.windows = windows
        self._clock = clock
        self._sleep = sleep
        self._sent: dict[str, deque[float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.waited_s = 0.0

    async def wait(self, key: str) -> None:
        async with self._locks.setdefault(key, asyncio.Lock()):
            sent = self._sent.setdefault(key, deque())
            while (delay := self._delay(sent)) > 0:
                self.waited_s += delay
                await self._sleep(delay)
            sent.append(self._clock())

    async def ready(self, key: str) -> None:
        """Return once a call for `key` could go out now; reserves nothing (the call's own `wait` does). A sender
        that builds what it sends after this sends the newest state, not what it built before waiting."""
        while (delay := self._delay(self._sent.get(key) or deque())) > 0:
            await self._sleep(delay)

    def _delay(self, sent: deque[float]) -> float:
        now = self._clock()
        longest = max(w for w, _ in self.windows)
        while sent and now - sent[0] > longest:
            sent.popleft()
        delay = 0.0
        for window, limit in self.windows:
            inside = [t for t in sent if now - t < window]
            if len(inside) >= limit:
                delay = max(delay, inside[-limit] + window - now)
        return delay


def message(text: str | None = None, card: dict[str, Any] | None = None) -> MessageActivityInput:
    """A message activity: text, an Adaptive Card, or both."""
    act = MessageActivityInput(text=text or "")
    if card is not None:
        size = len(json.dumps(card).encode("utf-16-le")) // 2
        if size > MAX_BYTES:
            raise PostRefused(413, f"The card is {size // 1024} KB; Teams takes at most 80 KB. Nothing was posted.")
        act.add_attachments(Attachment(content_type=CARD, content=card))
        if text:  # the text beside a card is a subject or a title someone wrote: shown as typed, never as Markdown
            act.text_format = "plain"
    return act


def thread_key(conversation_id: str) -> str:
    """The pacing key: a channel's reply chains share its limit."""
    return conversation_id.split(";messageid=")[0]


class TeamsPoster:
    def __init__(self, api: ApiClient, *, pacer: Pacer | None = None, attempts: int = 5, base_s: float = 0.5,
                 cap_s: float = 30.0, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.api = api
        self.pacer = pacer or Pacer()
        self.attempts = attempts
        self.base_s = base_s
        self.cap_s = cap_s
        self._sleep = sleep
        self.retries = 0

    async def post(self, target: Target, activity: MessageActivityInput) -> str:
        """Post into a conversation (or a reply chain); the new activity's id."""
        conv, cid, url = self.api.conversations, target.conversation_id, target.service_url
        sent = await self._call(target, "post", lambda: conv.create_activity(cid, activity, service_url=url))
        return str(sent.id)

    async def update(self, target: Target, activity_id: str, activity: MessageActivityInput) -> None:
        conv, cid, url = self.api.conversations, target.conversation_id, target.service_url
        await self._call(target, "update", lambda: conv.update_activity(cid, activity_id, activity, service_url=url))

    async def delete(self, target: Target, activity_id: str) -> None:
        conv, cid, url = self.api.conversations, target.conversation_id, target.service_url
        await self._call(target, "delete", lambda: conv.delete_activity(cid, activity_id, service_url=url))

    async def _call(self, target: Target, what: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        for attempt in range(1, self.attempts + 1):
            await self.pacer.wait(thread_key(target.conversation_id))
            try:
                return await fn()
            except httpx.HTTPStatusError as exc:
                status = exc.response.status_code
                if status not in RETRYABLE or attempt == self.attempts:
                    raise PostRefused(status, f"Teams refused the {what} (HTTP {status}{_code(exc.response)})"
                                      f"{' after ' + str(attempt) + ' attempts' if attempt > 1 else ''}.") from None
                delay = _retry_after(exc.response)
            except httpx.TransportError as exc:
                if attempt == self.attempts:
                    raise PostRefused(0, f"Teams could not be reached for the {what} ({type(exc).__name__}).") from None
                delay = None
            if delay is None:
                delay = random.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))  # noqa: S311 - jitter
            self.retries += 1
            log.info("Teams %s retried", what, extra={"attempt": attempt, "delay_s": round(delay, 2)})
            await self._sleep(min(delay, self.cap_s))
        raise AssertionError("unreachable")


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _code(resp: httpx.Response) -> str:
    try:
        code = ((resp.json() or {}).get("error") or {}).get("code")
    except (ValueError, AttributeError):
        return ""
    return f", {str(code)[:60]}" if code else ""
