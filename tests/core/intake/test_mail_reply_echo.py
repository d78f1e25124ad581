"""A customer's e-mail reply to their ticket is their reply: written word for word (no "E-mail from …:" put in
front of what the customer and the PSA's portal read), attributed to their contact, and never e-mailed back to
them by the PSA (they wrote it), as a customer's chat reply is (TicketService.contact_reply)."""

from __future__ import annotations

from sqlmodel import select

from core.intake.mail import MailIntake
from core.outbox.ops import OpKind
from core.tickets import TicketService
from store.db import Scope
from store.tables import Contact, OutboxOp, Ticket
from tests.core.intake.test_mail import message
from tests.factories import psa_backed


async def test_an_e_mail_reply_is_the_contacts_own_reply_and_is_not_e_mailed_back(db, workspace_id):
    setup = await psa_backed(db, workspace_id)
    async with db.write(Scope.workspace(workspace_id)) as s:
        s.add(Contact(workspace_id=workspace_id, customer_id=setup.customer_id, connection_id=setup.connection_id,
                      external_id="900", name="Ann Lee", email="ann@acme.example"))
    mail = MailIntake(db, tickets=TicketService(db))
    assert (await mail.ingest(workspace_id, message())).outcome == "created"
    reply = message(subject="RE: Printer on 2nd floor jams", mid="<m4@acme.example>",
                    body="Still broken after the restart.", In_Reply_To="<m1@acme.example>")
    assert (await mail.ingest(workspace_id, reply)).outcome == "replied"
    async with db.read(Scope.workspace(workspace_id)) as s:
        [ticket] = (await s.exec(select(Ticket))).all()
        [note] = (await s.exec(select(OutboxOp).where(OutboxOp.kind == OpKind.ADD_NOTE.value,
                                                      OutboxOp.ticket_id == ticket.id))).all()
    assert note.payload["text"] == "Still broken after the restart."
    assert note.payload["visibility"] == "public" and note.payload["email_contact"] is False
    assert note.payload["author_contact_external_id"] == "900"


async def test_an_e_mail_reply_moves_a_ticket_waiting_on_the_customer_back_to_in_progress(db, workspace_id):
    """As the PSA does when the customer answers: the reply, then the status change, both through the outbox."""
    from store.enums import Stage

    setup = await psa_backed(db, workspace_id)
    async with db.write(Scope.workspace(workspace_id)) as s:
        s.add(Contact(workspace_id=workspace_id, customer_id=setup.customer_id, connection_id=setup.connection_id,
                      external_id="900", name="Ann Lee", email="ann@acme.example"))
    mail = MailIntake(db, tickets=TicketService(db))
    assert (await mail.ingest(workspace_id, message())).outcome == "created"
    async with db.write(Scope.workspace(workspace_id)) as s:
        [ticket] = (await s.exec(select(Ticket))).all()
        ticket.stage = Stage.WAITING.value
    reply = message(subject="RE: Printer on 2nd floor jams", mid="<m7@acme.example>",
                    body="Here is the photo you asked for.", In_Reply_To="<m1@acme.example>")
    assert (await mail.ingest(workspace_id, reply)).outcome == "replied"
    async with db.read(Scope.workspace(workspace_id)) as s:
        row = (await s.exec(select(Ticket))).one()
        kinds = [o.kind for o in (await s.exec(select(OutboxOp).where(OutboxOp.ticket_id == row.id)
                                               .order_by(OutboxOp.id))).all()]
    assert row.stage == Stage.IN_PROGRESS.value
    assert kinds[-2:] == [OpKind.ADD_NOTE.value, OpKind.UPDATE_TICKET.value]
