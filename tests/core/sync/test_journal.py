"""core/sync/journal.py: the event codec, and the relay's order / once / retry on the test database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from core.notify import (
    AlertNeedsTicket,
    DomainEvent,
    FanoutNotifier,
    NoteAdded,
    RecordingNotifier,
    RiskAlertEvent,
    SlaWarningEvent,
    TicketChanged,
    TicketCreated,
    WriteDead,
    WriteDelivered,
    room,
)
from core.sync.journal import KINDS, EventJournal, EventRelay, decode, encode
from store.db import Database, Scope

AT = datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=UTC)
BASE = {"workspace_id": 3, "ticket_id": 11, "ticket_number": 1042, "origin": "psa", "occurred_at": AT}

SAMPLES: list[DomainEvent] = [
    TicketCreated(**BASE, subject="Printer on fire — «étage 2»", customer_id=5),
    TicketChanged(**BASE, changes={"stage": ("new", "in_progress"), "assignee_member_id": (None, 7),
                                   "closed_at": (None, AT), "deleted": (False, True)}),
    NoteAdded(**BASE, entry_id=9, visibility="public", author_name=None, body="line 1\nline 2 {\"$t\": 1}",
              source="slack:C1:1700000000.000100"),
    WriteDelivered(**BASE, op_id=4, kind="add_note", external_id="77", entry_id=9),
    WriteDead(**BASE, op_id=4, kind="add_note", error="refused", cause="credentials", connection="cw"),
    AlertNeedsTicket(**BASE, alert_id=2, source_name="ninja", summary="disk", severity="high", device=None),
    SlaWarningEvent(**BASE, metric="resolution", threshold=90, remaining_s=12.5, used_pct=91.0, due_at=AT,
                    customer_id=None, subject="s", priority="high"),
    RiskAlertEvent(**BASE, score=0.8, threshold=0.7, reasons=("angry", "late"), customer_id=1, subject="s"),
]


def test_every_event_kind_survives_the_journal_unchanged():
    assert {type(e).__name__ for e in SAMPLES} == set(KINDS)  # a new kind gets a sample here
    for event in SAMPLES:
        kind, body = encode(event)
        assert decode(kind, body) == event
        assert type(decode(kind, body)) is type(event)


def test_an_unknown_or_changed_kind_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="unknown event kind"):
        decode("Exec", "{}")
    kind, body = encode(SAMPLES[0])
    with pytest.raises(ValueError, match="TicketCreated"):
        decode(kind, body.replace('"subject"', '"subjekt"'))
    with pytest.raises(TypeError):
        encode(DomainEvent(**BASE))


def _note(i: int, ticket: int = 11) -> NoteAdded:
    return NoteAdded(**{**BASE, "ticket_id": ticket}, entry_id=i, visibility="public", author_name="A", body=f"n{i}")


class _FailingDelete(EventJournal):
    fail = 1

    async def delete(self, ids: list[int]) -> None:  # type: ignore[override]
        if self.fail:
            self.fail -= 1
            raise RuntimeError("database went away")
        await super().delete(ids)


async def test_the_relay_delivers_in_commit_order_once_and_only_its_own(db: Database):
    journal, other = EventJournal(db, "me"), EventJournal(db, "someone-else")
    async with db.write(Scope.system_wide()) as s:
        await journal.add(s, [_note(1), _note(2)])
        await other.add(s, [_note(99)])
    async with db.write(Scope.system_wide()) as s:
        await journal.add(s, [_note(3, ticket=12)])
    got = RecordingNotifier()
    relay = EventRelay(journal, got, block=2)  # two blocks
    await relay.flush()
    assert [e.entry_id for e in got.of(NoteAdded)] == [1, 2, 3]
    await relay.flush()  # nothing twice
    assert relay.delivered == 3
    async with db.read(Scope.system_wide()) as s:
        assert (await s.execute(sa.text("select owner from event_journal"))).scalars().all() == ["someone-else"]
    await relay.stop()


async def test_a_block_whose_delete_failed_is_delivered_again_the_documented_window(db: Database):
    """The one window the module names: handed to the notifier, not deleted (here the delete fails; in life the
    app dies in between). The rows stay and go again: at least once, never lost."""
    journal = _FailingDelete(db, "me")
    async with db.write(Scope.system_wide()) as s:
        await journal.add(s, [_note(1), _note(2)])
    got = RecordingNotifier()
    relay = EventRelay(journal, got)
    await relay.flush()  # first pass fails at the delete, the relay retries after 1 s
    assert [e.entry_id for e in got.of(NoteAdded)] == [1, 2, 1, 2]
    async with db.read(Scope.system_wide()) as s:
        assert (await s.execute(sa.text("select count(*) from event_journal"))).scalar() == 0
    await relay.stop()


def test_a_body_of_the_wrong_shape_is_a_decode_error():
    kind, _ = encode(SAMPLES[0])
    for body in ("[]", '"text"', '{"subject": {"$t": 5}}'):
        with pytest.raises(ValueError, match="TicketCreated"):
            decode(kind, body)


async def test_an_unreadable_row_neither_blocks_the_rows_after_it_nor_lands_its_text_in_the_log(
        db: Database, caplog: pytest.LogCaptureFixture):
    journal = EventJournal(db, "me")
    async with db.write(Scope.system_wide()) as s:
        await journal.add(s, [_note(1)])
        await s.execute(sa.text("insert into event_journal (owner, ticket_id, kind, body, created_at) "
                                "values ('me', 11, 'NoteAdded', :body, :at)"),
                        {"body": '["my password is hunter2"]', "at": AT.replace(tzinfo=None)})
        await journal.add(s, [_note(2)])
    got = RecordingNotifier()
    relay = EventRelay(journal, got)
    await relay.flush()
    assert [e.entry_id for e in got.of(NoteAdded)] == [1, 2]
    assert relay.passes == 1  # no pass failed on it (a failed pass retries the same rows forever)
    assert "could not be read" in caplog.text
    assert "hunter2" not in caplog.text  # a customer's words are not a log line
    assert "hunter2" not in "".join(r.exc_text or "" for r in caplog.records)
    async with db.read(Scope.system_wide()) as s:
        assert (await s.execute(sa.text("select count(*) from event_journal"))).scalar() == 0
    await relay.stop()


class _Bounded:
    """A surface's notifier with a queue of `size` events it posts later (`post_one`); it would drop an event
    offered while full, as the Slack and Teams notifiers do."""

    def __init__(self, size: int) -> None:
        self.size, self.queued, self.posted, self.dropped = size, [], [], 0

    def room(self) -> int:
        return self.size - len(self.queued)

    async def notify(self, event: DomainEvent) -> None:
        if len(self.queued) >= self.size:
            self.dropped += 1
            return
        self.queued.append(event)

    def post_one(self) -> None:
        self.posted.append(self.queued.pop(0))


async def test_a_full_notifier_queue_keeps_the_rows_instead_of_dropping_the_events(db: Database):
    """The relay deletes a row once its event is handed over; a surface whose queue is full would drop it (a
    customer's note never reaching the thread). So a row is handed over only while there is room: the rest stay
    in the journal and go, in order, once the surface has posted some."""
    journal = EventJournal(db, "me")
    async with db.write(Scope.system_wide()) as s:
        await journal.add(s, [_note(i) for i in range(1, 6)])
    surface = _Bounded(size=2)
    relay = EventRelay(journal, FanoutNotifier([surface]))
    relay.wake()
    for _ in range(100):  # the relay fills the queue and waits for room
        await asyncio.sleep(0.02)
        if relay.waits_for_room:
            break
    assert relay.waits_for_room >= 1 and [e.entry_id for e in surface.queued] == [1, 2]
    async with db.read(Scope.system_wide()) as s:
        assert (await s.execute(sa.text("select count(*) from event_journal"))).scalar() == 3  # 3, 4, 5 kept
    done = relay.flush()
    while not done.done():  # the surface posts one at a time; the relay hands over as room appears
        if surface.queued:
            surface.post_one()
        await asyncio.sleep(0.05)
    while surface.queued:
        surface.post_one()
    assert [e.entry_id for e in surface.posted] == [1, 2, 3, 4, 5] and surface.dropped == 0
    async with db.read(Scope.system_wide()) as s:
        assert (await s.execute(sa.text("select count(*) from event_journal"))).scalar() == 0
    await relay.stop()


def test_room_is_the_least_of_the_surfaces_and_unbounded_without_a_queue():
    assert room(RecordingNotifier()) >= 1 << 20
    small, big = _Bounded(size=3), _Bounded(size=50)
    small.queued.append(_note(1))
    assert room(FanoutNotifier([RecordingNotifier(), big, small])) == 2
    assert room(FanoutNotifier([])) >= 1 << 20


async def test_takeover_age_is_read_on_the_database_clock_not_the_hosts(db: Database, monkeypatch):
    """PostgreSQL runs several instances: one whose host clock is behind would stamp rows that another takes
    over at once (duplicate posts). Rows are stamped and compared on the database's clock there."""
    if db.dialect == "sqlite":
        pytest.skip("SQLite runs one app per database: its takeover at start takes every row")
    import core.sync.journal as journal_module

    mine = EventJournal(db, "me")
    monkeypatch.setattr(journal_module, "utcnow", lambda: datetime(2020, 1, 1, tzinfo=UTC))  # a host 6 years late
    async with db.write(Scope.system_wide()) as s:
        await mine.add(s, [_note(1)])
    taker = EventJournal(db, "another-instance")
    assert await taker.take_over(timedelta(seconds=30)) == 0  # young by the database's clock: left to its owner
    async with db.write(Scope.system_wide()) as s:
        await s.execute(sa.text("update event_journal set created_at = created_at - interval '1 minute'"))
    assert await taker.take_over(timedelta(seconds=30)) == 1
