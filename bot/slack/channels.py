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

log = logging.getLogger("deskbridge.slack")

SHARED_TTL_S = 300.0  # Slack tells us of changes (channel_shared / channel_unshared); this bounds a missed one
UNKNOWN_TTL_S = 30.0  # a failed lookup is retried soon, and treated as shared meanwhile


class ChannelUnknown(Exception):
    """Slack would not tell whether the channel is shared."""


class SharedChannels:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._known: dict[str, tuple[float, bool]] = {}

    async def is_shared(self, client: Any, channel: str, *, strict: bool = False) -> bool:
        """True if people outside the workspace's organisation may read the channel (or if unknown).

        `strict` raises ChannelUnknown instead of assuming (binding must say why it refused).
        """
        hit = self._known.get(channel)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        try:
            resp = await client.conversations_info(channel=channel)
        except (SlackApiError, OSError, TimeoutError) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
            log.warning("could not tell whether a channel is shared; treating it as shared",
                        extra={"channel": channel, "error": error})
            if strict:
                raise ChannelUnknown(channel) from exc
            self._remember(channel, True, UNKNOWN_TTL_S)
            return True
        ch = resp.get("channel") or {}
        shared = bool(ch.get("is_ext_shared") or ch.get("is_pending_ext_shared") or ch.get("is_shared"))
        self._remember(channel, shared, SHARED_TTL_S)
        return shared

    def forget(self, channel: str) -> None:
        """Slack said the channel's sharing changed: ask again next time."""
        self._known.pop(channel, None)

    def _remember(self, channel: str, shared: bool, ttl: float) -> None:
        if len(self._known) > 20_000:
            self._known.clear()
        self._known[channel] = (self._clock() + ttl, shared)
