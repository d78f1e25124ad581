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
from store.tables import ProcessedEvent
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


async def test_webhook_refreshes_the_ticket_within_the_request(env: SyncEnv, client: httpx.AsyncClient):
    ids = await _synced(env)
    env.fake.edit_ticket(ids[1], summary="Changed in ConnectWise")
    env.fake.add_note(ids[1], "new reply", contact_id=min(env.fake.contacts))
    headers, body = env.fake.signed_callback("ticket", "updated", ids[1])
    resp = await client.post(f"/webhooks/{env.connection_id}/connectwise", content=body, headers=headers)
    assert resp.status_code == 200 and resp.json()["status"] == "processed"
    assert (await env.tickets())[str(ids[1])].subject == "Changed in ConnectWise"  # already, when the call returns
    assert [n.body for n in env.notifier.of(NoteAdded)] == ["new reply"]
    assert env.notifier.of(TicketChanged)[0].changes["subject"] == ("Ticket 1", "Changed in ConnectWise")


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
    second = await client.post(f"/webhooks/{env.connection_id}/cw", content=body, headers=headers)
    assert (first.json()["status"], second.json()["status"]) == ("processed", "duplicate")
    assert second.status_code == 200
    assert env.fake.count("GET /service/tickets/{id}") == 1


async def test_deleted_callback_marks_the_ticket_deleted(env: SyncEnv, client: httpx.AsyncClient):
    ids = await _synced(env)
    headers, body = env.fake.signed_callback("ticket", "deleted", ids[3])
    env.fake.delete_ticket(ids[3])
    resp = await client.post(f"/webhooks/{env.connection_id}/cw", content=body, headers=headers)
    assert resp.status_code == 200
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


async def test_psa_down_during_refetch_answers_503_and_a_retry_works(env: SyncEnv, client: httpx.AsyncClient):
    ids = await _synced(env)
    env.fake.edit_ticket(ids[0], summary="after outage")
    headers, body = env.fake.signed_callback("ticket", "updated", ids[0])
    env.fake.fail_next(503, times=10, match="GET /service/tickets/{id}")
    resp = await client.post(f"/webhooks/{env.connection_id}/cw", content=body, headers=headers)
    assert resp.status_code == 503
    env.fake.clear_faults()
    retry = await client.post(f"/webhooks/{env.connection_id}/cw", content=body, headers=headers)
    assert retry.json()["status"] == "processed"  # the failed attempt did not burn the event id
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


async def test_internal_error_during_refetch_unmarks_the_event_so_the_retry_is_processed(
        env: SyncEnv, client: httpx.AsyncClient):
    ids = await _synced(env)
    env.engine.notifier = FlakyNotifier(env.notifier)
    env.fake.edit_ticket(ids[2], summary="edited before the push")
    headers, body = env.fake.signed_callback("ticket", "updated", ids[2])
    resp = await client.post(f"/webhooks/{env.connection_id}/cw", content=body, headers=headers)
    assert resp.status_code in (500, 503) and "chat side is down" not in resp.text  # no internals leaked
    async with env.db.read(Scope.system_wide()) as s:
        assert (await s.exec(select(ProcessedEvent))).all() == []  # un-marked: the PSA's retry counts
    retry = await client.post(f"/webhooks/{env.connection_id}/cw", content=body, headers=headers)
    assert retry.status_code == 200 and retry.json()["status"] == "processed"
    assert (await env.tickets())[str(ids[2])].subject == "edited before the push"
    async with env.db.read(Scope.system_wide()) as s:
        assert len((await s.exec(select(ProcessedEvent))).all()) == 1


async def test_callbacks_arriving_together_are_refreshed_in_one_batch_each_answered_for_its_ticket(
        env: SyncEnv, client: httpx.AsyncClient):
    import asyncio

    from store.tables import SyncRun

    ids = await _synced(env)
    for i in ids:
        env.fake.edit_ticket(i, summary=f"burst edit {i}")
    from tests.fakes.connectwise_http import HttpError

    handle = env.fake.handle

    def flaky(req):  # the first ticket's re-read fails (503 on every try); the others must still land
        if req.method == "GET" and req.path.endswith(f"/service/tickets/{ids[0]}"):
            return HttpError(503, "ServiceUnavailable", "down").response()
        return handle(req)

    env.fake.handle = flaky
    calls = [env.fake.signed_callback("ticket", "updated", i) for i in ids] + [
        env.fake.signed_callback("ticket", "updated", ids[1])]  # a second push for one ticket
    async with env.db.read(Scope.system_wide()) as s:
        runs_before = len((await s.exec(select(SyncRun))).all())
    answers = await asyncio.gather(*(client.post(f"/webhooks/{env.connection_id}/cw", content=b, headers=h)
                                     for h, b in calls))
    assert [r.status_code for r in answers] == [503] + [200] * (len(calls) - 1)
    stored = await env.tickets()
    assert stored[str(ids[0])].subject == "Ticket 0"  # not refreshed: its callback was answered 503
    assert [stored[str(i)].subject for i in ids[1:]] == [f"burst edit {i}" for i in ids[1:]]
    async with env.db.read(Scope.system_wide()) as s:
        runs = len((await s.exec(select(SyncRun))).all()) - runs_before
    assert 1 <= runs < len(calls)  # batched: fewer refresh runs than callbacks
    assert env.sync.webhooks.batches_run == runs
