"""Echo suppression links only OUR write coming back: same ticket, same workspace, not a contact's quote."""

from __future__ import annotations

from sqlmodel import select

from connectors.base import NewNote, NoteVisibility, marker_tag
from core.context import Actor
from core.notify import NoteAdded
from core.tickets import TicketService
from store.db import Scope
from store.enums import Origin
from store.tables import OutboxOp, TimelineEntry
from tests.core.sync.conftest import SyncEnv
from tests.core.sync.test_engine import seed


async def attempted(env: SyncEnv, op: OutboxOp) -> None:
    """As the outbox worker's claim leaves an op it is sending (attempts + 1, in flight)."""
    async with env.db.write(Scope.workspace(env.workspace_id)) as s:
        row = await s.get(OutboxOp, op.id)
        assert row is not None
        row.attempts, row.status = row.attempts + 1, "inflight"


async def _comment_delivered(env: SyncEnv, tech: Actor, ticket: int, text: str) -> tuple[str, dict]:
    """A technician comments from chat; the outbox delivers it (the text exactly as written, no tag)."""
    await TicketService(env.db).comment(tech, ticket, text, visibility="public")
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        op = (await s.exec(select(OutboxOp).order_by(OutboxOp.id.desc()))).first()  # type: ignore[union-attr]
    assert op is not None and op.marker
    await attempted(env, op)
    conn = await env.engine.connection(env.connection_id)
    async with env.connections.open(conn) as connector:
        note = await connector.add_note(NewNote(ticket_external_id=str(ticket), text=text,
                                                visibility=NoteVisibility.PUBLIC, marker=op.marker))
    return op.marker, {"id": int(note.external_id)}


def _reply_quoting(text: str, marker: str) -> str:
    """A customer's e-mail reply: their answer on top, a note of ours quoted at the bottom (tag and all, as
    notes written by earlier versions carried one)."""
    return f"Thanks, that fixed it!\n\nFrom: Acme Service Desk\nSent: Monday\n\n{text}\n\n{marker_tag(marker)}"


async def _entries(env: SyncEnv, ticket_ext: int) -> list[TimelineEntry]:
    local = (await env.tickets())[str(ticket_ext)]
    return await env.timeline(local.id)


async def test_customer_reply_quoting_our_note_arrives_as_its_own_entry(env: SyncEnv, tech: Actor):
    ids = seed(env.fake, 2)
    await env.sync.run(env.connection_id)
    marker, ours = await _comment_delivered(env, tech, ids[0], "We are on it")
    env.fake.clock.advance(60)
    await env.sync.run(env.connection_id)  # our note comes back and is linked
    env.fake.clock.advance(60)
    quoted = _reply_quoting("We are on it", marker)
    reply = env.fake.add_note(ids[0], quoted, contact_id=min(env.fake.contacts))
    outcome = await env.sync.run(env.connection_id)
    assert outcome.counts.get("notes_added") == 1 and outcome.counts.get("linked", 0) == 0
    entries = await _entries(env, ids[0])
    mine = [e for e in entries if e.origin == Origin.SLACK]
    assert [(e.body, e.external_id) for e in mine] == [("We are on it", str(ours["id"]))]  # untouched
    theirs = [e for e in entries if e.external_id == str(reply["id"])]
    assert len(theirs) == 1 and theirs[0].origin == Origin.PSA and theirs[0].author_is_contact
    assert theirs[0].body == quoted  # its text as received, quoted tag included
    assert [n.body for n in env.notifier.of(NoteAdded)] == [theirs[0].body]  # the technician sees the reply


async def test_our_note_and_a_quoting_reply_in_one_sync(env: SyncEnv, tech: Actor):
    ids = seed(env.fake, 1)
    await env.sync.run(env.connection_id)
    marker, ours = await _comment_delivered(env, tech, ids[0], "Rebooting the server now")
    reply = env.fake.add_note(ids[0], _reply_quoting("Rebooting the server now", marker),
                              contact_id=min(env.fake.contacts))
    env.fake.clock.advance(60)
    outcome = await env.sync.run(env.connection_id)
    assert outcome.counts.get("linked") == 1 and outcome.counts.get("notes_added") == 1
    entries = await _entries(env, ids[0])
    assert {e.external_id for e in entries if e.origin == Origin.SLACK} == {str(ours["id"])}
    assert [e.author_is_contact for e in entries if e.external_id == str(reply["id"])] == [True]


async def test_note_carrying_another_tickets_marker_is_inserted_not_linked(env: SyncEnv, tech: Actor):
    ids = seed(env.fake, 2)
    await env.sync.run(env.connection_id)
    await TicketService(env.db).comment(tech, ids[0], "Replaced the toner", visibility="public")
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        op = (await s.exec(select(OutboxOp))).one()
    # A technician pastes our (not yet synced) note, tag included, into ANOTHER ticket in ConnectWise.
    pasted = env.fake.add_note(ids[1], f"Same fix as the other one: Replaced the toner\n\n{marker_tag(op.marker)}",
                               member_id=sorted(env.fake.members)[1])
    env.fake.clock.advance(60)
    outcome = await env.sync.run(env.connection_id)
    assert outcome.counts.get("linked", 0) == 0
    mine = [e for e in await _entries(env, ids[0]) if e.origin == Origin.SLACK]
    assert len(mine) == 1 and mine[0].external_id is None  # still waiting for its own delivery
    other = [e for e in await _entries(env, ids[1]) if e.external_id == str(pasted["id"])]
    assert len(other) == 1 and other[0].body.startswith("Same fix as the other one")
    assert other[0].body.endswith(marker_tag(op.marker))  # its text as received


async def test_marker_of_another_workspaces_entry_is_not_stamped(env: SyncEnv, other_workspace_id: int):
    from store.tables import Ticket

    async with env.db.write(Scope.workspace(other_workspace_id)) as s:
        t = Ticket(workspace_id=other_workspace_id, subject="elsewhere", priority="medium", stage="new")
        s.add(t)
        await s.flush()
        entry = TimelineEntry(workspace_id=other_workspace_id, ticket_id=t.id, kind="note_public", origin="slack",
                              marker="m-foreign-1", body="theirs")
        s.add(entry)
    ids = seed(env.fake, 1)
    note = env.fake.add_note(ids[0], f"hello\n\n{marker_tag('m-foreign-1')}", member_id=sorted(env.fake.members)[1])
    await env.sync.run(env.connection_id)
    async with env.db.read(Scope.workspace(other_workspace_id)) as s:
        theirs = await s.get(TimelineEntry, entry.id)
    assert theirs is not None and theirs.external_id is None
    assert [e.external_id for e in await _entries(env, ids[0]) if e.external_id == str(note["id"])] == [str(note["id"])]


async def test_the_same_words_written_by_someone_else_are_not_taken_for_ours(env: SyncEnv, tech: Actor):
    ids = seed(env.fake, 1)
    await env.sync.run(env.connection_id)
    await TicketService(env.db).comment(tech, ids[0], "Rebooting now", visibility="internal")
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        op = (await s.exec(select(OutboxOp))).one()
    # Before our op was ever sent, a colleague types the very same words in ConnectWise.
    theirs = env.fake.add_note(ids[0], "Rebooting now", member_id=sorted(env.fake.members)[1])
    env.fake.clock.advance(60)
    outcome = await env.sync.run(env.connection_id)
    assert outcome.counts.get("linked", 0) == 0 and outcome.counts.get("notes_added") == 1
    mine = [e for e in await _entries(env, ids[0]) if e.origin == Origin.SLACK]
    assert len(mine) == 1 and mine[0].external_id is None  # still ours to deliver
    # Once it has been sent, a copy by another author is still not ours.
    await attempted(env, op)
    env.fake.add_note(ids[0], "Rebooting now", member_id=sorted(env.fake.members)[2])
    env.fake.clock.advance(60)
    assert (await env.sync.run(env.connection_id)).counts.get("linked", 0) == 0
    assert theirs["id"] not in {e.external_id for e in mine}


async def test_time_and_files_of_ours_come_back_linked_without_any_tag(env: SyncEnv, tech: Actor):
    from datetime import timedelta

    from connectors.base import NewAttachment, NewTimeEntry

    ids = seed(env.fake, 1)
    await env.sync.run(env.connection_id)
    svc = TicketService(env.db)
    start = env.fake.clock.now - timedelta(hours=1)
    await svc.log_time(tech, ids[0], 25, notes="Swapped the PSU", started_at=start)
    await svc.attach(tech, ids[0], filename="event.log", content=b"0123456789")
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        ops = (await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all()
    conn = await env.engine.connection(env.connection_id)
    async with env.connections.open(conn) as connector:
        for op in ops:
            await attempted(env, op)
        await connector.add_time_entry(NewTimeEntry(ticket_external_id=str(ids[0]), minutes=25, started_at=start,
                                                    marker=ops[0].marker, notes="Swapped the PSU"))
        await connector.upload_attachment(NewAttachment(ticket_external_id=str(ids[0]), filename="event.log",
                                                        content=b"0123456789", marker=ops[1].marker))
    env.fake.clock.advance(60)
    outcome = await env.sync.run(env.connection_id)
    assert outcome.counts.get("linked") == 2
    assert not outcome.counts.get("time_entries_added") and not outcome.counts.get("attachments_added")
    entries = await _entries(env, ids[0])
    assert all(e.external_id for e in entries if e.origin == Origin.SLACK)
