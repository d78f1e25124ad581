"""The refresh worker's events are durable (core/sync/journal.py): committed with its write, delivered by the app.

Same rig as tests/bot/test_refresh_worker.py: a real `python -m bot.refresh_worker` child, the fake ConnectWise over
real HTTP on loopback, the real slack-bolt app's notifier against the fake Slack Web API, SQLite or PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.notify import NoteAdded, TicketChanged
from core.sync.journal import EventJournal
from store.db import Scope
from store.types import utcnow
from tests.bot.test_refresh_worker import dispatch_card, open_rig, until
from tests.core.sync.test_engine import seed


def _count(texts: list[str], needle: str) -> int:
    return sum(needle in t for t in texts)


async def test_a_worker_killed_after_its_commit_before_telling_the_app_still_gets_its_notes_posted_once(
        db_url: str, workspace_id: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The worker commits the re-read (two customer notes) and dies before a byte of it reaches the app (the fault
    file: `os._exit` in the worker right after the commit). Before the journal the notes were stored and never
    posted (the retry re-reads them as known, announcing nothing); now the app delivers them from the journal when
    the worker dies: each once, in order."""
    flag = tmp_path / "die-once"
    monkeypatch.setenv("DESKBRIDGE_REFRESH_WORKER_DIE_ONCE", str(flag))  # the worker's env is taken at build
    async with open_rig(db_url, workspace_id, tmp_path) as r:
        seed(r.fake, 2)
        assert (await r.c.sync.run(r.conn_id)).ok
        tid, thread = await dispatch_card(r, "Journal card J1")  # no flag yet: this batch is not the one
        first = r.worker.pid
        flag.write_text("")
        r.fake.clock.advance(5)
        r.fake.add_note(tid, "first words before the crash", contact_id=min(r.fake.contacts))
        r.fake.clock.advance(5)
        r.fake.add_note(tid, "second words before the crash", contact_id=min(r.fake.contacts))
        assert await r.callback(tid) == "accepted"
        await until(lambda: r.worker.starts == 2 and r.worker.pid not in (None, first))
        assert not flag.exists()  # the first worker took the fault: it died right after its commit
        await until(lambda: r.c.sync.webhooks.pool.refreshed >= 2, within_s=30)  # the batch retried (2 s)
        await r.settled()
        r.fake.clock.advance(5)  # and the next words, through the new worker, come after them
        r.fake.add_note(tid, "third words after the crash", contact_id=min(r.fake.contacts))
        assert await r.callback(tid) == "accepted"
        await r.settled()
        replies = r.replies(thread)
        for words in ("first words before the crash", "second words before the crash", "third words after"):
            assert _count(replies, words) == 1, (words, replies)
        order = [t for t in replies if "words" in t and "crash" in t]
        assert ["first" in order[0], "second" in order[1], "third" in order[2]] == [True, True, True]
        assert await r.scalar("select count(*) from timeline_entry where body like '%words % the crash'") == 3
        assert await r.scalar("select count(*) from event_journal") == 0
        assert await r.scalar("select count(*) from pending_refresh") == 0


async def test_events_a_stopped_app_left_are_delivered_once_in_order_when_it_starts(
        db_url: str, workspace_id: int, tmp_path: Path):
    """Rows of an app that died with events committed and undelivered (its instance id is gone: the default one
    carries the pid) are delivered by the next start, in order, once; a restart after that posts nothing again.
    A young row of another instance is left to it on PostgreSQL (several instances) and taken on SQLite (one app
    per database)."""
    async with open_rig(db_url, workspace_id, tmp_path) as r:
        seed(r.fake, 1)
        assert (await r.c.sync.run(r.conn_id)).ok
        tid, thread = await dispatch_card(r, "Journal card J2")
        ticket_id = await r.scalar("select id from ticket where external_id = :e", e=str(tid))
        number = await r.scalar("select number from ticket where id = :i", i=ticket_id)
        now = utcnow()

        def note(i: int) -> NoteAdded:
            return NoteAdded(workspace_id=r.ws, ticket_id=ticket_id, ticket_number=number, origin="psa",
                             occurred_at=now, entry_id=1000 + i, visibility="public", author_name="Dana",
                             body=f"left behind {i}")

        gone, alive = EventJournal(r.c.db, "gone-host-1234"), EventJournal(r.c.db, "other-live-host-99")
        async with r.c.db.write(Scope.system_wide()) as s:  # as the dead app's worker wrote them
            await gone.add(s, [note(0), note(1)])
            await gone.add(s, [TicketChanged(workspace_id=r.ws, ticket_id=ticket_id, ticket_number=number,
                                             origin="psa", occurred_at=now, changes={"stage": ("new", "closed")}),
                               note(2)])
        async with r.c.db.write(Scope.system_wide()) as s:
            await s.execute(sa.text("update event_journal set created_at = :t"), {"t": now - timedelta(minutes=1)})
            await alive.add(s, [note(3)])  # young: its app may still be running
        await r.c.sync.webhooks.stop()
        await r.c.sync.webhooks.start()  # what the app does on start
        await until(lambda: _count(r.replies(thread), "left behind 2") == 1)
        await r.settled()
        got = [t for t in r.replies(thread) if "left behind" in t]
        sqlite = r.c.db.is_sqlite
        assert [next(f"left behind {i}" for i in range(4) if f"left behind {i}" in t) for t in got] == [
            f"left behind {i}" for i in range(4 if sqlite else 3)]
        left = await r.scalar("select count(*) from event_journal")
        assert left == (0 if sqlite else 1)
        if not sqlite:
            assert await r.scalar("select owner from event_journal") == "other-live-host-99"
        await r.c.sync.webhooks.stop()  # and once more: nothing posted twice
        await r.c.sync.webhooks.start()
        await r.settled()
        assert [t for t in r.replies(thread) if "left behind" in t] == got
