"""The runner (core/chat/runner.py), driven through the console surface: every command of the grammar goes
through the one dispatch table, and each answers the same on every surface."""

from __future__ import annotations

import typing

import pytest
from sqlmodel import select

from bot.console.session import ConsoleSession
from bot.main import build
from bot.settings import Settings
from core.chat import ChatRunner, grammar
from core.errors import InvalidInput
from store.crypto import generate_key
from store.db import Scope
from store.tables import OutboxOp
from tests.bot.console.test_console import Script, _seed
from tests.factories import psa_backed


@pytest.fixture
async def container(db_url, tmp_path, workspace_id):  # type: ignore[no-untyped-def]
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k"))
    c.default_workspace_id = workspace_id
    yield c
    await c.aclose()


async def _console(container, lines: list[str]) -> str:  # type: ignore[no-untyped-def]
    out: list[str] = []
    await ConsoleSession(container, read=Script([*lines, "quit"]), write=out.append,
                         as_email="bob@acme-msp.example").run()
    return "\n".join(out)


def test_every_command_of_the_grammar_has_a_handler(container) -> None:  # type: ignore[no-untyped-def]
    commands = set(typing.get_args(grammar.Command))
    assert set(container.chat_commands._handlers) == commands
    assert isinstance(container.chat_commands, ChatRunner)


async def test_a_command_the_runner_does_not_know_is_refused(container) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="I don't know that command"):
        await container.chat_commands.run(None, None, None, object())


async def test_queue_ticket_and_help_through_the_console(container, db, workspace_id) -> None:  # type: ignore[no-untyped-def]
    setup = await psa_backed(db, workspace_id)
    await _seed(db, workspace_id, setup)  # #5001 VPN down (ACME, high, Bob's), #5002 Printer jammed (GLOBEX, low)
    urgent = await _console(container, ["/tickets priority:p1,urgent,high"])
    assert "VPN down" in urgent and "Printer jammed" not in urgent
    assert "Printer jammed" in await _console(container, ["/tickets stage:new priority:low"])
    assert "No tickets match." in await _console(container, ["/tickets stage:pending"])
    assert "No tickets match." in await _console(container, ["/tickets age:>1w2d"])  # nothing is nine days old
    assert "#5002  Printer jammed" in await _console(container, ["/ticket 5002"])
    helped = await _console(container, ["/deskbridge help"])
    assert "Deskbridge commands" in helped and "/tickets mine" in helped
    bad = await _console(container, ["/tickets stage:nwe"])
    assert "'nwe' is not a stage." in bad and "Did you mean `stage:new`?" in bad


async def test_admin_commands_through_the_console(container, db, workspace_id) -> None:  # type: ignore[no-untyped-def]
    setup = await psa_backed(db, workspace_id)
    await _seed(db, workspace_id, setup)
    text = await _console(container, [
        "/deskbridge bindings", "/deskbridge bind sla", "/deskbridge bindings", "/deskbridge unbind",
        "/deskbridge outbox", "/deskbridge settings",
        "/deskbridge link someone@acme-msp.example",
    ])
    assert "This channel is bound to nothing." in text
    assert "This channel is bound to sla alerts." in text
    assert "This channel is bound to sla_alerts." in text
    assert "Removed 1 binding(s) from this channel." in text
    assert "No dead writes." in text
    assert "Workspace settings" in text and "alert action webhook = (not set" in text
    # an admin may link herself to her PSA address; an address no technician has is refused, saying so
    assert "No technician in your PSA has the e-mail someone@acme-msp.example." in text


async def test_dead_writes_are_listed_shown_and_redriven_from_chat(container, db, workspace_id) -> None:  # type: ignore[no-untyped-def]
    setup = await psa_backed(db, workspace_id)
    await _seed(db, workspace_id, setup)
    await _console(container, ["/ticket 5001", "checked the VPN logs"])  # an internal note, queued
    async with db.write(Scope.workspace(workspace_id)) as s:
        op = (await s.exec(select(OutboxOp))).one()
        op.status, op.last_error = "dead", "HTTP 400: note refused"
        op_id = op.id
    text = await _console(container, ["/deskbridge outbox", f"/deskbridge outbox show {op_id}",
                                      f"/deskbridge outbox redrive {op_id}"])
    assert f"op {op_id} · add_note · ticket #5001 · 0/8 attempts · HTTP 400: note refused" in text
    assert f"op {op_id} · add_note · dead · ticket #5001" in text
    assert f"op {op_id} is queued again." in text
    async with db.read(Scope.workspace(workspace_id)) as s:
        assert (await s.get(OutboxOp, op_id)).status == "pending"  # type: ignore[union-attr]
