"""RMM links and alert actions: URL template settings, the alert action webhook (stored encrypted), and
Acknowledge/Resolve clicks delivered through the outbox to a loopback endpoint that checks signatures."""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot.main import build
from bot.settings import Settings
from core.errors import InvalidInput
from core.notify import RecordingNotifier, WriteDead
from core.outbox.worker import OutboxWorker
from core.workspaces import WorkspaceService
from store.crypto import generate_key
from store.db import Scope
from store.tables import AuditLog, OutboxOp, Ticket, Workspace
from tests.core.outbox.conftest import TEST_CONFIG
from tests.factories import BOARD, psa_backed
from tests.fakes.alert_receiver import FakeAlertReceiver
from tests.fakes.outbox_psa import FakeClock

QUIETED = ("httpx", "httpcore", "aiosqlite")  # set to WARNING by bot/logging.configure
SECRET = "dbwhsec_" + "s3cr3t-Signing-Key-For-Tests-0123456789"


# ---------------------------------------------------------------- settings: card link templates


@pytest.mark.parametrize(("key", "value"), [
    ("rmm_device_url", "https://rmm.example.com/devices/{ref}"),
    ("rmm_alert_url", "https://rmm.example.com/alerts?id={ref}&view=full"),
    ("runbook_url", "https://wiki.example.com/runbooks/{customer}/{ref}"),
    ("runbook_url", "https://wiki.example.com/search?q={ref}"),
    ("rmm_device_url", "http://localhost:8080/devices/{ref}"),
])
async def test_good_templates_are_saved(db, workspace_id, key, value):
    out = await WorkspaceService(db).set_option(workspace_id, key, value)
    assert out[key] == value
    assert (await WorkspaceService(db).settings(workspace_id))[key] == value


@pytest.mark.parametrize(("key", "value", "says"), [
    ("rmm_device_url", "http://rmm.example.com/devices/{ref}", "must use https://"),
    ("rmm_device_url", "https://rmm.example.com/devices/{device}", "unknown placeholder {device}"),
    ("rmm_alert_url", "https://rmm.example.com/alerts/{customer}", "unknown placeholder {customer}"),
    ("rmm_device_url", "https://rmm.example.com/devices", "must contain {ref}"),
    ("runbook_url", "https://wiki.example.com/runbooks", "must contain {customer} or {ref}"),
    ("rmm_device_url", "https://rmm.example.com/devices/{ref", "unmatched"),
    ("rmm_device_url", "https://{ref}.rmm.example.com/", "only go after the host"),
    ("rmm_device_url", "javascript:alert({ref})", "full https:// URL"),
    ("rmm_device_url", "https://admin:pw@rmm.example.com/{ref}", "user name or password"),
    ("rmm_device_url", "https://rmm.example.com/{ref!r}", "plainly"),
])
async def test_bad_templates_are_refused_with_what_to_do(db, workspace_id, key, value, says):
    with pytest.raises(InvalidInput) as err:
        await WorkspaceService(db).set_option(workspace_id, key, value)
    assert says in err.value.message
    assert err.value.hint and "https://" in err.value.hint  # an example to copy
    assert key not in (await _raw_settings(db, workspace_id))  # nothing saved


async def test_off_clears_a_template(db, workspace_id):
    ws = WorkspaceService(db)
    await ws.set_option(workspace_id, "rmm_device_url", "https://rmm.example.com/devices/{ref}")
    for word in ("off", ""):
        await ws.set_option(workspace_id, "rmm_device_url", "https://rmm.example.com/d/{ref}")
        out = await ws.set_option(workspace_id, "rmm_device_url", word)
        assert "rmm_device_url" not in out
        assert (await ws.settings(workspace_id))["rmm_device_url"] is None


# ---------------------------------------------------------------- the webhook and the clicks


@pytest.fixture
async def rmm(db, db_url, workspace_id, tmp_path):
    setup = await psa_backed(db, workspace_id)
    settings = Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                        secret_key_file=tmp_path / "k", workspace_slug="acme-msp", run_scheduler=False,
                        run_outbox_worker=False)
    container = build(settings)
    container.default_workspace_id = workspace_id
    receiver = await FakeAlertReceiver(SECRET).start()
    # Ops the container enqueues carry real-now times, so the worker's clock must stay ahead of real time for the
    # whole test: FakeClock's 5 s lead ran out on a loaded PostgreSQL run (the alert ops were not yet due).
    clock, notifier = FakeClock(datetime.now(UTC) + timedelta(minutes=2)), RecordingNotifier()
    worker = OutboxWorker(db, container.connections, notifier, config=TEST_CONFIG, clock=clock,
                          monotonic=lambda: clock().timestamp(), rng=random.Random(3),
                          alerts=container.alert_webhooks)
    async with db.write(Scope.workspace(workspace_id)) as s:
        s.add(Ticket(workspace_id=workspace_id, number=7001, external_id="7001", connection_id=setup.connection_id,
                     customer_id=setup.customer_id, subject="Disk space low on WS-01", priority="high",
                     priority_rank=1, stage="new", psa_status_id="10", psa_status_name="New", board_external_id=BOARD,
                     source="psa", alert_ref="ALERT 77/b", device_ref="WS-01"))
    try:
        yield container, receiver, worker, clock, notifier
    finally:
        await worker.aclose()
        await receiver.stop()
        await container.aclose()


async def _raw_settings(db, workspace_id):
    async with db.read(Scope.system_wide()) as s:
        return dict((await s.get(Workspace, workspace_id)).settings)


async def _ops(db):
    async with db.read(Scope.system_wide()) as s:
        return list((await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all())


async def _audit(db):
    async with db.read(Scope.system_wide()) as s:
        return list((await s.exec(select(AuditLog).order_by(AuditLog.id))).all())


async def _run(worker, clock, db, rounds=20):
    for _ in range(rounds):
        await worker.drain()
        pending = [o for o in await _ops(db) if o.status == "pending"]
        if not pending:
            return
        clock.now = max(clock.now, min(o.next_attempt_at for o in pending))
    raise AssertionError("outbox did not settle")


def _buttons(view):
    return [a.action for a in view.actions]


async def test_webhook_url_and_secret_are_stored_encrypted_and_never_shown(rmm, db, workspace_id):
    c, receiver, *_ = rmm
    with pytest.raises(InvalidInput, match="must use https://"):
        await c.alert_webhooks.configure(workspace_id, url="http://bridge.example.com/x", secret=SECRET)
    with pytest.raises(InvalidInput, match="at least 24 characters"):
        await c.alert_webhooks.configure(workspace_id, url="https://bridge.example.com/x", secret="short")
    info = await c.alert_webhooks.configure(workspace_id, url=receiver.url, secret=SECRET)
    assert info.display_url == f"http://127.0.0.1:{receiver.port}/hooks/deskbridge?…"
    raw = json.dumps(await _raw_settings(db, workspace_id))
    assert SECRET not in raw and "part-of-the-url" not in raw  # the URL's query may be a credential too
    shown = await WorkspaceService(db).set_option(workspace_id, "first_reply_moves_to_in_progress", "on")
    assert "ciphertext" not in json.dumps(shown) and shown["alert_webhook"]["url"] == info.display_url
    # bound to the workspace: the same blob copied into another workspace does not decrypt
    other = await WorkspaceService(db).create(slug="other-msp", name="Other")
    async with db.write(Scope.system_wide()) as s:
        row = await s.get(Workspace, other.id)
        row.settings = {"alert_webhook": (await _raw_settings(db, workspace_id))["alert_webhook"]}
        s.add(row)
    with pytest.raises(Exception, match="cannot be read"):
        await c.alert_webhooks.send(other.id, _action(), "k" * 32)


def _action():
    from core.outbox.ops import AlertAction

    return AlertAction(action="acknowledge", alert_ref="A1")


async def test_without_a_webhook_there_are_no_alert_buttons_and_a_click_is_refused(rmm, db, tech):
    c, *_ = rmm
    view = await c.chat_views.ticket(tech, 7001)
    assert "alert_ack" not in _buttons(view) and "alert_resolve" not in _buttons(view)
    [alert] = [link for link in view.links if link.kind == "alert"]
    assert alert.ref == "ALERT 77/b" and alert.url is None  # still shown, as a reference
    with pytest.raises(InvalidInput) as err:
        await c.chat_commands.action(tech, "alert_ack", "7001")  # a button on an old card
    assert "not set up" in err.value.message and "deskbridge rmm set-webhook" in err.value.hint
    assert await _ops(db) == []


async def test_ack_is_delivered_signed_once_with_a_key_stable_across_retries(rmm, db, workspace_id, tech, caplog):
    c, receiver, worker, clock, _ = rmm
    caplog.set_level(logging.DEBUG)
    await c.alert_webhooks.configure(workspace_id, url=receiver.url, secret=SECRET)
    view = await c.chat_views.ticket(tech, 7001)
    assert {"alert_ack", "alert_resolve"} <= set(_buttons(view))
    done = await c.chat_commands.action(tech, "alert_ack", "7001")
    assert "queued" in done.confirmation
    receiver.fail(503, body="bridge restarting")
    await _run(worker, clock, db)
    [op] = await _ops(db)
    assert (op.status, op.attempts) == ("done", 2)
    first, second = receiver.received
    assert first.signature_ok and second.signature_ok and (first.answered, second.answered) == (503, 200)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"] == op.marker
    assert first.raw == second.raw  # the same body on every retry
    assert receiver.acted[op.marker] == {
        "action": "acknowledge", "alert_ref": "ALERT 77/b", "device_ref": "WS-01", "ticket_number": 7001,
        "customer": "ACME", "actor": tech.display, "idempotency_key": op.marker}
    audit = [a for a in await _audit(db) if a.op_id == op.id]
    assert [a.outcome for a in audit] == ["retry", "ok"]
    assert "503" in (audit[0].error or "") and "bridge restarting" in audit[0].error
    stored = json.dumps([a.model_dump(mode="json") for a in audit]) + json.dumps(op.model_dump(mode="json"))
    # Our own log lines at every level (bot/logging.py keeps the libraries' chatter, which names full URLs,
    # at WARNING and above, where they log nothing for these requests).
    logged = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records
                       if not r.name.startswith(QUIETED) or r.levelno >= logging.WARNING)
    assert "psa request" in logged  # the client's own request log line is there, naming the host only
    for leak in (SECRET, "part-of-the-url", first.headers["X-Deskbridge-Signature"]):
        assert leak not in stored and leak not in logged


async def test_the_alert_service_queues_an_action_for_any_surface(rmm, db, workspace_id, tech):
    """Chat buttons call it; so can the console or the API: one method, one outbox op with a typed author."""
    c, receiver, worker, clock, _ = rmm
    from core.context import Actor
    from core.errors import PermissionDenied
    from store.enums import Origin

    contact = Actor(workspace_id=workspace_id, origin=Origin.API, display="portal:someone", is_member=False)
    with pytest.raises(PermissionDenied):
        await c.alert_webhooks.request(contact, "7001", "acknowledge")
    with pytest.raises(InvalidInput, match="not set up"):
        await c.alert_webhooks.request(tech, "7001", "acknowledge")
    await c.alert_webhooks.configure(workspace_id, url=receiver.url, secret=SECRET)
    op_id = await c.alert_webhooks.request(tech, "7001", "resolve")
    [op] = await _ops(db)
    assert (op.id, op.kind, op.payload["action"], op.author_member_id, op.actor) == (
        op_id, "alert_action", "resolve", tech.member_id, tech.display)
    await _run(worker, clock, db)
    assert receiver.acted[op.marker]["action"] == "resolve"


async def test_429_waits_for_retry_after_then_delivers(rmm, db, workspace_id, tech):
    c, receiver, worker, clock, _ = rmm
    await c.alert_webhooks.configure(workspace_id, url=receiver.url, secret=SECRET)
    await c.chat_commands.action(tech, "alert_resolve", "7001")
    receiver.fail(429, body={"error": "slow down"}, retry_after="120")
    t0 = clock.now
    await worker.drain()
    [op] = await _ops(db)
    assert op.status == "pending" and op.last_status_code == 429
    assert op.next_attempt_at >= t0 + timedelta(seconds=120)  # Retry-After is the floor
    await _run(worker, clock, db)
    [op] = await _ops(db)
    assert op.status == "done" and [r.answered for r in receiver.received] == [429, 200]
    assert receiver.acted[op.marker]["action"] == "resolve"


async def test_4xx_is_dead_at_once_with_the_endpoints_reason(rmm, db, workspace_id, tech):
    c, receiver, worker, clock, notifier = rmm
    await c.alert_webhooks.configure(workspace_id, url=receiver.url, secret=SECRET)
    await c.chat_commands.action(tech, "alert_ack", "7001")
    receiver.fail(404, body={"error": "No open alert 'ALERT 77/b' in the RMM"})
    await _run(worker, clock, db)
    [op] = await _ops(db)
    assert (op.status, op.attempts, op.last_status_code) == ("dead", 1, 404)
    assert "No open alert 'ALERT 77/b' in the RMM" in op.last_error and "127.0.0.1" in op.last_error
    assert "part-of-the-url" not in op.last_error
    [dead] = notifier.of(WriteDead)
    assert dead.ticket_number == 7001 and "No open alert" in dead.error


async def test_a_wrong_secret_is_dead_with_a_hint_and_never_pauses_the_psa(rmm, db, workspace_id, tech):
    c, receiver, worker, clock, _ = rmm
    await c.alert_webhooks.configure(workspace_id, url=receiver.url, secret="dbwhsec_" + "x" * 40)
    await c.chat_commands.action(tech, "alert_ack", "7001")
    await _run(worker, clock, db)
    [op] = await _ops(db)
    assert op.status == "dead" and op.last_status_code == 401 and "secret" in op.last_error
    assert receiver.received[0].signature_ok is False and receiver.acted == {}
    assert all(not b.is_open(clock().timestamp()) for b in worker._breakers.values())


async def test_a_webhook_removed_after_the_click_leaves_a_dead_op_saying_why(rmm, db, workspace_id, tech):
    c, receiver, worker, clock, _ = rmm
    await c.alert_webhooks.configure(workspace_id, url=receiver.url, secret=SECRET)
    await c.chat_commands.action(tech, "alert_ack", "7001")
    assert await c.alert_webhooks.clear(workspace_id)
    await _run(worker, clock, db)
    [op] = await _ops(db)
    assert op.status == "dead" and "No alert action webhook is configured" in op.last_error
    assert "rmm set-webhook" in op.last_error and receiver.received == []


async def test_an_unreachable_endpoint_is_retried_and_named_by_host_only(rmm, db, workspace_id, tech):
    c, receiver, worker, clock, _ = rmm
    await c.alert_webhooks.configure(workspace_id, url=receiver.url, secret=SECRET)
    await c.chat_commands.action(tech, "alert_ack", "7001")
    port = receiver.port
    await receiver.stop()  # the bridge is down: connection refused
    await worker.drain()
    [op] = await _ops(db)
    assert op.status == "pending" and op.attempts == 1
    assert "Could not reach the alert webhook at 127.0.0.1" in op.last_error and "part-of-the-url" not in op.last_error
    await receiver.start_on(port)  # back up on the same address
    await _run(worker, clock, db)
    [op] = await _ops(db)
    assert op.status == "done" and op.attempts == 2 and list(receiver.acted) == [op.marker]


async def test_alert_webhook_client_maps_answers_and_timeouts():
    import httpx

    from connectors.alert_webhook import AlertWebhookClient
    from connectors.errors import PsaRateLimited, PsaTimeout, PsaUnavailable, PsaValidationError

    answers = iter([httpx.Response(429, headers={"Retry-After": "30"}), httpx.Response(502, text="<html>bad gateway"),
                    httpx.Response(301, headers={"Location": "https://elsewhere.example.com/"}),
                    httpx.Response(422, json={"message": "alert_ref is not an alert"})])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/slow":
            raise httpx.ReadTimeout("timed out", request=request)
        return next(answers)

    client = AlertWebhookClient(transport=httpx.MockTransport(handler))
    expected = [(PsaRateLimited, "slow down"), (PsaUnavailable, "unavailable: <html>bad gateway"),
                (PsaValidationError, "redirected"), (PsaValidationError, "alert_ref is not an alert")]
    try:
        for kind, says in expected:
            with pytest.raises(kind) as err:
                await client.post("https://bridge.example.com/x?sig=abc", SECRET, {"a": 1}, idempotency_key="k")
            assert says in str(err.value) and "sig=abc" not in str(err.value)
            if kind is PsaRateLimited:
                assert err.value.retry_after == 30 and err.value.retryable
        with pytest.raises(PsaTimeout) as err:
            await client.post("https://bridge.example.com/slow", SECRET, {"a": 1}, idempotency_key="k")
        assert err.value.retryable and "did not answer in time" in str(err.value)
    finally:
        await client.aclose()


async def test_alert_actions_and_psa_writes_of_a_ticket_never_hold_each_other(rmm, db, workspace_id, tech):
    from core.outbox import queries
    from core.outbox.admin import OutboxAdmin
    from core.outbox.ops import AddNote, enqueue

    c, receiver, worker, clock, _ = rmm
    await c.alert_webhooks.configure(workspace_id, url=receiver.url, secret=SECRET)
    ticket_id = (await c.tickets.get(tech, 7001)).summary.id
    # a PSA write of the ticket is dead (and a second one blocked behind it) ...
    async with db.write(Scope.workspace(workspace_id)) as s:
        for text in ("dead note", "held note"):
            enqueue(s, workspace_id=workspace_id, connection_id=(await s.get(Ticket, ticket_id)).connection_id,
                    payload=AddNote(text=text, visibility="internal"), ticket_id=ticket_id, actor="t")
    dead_note, held_note = await _ops(db)
    async with db.write(Scope.workspace(workspace_id)) as s:
        row = await s.get(OutboxOp, dead_note.id)
        row.status = "dead"
        s.add(row)
        await queries.block_followers(s, row)
    # ... the alert click still goes out, and its own failure blocks no PSA write
    receiver.fail(404, body={"error": "already closed"})
    await c.chat_commands.action(tech, "alert_resolve", "7001")
    await c.chat_commands.action(tech, "alert_ack", "7001")  # same lane: waits behind the first click
    await worker.drain()
    statuses = {o.id: o.status for o in await _ops(db)}
    alert_1, alert_2 = [o for o in await _ops(db) if o.kind == "alert_action"]
    assert statuses[dead_note.id] == "dead" and statuses[held_note.id] == "blocked"
    assert (alert_1.status, alert_2.status) == ("dead", "blocked")
    assert [r.answered for r in receiver.received] == [404]  # sent although an earlier note of the ticket is dead
    # redriving the dead note releases its own lane only
    await OutboxAdmin(db, clock=clock).redrive(workspace_id, dead_note.id, tech.__class__.system(workspace_id))
    statuses = {o.id: o.status for o in await _ops(db)}
    assert statuses[held_note.id] == "pending" and statuses[alert_2.id] == "blocked"
    claimed = await queries.claim(db, now=clock() + timedelta(seconds=1), lease=timedelta(seconds=10), limit=10)
    assert [cl.op.id for cl in claimed] == [dead_note.id]  # the note lane keeps its order


async def test_a_paused_psa_connection_does_not_hold_alert_actions(rmm, db, workspace_id, tech):
    c, receiver, worker, clock, _ = rmm
    await c.alert_webhooks.configure(workspace_id, url=receiver.url, secret=SECRET)
    await c.tickets.comment(tech, 7001, "a note for the PSA", visibility="internal")
    await c.chat_commands.action(tech, "alert_ack", "7001")
    [conn] = await c.connections.list(workspace_id)
    worker._breaker(conn).trip(clock().timestamp(), 300, "PSA down")  # the PSA is down: its writes wait
    await worker.drain()
    note, alert = await _ops(db)
    assert (note.kind, note.status, note.attempts) == ("add_note", "pending", 0)
    assert (alert.kind, alert.status) == ("alert_action", "done") and list(receiver.acted) == [alert.marker]


async def test_a_ping_checks_the_endpoint_without_acting(rmm, workspace_id):
    from core.errors import InvalidInput, NotFound

    c, receiver, *_ = rmm
    with pytest.raises(NotFound, match="No alert action webhook"):
        await c.alert_webhooks.ping(workspace_id)
    await c.alert_webhooks.configure(workspace_id, url=receiver.url, secret=SECRET)
    assert await c.alert_webhooks.ping(workspace_id) == 200
    (got,) = receiver.received
    assert got.signature_ok and got.headers["X-Deskbridge-Event"] == "ping" and got.body["action"] == "ping"
    await c.alert_webhooks.configure(workspace_id, url=receiver.url, secret="dbwhsec_" + "y" * 40)
    with pytest.raises(InvalidInput, match="test failed") as err:
        await c.alert_webhooks.ping(workspace_id)
    assert "401" in err.value.message and "part-of-the-url" not in err.value.message
    assert "X-Deskbridge-Signature" in (err.value.hint or "")
