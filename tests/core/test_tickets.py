"""TicketService on a standalone workspace and on a PSA-backed one (outbox ops in the same transaction)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from core.context import Actor
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.outbox.ops import parse_payload
from core.tickets import MAX_NOTE_CHARS, TicketService
from core.workspaces import WorkspaceService
from store.db import Database, Scope
from store.enums import EntryKind, Origin, OutboxStatus, Priority, Stage
from store.tables import OutboxOp, Ticket, TimelineEntry
from tests.factories import BOARD, psa_backed


@pytest.fixture
def svc(db: Database) -> TicketService:
    return TicketService(db)


async def _ops(db: Database, ws: int) -> list[OutboxOp]:
    async with db.read(Scope.workspace(ws)) as s:
        return list((await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all())


async def _synced_ticket(db: Database, ws: int, setup, number: int = 58231) -> None:
    async with db.write(Scope.workspace(ws)) as s:
        s.add(Ticket(workspace_id=ws, number=number, external_id=str(number), connection_id=setup.connection_id,
                     customer_id=setup.customer_id, subject="VPN down", priority="high", priority_rank=1,
                     stage="new", psa_status_id="10", psa_status_name="New", board_external_id=BOARD,
                     board_name="Service Desk", source="psa"))


# ------------------------------------------------------------------ standalone


async def test_standalone_numbering_is_sequential_per_workspace(svc, tech, other_workspace_id):
    a = await svc.create(tech, subject="Printer jammed")
    b = await svc.create(tech, subject="Email bounce", priority="high")
    other = await svc.create(Actor.system(other_workspace_id), subject="Other MSP's first")
    assert (a.summary.number, b.summary.number) == (1, 2)
    assert other.summary.number == 1
    assert b.summary.priority is Priority.HIGH and b.summary.stage is Stage.NEW


async def test_standalone_tickets_are_announced_and_psa_backed_ones_are_not(db, tech, workspace_id):
    """A standalone ticket has no sync or delivery to announce it: dispatch channels and App Homes hear of its
    creation and reassignment from TicketService, after the commit. A PSA-backed one waits for the PSA."""
    from core.notify import RecordingNotifier, TicketChanged, TicketCreated

    rec = RecordingNotifier()
    svc = TicketService(db, notifier=rec)
    t = await svc.create(tech, subject="Printer jammed", customer_id=None)
    (created,) = rec.of(TicketCreated)
    assert (created.ticket_id, created.ticket_number, created.subject) == (t.summary.id, 1, "Printer jammed")
    async with db.read(Scope.workspace(workspace_id)) as s:
        assert (await s.get(Ticket, created.ticket_id)) is not None  # committed before it was announced
    await svc.assign(tech, t.summary.number, tech.member_id)
    await svc.assign(tech, t.summary.number, tech.member_id)  # no change: no event
    (changed,) = rec.of(TicketChanged)
    assert changed.changes == {"assignee_member_id": (None, tech.member_id)}
    setup = await psa_backed(db, workspace_id)
    await svc.create(tech, subject="In the PSA", customer_id=setup.customer_id, board_external_id=BOARD)
    assert len(rec.of(TicketCreated)) == 1  # announced when the PSA has it (WriteDelivered), not now
    with pytest.raises(PermissionDenied):
        await svc.create(replace(tech, is_member=False, member_id=None), subject="x")
    assert len(rec.events) == 2


async def test_get_unknown_and_malformed_refs(svc, tech):
    with pytest.raises(NotFound, match="#999 was not found"):
        await svc.get(tech, 999)
    with pytest.raises(InvalidInput, match="not a ticket number"):
        await svc.get(tech, "abc; drop table")
    t = await svc.create(tech, subject="Laptop slow")
    assert (await svc.get(tech, f"#{t.summary.number}")).summary.subject == "Laptop slow"


async def test_status_priority_assign_and_history(svc, tech, db, workspace_id):
    t = await svc.create(tech, subject="Laptop slow")
    n = t.summary.number
    d = await svc.change_status(tech, n, "waiting")
    assert d.summary.stage is Stage.WAITING and d.summary.status_name == "Waiting on Customer"
    d = await svc.change_status(tech, n, "Resolved")
    assert d.summary.stage is Stage.RESOLVED and d.closed_at is not None
    d = await svc.change_priority(tech, n, "p1")
    assert d.summary.priority is Priority.CRITICAL
    d = await svc.assign(tech, n, tech.member_id)
    assert d.summary.assignee_name == "Ana Tech"
    d = await svc.assign(tech, n, None)
    assert d.summary.assignee_id is None
    history = await svc.status_history(tech, n)
    assert [h.data["to"]["stage"] for h in history] == ["waiting", "resolved"]
    assert await _ops(db, workspace_id) == []  # standalone: nothing for a PSA


async def test_invalid_values_are_typed_errors_and_change_nothing(svc, tech):
    t = await svc.create(tech, subject="Laptop slow")
    n = t.summary.number
    with pytest.raises(InvalidInput, match="not a status") as exc:
        await svc.change_status(tech, n, "frobnicated")
    assert "In Progress" in (exc.value.hint or "")
    with pytest.raises(InvalidInput, match="not a priority"):
        await svc.change_priority(tech, n, "whenever")
    with pytest.raises(InvalidInput, match="limit is 30,000"):
        await svc.comment(tech, n, "x" * (MAX_NOTE_CHARS + 1))
    with pytest.raises(InvalidInput, match="empty"):
        await svc.comment(tech, n, "   ")
    with pytest.raises(InvalidInput, match="subject is 300 characters"):
        await svc.create(tech, subject="s" * 300)
    with pytest.raises(InvalidInput, match="valid duration"):
        await svc.log_time(tech, n, 0)
    with pytest.raises(InvalidInput, match="valid duration"):
        await svc.log_time(tech, n, 5000)
    with pytest.raises(NotFound):
        await svc.assign(tech, n, 424242)
    d = await svc.get(tech, n)
    assert d.summary.stage is Stage.NEW and d.timeline == ()


async def test_comments_time_attachments_and_visibility(svc, tech):
    n = (await svc.create(tech, subject="Server reboot")).summary.number
    await svc.comment(tech, n, "Rebooting now", visibility="public")
    await svc.comment(tech, n, "Root cause: patch", visibility="internal")
    await svc.log_time(tech, n, 45, notes="remote session")
    await svc.attach(tech, n, filename="log.txt", content=b"boot log", content_type="text/plain")
    with pytest.raises(InvalidInput, match="limit here is 25 MB"):
        await svc.attach(tech, n, filename="big.iso", content=b"x" * (25 * 1024 * 1024 + 1))
    with pytest.raises(InvalidInput, match="empty"):
        await svc.attach(tech, n, filename="empty.txt", content=b"")
    kinds = [i.kind for i in (await svc.get(tech, n)).timeline]
    assert kinds == [EntryKind.NOTE_PUBLIC, EntryKind.NOTE_INTERNAL, EntryKind.TIME_ENTRY, EntryKind.ATTACHMENT]
    contact = Actor(workspace_id=tech.workspace_id, origin=Origin.API, is_member=False, display="portal")
    visible = [i.kind for i in (await svc.get(contact, n)).timeline]
    assert visible == [EntryKind.NOTE_PUBLIC, EntryKind.ATTACHMENT]
    with pytest.raises(PermissionDenied):
        await svc.comment(contact, n, "secret", visibility="internal")
    with pytest.raises(PermissionDenied):
        await svc.log_time(contact, n, 10)


async def test_first_reply_moves_new_to_in_progress_when_enabled(svc, tech, db, workspace_id):
    n1 = (await svc.create(tech, subject="A")).summary.number
    d = await svc.comment(tech, n1, "On it", visibility="public")
    assert d.summary.stage is Stage.NEW and d.first_response_at is not None
    await WorkspaceService(db).set_option(workspace_id, "first_reply_moves_to_in_progress", "on")
    n2 = (await svc.create(tech, subject="B")).summary.number
    d = await svc.comment(tech, n2, "Internal only", visibility="internal")
    assert d.summary.stage is Stage.NEW and d.first_response_at is None
    d = await svc.comment(tech, n2, "On it", visibility="public")
    assert d.summary.stage is Stage.IN_PROGRESS


async def test_customer_scope_hides_other_customers_tickets(svc, tech, db, workspace_id):
    setup = await psa_backed(db, workspace_id)
    await _synced_ticket(db, workspace_id, setup, 100)
    scoped_other = tech.scoped_to_customer(setup.other_customer_id)
    with pytest.raises(NotFound, match="#100 was not found"):
        await svc.get(scoped_other, 100)
    with pytest.raises(NotFound):
        await svc.comment(scoped_other, 100, "hi", visibility="public")
    assert (await svc.get(tech.scoped_to_customer(setup.customer_id), 100)).summary.number == 100


async def test_customer_channel_refuses_another_customer_and_says_what_to_do(svc, tech, db, workspace_id):
    setup = await psa_backed(db, workspace_id)
    with pytest.raises(PermissionDenied, match="bound to one customer") as e:
        await svc.create(tech.scoped_to_customer(setup.customer_id), subject="Printer",
                         customer_id=setup.other_customer_id)
    assert "technicians' channel" in (e.value.hint or "")  # every refusal says what to do next
    assert await _ops(db, workspace_id) == []  # nothing was queued


# ------------------------------------------------------------------ PSA-backed


async def test_psa_backed_changes_enqueue_ops_in_order(svc, tech, db, workspace_id):
    setup = await psa_backed(db, workspace_id)
    await _synced_ticket(db, workspace_id, setup)
    bob = replace(tech, member_id=setup.member_id)
    await svc.comment(bob, 58231, "Looking now", visibility="public", status="In Progress")
    await svc.comment(bob, 58231, "Check firewall", visibility="internal")
    await svc.log_time(bob, 58231, 30, started_at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    await svc.assign(bob, 58231, setup.member_id)
    await svc.change_priority(bob, 58231, Priority.LOW)
    ops = await _ops(db, workspace_id)
    payloads = [parse_payload(o.payload) for o in ops]
    assert [o.kind for o in ops] == ["add_note", "update_ticket", "add_note", "add_time_entry", "update_ticket",
                                     "update_ticket"]
    assert payloads[0].visibility == "public" and payloads[0].email_contact is True
    assert payloads[0].author_member_external_id == "177"
    assert payloads[1].status_external_id == "11"
    assert payloads[2].visibility == "internal" and payloads[2].email_contact is False
    assert payloads[3].minutes == 30 and payloads[3].member_external_id == "177"
    assert payloads[4].owner_external_id == "177"
    assert payloads[5].priority_external_id == "4"
    assert all(o.status == OutboxStatus.PENDING and o.connection_id == setup.connection_id for o in ops)
    assert len({o.marker for o in ops}) == len(ops)
    # Each note/time op's marker is on its timeline entry, so the synced copy is recognised later.
    async with db.read(Scope.workspace(workspace_id)) as s:
        entries = {e.id: e for e in (await s.exec(select(TimelineEntry))).all()}
    for op in ops:
        if op.kind in ("add_note", "add_time_entry"):
            assert entries[op.timeline_entry_id].marker == op.marker


async def test_psa_status_must_be_valid_on_the_board(svc, tech, db, workspace_id):
    setup = await psa_backed(db, workspace_id)
    await _synced_ticket(db, workspace_id, setup)
    with pytest.raises(InvalidInput, match="not a valid status for this ticket's board") as exc:
        await svc.change_status(tech, 58231, "Waiting Vendor")
    assert "Waiting Customer Response" in (exc.value.hint or "")
    d = await svc.change_status(tech, 58231, "waiting")  # a stage picks the board's status for it
    assert d.summary.status_name == "Waiting Customer Response" and d.summary.stage is Stage.WAITING
    assert [o.kind for o in await _ops(db, workspace_id)] == ["update_ticket"]


async def test_psa_create_is_pending_until_delivered(svc, tech, db, workspace_id):
    setup = await psa_backed(db, workspace_id)
    d = await svc.create(tech, subject="New laptop for Sam", customer_id=setup.customer_id, priority="high")
    assert d.summary.number is None and d.pending_writes == 1
    (op,) = await _ops(db, workspace_id)
    p = parse_payload(op.payload)
    assert op.kind == "create_ticket" and p.company_external_id == "250" and p.priority_external_id == "2"
    async with db.read(Scope.workspace(workspace_id)) as s:
        ticket = (await s.exec(select(Ticket))).one()
    assert ticket.marker == op.marker


async def test_failed_transaction_leaves_no_op_and_no_entry(svc, tech, db, workspace_id, monkeypatch):
    setup = await psa_backed(db, workspace_id)
    await _synced_ticket(db, workspace_id, setup)

    async def boom(*a, **k):
        raise RuntimeError("crash after the op was added")

    monkeypatch.setattr(svc, "_detail", boom)  # fails inside the transaction, after enqueue
    with pytest.raises(RuntimeError):
        await svc.comment(tech, 58231, "lost?", visibility="public")
    assert await _ops(db, workspace_id) == []
    async with db.read(Scope.workspace(workspace_id)) as s:
        assert (await s.exec(select(TimelineEntry))).all() == []


async def test_contact_must_belong_to_the_workspace_and_customer(svc, tech, db, workspace_id, other_workspace_id):
    from store.tables import Contact, Customer

    async with db.write(Scope.workspace(other_workspace_id)) as s:
        foreign = Contact(workspace_id=other_workspace_id, name="Eve Outsider")
        s.add(foreign)
    async with db.write(Scope.workspace(workspace_id)) as s:
        acme = Customer(workspace_id=workspace_id, identifier="ACME", name="Acme")
        globex = Customer(workspace_id=workspace_id, identifier="GLOBEX", name="Globex")
        s.add_all([acme, globex])
        await s.flush()
        sam = Contact(workspace_id=workspace_id, name="Sam", customer_id=globex.id)
        s.add(sam)
    with pytest.raises(NotFound, match="contact was not found"):
        await svc.create(tech, subject="x", contact_id=foreign.id)
    with pytest.raises(NotFound, match="contact was not found"):
        await svc.create(tech, subject="x", customer_id=acme.id, contact_id=sam.id)
    ok = await svc.create(tech, subject="Sam's laptop", customer_id=globex.id, contact_id=sam.id)
    assert ok.contact_name == "Sam"


# ------------------------------------------------------------------ what the PSA will refuse, and what it did


async def test_time_on_a_ticket_the_psa_shows_closed_is_refused_up_front(db, tech, workspace_id):
    from core.errors import Conflict

    setup = await psa_backed(db, workspace_id)
    await _synced_ticket(db, workspace_id, setup)
    svc = TicketService(db)
    async with db.write(Scope.workspace(workspace_id)) as s:  # closed in the PSA ("Resolved" is a closed status)
        t = (await s.exec(select(Ticket).where(Ticket.number == 58231))).one()
        t.psa_status_id, t.psa_status_name, t.stage = "13", "Resolved", "resolved"
    with pytest.raises(Conflict) as refused:
        await svc.log_time(tech, 58231, 30, notes="after the fact")
    assert "closed in the PSA" in refused.value.message and "Reopen" in (refused.value.hint or "")
    assert await _ops(db, workspace_id) == []  # nothing queued, nothing shown as logged
    async with db.write(Scope.workspace(workspace_id)) as s:  # reopened: time is taken again
        t = (await s.exec(select(Ticket).where(Ticket.number == 58231))).one()
        t.psa_status_id, t.psa_status_name, t.stage = "11", "In Progress", "in_progress"
    await svc.log_time(tech, 58231, 30)
    assert [o.kind for o in await _ops(db, workspace_id)] == ["add_time_entry"]


async def test_a_status_that_takes_no_time_is_refused_up_front(db, tech, workspace_id):
    from core.errors import Conflict
    from store.tables import PicklistItem

    setup = await psa_backed(db, workspace_id)
    await _synced_ticket(db, workspace_id, setup)
    async with db.write(Scope.workspace(workspace_id)) as s:
        item = (await s.exec(select(PicklistItem).where(PicklistItem.kind == "status",
                                                        PicklistItem.external_id == "10"))).one()
        item.data = {**item.data, "time_entry_allowed": False}
    with pytest.raises(Conflict) as refused:
        await TicketService(db).log_time(tech, 58231, 15)
    assert "'New'" in refused.value.message


async def test_time_on_a_ticket_that_moved_to_another_psa_while_it_was_logged_is_refused(db, tech, workspace_id):
    """log_time reads what the PSA write needs (its rights, the member's PSA id) before its write turn: a ticket
    moved to another connection in between would send the old PSA's member id to the new one. Refused, nothing
    queued; logged again, it goes to the ticket's PSA as it is now."""
    from core.errors import Conflict
    from store.tables import PsaConnection

    setup = await psa_backed(db, workspace_id)
    await _synced_ticket(db, workspace_id, setup)
    async with db.write(Scope.workspace(workspace_id)) as s:
        other = PsaConnection(workspace_id=workspace_id, kind="sandbox", name="sandbox-moved", is_default=False)
        s.add(other)
        await s.flush()
        other_id = other.id

    class MovedMeanwhile(TicketService):
        moved = False

        async def _member_external_id(self, session, ticket, member_id):  # type: ignore[no-untyped-def]
            found = await super()._member_external_id(session, ticket, member_id)
            if not self.moved:
                self.moved = True
                async with db.write(Scope.workspace(workspace_id)) as w:
                    t = (await w.exec(select(Ticket).where(Ticket.number == 58231))).one()
                    t.connection_id = other_id
            return found

    svc = MovedMeanwhile(db)
    with pytest.raises(Conflict) as refused:
        await svc.log_time(tech, 58231, 30)
    assert "another PSA connection" in refused.value.message and "again" in (refused.value.hint or "")
    assert await _ops(db, workspace_id) == []
    await svc.log_time(tech, 58231, 30)
    assert [(o.kind, o.connection_id) for o in await _ops(db, workspace_id)] == [("add_time_entry", other_id)]


async def test_a_write_the_psa_refused_shows_as_failed_in_the_history(db, tech, workspace_id):
    setup = await psa_backed(db, workspace_id)
    await _synced_ticket(db, workspace_id, setup)
    svc = TicketService(db)
    await svc.comment(tech, 58231, "Refused one", visibility="internal")
    await svc.log_time(tech, 58231, 45)
    await svc.comment(tech, 58231, "Still waiting", visibility="internal")
    async with db.write(Scope.workspace(workspace_id)) as s:
        ops = (await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all()
        ops[0].status = OutboxStatus.DEAD.value
        ops[1].status = OutboxStatus.DEAD.value
    detail = await svc.get(tech, 58231)
    by_body = {i.body: i.write for i in detail.timeline if i.kind != EntryKind.TIME_ENTRY}
    assert by_body["Refused one"] == "failed" and by_body["Still waiting"] == "pending"
    from core.chat import ChatViews
    from core.connections import ConnectionService

    connections = ConnectionService(db, cipher=None, checker=None, factory=None,  # type: ignore[arg-type]
                                    known_kinds=frozenset({"sandbox"}))
    views = ChatViews(db, tickets=svc, connections=connections)
    view = await views.ticket_from_detail(tech, detail)
    assert [(c.body, c.failed, c.queued) for c in view.conversation] == [
        ("Refused one", True, False), ("Still waiting", False, True)]
    assert view.total_minutes == 0  # the refused 45 minutes are not counted as logged


# ------------------------------------------------------------------ creates the PSA will accept


async def _boards_and_types(db, ws, setup):
    from store.tables import PicklistItem

    async with db.write(Scope.workspace(ws)) as s:
        s.add(PicklistItem(workspace_id=ws, connection_id=setup.connection_id, kind="board", external_id="2",
                           name="Alerts"))
        for ext, parent, name in (("t1", BOARD, "Incident"), ("t2", BOARD, "Service Request"),
                                  ("t9", "2", "Monitoring Alert")):
            s.add(PicklistItem(workspace_id=ws, connection_id=setup.connection_id, kind="type", external_id=ext,
                               parent_external_id=parent, name=name))


async def test_a_create_the_psa_needs_a_board_for_is_refused_with_a_field_error(db, tech, workspace_id):
    from connectors.sandbox.connector import SandboxConnector
    from core.errors import InvalidInput

    setup = await psa_backed(db, workspace_id)  # the sandbox requires a board on every ticket
    await _boards_and_types(db, workspace_id, setup)  # two boards, no default set, no tickets yet
    svc = TicketService(db, capabilities=lambda kind: SandboxConnector.CAPABILITIES)
    with pytest.raises(InvalidInput) as refused:
        await svc.create(tech, subject="No board", customer_id=setup.customer_id)
    assert refused.value.field == "board" and "--set default_board_id=" in (refused.value.hint or "")
    with pytest.raises(InvalidInput) as bad:
        await svc.create(tech, subject="Wrong board", customer_id=setup.customer_id, board_external_id="99")
    assert bad.value.field == "board" and "Alerts" in (bad.value.hint or "")
    assert await _ops(db, workspace_id) == []  # nothing accepted that would go dead


async def test_the_chosen_board_type_and_contact_reach_the_psa(db, tech, workspace_id):
    from store.tables import Contact

    setup = await psa_backed(db, workspace_id)
    await _boards_and_types(db, workspace_id, setup)
    async with db.write(Scope.workspace(workspace_id)) as s:
        contact = Contact(workspace_id=workspace_id, connection_id=setup.connection_id, external_id="c-77",
                          customer_id=setup.customer_id, name="Pat User")
        s.add(contact)
        await s.flush()
        contact_id = contact.id
    svc = TicketService(db)
    await svc.create(tech, subject="Alert", customer_id=setup.customer_id, board_external_id="2",
                     type_external_id="t9", contact_id=contact_id, priority="high")
    [op] = await _ops(db, workspace_id)
    assert (op.payload["board_external_id"], op.payload["type_external_id"], op.payload["contact_external_id"],
            op.payload["priority_external_id"]) == ("2", "t9", "c-77", "2")
    # a type of another board is a field error, not a ticket filed with the wrong type
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput) as wrong:
        await svc.create(tech, subject="Mismatch", customer_id=setup.customer_id, board_external_id=BOARD,
                         type_external_id="t9")
    assert wrong.value.field == "type" and "Incident" in (wrong.value.hint or "")


async def test_the_default_board_is_the_setting_else_where_the_tickets_are(db, tech, workspace_id):
    from store.tables import PsaConnection

    setup = await psa_backed(db, workspace_id)
    await _boards_and_types(db, workspace_id, setup)
    await _synced_ticket(db, workspace_id, setup)  # the MSP's tickets are on "Service Desk", not "Alerts"
    svc = TicketService(db)
    await svc.create(tech, subject="Defaulted", customer_id=setup.customer_id)
    async with db.write(Scope.workspace(workspace_id)) as s:
        conn = await s.get(PsaConnection, setup.connection_id)
        conn.settings = {**(conn.settings or {}), "default_board_id": "2", "default_type_id": "t9"}
    await svc.create(tech, subject="Set default", customer_id=setup.customer_id)
    first, second = await _ops(db, workspace_id)
    assert first.payload["board_external_id"] == BOARD and first.payload["type_external_id"] is None
    assert (second.payload["board_external_id"], second.payload["type_external_id"]) == ("2", "t9")
