"""Webhook receivers end to end (FastAPI route -> core/sync/webhooks -> fake ConnectWise re-read)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from bot.api import webhooks
from core.notify import NoteAdded, TicketChanged
from store.db import Scope
from store.tables import PendingRefresh, ProcessedEvent
from tests.core.sync.conftest import SyncEnv
from tests.core.sync.test_engine import seed


@pytest.fixture
async def client(env: SyncEnv):
    app = FastAPI()
    app.state.container = SimpleNamespace(sync=env.sync)
    webhooks.install(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://deskbridge.test") as c:
        yield c


async def _synced(env: SyncEnv) -> list[int]:
    ids = seed(env.fake, 4)
    await env.sync.run(env.connection_id)
    env.fake.clock.advance(60)
    return ids


async def test_webhook_is_answered_once_recorded_and_the_ticket_is_re_read_right_after(
        env: SyncEnv, client: httpx.AsyncClient):
    ids = await _synced(env)
    env.fake.edit_ticket(ids[1], summary="Changed in ConnectWise")
    env.fake.add_note(ids[1], "new reply", contact_id=min(env.fake.contacts))
    headers, body = env.fake.signed_callback("ticket", "updated", ids[1])
    env.fake.slow(0.5, match="GET /service/tickets/{id}")  # the re-read takes a PSA round trip; the answer does not
    resp = await client.post(f"/webhooks/{env.connection_id}/connectwise", content=body, headers=headers)
    assert resp.status_code == 200 and resp.json()["status"] == "accepted"
    assert (await env.tickets())[str(ids[1])].subject == "Ticket 1"  # answered before the re-read
    async with env.db.read(Scope.system_wide()) as s:  # ... and recorded before the answer
        assert [(p.connection_id, p.external_id) for p in (await s.exec(select(PendingRefresh))).all()] == [
            (env.connection_id, str(ids[1]))]
        assert len((await s.exec(select(ProcessedEvent))).all()) == 1
    await env.sync.webhooks.settled()
    assert (await env.tickets())[str(ids[1])].subject == "Changed in ConnectWise"
    assert [n.body for n in env.notifier.of(NoteAdded)] == ["new reply"]
    assert env.notifier.of(TicketChanged)[0].changes["subject"] == ("Ticket 1", "Changed in ConnectWise")
    async with env.db.read(Scope.system_wide()) as s:
        assert (await s.exec(select(PendingRefresh))).all() == []  # re-read: nothing left to replay


async def test_bad_signature_is_refused_and_nothing_processed(env: SyncEnv, client: httpx.AsyncClient):
    ids = await _synced(env)
    env.fake.edit_ticket(ids[0], summary="should not arrive")
    headers, body = env.fake.signed_callback("ticket", "updated", ids[0])
    tampered = body.replace(b'"updated"', b'"deleted"')
    env.fake.reset_counts()
    resp = await client.post(f"/webhooks/{env.connection_id}/connectwise", content=tampered, headers=headers)
    assert resp.status_code == 401 and "signature" in resp.json()["error"].lower()
    assert (await env.tickets())[str(ids[0])].subject == "Ticket 0"
    assert env.fake.count("GET /service/tickets/{id}") == 0
    async with env.db.read(Scope.system_wide()) as s:
        assert (await s.exec(select(ProcessedEvent))).all() == []
    unsigned = {k: v for k, v in headers.items() if k != "x-content-signature"}
    resp = await client.post(f"/webhooks/{env.connection_id}/connectwise", content=body, headers=unsigned)
    assert resp.status_code == 401


async def test_duplicate_delivery_is_ignored(env: SyncEnv, client: httpx.AsyncClient):
    ids = await _synced(env)
    headers, body = env.fake.signed_callback("ticket", "updated", ids[2])
    env.fake.reset_counts()
    first = await client.post(f"/webhooks/{env.connection_id}/cw", content=body, headers=headers)
    await env.sync.webhooks.settled()
    second = await client.post(f"/webhooks/{env.connection_id}/cw", content=body, headers=headers)
    await env.sync.webhooks.settled()
    assert (first.json()["status"], second.json()["status"]) == ("accepted", "duplicate")
    assert second.status_code == 200
    assert env.fake.count("GET /service/tickets/{id}") == 1


async def test_deleted_callback_marks_the_ticket_deleted(env: SyncEnv, client: httpx.AsyncClient):
    ids = await _synced(env)
    headers, body = env.fake.signed_callback("ticket", "deleted", ids[3])
    env.fake.delete_ticket(ids[3])
    resp = await client.post(f"/webhooks/{env.connection_id}/cw", content=body, headers=headers)
    assert resp.status_code == 200
    await env.sync.webhooks.settled()
    assert (await env.tickets())[str(ids[3])].deleted_at is not None
    assert env.notifier.of(TicketChanged)[-1].changes == {"deleted": (False, True)}


async def test_unknown_connection_malformed_body_and_url_token(env: SyncEnv, client: httpx.AsyncClient):
    resp = await client.post("/webhooks/999/cw", content=b"{}", headers={"content-type": "application/json"})
    assert resp.status_code == 404 and "999" in resp.json()["error"]
    resp = await client.post(f"/webhooks/{env.connection_id}/cw", content=b"not json{",
                             headers={"content-type": "application/json"})
    assert resp.status_code == 400 and "JSON" in resp.json()["error"]
    # A connection can require a secret URL segment (PSAs that cannot sign).
    async with env.db.write(Scope.workspace(env.workspace_id)) as s:
        from store.tables import PsaConnection

        conn = await s.get(PsaConnection, env.connection_id)
        conn.settings = {**conn.settings, "webhook_token": "s3cret-path"}
    headers, body = env.fake.signed_callback("ticket", "updated", min(env.fake.tickets or {0: 0}))
    resp = await client.post(f"/webhooks/{env.connection_id}/guess", content=body, headers=headers)
    assert resp.status_code == 401


async def _pending(env: SyncEnv) -> list[str]:
    async with env.db.read(Scope.system_wide()) as s:
        return [p.external_id for p in (await s.exec(select(PendingRefresh))).all()]


async def _until_nothing_pending(env: SyncEnv, within_s: float = 10.0) -> None:
    import asyncio

    deadline = asyncio.get_running_loop().time() + within_s
    while await _pending(env) and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110 - polls the db
        await asyncio.sleep(0.05)


async def test_psa_down_during_the_re_read_keeps_the_ticket_pending_and_retries_it(
        env: SyncEnv, client: httpx.AsyncClient):
    ids = await _synced(env)
    env.sync.webhooks.pool.retry_s = (0.2, 0.2, 0.2)
    env.fake.edit_ticket(ids[0], summary="after outage")
    headers, body = env.fake.signed_callback("ticket", "updated", ids[0])
    env.fake.fail_next(503, times=4, match="GET /service/tickets/{id}")  # the engine's 4 tries of one re-read
    resp = await client.post(f"/webhooks/{env.connection_id}/cw", content=body, headers=headers)
    assert resp.status_code == 200 and resp.json()["status"] == "accepted"  # recorded: the PSA need not retry
    await env.sync.webhooks.settled()
    assert (await env.tickets())[str(ids[0])].subject == "Ticket 0"  # the re-read failed ...
    assert await _pending(env) == [str(ids[0])]  # ... and the ticket stays recorded
    await _until_nothing_pending(env)  # retried after retry_s[0], the PSA answering again
    assert (await env.tickets())[str(ids[0])].subject == "after outage"
    assert json.loads(body)["ID"] == ids[0]


class FlakyNotifier:
    """A notifier (the chat side) that fails once: a non-PSA error while the webhook's refresh runs."""

    def __init__(self, inner) -> None:
        self.inner, self.failures = inner, 1

    async def notify(self, event) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("chat side is down")
        await self.inner.notify(event)


async def test_an_error_on_our_side_during_the_re_read_is_retried_and_never_answered_to_the_psa(
        env: SyncEnv, client: httpx.AsyncClient):
    ids = await _synced(env)
    env.sync.webhooks.pool.retry_s = (0.1,)
    env.engine.notifier = FlakyNotifier(env.notifier)
    env.fake.edit_ticket(ids[2], summary="edited before the push")
    env.fake.add_note(ids[2], "a reply", contact_id=min(env.fake.contacts))
    headers, body = env.fake.signed_callback("ticket", "updated", ids[2])
    resp = await client.post(f"/webhooks/{env.connection_id}/cw", content=body, headers=headers)
    assert resp.status_code == 200 and "chat side is down" not in resp.text
    await _until_nothing_pending(env)
    assert (await env.tickets())[str(ids[2])].subject == "edited before the push"
    assert env.fake.count("GET /service/tickets/{id}") == 2  # the failed refresh, then the retry
    async with env.db.read(Scope.system_wide()) as s:
        assert len((await s.exec(select(ProcessedEvent))).all()) == 1


async def test_callbacks_arriving_together_are_refreshed_in_batches_one_failing_ticket_not_sinking_the_rest(
        env: SyncEnv, client: httpx.AsyncClient):
    import asyncio

    from store.tables import SyncRun

    ids = await _synced(env)
    env.sync.webhooks.pool.retry_s = ()  # give up at once: left to the scheduled sync
    for i in ids:
        env.fake.edit_ticket(i, summary=f"burst edit {i}")
    from tests.fakes.connectwise_http import HttpError

    handle = env.fake.handle

    def flaky(req):  # the first ticket's re-read fails (503 on every try); the others must still land
        together = req.path.endswith("/service/tickets") and str(ids[0]) in req.query.get("conditions", "")
        if req.method == "GET" and (req.path.endswith(f"/service/tickets/{ids[0]}") or together):
            return HttpError(503, "ServiceUnavailable", "down").response()
        return handle(req)

    env.fake.handle = flaky
    calls = [env.fake.signed_callback("ticket", "updated", i) for i in ids] + [
        env.fake.signed_callback("ticket", "updated", ids[1])]  # a second push for one ticket
    async with env.db.read(Scope.system_wide()) as s:
        runs_before = len((await s.exec(select(SyncRun))).all())
    answers = await asyncio.gather(*(client.post(f"/webhooks/{env.connection_id}/cw", content=b, headers=h)
                                     for h, b in calls))
    assert [r.json()["status"] for r in answers] == ["accepted"] * len(calls)
    assert env.sync.webhooks.callbacks.transactions < len(calls)  # recorded together (group commit)
    await env.sync.webhooks.settled()
    stored = await env.tickets()
    assert stored[str(ids[0])].subject == "Ticket 0"  # its re-read failed ...
    assert await _pending(env) == [str(ids[0])]  # ... so it stays recorded for the next start
    assert [stored[str(i)].subject for i in ids[1:]] == [f"burst edit {i}" for i in ids[1:]]
    async with env.db.read(Scope.system_wide()) as s:
        runs = len((await s.exec(select(SyncRun))).all()) - runs_before
    assert 1 <= runs < len(calls)  # batched: fewer refresh runs than callbacks
    assert env.sync.webhooks.batches_run == runs


async def test_a_connection_disabled_after_a_callback_ignores_the_next_one_at_once(
        env: SyncEnv, client: httpx.AsyncClient):
    """The connection row is kept briefly between callbacks; a change to it in this process drops it at once."""
    from store.tables import PsaConnection

    ids = await _synced(env)
    h1, b1 = env.fake.signed_callback("ticket", "updated", ids[0])
    assert (await client.post(f"/webhooks/{env.connection_id}/cw", content=b1, headers=h1)).json()["status"] == \
        "accepted"
    async with env.db.write(Scope.workspace(env.workspace_id)) as s:
        conn = await s.get(PsaConnection, env.connection_id)
        conn.enabled = False
    h2, b2 = env.fake.signed_callback("ticket", "updated", ids[1])
    assert (await client.post(f"/webhooks/{env.connection_id}/cw", content=b2, headers=h2)).json()["status"] == \
        "ignored"
    await env.sync.webhooks.settled()
