"""Secrets never appear in logs, errors or the audit log (HELPERS standards) when a PSA refuses the credentials:
for ConnectWise, Autotask and HaloPSA, a write through the outbox worker and the real connector on the vendor's fake
(in-process transport) with a wrong secret ends dead with the reauth step, and the secret (raw, and as the Basic
authorization header carries it) is in no log record at any level, no audit row, no op error, no connection error
and no chat event."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import select

from connectors.autotask.connector import AutotaskConnector
from connectors.base import ConnectionConfig
from connectors.connectwise.connector import ConnectWiseConnector
from connectors.halopsa.connector import HaloPsaConnector
from core.connections import ConnectionService
from core.notify import RecordingNotifier, WriteDead
from core.outbox.admin import OutboxAdmin
from core.outbox.ops import AddNote, enqueue
from store.crypto import CredentialCipher, generate_key
from store.db import Database, Scope
from store.tables import AuditLog, OutboxOp, PsaConnection, Ticket
from tests.core.outbox.conftest import TEST_CONFIG, make_worker
from tests.fakes.autotask import FakeAutotask
from tests.fakes.autotask import FakeClock as AtClock
from tests.fakes.connectwise import FakeClock as CwClock
from tests.fakes.connectwise import FakeConnectWise
from tests.fakes.halopsa import FakeHalo
from tests.fakes.outbox_psa import FakeClock

WRONG = "WRONG-s3cret-9f8e7d6c5b4a"


def _vendor(kind: str) -> tuple[Any, dict[str, Any], dict[str, str], list[str], Any]:
    """(fake, settings, wrong credentials, secret forms to look for, connector class)."""
    if kind == "connectwise":
        cw = FakeConnectWise(clock=CwClock(datetime.now(UTC)))
        creds = {**cw.credentials(), "private_key": WRONG}
        basic = base64.b64encode(f"{cw.company_id}+{creds['public_key']}:{WRONG}".encode()).decode()
        return cw, cw.settings(default_board_id=next(iter(cw.boards))), creds, [WRONG, basic], ConnectWiseConnector
    if kind == "autotask":
        at = FakeAutotask(clock=AtClock(datetime.now(UTC)))
        return (at, at.settings(default_board_id="29682833"), {**at.credentials(), "secret": WRONG}, [WRONG],
                AutotaskConnector)
    halo = FakeHalo()
    return halo, halo.settings(), halo.credentials(client_secret=WRONG), [WRONG], HaloPsaConnector


@pytest.mark.parametrize("kind", ["connectwise", "autotask", "halopsa"])
async def test_a_refused_secret_is_nowhere_in_logs_audit_or_errors(db: Database, workspace_id: int, kind: str,
                                                                   caplog: pytest.LogCaptureFixture):
    fake, settings, creds, forms, cls = _vendor(kind)
    cipher = CredentialCipher.from_keys([generate_key()])
    async with db.write(Scope.workspace(workspace_id)) as s:
        conn = PsaConnection(workspace_id=workspace_id, kind=kind, name=kind, is_default=True, settings=settings,
                             credentials_ciphertext=cipher.encrypt(creds, workspace_id=workspace_id, kind=kind))
        s.add(conn)
        await s.flush()
        t = Ticket(workspace_id=workspace_id, connection_id=conn.id, external_id="1", number=1, subject="x",
                   priority="medium", stage="new")
        s.add(t)
        await s.flush()
        enqueue(s, workspace_id=workspace_id, connection_id=conn.id, ticket_id=t.id, actor="tech",
                payload=AddNote(text="hello", visibility="internal"))
        conn_id = conn.id

    def factory(config: ConnectionConfig) -> Any:
        return cls(config, transport=fake.transport(), timeout=2.0)

    connections = ConnectionService(db, cipher=cipher, checker=None, factory=factory,  # type: ignore[arg-type]
                                    known_kinds=frozenset({kind}))
    notifier = RecordingNotifier()
    worker = make_worker(db, connections, notifier, FakeClock(), TEST_CONFIG)
    caplog.set_level(logging.DEBUG)
    try:
        await worker.drain()
    finally:
        await worker.aclose()
    async with db.read(Scope.system_wide()) as s:
        [op] = (await s.exec(select(OutboxOp))).all()
        audit = (await s.exec(select(AuditLog))).all()
        row = await s.get(PsaConnection, conn_id)
    assert op.status == "dead", (op.status, op.last_error)
    why = (await OutboxAdmin(db).get_op(workspace_id, op.id)).op.why or ""  # type: ignore[arg-type]
    assert "Re-enter" in why and f"deskbridge connection reauth {kind}" in why, why
    assert row is not None and row.last_error and "Credentials rejected" in row.last_error
    places = {
        "logs": caplog.text + "\n".join(json.dumps(r.__dict__, default=str) for r in caplog.records),
        "audit": json.dumps([a.model_dump(mode="json") for a in audit], default=str),
        "op": json.dumps(op.model_dump(mode="json"), default=str),
        "connection": row.last_error,
        "chat": json.dumps([e.__dict__ if hasattr(e, "__dict__") else repr(e) for e in notifier.of(WriteDead)],
                           default=str),
    }
    assert audit, "every attempt leaves an audit row"
    for where, text in places.items():
        for form in forms:
            assert form not in text, f"{kind}: a secret form is in the {where}"


async def test_a_halo_outcome_the_api_agent_may_not_use_reaches_the_operator_with_its_setting(
        db: Database, workspace_id: int):
    """HaloPSA answers a bare JSON string, "You do not have access to this Action at the moment" (psa-apis.md 4.10,
    CIPP PR #106): the write is dead as refused, and both the chat event and the operator's explanation name the
    outcome setting to change and the step, in words (no JSON quotes or class names)."""
    halo = FakeHalo()
    halo.api_outcomes = set()  # the API agent may use no outcome
    ext = str(halo.add_ticket("Printer on fire")["id"])
    cipher = CredentialCipher.from_keys([generate_key()])
    async with db.write(Scope.workspace(workspace_id)) as s:
        conn = PsaConnection(workspace_id=workspace_id, kind="halopsa", name="halo", is_default=True,
                             settings=halo.settings(), credentials_ciphertext=cipher.encrypt(
                                 halo.credentials(), workspace_id=workspace_id, kind="halopsa"))
        s.add(conn)
        await s.flush()
        t = Ticket(workspace_id=workspace_id, connection_id=conn.id, external_id=ext, number=int(ext), subject="x",
                   priority="medium", stage="new")
        s.add(t)
        await s.flush()
        enqueue(s, workspace_id=workspace_id, connection_id=conn.id, ticket_id=t.id, actor="tech",
                payload=AddNote(text="On it", visibility="internal"))
    connections = ConnectionService(db, cipher=cipher, checker=None,  # type: ignore[arg-type]
                                    factory=lambda c: HaloPsaConnector(c, transport=halo.transport(), timeout=2.0),
                                    known_kinds=frozenset({"halopsa"}))
    notifier = RecordingNotifier()
    worker = make_worker(db, connections, notifier, FakeClock(), TEST_CONFIG)
    try:
        await worker.drain()
    finally:
        await worker.aclose()
    async with db.read(Scope.system_wide()) as s:
        [op] = (await s.exec(select(OutboxOp))).all()
    assert op.status == "dead" and op.attempts == 1, (op.status, op.last_error)
    [dead] = notifier.of(WriteDead)
    assert dead.cause == "refused" and "may not use outcome" in dead.error and "Allow it for the API agent" in dead.error
    assert '"' not in dead.error.split(":", 1)[0]
    why = (await OutboxAdmin(db).get_op(workspace_id, op.id)).op.why or ""  # type: ignore[arg-type]
    assert "refused this write" in why and "may not use outcome" in why and "outbox retry" in why, why
