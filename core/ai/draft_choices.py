"""Reply drafts in chat: offered to one technician, then Approve / Edit / Discard, each choice logged.

A draft is stored exactly as it is shown (`AiDraft.text`, without its label). Approve sends that text, and
nothing else, as the technician's public reply through TicketService.comment (the same write path as the
reply form: one outbox op, audited). A draft is decided once: the choice is claimed with a conditional
update before anything is written, so a double click or a retried request never sends a reply twice; if the
reply is refused (say the ticket is closed), the draft goes back to "offered" and the refusal is shown.
Edit opens the normal reply form with the draft's text in it; what is sent is what the technician submits.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from core.ai.service import AiService
from core.context import Actor
from core.errors import Conflict, NotFound, PermissionDenied
from core.ticket_lookup import load_ticket
from core.tickets import TicketService
from core.views import AiDraftView, TicketDetail, ViewAction
from store.db import Database, Scope
from store.sql import table_of
from store.tables import AiDraft, Contact
from store.types import utcnow

OFFERED = "offered"


def _technician(actor: Actor) -> None:
    if not actor.is_member or actor.customer_scope_id is not None:
        raise PermissionDenied("Reply drafts are for technicians.", hint="Ask your MSP's technician.")


class DraftChoices:
    def __init__(self, db: Database, *, ai: AiService, tickets: TicketService) -> None:
        self.db = db
        self.ai = ai
        self.tickets = tickets

    async def offer(self, actor: Actor, ref: int | str) -> AiDraftView:
        """Make a draft for the ticket (template, or the LLM where allowed) and keep it as shown."""
        _technician(actor)
        async with self.db.read(actor.scope) as session:
            ticket = await load_ticket(session, actor, ref)
            contact = await session.get(Contact, ticket.contact_id) if ticket.contact_id else None
        requester = contact.name.split()[0] if contact and contact.name else None
        draft = await self.ai.draft(actor, ticket.id, requester=requester)  # type: ignore[arg-type]
        async with self.db.write(actor.scope) as session:
            row = AiDraft(workspace_id=actor.workspace_id, ticket_id=ticket.id,  # type: ignore[arg-type]
                          member_id=actor.member_id, kind=draft.kind, text=draft.text)
            session.add(row)
            await session.flush()
            draft_id = row.id
        assert draft_id is not None
        label = draft.label + (f" ({draft.fallback_reason})" if draft.fallback_reason else "")
        value = str(draft_id)
        return AiDraftView(draft_id=draft_id, ticket_ref=f"id:{ticket.id}", text=draft.text, label=label, actions=(
            ViewAction(action="ai_draft_approve", label="Approve and send", value=value, style="primary"),
            ViewAction(action="ai_draft_edit", label="Edit", value=value),
            ViewAction(action="ai_draft_discard", label="Discard", value=value, style="danger")))

    async def _claim(self, actor: Actor, draft_id: int, status: str) -> AiDraft:
        """Decide a draft once: offered -> `status`, or Conflict saying what was decided before."""
        _technician(actor)
        t = table_of(AiDraft)
        async with self.db.write(actor.scope) as session:
            row = await session.get(AiDraft, draft_id)
            if row is None or row.workspace_id != actor.workspace_id:
                raise NotFound("That draft was not found.", hint="Ask for a new draft from the ticket's card.")
            res = await session.execute(
                sa.update(t).where(t.c.id == draft_id, t.c.workspace_id == actor.workspace_id, t.c.status == OFFERED)
                .values(status=status, decided_by=actor.display[:200], decided_at=utcnow()))
            if not res.rowcount:  # type: ignore[attr-defined]
                await session.refresh(row)
                raise Conflict(f"This draft was already {row.status} by {row.decided_by or 'someone'}; "
                               "nothing more was done.", hint="Ask for a new draft from the ticket's card.")
            return AiDraft(id=row.id, workspace_id=row.workspace_id, ticket_id=row.ticket_id, kind=row.kind,
                           text=row.text, status=status)

    async def _release(self, actor: Actor, draft_id: int) -> None:
        t = table_of(AiDraft)
        async with self.db.write(actor.scope) as session:
            await session.execute(sa.update(t).where(t.c.id == draft_id, t.c.workspace_id == actor.workspace_id)
                                  .values(status=OFFERED, decided_by=None, decided_at=None))

    async def approve(self, actor: Actor, draft_id: int) -> TicketDetail:
        """Send the draft, exactly as shown, as the technician's public reply (once)."""
        row = await self._claim(actor, draft_id, "approved")
        try:
            return await self.tickets.comment(actor, f"id:{row.ticket_id}", row.text, visibility="public")
        except BaseException:
            await self._release(actor, draft_id)
            raise

    async def edit(self, actor: Actor, draft_id: int) -> tuple[str, str]:
        """The draft goes into the reply form: (ticket ref, text to prefill)."""
        row = await self._claim(actor, draft_id, "edited")
        return f"id:{row.ticket_id}", row.text

    async def discard(self, actor: Actor, draft_id: int) -> str:
        """Record that the technician discarded the draft; returns the ticket ref."""
        row = await self._claim(actor, draft_id, "discarded")
        return f"id:{row.ticket_id}"

    async def counts(self, workspace_id: int, *, since: datetime | None = None) -> dict[str, int]:
        """Drafts by choice (the acceptance rate: approved / decided)."""
        t = table_of(AiDraft)
        query = sa.select(t.c.status, sa.func.count()).where(t.c.workspace_id == workspace_id).group_by(t.c.status)
        if since is not None:
            query = query.where(t.c.created_at >= since)
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            return {str(s): int(n) for s, n in (await session.execute(query)).all()}
