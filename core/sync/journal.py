"""Durable domain events of the refresh worker: written with the write they announce, delivered by the app.

The refresh worker (core/sync/worker.py) re-reads tickets in its own process. Its events (a new PSA note for the
ticket's thread, a new ticket for the customer's channel) used to reach the app over the pipe *after* its commit:
a worker killed between the two left the note stored and never posted. Now `EventJournal.add` writes the events
in the same transaction as the apply (`apply_batch(journal=...)`, `ticket_gone.mark_deleted(journal=...)`): they
exist exactly when the change does. The app's `EventRelay` hands them to its Notifier in id order and deletes
them; the pipe only wakes it ("wake" after each commit, "done" after each batch).

- Order: ids are assigned at insert. On SQLite writes are serial, so id order is commit order. On PostgreSQL two
  batches' transactions can commit out of id order, but a ticket is in one batch at a time (RefreshPool), so one
  ticket's events keep their commit order, which is the order that matters (its thread).
- Once: one relay per app delivers its own rows (`owner` = the app's instance id), one pass at a time, deleting
  each fetched block right after handing it to the notifier. The one window left: the app dies after the
  notifier took a block and before the delete committed (one DELETE); its next start delivers that block again.
  A row is handed over only while the notifier has room in its queue (`core.notify.room`): a full queue, which
  would drop the event, leaves the row in the journal for a later pass. What the notifier has queued in memory
  is still lost if the app dies before it is posted (as outbox and SLA events are).
- Rows of an app that is gone (crash, deploy: the default instance id changes with the pid) are taken over:
  at start on SQLite at once (the embedded deployment runs one app per database, DESIGN.md §5), on PostgreSQL
  (several instances) once they are `TAKEOVER_AFTER` old, checked at start and every `TAKEOVER_EVERY_S` after.
  There rows are stamped and aged on the database's clock (hosts' clocks may differ). An instance alive but
  stalled longer than that can still see its rows taken and posted by another (a lease it renews would close it).

Events are stored as JSON of their fields (never pickle: a row of the database must not be able to run code);
the kinds are the core/notify.py dataclasses.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from core import notify
from core.notify import DomainEvent, Notifier
from store.db import Database, Scope
from store.sql import table_of
from store.tables import JournaledEvent
from store.types import utcnow

log = logging.getLogger(__name__)

TAKEOVER_AFTER = timedelta(seconds=30)  # another instance's rows this old: its app is gone (PostgreSQL)
TAKEOVER_EVERY_S = 30.0
BLOCK = 200  # rows per read; deleted together once handed over
ROOM_WAIT_S = 0.2  # the notifier's queue is full: look again after this

KINDS: dict[str, type[DomainEvent]] = {
    cls.__name__: cls for cls in vars(notify).values()
    if isinstance(cls, type) and issubclass(cls, DomainEvent) and cls is not DomainEvent}


def _enc(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, tuple):
        return {"$t": [_enc(v) for v in value]}
    if isinstance(value, list):
        return [_enc(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _enc(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _dec(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$dt"}:
            return datetime.fromisoformat(value["$dt"])
        if set(value) == {"$t"}:
            return tuple(_dec(v) for v in value["$t"])
        return {k: _dec(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dec(v) for v in value]
    return value


def encode(event: DomainEvent) -> tuple[str, str]:
    """(kind, JSON body) of one event."""
    kind = type(event).__name__
    if KINDS.get(kind) is not type(event):
        raise TypeError(f"{kind} is not a core.notify event")
    body = {f.name: _enc(getattr(event, f.name)) for f in dataclasses.fields(event)}
    return kind, json.dumps(body, separators=(",", ":"))


def decode(kind: str, body: str) -> DomainEvent:
    """The event back; ValueError for a kind or field this code does not know."""
    cls = KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}")
    try:
        fields = json.loads(body)
        if not isinstance(fields, dict):
            raise TypeError(f"a JSON object was expected, not {type(fields).__name__}")
        return cls(**{k: _dec(v) for k, v in fields.items()})
    except (TypeError, AttributeError, ValueError) as exc:  # any other error would stop the relay at this row
        raise ValueError(f"{kind}: {type(exc).__name__}") from exc


class EventJournal:
    """The event_journal table, for one app instance (`owner`)."""

    def __init__(self, db: Database, owner: str) -> None:
        self.db = db
        self.owner = owner[:200]

    async def add(self, s: AsyncSession, events: Sequence[DomainEvent]) -> None:
        """Write `events` in the caller's transaction (the one that writes what they announce)."""
        if not events:
            return
        j = table_of(JournaledEvent)
        rows = []
        for event in events:
            kind, body = encode(event)
            rows.append({"owner": self.owner, "ticket_id": event.ticket_id, "kind": kind, "body": body})
        if self.db.dialect == "sqlite":  # one host
            now = utcnow()
            await s.execute(sa.insert(j), [{**row, "created_at": now} for row in rows])
        else:  # the database's clock, which every instance's take_over compares with: hosts' clocks may differ
            await s.execute(sa.insert(j).values(created_at=sa.func.now()), rows)

    async def take(self, limit: int = BLOCK) -> list[tuple[int, str, str]]:
        """This owner's oldest undelivered rows: (id, kind, body), in id order."""
        j = table_of(JournaledEvent)
        async with self.db.read(Scope.system_wide()) as s:
            rows = (await s.execute(sa.select(j.c.id, j.c.kind, j.c.body).where(j.c.owner == self.owner)
                                    .order_by(j.c.id).limit(limit))).all()
        return [(int(i), str(k), str(b)) for i, k, b in rows]

    async def delete(self, ids: Sequence[int]) -> None:
        j = table_of(JournaledEvent)
        async with self.db.write(Scope.system_wide()) as s:
            await s.execute(sa.delete(j).where(j.c.id.in_(list(ids))))

    async def take_over(self, older_than: timedelta | None) -> int:
        """Make other owners' rows ours (all of them, or those older than `older_than`); how many."""
        j = table_of(JournaledEvent)
        stmt = sa.update(j).where(j.c.owner != self.owner).values(owner=self.owner)
        if older_than is not None and self.db.dialect == "sqlite":
            stmt = stmt.where(j.c.created_at < utcnow() - older_than)
        elif older_than is not None:  # by the database's clock, as `add` stamps them
            stmt = stmt.where(j.c.created_at < sa.func.now() - sa.bindparam("age", older_than, type_=sa.Interval()))
        async with self.db.write(Scope.system_wide()) as s:
            got = await s.execute(stmt)
        return int(getattr(got, "rowcount", 0) or 0)


class EventRelay:
    """The app's side: delivers the journal's rows to `notifier`, in order, once (see module)."""

    def __init__(self, journal: EventJournal, notifier: Notifier, *, block: int = BLOCK,
                 takeover_after: timedelta = TAKEOVER_AFTER) -> None:
        self.journal = journal
        self.notifier = notifier
        self.block = block
        self.takeover_after = takeover_after
        self.delivered = 0  # events handed to the notifier (tests and benches look at it)
        self.passes = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiting: list[asyncio.Future[None]] = []  # flush() calls for the next pass
        self._next_takeover = 0.0
        self._busy = False  # a pass is running
        self.waits_for_room = 0  # times a pass stopped because the notifier's queue was full

    async def start(self) -> None:
        """Take over what a gone app left (see module), then deliver everything of ours still undelivered."""
        sqlite = self.journal.db.dialect == "sqlite"
        try:
            n = await self.journal.take_over(None if sqlite else self.takeover_after)
        except Exception:  # noqa: BLE001 - the next pass tries again
            log.warning("could not take over undelivered events", exc_info=True)
            n = 0
        if n:
            log.info("delivering events a stopped app left undelivered", extra={"events": n})
        self._next_takeover = time.monotonic() + TAKEOVER_EVERY_S
        self.wake()

    def wake(self) -> None:
        """Something was committed (or may have been): read the journal soon."""
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="event-relay")

    def caught_up(self) -> asyncio.Future[None]:
        """Done once every row announced so far by `wake` is delivered: at once when no pass runs or waits (each
        wake's pass read the journal after the commit it announces), else after the next pass. The refresh
        worker's "done" follows its "wake" on the pipe, so a batch resolves after its events without a read of
        its own."""
        if self._busy or (self._wake is not None and self._wake.is_set()) or self._waiting:
            return self.flush()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def flush(self) -> asyncio.Future[None]:
        """Done once a pass that began after this call has delivered everything it found."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(fut)
        self.wake()
        return fut

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            try:  # woken by commits; else every TAKEOVER_EVERY_S, for what an instance that is gone left behind
                await asyncio.wait_for(self._wake.wait(), TAKEOVER_EVERY_S)
            except TimeoutError:
                pass
            self._wake.clear()
            waiting, self._waiting = self._waiting, []
            self._busy = True
            try:
                await self._pass()
            except Exception:  # noqa: BLE001 - the database: the rows stay; try again shortly
                log.warning("delivering journaled events failed; retrying", exc_info=True)
                self._waiting = waiting + self._waiting
                self._wake.set()
                await asyncio.sleep(1.0)
                continue
            finally:
                self._busy = False
            for fut in waiting:
                if not fut.done():
                    fut.set_result(None)

    async def _pass(self) -> None:
        self.passes += 1
        if time.monotonic() >= self._next_takeover:
            self._next_takeover = time.monotonic() + TAKEOVER_EVERY_S
            await self.journal.take_over(self.takeover_after)
        while True:
            rows = await self.journal.take(self.block)
            if not rows:
                return
            handed: list[int] = []
            for rid, kind, body in rows:
                if notify.room(self.notifier) < 1:
                    break  # its queue is full: this row and the rest stay in the journal until there is room
                handed.append(rid)
                try:
                    event = decode(kind, body)
                except ValueError as exc:
                    # its fields are not logged (nor the error's cause, which may quote one): a note's body is a
                    # customer's words, a dead write's error may quote what was sent
                    log.error("journaled event %s could not be read (%s); not delivered", rid, exc,
                              extra={"kind": kind})
                    continue
                self.delivered += 1
                try:
                    await self.notifier.notify(event)
                except Exception:  # noqa: BLE001 - as SyncEngine.emit's notifiers: logged, never fatal
                    log.exception("notifier failed on a journaled event", extra={"kind": kind})
            await self.journal.delete(handed)
            if len(handed) < len(rows):  # a full queue: nothing is dropped, the next pass hands the rest over
                self.waits_for_room += 1
                await asyncio.sleep(ROOM_WAIT_S)
                continue
            if len(rows) < self.block:
                return

    async def stop(self) -> None:
        """Deliver what is left (one last pass), then stop."""
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(self.flush(), 10.0)
            except TimeoutError:
                log.warning("stopping with journaled events undelivered (the next start delivers them)")
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
