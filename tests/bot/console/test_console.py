"""The console surface, driven with scripted input: same commands and views as Slack, as text."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from sqlmodel import select

from bot.console.session import ConsoleSession
from bot.main import build
from bot.settings import Settings
from core.errors import NotFound
from store.crypto import generate_key
from store.db import Scope
from store.enums import OutboxStatus
from store.tables import OutboxOp, Ticket
from tests.factories import BOARD, psa_backed


class Script:
    def __init__(self, lines: Iterable[str]) -> None:
        self.lines = list(lines)
        self.prompts: list[str] = []

    async def __call__(self, prompt: str) -> str | None:
        self.prompts.append(prompt)
        return self.lines.pop(0) if self.lines else None


@pytest.fixture
async def container(db_url, tmp_path, workspace_id):
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k"))
    c.default_workspace_id = workspace_id
    yield c
    await c.aclose()


async def _seed(db, ws, setup):
    async with db.write(Scope.workspace(ws)) as s:
        for n, (subject, cust, prio) in enumerate([("VPN down", setup.customer_id, "high"),
                                                   ("Printer jammed", setup.other_customer_id, "low")], 1):
            s.add(Ticket(workspace_id=ws, number=5000 + n, external_id=str(5000 + n),
                         connection_id=setup.connection_id, customer_id=cust, subject=subject, priority=prio,
                         priority_rank=1 if prio == "high" else 3, stage="new", psa_status_id="10",
                         psa_status_name="New", board_external_id=BOARD, board_name="Service Desk", source="psa",
                         assignee_member_id=setup.member_id if n == 1 else None))


async def test_console_day(container, db, workspace_id):
    setup = await psa_backed(db, workspace_id)
    await _seed(db, workspace_id, setup)
    out: list[str] = []
    script = Script([
        "/tickets mine",          # queue: only Bob's ticket
        "1",                      # press row 1: open #5001
        "checked the VPN logs",   # thread message -> internal note
        "3",                      # Change status button
        "3",                      # pick option 3 of the board statuses
        "We restarted the VPN gateway.",  # public reply in the same submission
        "",                       # visibility default (public)
        "tickets custmer:ACME",   # typo -> suggestion
        "quit",
    ])
    session = ConsoleSession(container, read=script, write=out.append, as_email="bob@acme-msp.example")
    await session.run()
    text = "\n".join(out)
    assert "You are Bob Tech." in text
    assert "#5001" in text and "Printer jammed" not in text.split("#5001")[0]
    assert "Internal note: queued for the PSA" in text
    assert "[internal] Bob Tech (queued): checked the VPN logs" in text
    assert "Status → Waiting Customer Response with a public reply" in text
    assert "[PUBLIC] Bob Tech (queued): We restarted the VPN gateway." in text
    assert "Did you mean: customer:ACME" in text
    assert "1) New" in "\n".join(script.prompts)
    async with db.read(Scope.workspace(workspace_id)) as s:
        ops = (await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all()
    kinds = [(o.kind, o.payload.get("visibility") or o.payload.get("status_external_id")) for o in ops]
    assert kinds == [("add_note", "internal"), ("add_note", "public"), ("update_ticket", "12")]
    assert all(o.status == OutboxStatus.PENDING for o in ops)


async def test_console_default_deny_does_not_apply_but_customer_binding_scopes(container, db, workspace_id):
    setup = await psa_backed(db, workspace_id)
    await _seed(db, workspace_id, setup)
    out: list[str] = []
    script = Script(["/deskbridge bind customer GLOBEX", "/tickets", "/ticket 5001", "quit"])
    await ConsoleSession(container, read=script, write=out.append).run()
    text = "\n".join(out)
    assert "bound to customer Globex" in text
    assert "Printer jammed" in text and "VPN down" not in text
    assert "Ticket #5001 was not found." in text


async def test_console_new_ticket_form_requires_what_the_psa_requires(container, db, workspace_id):
    setup = await psa_backed(db, workspace_id)
    out: list[str] = []
    script = Script(["/ticket new", "Laptop will not boot", "", "1", "", "", "Screen stays black", "quit"])
    await ConsoleSession(container, read=script, write=out.append).run()
    text = "\n".join(out)
    assert "Customer is required." in text
    assert "Ticket: queued for the PSA" in text
    async with db.read(Scope.workspace(workspace_id)) as s:
        op = (await s.exec(select(OutboxOp))).one()
    assert op.kind == "create_ticket" and op.payload["summary"] == "Laptop will not boot"
    assert op.payload["company_external_id"] in ("250", "251") and op.payload["board_external_id"] == BOARD
    assert setup.connection_id == op.connection_id


async def test_console_picks_a_customer_by_search_past_100_customers(container, db, workspace_id):
    from tests.bot.slack.test_customer_picker import seed_customers

    setup = await psa_backed(db, workspace_id)
    await seed_customers(db, workspace_id, setup.connection_id)  # 150 fillers + named ones: too many to list
    out: list[str] = []
    script = Script(["/ticket new", "Laptop will not boot",
                     "",        # required
                     "zzz",     # nothing matches
                     "filler",  # 150 match: the first 10, and a note to narrow
                     "²",       # a digit int() refuses: searched as text, never a crash
                     "acm",     # search again
                     "9",       # not in the list of 5
                     "5",       # Pacman Games
                     "", "", "Screen stays black", "quit"])
    await ConsoleSession(container, read=script, write=out.append).run()
    text = "\n".join(out)
    prompts = "\n".join(script.prompts)
    assert "Customer — Type part of the customer's name or identifier. >" in prompts
    assert "   1) Acme Corp" not in prompts  # no numbered list of every customer
    assert "Customer is required." in text
    assert "No customer matches 'zzz'." in text and "No customer matches '²'." in text
    assert "10) Filler 009 (F009)" in text and "11) " not in text and "more match" in text
    acm = text.split("matches '²'")[1]
    assert [line.strip() for line in acm.splitlines() if ") " in line][:5] == [
        "1) Zeta Advanced Computing Machines (ACM)", "2) ACM Holdings (ACMH)", "3) Acme Corp (ACME)",
        "4) Acmeville Dental (DENT1)", "5) Pacman Games (PACMAN)"]
    assert "There is no 9 in the list" in text and "Customer: Pacman Games (PACMAN)" in text
    assert "Customer: pick 1-5, or type to search again >" in prompts
    assert "Ticket: queued for the PSA" in text
    async with db.read(Scope.workspace(workspace_id)) as s:
        op = (await s.exec(select(OutboxOp))).one()
    assert op.kind == "create_ticket" and op.payload["company_external_id"] == "80003"


async def test_console_search_can_be_cancelled_and_writes_nothing(container, db, workspace_id):
    from tests.bot.slack.test_customer_picker import seed_customers

    setup = await psa_backed(db, workspace_id)
    await seed_customers(db, workspace_id, setup.connection_id)
    out: list[str] = []
    await ConsoleSession(container, read=Script(["/ticket new", "Printer", "acm", "cancel", "quit"]),
                         write=out.append).run()
    assert "Cancelled." in "\n".join(out)
    async with db.read(Scope.workspace(workspace_id)) as s:
        assert (await s.exec(select(OutboxOp))).all() == []


async def test_console_refuses_an_unknown_as_email_instead_of_acting_as_someone_else(container, db, workspace_id):
    await psa_backed(db, workspace_id)
    out: list[str] = []
    session = ConsoleSession(container, read=Script(["quit"]), write=out.append, as_email="bob@acme-msp.exampel")
    with pytest.raises(NotFound) as err:
        await session.run()
    assert "bob@acme-msp.example" in (err.value.hint or "")  # the likely address is suggested
    assert not any("You are" in line for line in out)
