"""Reconcile (deletes, mass-delete guard), echo suppression, pending local changes, mappings, picklists."""

from __future__ import annotations

from sqlmodel import select

from connectors.base import NewNote, NoteVisibility
from core.context import Actor
from core.notify import NoteAdded, TicketChanged
from core.sync.runs import RunStatus
from core.tickets import TicketService
from core.workspaces import DirectoryService
from store.db import Scope
from store.enums import EntryKind, Origin
from store.tables import Member, OutboxOp, PicklistItem, StatusMapping, TimelineEntry
from tests.core.sync.conftest import SyncEnv
from tests.core.sync.test_engine import seed


async def test_reconcile_marks_deleted_tickets(env: SyncEnv):
    ids = seed(env.fake, 12)
    await env.sync.run(env.connection_id)
    env.fake.clock.advance(3600)
    env.fake.delete_ticket(ids[3])
    outcome = await env.sync.reconcile(env.connection_id)
    assert outcome.status == RunStatus.OK and outcome.counts["deleted"] == 1
    tickets = await env.tickets()
    assert tickets[str(ids[3])].deleted_at is not None
    assert all(t.deleted_at is None for ext, t in tickets.items() if ext != str(ids[3]))
    assert [e.changes for e in env.notifier.of(TicketChanged)] == [{"deleted": (False, True)}]


async def test_mass_delete_guard_prunes_nothing(env: SyncEnv):
    ids = seed(env.fake, 12)
    await env.sync.run(env.connection_id)
    env.fake.clock.advance(3600)
    for i in ids[:8]:
        env.fake.delete_ticket(i)
    outcome = await env.sync.reconcile(env.connection_id)
    assert outcome.status == RunStatus.SKIPPED and "mass-delete guard" in (outcome.error or "")
    assert all(t.deleted_at is None for t in (await env.tickets()).values())
    assert (await env.sync.status(env.workspace_id))[0].runs[0].error == outcome.error


async def test_reconcile_fetches_tickets_we_missed(env: SyncEnv):
    ids = seed(env.fake, 5)
    await env.sync.run(env.connection_id)
    env.fake.clock.advance(3600)
    missed = env.fake.add_ticket("Never listed", company={"id": min(env.fake.companies)})
    outcome = await env.sync.reconcile(env.connection_id)
    assert outcome.counts["healed"] == 1 and str(missed["id"]) in await env.tickets()
    assert len(ids) == 5


async def test_our_own_note_coming_back_is_linked_not_duplicated(env: SyncEnv, tech: Actor):
    ids = seed(env.fake, 3)
    await env.sync.run(env.connection_id)
    tickets = TicketService(env.db)
    await tickets.comment(tech, ids[0], "We are on it", visibility="public")
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        op = (await s.exec(select(OutboxOp))).one()
    # The outbox delivers it (the text exactly as written: the sync must know it without a tag).
    from tests.core.sync.test_echo import attempted

    await attempted(env, op)
    conn = await env.engine.connection(env.connection_id)
    async with env.connections.open(conn) as connector:
        await connector.add_note(NewNote(ticket_external_id=str(ids[0]), text="We are on it",
                                         visibility=NoteVisibility.PUBLIC, marker=op.marker))
    env.fake.clock.advance(60)
    outcome = await env.sync.run(env.connection_id)
    assert outcome.counts["linked"] == 1 and outcome.counts.get("notes_added", 0) == 0
    local = (await env.tickets())[str(ids[0])]
    mine = [e for e in await env.timeline(local.id) if e.body == "We are on it"]
    assert len(mine) == 1 and mine[0].origin == Origin.SLACK and mine[0].external_id is not None
    assert env.notifier.of(NoteAdded) == []  # no echo back into the thread it came from
    env.fake.clock.advance(60)
    env.fake.edit_ticket(ids[0], summary="touch")
    await env.sync.run(env.connection_id)
    assert len([e for e in await env.timeline(local.id) if e.body == "We are on it"]) == 1


async def test_pending_local_change_is_not_overwritten_by_stale_psa_state(env: SyncEnv, tech: Actor):
    ids = seed(env.fake, 1)
    await env.sync.run(env.connection_id)
    board = str(min(env.fake.boards))
    await TicketService(env.db).change_status(tech, ids[0], "in progress")  # queued, not delivered yet
    env.fake.clock.advance(60)
    env.fake.edit_ticket(ids[0], summary="renamed at the PSA")
    await env.sync.run(env.connection_id)
    t = (await env.tickets())[str(ids[0])]
    assert (t.subject, t.stage, t.board_external_id) == ("renamed at the PSA", "in_progress", board)
    changes = [e.changes for e in env.notifier.of(TicketChanged)]
    assert changes == [{"subject": ("Ticket 0", "renamed at the PSA")}]  # no flicker back to "new"


async def test_admin_override_survives_sync_and_picklist_refresh(env: SyncEnv):
    ids = seed(env.fake, 4)
    await env.sync.run(env.connection_id)
    changes = await env.sync.map_status(env.workspace_id, env.connection_id, "waiting customer", "in progress",
                                        board="Service Desk")
    assert [(c.psa_name, c.value, c.tickets_updated) for c in changes] == [("Waiting Customer", "in_progress", 1)]
    assert (await env.tickets())[str(ids[2])].stage == "in_progress"
    await env.sync.map_priority(env.workspace_id, env.connection_id, "Priority 4 - Low", "high")
    await env.sync.refresh_picklists(env.connection_id)
    env.fake.clock.advance(60)
    env.fake.edit_ticket(ids[2], summary="still waiting")
    await env.sync.run(env.connection_id, full=True)
    t = (await env.tickets())[str(ids[2])]
    assert t.stage == "in_progress"
    assert (await env.tickets())[str(ids[3])].priority == "high"
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        m = (await s.exec(select(StatusMapping).where(StatusMapping.psa_status_name == "Waiting Customer",
                                                     StatusMapping.board_external_id == str(min(env.fake.boards))))).one()
    assert m.overridden and m.stage == "in_progress"


async def test_map_status_errors_name_the_choices(env: SyncEnv):
    import pytest

    from core.errors import InvalidInput, NotFound

    await env.sync.refresh_picklists(env.connection_id)
    with pytest.raises(NotFound) as exc:
        await env.sync.map_status(env.workspace_id, env.connection_id, "Nope", "closed")
    assert "Waiting Customer" in (exc.value.hint or "")
    with pytest.raises(InvalidInput):
        await env.sync.map_status(env.workspace_id, env.connection_id, "New", "sideways")


async def test_picklists_cache_and_members_matched_by_email(env: SyncEnv):
    directory = DirectoryService(env.db)
    bob = await directory.add_member(env.workspace_id, name="Bob (Slack)", email="BOB@msp.example")
    outcome = await env.sync.refresh_picklists(env.connection_id)
    assert outcome.status == RunStatus.OK
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        items = (await s.exec(select(PicklistItem))).all()
        members = (await s.exec(select(Member))).all()
        smaps = (await s.exec(select(StatusMapping))).all()
    kinds = {k: sum(1 for i in items if i.kind == k) for k in ("board", "status", "priority", "type")}
    assert kinds == {"board": 2, "status": 8, "priority": 4, "type": 3}
    cancelled = next(m for m in smaps if m.psa_status_name.startswith("Cancelled"))
    assert cancelled.stage == "closed"
    linked = next(m for m in members if m.id == bob.id)
    assert linked.connection_id == env.connection_id and linked.external_id is not None
    assert sum(1 for m in members if (m.email or "").lower() == "bob@msp.example") == 1
    assert (await directory.member_by_email(env.workspace_id, "bob@msp.example")).id == bob.id
    assert outcome.counts["companies"] == 3 and outcome.counts["contacts"] == 3


async def test_time_entries_and_attachments_land_in_the_timeline(env: SyncEnv):
    from connectors.base import NewAttachment, NewTimeEntry

    ids = seed(env.fake, 1)
    conn = await env.engine.connection(env.connection_id)
    async with env.connections.open(conn) as connector:
        await connector.add_time_entry(NewTimeEntry(ticket_external_id=str(ids[0]), minutes=45,
                                                    started_at=env.now(), marker="m-time-1", notes="onsite"))
        await connector.upload_attachment(NewAttachment(ticket_external_id=str(ids[0]), filename="log.txt",
                                                        content=b"hello", marker="m-file-1"))
    await env.sync.run(env.connection_id)
    entries = await env.timeline()
    time = [e for e in entries if e.kind == EntryKind.TIME_ENTRY]
    files = [e for e in entries if e.kind == EntryKind.ATTACHMENT]
    assert len(time) == 1 and time[0].data["minutes"] == 45 and time[0].body == "onsite"
    assert len(files) == 1 and files[0].data["filename"] == "log.txt"
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        assert len((await s.exec(select(TimelineEntry))).all()) == 4
