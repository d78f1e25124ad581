"""Mail waiting in triage, for a technician: list it (paged, by why it waits and by words), read one safely, and
settle it: take it again (`MailIntake.replay`), assign it to a customer (a new ticket) or to a ticket, or discard it.

Every action is one audit row ("intake.mail.replay|assign|discard") written with the step that takes the mail out
of triage, so two technicians acting at once get one action and a Conflict. An assignment that fails before
anything was written puts the mail back in triage with its reason: a customer's words are never dropped.

Assigning to a ticket: a sender who is a contact of the ticket's customer writes their reply (a public note in
their name, as a threaded reply would); anyone else's words go on the ticket as an internal note naming them, so
nothing they wrote is shown to the customer as if the MSP wrote it. Assigning to a customer opens a ticket for it
(under the sender's contact when they are one of its contacts; otherwise an internal note asks to confirm who they
are). Once the words are on a ticket the mail is settled there: a failure after that (a file the PSA refused) is
recorded with it, never undone or done twice. Discarded mail keeps its raw bytes and says who discarded it and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select

from core.admin_audit import record_change
from core.context import Actor
from core.errors import Conflict, DeskbridgeError, InvalidInput, NotFound
from core.intake.mail import (
    LEASE,
    MAX_RAW_BYTES,
    UNKNOWN_SENDER,
    MailIntake,
    MailOutcome,
    Waiting,
    subject_of,
)
from core.intake.mailparse import Mail, MailView, parse, view
from store.db import Database, Scope
from store.enums import Origin
from store.tables import Customer, MailReceipt, Ticket

WHY = {"unknown": "unknown sender", "limit": "over the sender's hourly limit", "refused": "refused when taken",
       "stuck": "stuck mid-processing (5 minutes or more)", "automatic": "automatic (ignored), read-only"}
# Not waiting in triage, listed under their own filter: taken and never settled (the process died), and automatic
# mail the intake ignored (auto-replies, delivery reports), which a technician may take anyway if a person wrote it.
OUTCOME_OF = {"stuck": "processing", "automatic": "ignored"}
_OVER = "over %within an hour"
COUNT_CAP = 1000  # MailIntake's OVER_LIMIT as a LIKE pattern


def why_of(reason: str | None) -> str:
    """Which WHY a triage reason is."""
    if reason == UNKNOWN_SENDER:
        return "unknown"
    if reason and reason.startswith("over ") and reason.endswith("within an hour"):
        return "limit"
    return "refused"


def _why_clause(kind: str) -> sa.ColumnElement[bool]:
    unknown = col(MailReceipt.reason) == UNKNOWN_SENDER
    limit = col(MailReceipt.reason).like(_OVER)
    if kind == "unknown":
        return unknown
    if kind == "limit":
        return limit
    return sa.or_(col(MailReceipt.reason).is_(None), sa.and_(sa.not_(unknown), sa.not_(limit)))


def _like(text: str) -> str:
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True, slots=True)
class KeptMail:
    """One kept e-mail as the detail page shows it."""

    id: int
    sender: str
    subject: str
    outcome: str  # triage, created, replied, discarded, ignored, processing
    reason: str | None
    received_at: datetime
    ticket_number: int | None
    view: MailView
    cut: bool  # larger than the bytes kept: cannot be taken again whole
    stuck: bool = False  # taken LEASE ago or more and never settled: it may be taken again

    @property
    def why(self) -> str:
        return why_of(self.reason)

    @property
    def waiting(self) -> bool:
        return self.outcome == "triage"

    @property
    def automatic(self) -> bool:
        return self.outcome == "ignored"


@dataclass(slots=True)
class Written:
    """How far an assignment got: the ticket its words are on (None: nothing written yet), and what failed after."""

    ticket_id: int | None = None
    problem: str | None = None


class MailTriage:
    def __init__(self, db: Database, *, intake: MailIntake) -> None:
        self.db, self.intake = db, intake

    async def page(self, workspace_id: int, *, why: str = "", text: str = "", after: int | None = None,
                   limit: int = 50) -> tuple[list[Waiting], int | None]:
        """Mail in triage, newest first, `why` one of WHY (or all in triage; "stuck" and "automatic" list mail not
        in triage, OUTCOME_OF), `text` in the sender or subject; and the id to page on from (None: no more)."""
        if why and why not in WHY:
            raise InvalidInput(f"'{why}' is not a reason mail waits.", hint="Use " + ", ".join(WHY) + ".")
        stmt = sa.select(col(MailReceipt.id), col(MailReceipt.sender), col(MailReceipt.subject),  # not the raw bytes
                         col(MailReceipt.reason), col(MailReceipt.received_at)).where(
            col(MailReceipt.outcome) == OUTCOME_OF.get(why, "triage"))
        if why == "stuck":  # taken at received_at and never settled since
            stmt = stmt.where(col(MailReceipt.received_at) <= self.intake.now() - LEASE)
        elif why and why not in OUTCOME_OF:
            stmt = stmt.where(_why_clause(why))
        if text.strip():
            pattern = _like(text.strip()[:200])
            stmt = stmt.where(sa.or_(sa.func.lower(MailReceipt.sender).like(pattern, escape="\\"),
                                     sa.func.lower(MailReceipt.subject).like(pattern, escape="\\")))
        if after is not None:
            stmt = stmt.where(col(MailReceipt.id) < after)
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.execute(stmt.order_by(col(MailReceipt.id).desc()).limit(limit + 1))).all()
        items = [Waiting(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows[:limit]]
        return items, (items[-1].id if len(rows) > limit else None)

    async def waiting(self, workspace_id: int, cap: int = COUNT_CAP) -> int:
        """How many mails wait in triage, counted up to `cap` (the overview shows "1000+" past it)."""
        inner = sa.select(col(MailReceipt.id)).where(col(MailReceipt.workspace_id) == workspace_id,
                                                     col(MailReceipt.outcome) == "triage").limit(cap).subquery()
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            return int((await session.execute(sa.select(sa.func.count()).select_from(inner))).scalar_one())

    async def get(self, workspace_id: int, receipt_id: int) -> KeptMail:
        """One kept e-mail, whatever became of it, with its message for reading (MailView: never active HTML)."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            row = await session.get(MailReceipt, receipt_id)
            if row is None:
                raise NotFound(f"There is no e-mail {receipt_id}.", hint="Mail triage lists the ones waiting.")
            number = (await session.exec(select(Ticket.number).where(Ticket.id == row.ticket_id))).first() \
                if row.ticket_id is not None else None
        raw = bytes(row.raw or b"")
        stuck = row.outcome == "processing" and row.received_at <= self.intake.now() - LEASE
        return KeptMail(receipt_id, row.sender, row.subject, row.outcome, row.reason, row.received_at, number,
                        view(raw), len(raw) >= MAX_RAW_BYTES, stuck)

    async def discard(self, actor: Actor, receipt_id: int, reason: str) -> None:
        """Nothing is done with this mail (spam, sent to the wrong address); its raw bytes stay kept."""
        why = " ".join(reason.split())[:150] or "no reason given"
        async with self.db.write(actor.scope) as session:
            row = await session.get(MailReceipt, receipt_id)
            self._waiting(row, receipt_id)
            assert row is not None
            row.outcome, row.reason = "discarded", f"discarded by {actor.display}: {why}"[:200]
            record_change(session, actor, actor.workspace_id, "intake.mail.discard",
                          {"mail": receipt_id, "sender": row.sender, "reason": why})

    async def assign(self, actor: Actor, receipt_id: int, *, customer: int | None = None,
                     ticket: str | None = None) -> MailOutcome:
        """A new ticket for `customer` (an id), or the mail added to `ticket` (a reference): see module doc."""
        ws = actor.workspace_id
        if (customer is None) == (not ticket):
            raise InvalidInput("Assign the e-mail to a customer or to a ticket (one of them).",
                               hint="Pick a customer to open a new ticket, or give the number of an open ticket.")
        target = await self.intake.tickets.get(actor, ticket) if ticket else None  # NotFound before anything
        if customer is not None:
            async with self.db.read(actor.scope) as session:
                if await session.get(Customer, customer) is None:
                    raise NotFound(f"There is no customer {customer}.", hint="Pick one from the list.")
        raw, reason = await self.intake.hold(ws, receipt_id, actor=actor, action="intake.mail.assign")
        mail, written = parse(raw), Written()
        try:
            if target is not None:
                outcome = "replied"
                await self._to_ticket(actor, mail, target.summary.id, target.summary.customer_id, written)
            else:
                assert customer is not None
                outcome = "created"
                await self._to_customer(actor, mail, customer, written)
        except DeskbridgeError as exc:
            if written.ticket_id is None:  # nothing written: it waits again, as it was
                await self.intake.settle(ws, receipt_id, "triage", None, reason)
                raise
            written.problem = exc.message  # the words are on the ticket; what followed them failed: said, not undone
        said = f"assigned by {actor.display}" + (f"; then: {written.problem}" if written.problem else "")
        await self.intake.settle(ws, receipt_id, outcome, written.ticket_id, said)
        return MailOutcome(mail.message_id, outcome, written.ticket_id, written.problem)

    async def _to_customer(self, admin: Actor, mail: Mail, customer_id: int, written: Written) -> None:
        ws = admin.workspace_id
        contact_id, of = await self.intake.sender(ws, mail.sender)
        known = contact_id is not None and of == customer_id
        sender = Actor(workspace_id=ws, origin=Origin.EMAIL, display=f"email:{mail.sender}")
        marker = self.intake.marker(mail, "created")
        # an outsider's "confirm who they are" note, the ticket and the mail's record: one transaction
        confirm = None if known else self.intake.tickets.note_within(
            Actor.system(ws), f"Opened from an e-mail of {mail.sender}, who is not a contact of this customer; "
            f"{admin.display} assigned it here. Confirm who they are and set the contact.", then=marker)
        detail = await self.intake.tickets.create_within(
            sender, marker if confirm is None else confirm, subject=subject_of(mail), description=mail.text,
            customer_id=customer_id, contact_id=contact_id if known else None)
        written.ticket_id = ticket_id = detail.summary.id
        if confirm is not None:
            await confirm.announce()
        await self.intake.attachments(sender, ticket_id, mail)

    async def _to_ticket(self, admin: Actor, mail: Mail, ticket_id: int, customer_id: int | None,
                         written: Written) -> None:
        ws = admin.workspace_id
        contact_id, of = await self.intake.sender(ws, mail.sender)
        if contact_id is not None and customer_id is not None and of == customer_id:
            await self.intake.reply(ws, mail, ticket_id, files=False)  # their own reply, as if it had been threaded
            written.ticket_id = ticket_id
            await self.intake.attachments(Actor(workspace_id=ws, origin=Origin.EMAIL, display=f"email:{mail.sender}",
                                                is_member=False, customer_scope_id=customer_id), ticket_id, mail)
            return
        system = Actor(workspace_id=ws, origin=Origin.EMAIL, display=f"email:{mail.sender}")
        words = mail.text or "(The e-mail had no text.)"
        await self.intake.tickets.comment(
            system, f"id:{ticket_id}", f"E-mail from {mail.sender}, who is not a contact of this ticket's customer "
            f"(added by {admin.display}).\nSubject: {mail.subject}\n\n{words}", visibility="internal",
            within=self.intake.marker(mail, "noted"))  # the mail records it in the note's transaction
        written.ticket_id = ticket_id
        await self.intake.attachments(system, ticket_id, mail, visibility="internal")

    @staticmethod
    def _waiting(row: MailReceipt | None, receipt_id: int) -> None:
        if row is None:
            raise NotFound(f"There is no e-mail {receipt_id}.", hint="Mail triage lists the ones waiting.")
        if row.outcome != "triage":
            raise Conflict(f"E-mail {receipt_id} is not waiting in triage (it was {row.outcome}).",
                           hint="Only mail in triage can be discarded; open it to see what became of it.")
