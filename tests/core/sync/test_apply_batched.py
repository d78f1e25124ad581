"""A forced re-read of many tickets together (callbacks) writes and announces exactly what re-reading each one
alone does, and a ticket re-read while already current is written once, not retried as if fenced.

Two workspaces hold one connection each to the same fake ConnectWise (real HTTP through its transport), both
synced the same way; then the same edits are re-read by one in one batch and by the other ticket by ticket, and
the stored tickets, their timelines, the events and the run counts are compared. The database is the test
database (SQLite, or PostgreSQL with DESKBRIDGE_TEST_DATABASE_URL)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import select

from core.notify import NoteAdded, TicketChanged, TicketCreated
from core.sync.runs import RunKind
from core.workspaces import WorkspaceService
from store.db import Database, Scope
from store.tables import Contact, Customer, Member, SyncRun, Ticket, TimelineEntry
from tests.core.sync.conftest import SyncEnv, make_env
from tests.core.sync.test_engine import seed
from tests.fakes.connectwise import FakeConnectWise

_SKIP = {"id", "workspace_id", "connection_id", "customer_id", "contact_id", "assignee_member_id", "history_at",
         "is_open"}


async def _two(db: Database, workspace_id: int, fake: FakeConnectWise) -> tuple[SyncEnv, SyncEnv]:
    other = await WorkspaceService(db).create(slug="other-msp", name="Other MSP")
    assert other.id is not None
    return await make_env(db, workspace_id, fake), await make_env(db, other.id, fake, name="cw2")


async def _state(env: SyncEnv) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every ticket of the connection (columns, its references by external id) and its timeline."""
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        refs = {}
        for cls in (Customer, Member, Contact):
            refs[cls] = {r.id: r.external_id for r in (await s.exec(select(cls))).all()}
        tickets = (await s.exec(select(Ticket).where(Ticket.connection_id == env.connection_id))).all()
        entries = (await s.exec(select(TimelineEntry).order_by(TimelineEntry.id))).all()
    by_id = {t.id: t.external_id for t in tickets}
    rows = {}
    for t in tickets:
        row = {k: v for k, v in t.model_dump().items() if k not in _SKIP}
        row.update(customer=refs[Customer].get(t.customer_id), contact=refs[Contact].get(t.contact_id),
                   owner=refs[Member].get(t.assignee_member_id), history_read=t.history_at is not None)
        rows[t.external_id] = row
    timeline: dict[str, list[tuple[Any, ...]]] = {}
    for e in entries:
        timeline.setdefault(str(by_id[e.ticket_id]), []).append(
            (e.kind, e.origin, e.external_id, e.body, e.author_name, e.author_is_contact,
             refs[Member].get(e.author_member_id), e.data, e.occurred_at))
    return rows, {k: sorted(v, key=repr) for k, v in timeline.items()}


def _events(env: SyncEnv, since: int, ext_of: dict[int, str]) -> list[tuple[Any, ...]]:
    out = []
    for e in env.notifier.events[since:]:
        ext = ext_of[e.ticket_id]
        if isinstance(e, TicketCreated):
            out.append(("created", ext, e.ticket_number, e.subject, e.origin))
        elif isinstance(e, TicketChanged):
            out.append(("changed", ext, e.ticket_number, tuple(sorted(e.changes.items())), e.origin))
        elif isinstance(e, NoteAdded):
            out.append(("note", ext, e.ticket_number, e.visibility, e.author_name, e.body, e.origin))
        else:
            out.append((type(e).__name__, ext))
    return sorted(out, key=repr)


async def _ext_of(env: SyncEnv) -> dict[int, str]:
    return {t.id: ext for ext, t in (await env.tickets()).items()}  # type: ignore[misc]


async def _webhook_counts(env: SyncEnv) -> Counter[str]:
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        runs = (await s.exec(select(SyncRun).where(SyncRun.connection_id == env.connection_id,
                                                   SyncRun.kind == RunKind.WEBHOOK))).all()
    total: Counter[str] = Counter()
    for r in runs:
        total.update({k: v for k, v in r.counts.items() if isinstance(v, int)})
    return total


async def test_a_batch_of_changed_unchanged_new_and_never_read_tickets_writes_what_one_by_one_does(
        db: Database, workspace_id: int, fake: FakeConnectWise):
    batched, alone = await _two(db, workspace_id, fake)
    ids = seed(fake, 8)  # ticket 3 and 7 are Resolved: a first sync leaves their history unread
    for env in (batched, alone):
        await env.sync.run(env.connection_id)
    fake.clock.advance(60)
    members, contacts = sorted(fake.members), sorted(fake.contacts)
    fake.edit_ticket(ids[0], status={"name": "Waiting Customer"})
    fake.edit_ticket(ids[1], owner={"id": members[2]}, summary="Renamed by a technician")
    fake.add_note(ids[2], "customer reply", contact_id=contacts[0])
    fake.add_note(ids[3], "a note on a closed ticket whose history was never read", internal=True,
                  member_id=members[1])
    fake.edit_ticket(ids[5], priority={"id": 4})
    new = fake.add_ticket("Brand new", status={"name": "New"}, board={"id": min(fake.boards)})["id"]
    fake.add_note(new, "first words", contact_id=contacts[1])
    fake.delete_ticket(ids[6])
    wanted = [str(i) for i in (*ids, new)]  # ids[4] and ids[7] unchanged; ids[6] gone
    mark_b, mark_a = len(batched.notifier.events), len(alone.notifier.events)

    failed = await batched.engine.refresh_tickets(batched.connection_id, wanted)
    assert failed == {}
    for ext in wanted:
        assert await alone.engine.refresh_tickets(alone.connection_id, [ext]) == {}

    got, want = await _state(batched), await _state(alone)
    assert got[0] == want[0]  # every ticket column, references by external id, history read or not
    assert got[1] == want[1]  # every timeline entry of every ticket
    assert got[0][str(new)]["subject"] == "Brand new" and got[0][str(ids[6])]["deleted_at"] is not None
    assert any(e[3] == "customer reply" for e in got[1][str(ids[2])])
    events = _events(batched, mark_b, await _ext_of(batched))
    assert events == _events(alone, mark_a, await _ext_of(alone))
    kinds = Counter((e[0], e[1]) for e in events)
    assert kinds[("created", str(new))] == 1 and kinds[("note", str(ids[2]))] == 1
    assert kinds[("note", str(ids[3]))] == 0  # its history was never read: its notes are the past
    assert ("changed", str(ids[4])) not in kinds and ("changed", str(ids[7])) not in kinds
    counts, reference = await _webhook_counts(batched), await _webhook_counts(alone)
    for key in ("created", "updated", "unchanged", "deleted", "notes_added", "bad", "failed"):
        assert counts[key] == reference[key], key
    assert counts["updated"] == 5 and counts["unchanged"] == 2 and counts["created"] == 1


async def test_a_ticket_re_read_while_already_current_is_written_once_and_not_taken_for_a_fence(
        db: Database, workspace_id: int, fake: FakeConnectWise):
    env, _ = await _two(db, workspace_id, fake)
    ids = seed(fake, 3)
    await env.sync.run(env.connection_id)
    fake.clock.advance(60)
    fake.add_note(ids[0], "customer reply", contact_id=sorted(fake.contacts)[0])
    assert await env.engine.refresh_tickets(env.connection_id, [str(i) for i in ids]) == {}
    before, first = await _state(env), await _webhook_counts(env)
    assert first["updated"] == 1 and first["unchanged"] == 2
    mark = len(env.notifier.events)
    statements: list[str] = []
    engine = env.db.engine.sync_engine

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        # The same callbacks again (a coalesced "one more" refresh): nothing changed at the PSA.
        assert await env.engine.refresh_tickets(env.connection_id, [str(i) for i in ids]) == {}
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    after = await _state(env)
    assert after[0] == before[0]
    assert after[1] == before[1]
    assert env.notifier.events[mark:] == []
    counts = await _webhook_counts(env) - first
    assert "fenced_retries" not in counts and "fenced_gave_up" not in counts, counts
    assert counts["unchanged"] == 3 and counts["updated"] == 0
    # The ticket rows are not rewritten (before: the upsert was tried four times, each refusal taken for a
    # local change); their history is stamped read once.
    assert not [x for x in statements if x.startswith("INSERT INTO ticket ")], statements
    assert len([x for x in statements if x.startswith("UPDATE ticket SET history_at")]) == 1
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        assert (await s.execute(sa.select(sa.func.count()).select_from(Ticket))).scalar_one() == 3
