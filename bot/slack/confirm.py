"""Saying "in the PSA" after a technician's own write without spending chat.update's budget.

chat.update is Slack tier 3 (~50/min per workspace, chat-platforms.md §2.4): at the pace of 50 technicians
(~150 writes/min) the cards of their writes cannot all be confirmed by it. Two other ways, each with its own
limits:

- A click on a card's button comes with a `response_url` (§2.8: usable 5 times within 30 minutes;
  `replace_original` replaces the message the button is on). When the click's write reaches the PSA (or is
  refused), the card is replaced through it: the card itself shows the outcome, and no chat.update is spent.
  A url past its uses or its age, or one Slack refuses, falls back to the paced chat.update.
- A technician's message in a ticket's thread gets a ✅ reaction (`reactions.add`, its own tier 3 budget,
  scope `reactions:write`) when the one write it made is in the PSA; the card catches up as a bulk refresh.
  A refused write gets no ✅: the thread says why, loudly, as before (SlackNotifier._dead). Only in threads
  the MSP alone reads: a customer never sees the MSP's workflow.

Both are kept in memory only: after a restart the card's own refresh (chat.update) still shows the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError

log = logging.getLogger("deskbridge.slack")

RESPONSE_URL_USES = 5  # Slack: a response_url works up to 5 times ...
RESPONSE_URL_TTL_S = 30 * 60 - 60  # ... within 30 minutes (a minute kept in hand)
DONE_REACTION = "white_check_mark"
MAX_KEPT = 5000  # oldest forgotten beyond this (their cards still refresh by chat.update)


@dataclass(slots=True)
class _Url:
    url: str
    until: float
    uses: int = 1  # the click itself does not use it; one kept back for an error answer to the clicker
    outcome: bool = False  # the write's outcome replaced the card (a late "queued" must not follow it)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one replace at a time per card, in order


class Confirmations:
    """Clicks' response_urls per card, and thread messages waiting for their write's outcome."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_kept: int = MAX_KEPT) -> None:
        self._clock = clock
        self._max = max_kept
        self._urls: OrderedDict[tuple[str, str], _Url] = OrderedDict()  # (channel, card ts) -> newest click's url
        self._messages: OrderedDict[int, tuple[str, str, str]] = OrderedDict()  # entry -> (team, channel, msg ts)
        # Outcomes that came before their message was registered (the outbox can be quicker than the
        # post-ack job that wrote): entry -> delivered (True) or refused (False)
        self._landed: OrderedDict[int, bool] = OrderedDict()

    # ------------------------------------------------------------ clicks

    def clicked(self, channel: str, card_ts: str, response_url: str) -> None:
        """A button on this card was clicked: its response_url may replace the card for a while."""
        self._urls[(channel, card_ts)] = _Url(response_url, self._clock() + RESPONSE_URL_TTL_S)
        self._urls.move_to_end((channel, card_ts))
        while len(self._urls) > self._max:
            self._urls.popitem(last=False)

    def response_url(self, channel: str, card_ts: str) -> str | None:
        """A usable response_url for this card (one use is counted), or None."""
        kept = self._urls.get((channel, card_ts))
        if kept is None:
            return None
        if kept.until <= self._clock() or kept.uses >= RESPONSE_URL_USES:
            del self._urls[(channel, card_ts)]
            return None
        kept.uses += 1
        return kept.url

    async def replace(self, channel: str, card_ts: str, send: Callable[[str], Awaitable[bool]], *,
                      outcome: bool) -> bool | None:
        """Replace the clicked card through its url: `send(url)` builds the card (the state of that moment)
        and posts it. Replaces of one card are serialised, and once an outcome has replaced the card a held
        "queued" one (`outcome=False`) is not sent. None: no usable url (or no longer needed)."""
        kept = self._urls.get((channel, card_ts))
        if kept is None:
            return None
        async with kept.lock:
            if not outcome and kept.outcome:
                return None
            url = self.response_url(channel, card_ts)
            if url is None:
                return None
            if not await send(url):
                self.refused(channel, card_ts)
                return False
            kept.outcome = kept.outcome or outcome
            return True

    def refused(self, channel: str, card_ts: str) -> None:
        """Slack refused the url (expired, used up): the card goes back to chat.update."""
        self._urls.pop((channel, card_ts), None)

    def has_click(self, channel: str, card_ts: str) -> bool:
        kept = self._urls.get((channel, card_ts))
        return kept is not None and kept.until > self._clock() and kept.uses < RESPONSE_URL_USES

    # ------------------------------------------------------------ thread messages

    def wrote(self, entry_id: int, team_id: str, channel: str, message_ts: str) -> bool | None:
        """A technician's thread message made one write (timeline entry `entry_id`): react when it lands.
        None: its outcome is still to come; True / False: it already landed / was refused (react now / never)."""
        landed = self._landed.pop(entry_id, None)
        if landed is not None:
            return landed
        self._messages[entry_id] = (team_id, channel, message_ts)
        while len(self._messages) > self._max:
            self._messages.popitem(last=False)
        return None

    def outcome(self, entry_id: int | None, *, delivered: bool) -> tuple[str, str, str] | None:
        """A write's outcome: the message to react to, if it is registered (forgotten once told); an outcome
        of a message not registered yet is kept (bounded) for `wrote`."""
        if entry_id is None:
            return None
        message = self._messages.pop(entry_id, None)
        if message is None:
            self._landed[entry_id] = delivered
            while len(self._landed) > self._max:
                self._landed.popitem(last=False)
        return message if delivered else None


async def react(client: Any, channel: str, ts: str) -> bool:
    """✅ on a technician's thread message whose write is in the PSA; False if Slack would not."""
    try:
        await client.reactions_add(channel=channel, timestamp=ts, name=DONE_REACTION)
    except Exception as exc:  # noqa: BLE001 - the card's urgent refresh confirms it instead
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
        if error == "already_reacted":
            return True
        log.warning("could not confirm a write with a reaction", extra={"channel": channel, "error": error})
        return False
    return True
