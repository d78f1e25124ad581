"""E-mail intake: one raw message at a time (from any mailbox reader) becomes a ticket, a reply on its
ticket, triage, or nothing (noise), exactly once per Message-ID.

A reply joins its ticket by In-Reply-To/References against the Message-IDs taken before, then by a
`[DB-123]` subject token or a plus-addressed recipient (`support+db-123@…`) when the sender belongs to that
ticket's customer. A new message goes to the
sender's contact and customer (by address, then by a domain only one customer's contacts use); an
unknown sender waits in triage with the raw message (never dropped), and so does a new message from a sender who
opened `mail_tickets_per_sender_per_hour` tickets (workspace option, default 50, 0: no limit) in the last
hour (a loop or a flood: a technician decides; an RMM mailing its alerts may need more, or 0). Attachments over the ticket's cap are
refused with a note on the ticket saying so. A message whose processing was interrupted is taken again
after LEASE by the next poll; one that finished is never processed twice, except that a technician may take
a message waiting in triage again from its kept raw bytes (`replay`, `deskbridge intake mail replay`), or assign
or discard it (`core/intake/mail_triage.py`, the admin page "Mail triage").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.admin_audit import Who, record_change
from core.context import Actor
from core.errors import Conflict, DeskbridgeError, InvalidInput, NotFound
from core.intake.mailparse import Mail, clean_subject, parse, ticket_token
from core.tickets import TicketService, Within, visible
from store.db import Database, Scope
from store.enums import EntryKind, Origin
from store.sql import dialect_insert
from store.tables import Contact, MailReceipt, Ticket, TimelineEntry, Workspace
from store.types import utcnow

MAX_RAW_BYTES = 512 * 1024
SENDER_LIMIT_OPTION, SENDER_LIMIT = "mail_tickets_per_sender_per_hour", 50
LEASE = timedelta(minutes=5)
UNKNOWN_SENDER = "unknown sender"  # the reasons mail waits in triage (MailTriage tells them apart)
OVER_LIMIT = "over {limit} new tickets from this sender within an hour"
# Said on a receipt once its words are on a ticket, before it is settled: a mail interrupted after that (the process
# died) and taken again is settled with that ticket, never written a second time.
# "noted": an assignment's internal note naming an outsider (settled "replied"; its files stay internal).
WRITTEN = {"created": "its ticket was made, then it was interrupted", "replied": "its reply was added, then it was interrupted",
           "noted": "its words were added as an internal note, then it was interrupted"}


@dataclass(frozen=True, slots=True)
class MailOutcome:
    message_id: str
    outcome: str  # created, replied, ignored, triage, duplicate, busy
    ticket_id: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Waiting:
    """An e-mail in triage (its raw message kept, `MailIntake.replay` takes it again)."""

    id: int
    sender: str
    subject: str
    reason: str | None
    received_at: datetime


class MailIntake:
    def __init__(self, db: Database, *, tickets: TicketService, clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.tickets, self._clock = db, tickets, clock

    async def ingest(self, workspace_id: int, raw: bytes, *, own_addresses: frozenset[str] = frozenset()) -> MailOutcome:
        """Take one raw message (see module doc); safe to call again with the same message."""
        mail = parse(raw, own_addresses=own_addresses)
        claimed = await self._claim(workspace_id, mail, raw)
        if claimed is not None:
            return claimed
        return await self._take(workspace_id, mail)

    async def triage(self, workspace_id: int, limit: int = 50) -> list[Waiting]:
        """E-mail waiting in triage, newest first (`deskbridge intake mail triage`)."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(MailReceipt).where(MailReceipt.outcome == "triage")
                                       .order_by(col(MailReceipt.id).desc()).limit(limit))).all()
        return [Waiting(int(r.id), r.sender, r.subject, r.reason, r.received_at) for r in rows]  # type: ignore[arg-type]

    def now(self) -> datetime:
        return self._clock()

    async def replay(self, workspace_id: int, receipt_id: int, *, own_addresses: frozenset[str] = frozenset(),
                     actor: Who = None, anyway: bool = False) -> MailOutcome:
        """Take a message waiting in triage, or stuck mid-processing for LEASE (the process died), again from its
        kept raw bytes, as if it had just arrived (after its sender was added as a contact, say): parsed afresh, and a
        ticket, a reply, or triage again (audited). Its words already on a ticket are never written twice (WRITTEN).
        `anyway`: an automatic message (ignored) a technician says a person wrote, taken as one."""
        accept = ("ignored",) if anyway else ("triage", "processing")
        raw, _ = await self.hold(workspace_id, receipt_id, actor=actor,
                                 action="intake.mail.take_anyway" if anyway else "intake.mail.replay", accept=accept)
        return await self._take(workspace_id, parse(raw, own_addresses=own_addresses), anyway=anyway)

    async def hold(self, workspace_id: int, receipt_id: int, *, actor: Who, action: str,
                   accept: tuple[str, ...] = ("triage",)) -> tuple[bytes, str | None]:
        """Take a message out of triage (or another `accept`ed state; "processing" only once stuck for LEASE) for one
        technician's action (its raw bytes and the reason it waited), with the action's audit row; meanwhile it is
        "processing", so a second action on it is refused."""
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            row = await session.get(MailReceipt, receipt_id)
            if row is None:
                raise NotFound(f"There is no e-mail {receipt_id}.",
                               hint="`deskbridge intake mail triage` or the admin page Mail triage lists the ones "
                                    "waiting.")
            stuck = row.outcome == "processing" and row.received_at <= self._clock() - LEASE
            if row.outcome not in accept or (row.outcome == "processing" and not stuck):
                raise _not_held(receipt_id, row, accept, stuck)
            if len(row.raw or b"") >= MAX_RAW_BYTES:
                raise InvalidInput(f"E-mail {receipt_id} was larger than the {MAX_RAW_BYTES // 1024} KB kept, so "
                                   "it cannot be read again whole.",
                                   hint="Ask the sender to send it again, or open the ticket by hand.")
            raw, reason = bytes(row.raw), row.reason
            row.outcome, row.received_at = "processing", self._clock()  # a second action meanwhile is refused
            record_change(session, actor, workspace_id, action,
                          {"mail": receipt_id, "sender": row.sender, "subject": row.subject})
        return raw, reason

    async def settle(self, workspace_id: int, receipt_id: int, outcome: str, ticket_id: int | None,
                     reason: str | None) -> None:
        """Where a held message ends (`hold`): a ticket, a reply, discarded, or back in triage."""
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            await session.execute(sa.update(MailReceipt).where(col(MailReceipt.id) == receipt_id)
                                  .values(outcome=outcome, ticket_id=ticket_id, reason=reason and reason[:200]))

    async def _take(self, workspace_id: int, mail: Mail, *, anyway: bool = False) -> MailOutcome:
        """A claimed message: noise, a reply, a new ticket, or triage (module doc). Once its words are on a ticket
        (WRITTEN) it ends there, whatever fails after, and an interrupted take is settled with that ticket."""
        if mail.noise and not anyway:
            return await self._finish(workspace_id, mail, "ignored", None, mail.noise)
        earlier = await self._written(workspace_id, mail)
        if earlier is not None:
            return await self._resume(workspace_id, mail, *earlier)
        written: tuple[str, int] | None = None
        try:
            ticket_id = await self._thread(workspace_id, mail)
            if ticket_id is not None:
                actor = await self.reply(workspace_id, mail, ticket_id, files=False)  # marked in its transaction
                written = "replied", ticket_id
                await self.attachments(actor, ticket_id, mail)
                return await self._finish(workspace_id, mail, "replied", ticket_id)
            contact_id, customer_id = await self.sender(workspace_id, mail.sender)
            if customer_id is None:
                return await self._finish(workspace_id, mail, "triage", None, UNKNOWN_SENDER)
            limit = await self._sender_limit(workspace_id)
            if limit and await self._created_within_hour(workspace_id, mail.sender) >= limit:
                return await self._finish(workspace_id, mail, "triage", None, OVER_LIMIT.format(limit=limit))
            actor = Actor(workspace_id=workspace_id, origin=Origin.EMAIL, display=f"email:{mail.sender}")
            detail = await self.tickets.create_within(
                actor, self.marker(mail, "created"), subject=subject_of(mail),
                description=mail.text, customer_id=customer_id, contact_id=contact_id)
            written = "created", detail.summary.id
            await self.attachments(actor, detail.summary.id, mail)
            return await self._finish(workspace_id, mail, "created", detail.summary.id)
        except DeskbridgeError as exc:
            if written is not None:  # its words are on the ticket: settled there, what failed after is said
                return await self._finish(workspace_id, mail, *written, f"then: {exc.message}"[:200])
            return await self._finish(workspace_id, mail, "triage", None, exc.message[:200])  # kept, never lost

    async def _resume(self, ws: int, mail: Mail, written: str, ticket_id: int) -> MailOutcome:
        """Its words are on `ticket_id` already (an earlier take died after them): settled there, with the files that
        did not reach the ticket yet (those on it are not attached twice), never the words a second time."""
        outcome = "replied" if written == "noted" else written
        said = f"{WRITTEN[written]}; taken again, nothing written twice"
        actor = Actor(workspace_id=ws, origin=Origin.EMAIL, display=f"email:{mail.sender}")
        try:
            await self.attachments(actor, ticket_id, mail, visibility="internal" if written == "noted" else "public",
                                   missing_only=True)
        except DeskbridgeError as exc:
            said = f"{said}; then: {exc.message}"
        return await self._finish(ws, mail, outcome, ticket_id, said[:200])

    def marker(self, mail: Mail, outcome: str) -> Within:
        """For `TicketService.create_within` / `comment(within=…)`: the mail's words are on this ticket (made, or
        replied to), recorded in the same transaction as they are written; still processing until settled, and taken
        again it is settled there (`_written`), so a death at any point never writes them twice."""
        async def mark(session: AsyncSession, ticket: Ticket) -> None:
            await session.execute(sa.update(MailReceipt).where(col(MailReceipt.workspace_id) == ticket.workspace_id,
                                                               col(MailReceipt.message_id) == mail.message_id)
                                  .values(ticket_id=ticket.id, reason=WRITTEN[outcome]))
        return mark

    async def _written(self, ws: int, mail: Mail) -> tuple[str, int] | None:
        """(what was written, ticket) when the mail's words are on a ticket already (WRITTEN), else None."""
        async with self.db.read(Scope.workspace(ws)) as session:
            row = (await session.exec(select(MailReceipt).where(MailReceipt.workspace_id == ws,
                                                                MailReceipt.message_id == mail.message_id))).first()
        if row is None or row.ticket_id is None:
            return None
        written = next((k for k, v in WRITTEN.items() if v == row.reason), "created")
        return written, int(row.ticket_id)

    async def _sender_limit(self, ws: int) -> int:
        async with self.db.read(Scope.workspace(ws)) as session:
            row = await session.get(Workspace, ws)
        value = (row.settings if row else {}).get(SENDER_LIMIT_OPTION, SENDER_LIMIT)
        return int(value) if isinstance(value, int) and value >= 0 else SENDER_LIMIT

    async def _created_within_hour(self, ws: int, sender: str) -> int:
        since = self._clock() - timedelta(hours=1)
        async with self.db.read(Scope.workspace(ws)) as session:
            return int((await session.exec(select(sa.func.count()).select_from(MailReceipt).where(
                col(MailReceipt.sender) == sender[:254], col(MailReceipt.outcome) == "created",
                col(MailReceipt.received_at) >= since))).one())

    async def _claim(self, ws: int, mail: Mail, raw: bytes) -> MailOutcome | None:
        """None when this call owns the message; else what to answer (duplicate, or busy elsewhere)."""
        now = self._clock()
        stmt = dialect_insert(self.db.dialect, MailReceipt).values(
            workspace_id=ws, message_id=mail.message_id, sender=mail.sender[:254], subject=mail.subject[:255],
            outcome="processing", raw=raw[:MAX_RAW_BYTES], received_at=now,
        ).on_conflict_do_nothing(index_elements=["workspace_id", "message_id"]).returning(MailReceipt.id)
        async with self.db.write(Scope.workspace(ws)) as session:
            if (await session.execute(stmt)).scalar_one_or_none() is not None:
                return None
            row = (await session.exec(select(MailReceipt).where(MailReceipt.message_id == mail.message_id))).one()
            if row.outcome != "processing":
                return MailOutcome(mail.message_id, "duplicate", row.ticket_id)
            if row.received_at > now - LEASE:
                return MailOutcome(mail.message_id, "busy")
            row.received_at = now  # the earlier attempt stopped half way: take it over
            return None

    async def _finish(self, ws: int, mail: Mail, outcome: str, ticket_id: int | None,
                      reason: str | None = None) -> MailOutcome:
        async with self.db.write(Scope.workspace(ws)) as session:
            await session.execute(sa.update(MailReceipt).where(MailReceipt.message_id == mail.message_id)  # type: ignore[arg-type]
                                  .values(outcome=outcome, ticket_id=ticket_id, reason=reason))
        return MailOutcome(mail.message_id, outcome, ticket_id, reason)

    async def _thread(self, ws: int, mail: Mail) -> int | None:
        async with self.db.read(Scope.workspace(ws)) as session:
            if mail.references:
                hit = (await session.exec(select(col(MailReceipt.ticket_id)).where(
                    col(MailReceipt.message_id).in_(mail.references), col(MailReceipt.ticket_id).is_not(None))
                    .order_by(col(MailReceipt.id).desc()).limit(1))).first()
                if hit:
                    return int(hit)
            number = ticket_token(mail.subject) or mail.plus_token
            if number is None:
                return None
            ticket = (await session.exec(select(Ticket).where(Ticket.number == number))).first()
        if ticket is None:
            return None
        _, customer_id = await self.sender(ws, mail.sender)
        return ticket.id if customer_id is not None and customer_id == ticket.customer_id else None

    async def reply(self, ws: int, mail: Mail, ticket_id: int, *, files: bool = True) -> Actor:
        """The sender's reply on their ticket (a public note in their name), and its files unless `files` is off;
        returns the sender as the actor that wrote it."""
        async with self.db.read(Scope.workspace(ws)) as session:
            ticket = await session.get(Ticket, ticket_id)
        actor = Actor(workspace_id=ws, origin=Origin.EMAIL, display=f"email:{mail.sender}", is_member=False,
                      customer_scope_id=ticket.customer_id if ticket else None)
        text = mail.text or "(The reply had no new text above the quoted message.)"
        # The customer's own reply: word for word, attributed to their contact, not e-mailed back to them; the mail
        # records it in the same transaction.
        await self.tickets.contact_reply(actor, f"id:{ticket_id}", text, contact_email=mail.sender,
                                         within=self.marker(mail, "replied"))
        if files:
            await self.attachments(actor, ticket_id, mail)
        return actor

    async def attachments(self, actor: Actor, ticket_id: int, mail: Mail, *, visibility: str = "public",
                          missing_only: bool = False) -> None:
        """The mail's files on the ticket, those over the PSA's cap named in an internal note instead.
        `missing_only` (a take resumed after a death): files already on the ticket, and the note, are not added again."""
        if not mail.attachments:
            return
        system = Actor(workspace_id=actor.workspace_id, origin=Origin.EMAIL, display=actor.display)
        limit = await self.tickets.attachment_limit(system, f"id:{ticket_id}")
        kept, notes = await self._present(actor.workspace_id, ticket_id) if missing_only else (set(), set())
        refused = []
        for att in mail.attachments:  # one file that cannot be kept never costs the message or the other files
            name = att.filename if visible(att.filename) else "attachment"
            if hashlib.sha256(att.content).hexdigest() in kept:  # on the ticket already (same bytes)
                continue
            if not att.content:
                refused.append(f"{name} (empty)")
                continue
            if limit is None or len(att.content) > limit:
                cap = "this PSA takes no files" if limit is None else f"the limit is {limit:,} bytes"
                refused.append(f"{name} ({len(att.content):,} bytes; {cap})")
                continue
            try:
                await self.tickets.attach(system, f"id:{ticket_id}", filename=name, content=att.content,
                                          content_type=att.content_type, visibility=visibility)
            except InvalidInput as exc:
                refused.append(f"{name} ({exc.message})")
        note = (f"Not kept from the e-mail of {mail.sender}: " + ", ".join(refused)
                + ". Ask the sender to share them another way.")
        if refused and note not in notes:
            await self.tickets.comment(system, f"id:{ticket_id}", note, visibility="internal")

    async def _present(self, ws: int, ticket_id: int) -> tuple[set[str], set[str]]:
        """The ticket's files (sha256) and internal notes: what a resumed take must not add again."""
        async with self.db.read(Scope.workspace(ws)) as session:
            rows = (await session.exec(select(TimelineEntry).where(
                TimelineEntry.ticket_id == ticket_id,
                col(TimelineEntry.kind).in_((EntryKind.ATTACHMENT.value, EntryKind.NOTE_INTERNAL.value))))).all()
        files = {str(r.data.get("sha256")) for r in rows if r.kind == EntryKind.ATTACHMENT.value and r.data}
        return files, {r.body for r in rows if r.kind == EntryKind.NOTE_INTERNAL.value}

    async def sender(self, ws: int, sender: str) -> tuple[int | None, int | None]:
        """(contact id, customer id) by exact address, else the customer by a domain only it uses."""
        if "@" not in sender:
            return None, None
        async with self.db.read(Scope.workspace(ws)) as session:
            contact = (await session.exec(select(Contact).where(sa.func.lower(Contact.email) == sender))).first()
            if contact is not None and contact.customer_id is not None:
                return contact.id, contact.customer_id
            domain = sender.rsplit("@", 1)[1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            same_domain = sa.func.lower(Contact.email).like(f"%@{domain}", escape="\\")
            rows = [c for c in (await session.exec(select(col(Contact.customer_id)).where(
                same_domain, col(Contact.customer_id).is_not(None)).distinct().limit(2))).all() if c is not None]
        return (None, int(rows[0])) if len(rows) == 1 else (None, None)


def _not_held(receipt_id: int, row: MailReceipt, accept: tuple[str, ...], stuck: bool) -> Conflict:
    """Why this action may not take the mail, and what may."""
    if accept == ("ignored",):  # take it anyway: for automatic mail only
        if row.outcome in ("triage",) or stuck:
            return Conflict(f"E-mail {receipt_id} is not automatic mail: it waits "
                            f"{'in triage' if row.outcome == 'triage' else 'stuck mid-processing'}.",
                            hint=f"Take it again without 'anyway': `deskbridge intake mail replay {receipt_id}`, or "
                                 "Take it again on its admin page.")
        state = "being taken right now" if row.outcome == "processing" else row.outcome
        return Conflict(f"E-mail {receipt_id} is not automatic mail waiting to be taken anyway (it was {state}).",
                        hint="Taking it anyway is only for mail the intake ignored as automatic; open it to see what "
                             "became of it.")
    if row.outcome == "ignored" and "triage" in accept:
        return Conflict(f"E-mail {receipt_id} was taken for an automatic message ({row.reason or 'automatic'}), so "
                        "it was ignored.",
                        hint=f"If a person wrote it, take it anyway: `deskbridge intake mail replay {receipt_id} "
                             "--anyway`, or Take it anyway on its admin page.")
    state = "being taken right now" if row.outcome == "processing" else row.outcome
    return Conflict(f"E-mail {receipt_id} is not waiting in triage (it was {state}).",
                    hint="Only mail in triage (or stuck mid-processing for 5 minutes) is taken again; the "
                         "rest was taken once already. Open it to see what became of it.")


def subject_of(mail: Mail) -> str:
    """The ticket's subject: the mail's without reply prefixes, or who sent it when it shows nothing."""
    subject = clean_subject(mail.subject)[:255]
    return subject if visible(subject) else f"E-mail from {mail.sender}"[:255]
