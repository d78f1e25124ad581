"""Ticket cards kept while nothing they show has changed, so a card opened or refreshed again (Teams asks for
a card each time someone looks at it, and 200 people may click at once) costs two small reads, not a build.

A kept card is found by who it was built for (the whole `Actor`: member, admin, customer scope), the ticket
and the audience ("tech" or "customer"): a card built for a technician is never the answer for a customer
view, whatever conversation asks. It is used only while
- the ticket's fingerprint is the same: every column of the ticket row (version, status, assignee, PSA hash,
  history read, ...), its timeline entries (count, newest id, text length, links to PSA ids) and its outbox
  ops (count, statuses, attempts, last change): a note, a queued or delivered write, a sync change all miss;
- it is younger than `ttl_s`: what a card shows that is not in the ticket (SLA time left, "5 min ago",
  AI suggestions, workspace and connection settings, names) is at most that old; a card built without its
  AI suggestions or documentation links (not ready in time) is kept `short_ttl_s` only.
Simultaneous requests share one fingerprint read (unless a ticket event came in since it started: `notify`,
registered with the notifiers, so a read never spans a write of this process) and one build.
A kept card past half its time, when it is the answer, is rebuilt ahead (`defer`: the server runs such jobs in
its quiet moments, bot/idle.py), so a burst of refreshes is answered from a kept card instead of waiting for a
build inside the burst; the rebuilt card replaces it only if the ticket's fingerprint has not changed since.
Callers that may be answered this way ask for it (`ChatViews.ticket(..., kept=True)`: a Teams card's refresh
and "open"); everything else builds the card.
The fingerprint is read in the actor's workspace and customer scope (core.ticket_lookup.load_ticket): a
ticket the actor may not see is NotFound here exactly as in the full build.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from core.context import Actor
from core.notify import DomainEvent
from core.ticket_lookup import load_ticket
from core.views import TicketView
from store.db import Database
from store.enums import OutboxStatus
from store.tables import OutboxOp, Ticket, TimelineEntry

CARD_TTL_S = 15.0
SHORT_TTL_S = 2.0
MAX_CARDS = 2000
_PENDING = (OutboxStatus.PENDING.value, OutboxStatus.INFLIGHT.value, OutboxStatus.BLOCKED.value)
_FAILED = (OutboxStatus.DEAD.value, OutboxStatus.DISCARDED.value)
_COLUMNS = tuple(c.name for c in Ticket.__table__.columns)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    ticket_id: int
    value: tuple[Any, ...]
    history_unread: bool  # the full build reads the PSA history first: never answered from a kept card


@dataclass(slots=True)
class _Kept:
    fingerprint: tuple[Any, ...]
    until: float
    view: TicketView
    ttl: float


Key = tuple[Actor, int, str]
Defer = Callable[[Hashable, Callable[[], Awaitable[Any]]], bool]


class CardCache:
    def __init__(self, db: Database, *, ttl_s: float = CARD_TTL_S, short_ttl_s: float = SHORT_TTL_S,
                 max_cards: int = MAX_CARDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.short_ttl_s = short_ttl_s
        self.max_cards = max_cards
        self._clock = clock
        self._kept: OrderedDict[Key, _Kept] = OrderedDict()
        self._building: dict[Key, tuple[tuple[Any, ...], asyncio.Future[TicketView]]] = {}
        self._reading: dict[tuple[int, int | None, str], tuple[int, asyncio.Future[Fingerprint]]] = {}
        self.generation = 0  # bumped by every ticket event: a fingerprint read older than one is not shared
        self.hits = 0
        self.misses = 0
        self.defer: Defer | None = None  # runs a job later (in the server's quiet moments); None: never ahead
        self.rebuilt_ahead = 0

    async def fingerprint(self, actor: Actor, ref: int | str) -> Fingerprint:
        """The ticket's fingerprint (NotFound/InvalidInput as load_ticket: scope and ref checks included); a
        read for the same workspace, customer scope and ref already under way (and started after the last
        ticket event) is shared."""
        key = (actor.workspace_id, actor.customer_scope_id, str(ref))
        flight = self._reading.get(key)
        if flight is not None and flight[0] == self.generation:
            return await asyncio.shield(flight[1])
        done: asyncio.Future[Fingerprint] = asyncio.get_running_loop().create_future()
        self._reading[key] = (self.generation, done)
        try:
            fp = await self._read(actor, ref)
            done.set_result(fp)
            return fp
        except BaseException as exc:
            done.set_exception(exc)
            done.exception()  # retrieved: a read nobody else awaited is not reported as lost
            raise
        finally:
            if self._reading.get(key, (0, None))[1] is done:
                del self._reading[key]

    async def _read(self, actor: Actor, ref: int | str) -> Fingerprint:
        async with self.db.read(actor.scope) as session:
            ticket = await load_ticket(session, actor, ref)
            tid = ticket.id
            assert tid is not None
            tl = (await session.execute(sa.select(
                sa.func.count(col(TimelineEntry.id)), sa.func.max(col(TimelineEntry.id)),
                sa.func.coalesce(sa.func.sum(sa.func.length(col(TimelineEntry.body))), 0),
                sa.func.count(col(TimelineEntry.external_id)),
            ).where(col(TimelineEntry.ticket_id) == tid))).one()
            ob = (await session.execute(sa.select(
                sa.func.count(col(OutboxOp.id)), sa.func.max(col(OutboxOp.updated_at)),
                sa.func.coalesce(sa.func.sum(col(OutboxOp.attempts)), 0), sa.func.count(col(OutboxOp.finished_at)),
                sa.func.coalesce(sa.func.sum(sa.case((col(OutboxOp.status).in_(_PENDING), 1), else_=0)), 0),
                sa.func.coalesce(sa.func.sum(sa.case((col(OutboxOp.status).in_(_FAILED), 1), else_=0)), 0),
            ).where(col(OutboxOp.ticket_id) == tid))).one()
        row = tuple(_comparable(getattr(ticket, name)) for name in _COLUMNS)
        unread = ticket.external_id is not None and ticket.history_at is None
        return Fingerprint(ticket_id=tid, value=(row, tuple(tl), tuple(ob)), history_unread=unread)

    async def card(self, actor: Actor, fp: Fingerprint, audience: str,
                   build: Callable[[list[str]], Awaitable[TicketView]], *, ref: int | str | None = None) -> TicketView:
        """The kept card, the one being built for the same key and fingerprint, or `build(incomplete)`'s. With
        `ref` (the ticket as the caller named it) a kept card past half its time is also rebuilt ahead."""
        key = (actor, fp.ticket_id, audience)
        kept = self._kept.get(key)
        now = self._clock()
        if kept is not None and not fp.history_unread and kept.fingerprint == fp.value and now <= kept.until:
            self._kept.move_to_end(key)
            self.hits += 1
            if ref is not None and self.defer is not None and kept.until - now <= kept.ttl / 2:
                self.defer(("card", *key), lambda: self._rebuild(actor, ref, key, build))
            return kept.view
        flight = self._building.get(key)
        if flight is not None and flight[0] == fp.value:
            self.hits += 1
            return await asyncio.shield(flight[1])
        self.misses += 1
        done: asyncio.Future[TicketView] = asyncio.get_running_loop().create_future()
        self._building[key] = (fp.value, done)
        try:
            incomplete: list[str] = []
            view = await build(incomplete)
            if not fp.history_unread and view.audience == audience:  # never kept under another audience
                ttl = self.short_ttl_s if incomplete else self.ttl_s
                self._keep(key, _Kept(fp.value, self._clock() + ttl, view, ttl))
            done.set_result(view)
            return view
        except BaseException as exc:
            done.set_exception(exc)
            done.exception()  # retrieved: a build nobody else awaited is not reported as lost
            raise
        finally:
            if self._building.get(key, (None, None))[1] is done:
                del self._building[key]

    async def _rebuild(self, actor: Actor, ref: int | str, key: Key,
                       build: Callable[[list[str]], Awaitable[TicketView]]) -> None:
        """Build a kept card again before its time is up. It replaces the kept one only if the fingerprint read
        before the build still matches the kept card's and the kept card is still there (an event of the ticket
        drops it: `notify`); otherwise the next request builds it as usual."""
        kept = self._kept.get(key)
        fp = await self.fingerprint(actor, ref)
        if kept is None or fp.history_unread or fp.value != kept.fingerprint or self._kept.get(key) is not kept:
            return
        incomplete: list[str] = []
        view = await build(incomplete)
        if self._kept.get(key) is not kept or view.audience != key[2]:
            return
        ttl = self.short_ttl_s if incomplete else self.ttl_s
        self._keep(key, _Kept(fp.value, self._clock() + ttl, view, ttl))
        self.rebuilt_ahead += 1

    def _keep(self, key: Key, kept: _Kept) -> None:
        self._kept[key] = kept
        self._kept.move_to_end(key)
        while len(self._kept) > self.max_cards:
            self._kept.popitem(last=False)

    async def notify(self, event: DomainEvent) -> None:
        """A ticket event (a write here, a sync change, a delivery): its kept cards go, and no fingerprint read
        started before it is shared with a later request."""
        self.generation += 1
        if event.ticket_id is not None:
            self.forget(event.ticket_id)

    def forget(self, ticket_id: int | None = None) -> None:
        """Drop the kept cards of one ticket (or all)."""
        for key in [k for k in self._kept if ticket_id is None or k[1] == ticket_id]:
            del self._kept[key]


def _comparable(value: Any) -> Any:
    return repr(value) if isinstance(value, dict | list) else value
