"""Two PSAs in one workspace (issue 17 item 10): colliding numbers never hide a ticket, and every ticket
has an unambiguous name (`cw-1002`) accepted wherever a ticket is named."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.base import PsaTicket, Ref
from core import ticket_refs
from core.chat import grammar
from core.errors import InvalidInput, NotFound
from core.queue import QueueFilter, QueueService
from core.sync.apply import SyncTarget, apply_batch
from core.ticket_lookup import load_ticket, parse_ticket_ref
from core.tickets import TicketService
from store.db import Scope
from store.tables import PsaConnection
from tests.factories import psa_backed

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _psa(ext: str, summary: str) -> PsaTicket:
    return PsaTicket(external_id=ext, summary=summary, company=Ref("250", "Acme Corp"), board=Ref("1", "Service Desk"),
                     status=Ref("10", "New"), priority=Ref("3", "Priority 3 - Medium"), created_at=NOW,
                     updated_at=NOW)


@pytest.fixture
async def two_psas(db, workspace_id):
    cw = await psa_backed(db, workspace_id, kind="connectwise")
    async with db.write(Scope.workspace(workspace_id)) as s:
        at = PsaConnection(workspace_id=workspace_id, kind="autotask", name="autotask-test")
        s.add(at)
        await s.flush()
        at_id = at.id
    ticket_refs.forget(workspace_id)
    for conn, tickets in ((cw.connection_id, [_psa("1001", "CW printer"), _psa("1002", "CW VPN")]),
                          (at_id, [_psa("1002", "AT mailbox"), _psa("1003", "AT laptop")])):
        await apply_batch(db, SyncTarget(workspace_id=workspace_id, connection_id=conn, board_scoped_statuses=True), tickets, {}, now=NOW, emit=False)
    yield cw.connection_id, at_id
    ticket_refs.forget(workspace_id)


async def test_a_colliding_number_never_hides_a_ticket(db, workspace_id, tech, two_psas):
    page = await QueueService(db).list(tech, QueueFilter(), limit=25)
    shown = {t.subject: (t.display_number, t.ref) for t in page.items}
    assert shown == {"CW printer": ("cw-1001", "1001"), "CW VPN": ("cw-1002", "1002"),
                     "AT mailbox": ("at-1002", "at-1002"),  # its number is ConnectWise's: named by its PSA name
                     "AT laptop": ("at-1003", "1003")}


@pytest.mark.parametrize(("name", "subject"), [("cw-1002", "CW VPN"), ("at-1002", "AT mailbox"), ("AT-1002", "AT mailbox"),
                                               ("#1002", "CW VPN"), ("1003", "AT laptop")])
async def test_every_name_finds_its_ticket(db, workspace_id, tech, two_psas, name, subject):
    async with db.read(Scope.workspace(workspace_id)) as s:
        assert (await load_ticket(s, tech, name)).subject == subject
    detail = await TicketService(db).get(tech, name)  # the same lookup serves chat, console and REST
    assert detail.summary.subject == subject and detail.summary.psa_name == expected_name(subject)


def expected_name(subject: str) -> str:
    return {"CW VPN": "cw-1002", "AT mailbox": "at-1002", "AT laptop": "at-1003"}[subject]


async def test_an_unknown_prefix_names_the_connections_there_are(db, workspace_id, tech, two_psas):
    async with db.read(Scope.workspace(workspace_id)) as s:
        with pytest.raises(NotFound) as caught:
            await load_ticket(s, tech, "halo-1002")
    assert "halo" in caught.value.message and caught.value.hint == "Connections here: at, cw."


async def test_one_psa_shows_plain_numbers(db, workspace_id, tech):
    setup = await psa_backed(db, workspace_id, kind="connectwise")
    ticket_refs.forget(workspace_id)
    await apply_batch(db, SyncTarget(workspace_id=workspace_id, connection_id=setup.connection_id, board_scoped_statuses=True), [_psa("1002", "VPN")], {}, now=NOW,
                      emit=False)
    (row,) = (await QueueService(db).list(tech, QueueFilter(), limit=5)).items
    assert (row.display_number, row.ref, row.psa_name) == ("#1002", "1002", None)
    async with db.read(Scope.workspace(workspace_id)) as s:
        assert (await load_ticket(s, tech, "cw-1002")).subject == "VPN"  # still accepted


def test_names_parse_and_chat_accepts_them():
    assert str(parse_ticket_ref("cw-1002")) == "cw-1002" and parse_ticket_ref("id:7").id == 7
    assert parse_ticket_ref("#1042").number == 1042
    assert grammar.parse("/ticket", "at-1002") == grammar.ShowTicket("at-1002")
    with pytest.raises(InvalidInput):
        parse_ticket_ref("cw-")
