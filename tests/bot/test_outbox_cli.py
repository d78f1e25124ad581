"""`deskbridge outbox …` and the worker inside `serve`."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.api.app import create_app
from bot.cli import app
from bot.main import build, settings_from_env
from core.outbox.ops import AddNote, enqueue
from store.crypto import generate_key
from store.db import Database, Scope
from store.tables import AuditLog, Customer, OutboxOp, Ticket
from tests.factories import psa_backed

runner = CliRunner()




@pytest.fixture
async def dead_ops(db: Database, workspace_id: int) -> list[int]:
    """A dead note and a note blocked behind it, on one ticket."""
    setup = await psa_backed(db, workspace_id)
    async with db.write(Scope.workspace(workspace_id)) as s:
        t = Ticket(workspace_id=workspace_id, connection_id=setup.connection_id, external_id="77", number=77,
                   subject="x", priority="medium", stage="new")
        s.add(t)
        await s.flush()
        dead = enqueue(s, workspace_id=workspace_id, connection_id=setup.connection_id, ticket_id=t.id,
                       payload=AddNote(text="refused", visibility="internal"), actor="slack:U1 (Ana)")
        blocked = enqueue(s, workspace_id=workspace_id, connection_id=setup.connection_id, ticket_id=t.id,
                          payload=AddNote(text="behind", visibility="internal"), actor="slack:U1 (Ana)")
        await s.flush()
        dead.status, dead.attempts, dead.last_error = "dead", 1, "The object is invalid (HTTP 400)"
        blocked.status = "blocked"
        s.add(AuditLog(workspace_id=workspace_id, op_id=dead.id, connection_id=setup.connection_id, attempt=1,
                       action="add_note", outcome="dead", response_status=400, error="The object is invalid",
                       actor="slack:U1 (Ana)"))
        return [dead.id, blocked.id]  # type: ignore[list-item]


def test_list_show_retry_discard(env, dead_ops, db_url):
    dead, blocked = dead_ops
    listed = runner.invoke(app, ["outbox", "list", "--workspace", "acme-msp"])
    assert listed.exit_code == 0, listed.output
    assert "dead: 1" in listed.stdout and "blocked: 1" in listed.stdout
    assert f"{dead:>6}  dead" in listed.stdout and "The object is invalid" in listed.stdout

    shown = runner.invoke(app, ["outbox", "show", str(dead), "--workspace", "acme-msp"])
    assert shown.exit_code == 0 and "add_note" in shown.stdout and "outbox retry" in shown.stdout

    missing_reason = runner.invoke(app, ["outbox", "discard", str(blocked), "--workspace", "acme-msp",
                                         "--reason", " "])
    assert missing_reason.exit_code == 1 and "Say why" in missing_reason.output

    retried = runner.invoke(app, ["outbox", "retry", str(dead), "--workspace", "acme-msp"])
    assert retried.exit_code == 0 and f"Queued write {dead} again" in retried.stdout
    again = runner.invoke(app, ["outbox", "retry", str(dead), "--workspace", "acme-msp"])
    assert again.exit_code == 1 and "only dead writes can be retried" in again.output

    discarded = runner.invoke(app, ["outbox", "discard", str(blocked), "--workspace", "acme-msp",
                                    "--reason", "duplicate of #78"])
    assert discarded.exit_code == 0, discarded.output
    as_json = runner.invoke(app, ["outbox", "list", "--status", "all", "--json", "--workspace", "acme-msp"])
    import json

    rows = {r["id"]: r for r in json.loads(as_json.stdout)["items"]}
    assert rows[dead]["status"] == "pending" and rows[dead]["attempts"] == 0
    assert rows[blocked]["status"] == "discarded" and "duplicate of #78" in rows[blocked]["last_error"]


def test_unknown_status_is_explained(env, dead_ops):
    result = runner.invoke(app, ["outbox", "list", "--status", "deadd", "--workspace", "acme-msp"])
    assert result.exit_code == 1 and "Unknown outbox status" in result.output and "blocked" in result.output


async def test_serve_runs_the_worker_against_the_sandbox(db_url: str, tmp_path):
    settings = settings_from_env(database_url=db_url, sandbox="on", secret_key=generate_key(),
                                 secret_key_file=tmp_path / "k", run_scheduler=False, outbox_poll_seconds=0.05)
    container = build(settings)
    app_ = create_app(container)
    async with app_.router.lifespan_context(app_):
        actor = container.system_actor()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_), base_url="http://t") as client:
            assert (await client.get("/healthz")).status_code == 200
        [conn] = await container.connections.list(actor.workspace_id)
        async with container.connections.open(conn) as psa:
            company = (await psa.list_companies()).items[0]
            board = (await psa.picklists()).boards[0]
        async with container.db.write(Scope.workspace(actor.workspace_id)) as s:
            customer = Customer(workspace_id=actor.workspace_id, connection_id=conn.id,
                                external_id=company.external_id, identifier=company.identifier, name=company.name)
            s.add(customer)
        detail = await container.tickets.create(actor, subject="Queued from serve", customer_id=customer.id,
                                                board_external_id=board.external_id)
        for _ in range(1200):  # "eventually" (it was 10 s: short for a loaded machine)
            async with container.db.read(Scope.system_wide()) as s:
                op = (await s.exec(select(OutboxOp))).first()
            if op is not None and op.status == "done":
                break
            await asyncio.sleep(0.05)
        assert op is not None and op.status == "done", (op.status, op.last_error) if op else None
        async with container.db.read(Scope.system_wide()) as s:
            ticket = await s.get(Ticket, detail.summary.id)
        assert ticket is not None and ticket.external_id == op.result["external_id"]
    assert container.outbox_worker is not None
