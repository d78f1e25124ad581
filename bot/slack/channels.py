"""Whether a Slack channel is shared with another organisation (Slack Connect), asked of Slack and cached.

A binding records what an admin said when binding, but a channel can be shared later (or was shared and
never bound). Every post that could carry internal content asks this first; core decides what a shared
channel may see (`core.chat.seen_with`). Unknown means shared: a channel we cannot inspect is treated as
one the customer may read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from core.chat import ChannelInfo, ChatService, seen_with
from core.singleflight import SingleFlight

log = logging.getLogger("deskbridge.slack")
PLATFORM = "slack"

SHARED_TTL_S = 300.0  # Slack tells us of changes (channel_shared / channel_unshared); this bounds a missed one
UNKNOWN_TTL_S = 30.0  # a failed lookup is retried soon, and treated as shared meanwhile


class ChannelUnknown(Exception):
    """Slack would not tell whether the channel is shared."""


class SharedChannels:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._known: dict[str, tuple[float, bool, bool]] = {}  # channel -> (fresh until, shared, from Slack)
        self._generation: dict[str, int] = {}  # bumped by forget(): answers asked before it are not kept
        self._asking: SingleFlight[tuple[bool, bool]] = SingleFlight()

    async def is_shared(self, client: Any, channel: str, *, strict: bool = False) -> bool:
        """True if people outside the workspace's organisation may read the channel (or if unknown).

        `strict` raises ChannelUnknown instead of assuming (binding must say why it refused).
        """
        shared, known = await self.status(client, channel)
        if strict and not known:
            raise ChannelUnknown(channel)
        return shared

    async def seen(self, chat: ChatService, client: Any, workspace_id: int, team_id: str,
                   channel_id: str) -> ChannelInfo:
        """A channel's binding, and whether outsiders read it now (for what may be posted there)."""
        info = await chat.channel(workspace_id, PLATFORM, team_id, channel_id)
        return seen_with(info, shared=await self.is_shared(client, channel_id))

    async def customer_reads(self, chat: ChatService, client: Any, workspace_id: int, team_id: str,
                             channel_id: str) -> bool:
        """Whether the customer certainly reads this channel (bound so, or Slack says it is shared). Unlike
        what may be posted, this changes what a technician's words *mean* (public replies), so an unknown
        answer from Slack counts as no."""
        info = await chat.channel(workspace_id, PLATFORM, team_id, channel_id)
        if info.visibility == "customer":
            return True
        shared, known = await self.status(client, channel_id)
        return shared and known

    async def status(self, client: Any, channel: str) -> tuple[bool, bool]:
        """(shared, known): `known` is False when Slack would not say and we never heard; then `shared` is
        True (for what may be *posted*). Callers deciding what a *write* means must not read "unknown" as
        "the customer reads it" (core decides from the binding then)."""
        hit = self._known.get(channel)
        if hit is not None and hit[0] > self._clock():
            return hit[1], hit[2]
        generation = self._generation.get(channel, 0)  # as of this call: a forget() after it wins
        # one lookup per channel at a time, however many events need it
        return await self._asking.run(channel, lambda: self._ask(client, channel, hit, generation))

    async def _ask(self, client: Any, channel: str, last: tuple[float, bool, bool] | None,
                   generation: int) -> tuple[bool, bool]:
        try:
            resp = await client.conversations_info(channel=channel)
        except (SlackApiError, OSError, TimeoutError) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
            if last is not None and last[2]:  # a passing failure (e.g. ratelimited): keep the last answer
                log.warning("could not re-check whether a channel is shared; keeping the last answer",
                            extra={"channel": channel, "error": error})
                self._remember(channel, last[1], True, UNKNOWN_TTL_S, generation)
                return last[1], True
            log.warning("could not tell whether a channel is shared; treating it as shared",
                        extra={"channel": channel, "error": error})
            permanent = error in ("channel_not_found", "missing_scope", "not_in_channel")
            self._remember(channel, True, False, SHARED_TTL_S if permanent else UNKNOWN_TTL_S, generation)
            return True, False
        ch = resp.get("channel") or {}
        # Shared with another organisation (Slack Connect). `is_shared` alone also covers channels shared
        # between the MSP's own Enterprise Grid workspaces, which stay internal.
        shared = bool(ch.get("is_ext_shared") or ch.get("is_pending_ext_shared"))
        self._remember(channel, shared, True, SHARED_TTL_S, generation)
        return shared, True

    def forget(self, channel: str) -> None:
        """Slack said the channel's sharing changed: ask again next time (an answer already on its way, asked
        before this, is not kept)."""
        self._known.pop(channel, None)
        self._generation[channel] = self._generation.get(channel, 0) + 1

    def _remember(self, channel: str, shared: bool, known: bool, ttl: float, generation: int) -> None:
        if self._generation.get(channel, 0) != generation:
            return
        if len(self._known) > 20_000:
            self._known.clear()
        self._known[channel] = (self._clock() + ttl, shared, known)
