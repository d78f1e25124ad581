"""Outbox / dead-letter admin routes: list, show with audit rows, retry, discard; admin scope; BOLA."""

from __future__ import annotations

from sqlmodel import select

from store.db import Scope
from store.enums import OutboxStatus
from store.tables import AuditLog, OutboxOp
from store.types import utcnow
from tests.bot.api.conftest import Api, assert_problem
from tests.factories import psa_backed


async def _dead_op(api: Api, ws: int, marker: str) -> int:
    setup = await psa_backed(api.container.db, ws)
    now = utcnow()
    async with api.container.db.write(Scope.workspace(ws)) as s:
        op = OutboxOp(workspace_id=ws, connection_id=setup.connection_id, kind="add_note",
                      payload={"kind": "add_note", "text": "hello", "visibility": "public"}, marker=marker,
                      status=OutboxStatus.DEAD.value, attempts=8, last_error="400 Bad Request", last_status_code=400,
                      next_attempt_at=now, finished_at=now)
        s.add(op)
        await s.flush()
        s.add(AuditLog(workspace_id=ws, op_id=op.id, connection_id=setup.connection_id, attempt=8,
                       action="add_note", outcome="dead", response_status=400, error="note too long"))
        return op.id  # type: ignore[return-value]


async def test_list_show_retry_discard(api: Api):
    op_id = await _dead_op(api, api.ws, "m" * 32)
    page = (await api.get("/outbox?status=dead", "admin")).json()
    assert [o["id"] for o in page["items"]] == [op_id] and page["next_cursor"] is None
    assert (await api.get("/outbox?status=pending", "admin")).json()["items"] == []
    shown = (await api.get(f"/outbox/{op_id}", "admin")).json()
    assert shown["op"]["status"] == "dead" and shown["op"]["marker"] == "m" * 32
    assert [(a["outcome"], a["response_status"]) for a in shown["audit"]] == [("dead", 400)]

    retried = await api.post(f"/outbox/{op_id}/retry", None, "admin")
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["attempts"], retried.json()["marker"]) == ("pending", 0, "m" * 32)
    assert_problem(await api.post(f"/outbox/{op_id}/retry", None, "admin"), 409)  # no longer dead
    outcomes = [a["outcome"] for a in (await api.get(f"/outbox/{op_id}", "admin")).json()["audit"]]
    assert outcomes == ["dead", "redriven"]

    op2 = await _dead_op_in_same_ws(api)
    assert_problem(await api.post(f"/outbox/{op2}/discard", {"reason": ""}, "admin"), 422)
    gone = await api.post(f"/outbox/{op2}/discard", {"reason": "ticket deleted in the PSA"}, "admin")
    assert gone.status_code == 200 and gone.json()["status"] == "discarded"
    audit = (await api.get(f"/outbox/{op2}", "admin")).json()["audit"]
    assert audit[-1]["outcome"] == "discarded" and audit[-1]["actor"] == "apikey:admin-key"
    assert_problem(await api.get("/outbox?status=zombie", "admin"), 422)


async def _dead_op_in_same_ws(api: Api) -> int:
    now = utcnow()
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        first = (await s.exec(select(OutboxOp))).one()
        op = OutboxOp(workspace_id=api.ws, connection_id=first.connection_id, kind="add_note", payload={},
                      marker="n" * 32, status=OutboxStatus.DEAD.value, next_attempt_at=now)
        s.add(op)
        await s.flush()
        return op.id  # type: ignore[return-value]


async def test_other_workspace_admin_gets_404_on_every_outbox_route(api: Api):
    op_id = await _dead_op(api, api.ws, "a" * 32)
    assert (await api.get("/outbox?status=all", "other")).json()["items"] == []
    assert_problem(await api.get(f"/outbox/{op_id}", "other"), 404)
    assert_problem(await api.post(f"/outbox/{op_id}/retry", None, "other"), 404)
    assert_problem(await api.post(f"/outbox/{op_id}/discard", {"reason": "x"}, "other"), 404)
    assert (await api.get(f"/outbox/{op_id}", "admin")).json()["op"]["status"] == "dead"
