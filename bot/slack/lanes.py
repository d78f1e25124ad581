"""The Slack notifier's event lanes: what a person waits to read goes before card refreshes, and a burst of changes
to one ticket is handled once.

A burst of PSA edits (a dispatcher's bulk change, 20 edits/s from callbacks) brings far more `TicketChanged` events
than anything else, and each only asks for the ticket's cards to be re-rendered (they are built when sent, from
the newest state, bot/slack/outbound.py) and for App Homes to be re-published. Handled in arrival order, every
note and new ticket queued behind them waited for all those refreshes' reads. So each notifier worker has two
lanes:

- *first*: everything else (notes, new tickets, write outcomes, dead writes, SLA warnings, alert offers, risk),
  in arrival order: a note's post or a new ticket's card never waits behind a card refresh;
- *changes*: `TicketChanged` events, at most one per ticket: a change to a ticket whose change is still waiting
  joins it (the fields it changed are merged; for a reassignment every owner along the way is kept, so each
  of their App Homes is re-published). Taken only when the first lane is empty, oldest ticket first.

A worker that takes a change also takes up to `CHANGE_BATCH - 1` more waiting changes (only while no note or new
ticket waits): their threads are read in one query (SlackNotifier.deliver_changes). Events of one ticket go to the
same worker (the caller picks it); within a lane they keep their order. A note
handled before a change of the same ticket that arrived earlier is harmless: both refresh the card, which is
built when sent, from the newest state.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import replace
from typing import Any, cast

from core.notify import DomainEvent, TicketChanged

CHANGE_BATCH = 20  # waiting changes handled together (one read of their threads); a note waits at most one batch
SLACK_ORIGINS = frozenset({"slack"})  # a change made in Slack has updated its card already (notifier.py)


Changes = dict[str, tuple[Any, Any]]


def merge_changes(old: Changes, new: Changes) -> Changes:
    """Fields changed by either event; each field's values in order, without repeats (a reassignment a -> b
    then b -> c gives (a, b, c): every technician whose queue it passed through; a merged field's tuple may be
    longer than (old, new), which is all core.chat's app_home_targets reads of it)."""
    merged: dict[str, tuple[Any, ...]] = dict(old)
    for name, values in new.items():
        merged[name] = tuple(dict.fromkeys((*merged.get(name, ()), *values)))
    return cast(Changes, merged)


class Lanes:
    """The two lanes of one notifier worker (module docstring). Not thread-safe: one event loop."""

    def __init__(self) -> None:
        self.first: deque[DomainEvent] = deque()
        self.changes: dict[int | None, TicketChanged] = {}  # ticket -> its waiting change (insertion order)
        self.merged = 0  # changes that joined a waiting one instead of being handled again
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self.first) + len(self.changes)

    def put(self, event: DomainEvent) -> bool:
        """Queue an event; False when it joined a waiting change of the same ticket (nothing more to handle)."""
        self._ready.set()
        if not isinstance(event, TicketChanged):
            self.first.append(event)
            return True
        waiting = self.changes.get(event.ticket_id)
        if waiting is None:
            self.changes[event.ticket_id] = event
            return True
        # A change not made in Slack refreshes the cards: keep that origin if either is one.
        origin = waiting.origin if waiting.origin not in SLACK_ORIGINS else event.origin
        self.changes[event.ticket_id] = replace(event, origin=origin,
                                                changes=merge_changes(waiting.changes, event.changes))
        self.merged += 1
        return False

    async def get(self) -> DomainEvent:
        """The next event: the first lane's oldest, else the oldest waiting change."""
        while not self.first and not self.changes:
            self._ready.clear()
            await self._ready.wait()
        if self.first:
            return self.first.popleft()
        ticket = next(iter(self.changes))
        return self.changes.pop(ticket)

    def more_changes(self, n: int) -> list[TicketChanged]:
        """Up to `n` more waiting changes, oldest first, when nothing waits in the first lane (else none)."""
        if self.first:
            return []
        taken: list[TicketChanged] = []
        while self.changes and len(taken) < n:
            taken.append(self.changes.pop(next(iter(self.changes))))
        return taken
