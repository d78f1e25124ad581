"""The form header in one one-hop read (issue 20 item 4) is the header the full ticket read gives, and refuses
what it refuses: another workspace's ticket, another customer's ticket in a customer channel, unknown refs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.context import Actor
from core.errors import NotFound
from core.ticket_lookup import load_header
from core.tickets import TicketService
from store.db import Database, Scope
from store.tables import Customer, Ticket


async def _ticket(db: Database, ws: int, ident: str, number: int, assignee: int | None = None) -> tuple[int, int]:
    async with db.write(Scope.workspace(ws)) as s:
        c = Customer(workspace_id=ws, identifier=ident, name=f"{ident} Corp")
        s.add(c)
        await s.flush()
        t = Ticket(workspace_id=ws, number=number, subject=f"{ident} VPN down", priority="high", stage="in_progress",
                   psa_status_name="Working", customer_id=c.id, assignee_member_id=assignee, board_external_id="7",
                   external_id=str(number))
        s.add(t)
        await s.flush()
        assert c.id is not None and t.id is not None
        return t.id, c.id


async def test_header_matches_the_full_read_and_keeps_every_refusal(db: Database, tech: Actor, other_workspace_id: int):
    ticket_id, customer_id = await _ticket(db, tech.workspace_id, "ACME", 1042, assignee=tech.member_id)
    other_id, _ = await _ticket(db, other_workspace_id, "GLOBEX", 1043)
    service = TicketService(db)
    full = await service.get(tech, 1042)
    for ref in (1042, "#1042", f"id:{ticket_id}"):
        header = await load_header(db, tech, ref)
        assert header is not None
        assert header.summary == full.summary
        assert header.summary.customer_name == "ACME Corp" and header.summary.assignee_name == "Ana Tech"
        assert header.board_external_id == "7"
    with pytest.raises(NotFound, match="#1043"):  # the other workspace's number
        await load_header(db, tech, 1043)
    with pytest.raises(NotFound, match=f"id:{other_id}"):  # the other workspace's id
        await load_header(db, tech, f"id:{other_id}")
    with pytest.raises(NotFound, match="#2147483648"):
        await load_header(db, tech, 2**31)
    # In another customer's channel the ticket does not exist; in its own it does.
    elsewhere = replace(tech, customer_scope_id=customer_id + 1000)
    with pytest.raises(NotFound, match="#1042"):
        await load_header(db, elsewhere, 1042)
    with pytest.raises(NotFound):
        await service.header(elsewhere, 1042)
    own = await load_header(db, replace(tech, customer_scope_id=customer_id), 1042)
    assert own is not None and own.summary.id == ticket_id
    assert await load_header(db, tech, "cw-1042") is None  # PSA names go the long way (TicketService.header)
