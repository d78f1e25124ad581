"""Idempotency-Key with Stripe's semantics: replay, 422 on a different body, 409 while in flight, per-workspace
keys, pruning after 24 h, and the claim flipped to `committed` inside the work's own transaction."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from core.context import Actor
from core.errors import Conflict
from core.idempotency import Claim, IdempotencyService, Replay, request_hash
from core.tickets import TicketService
from store.db import Scope
from store.enums import Origin
from store.tables import IdempotencyKey
from store.types import utcnow
from tests.bot.api.conftest import Api, assert_problem


async def _count(api: Api, which: str = "read") -> int:
    return (await api.get("/tickets?stage=all&total=true", which)).json()["total"]


async def test_same_key_same_body_replays_the_first_response(api: Api):
    key = {"Idempotency-Key": "0b7f8a52-1c0e-4b1e-9d55-3f1d6c2f8a10"}
    first = await api.post("/tickets", {"subject": "VPN down", "priority": "high"}, headers=key)
    again = await api.post("/tickets", {"priority": "high", "subject": "VPN down"}, headers=key)  # key order differs
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert await _count(api) == 1


async def test_comment_replay_creates_one_comment(api: Api):
    n = (await api.ticket())["number"]
    key = {"Idempotency-Key": "comment-1"}
    a = await api.post(f"/tickets/{n}/comments", {"body": "On my way", "visibility": "public"}, headers=key)
    b = await api.post(f"/tickets/{n}/comments", {"body": "On my way", "visibility": "public"}, headers=key)
    assert a.status_code == b.status_code == 201 and a.json() == b.json()
    assert len((await api.get(f"/tickets/{n}")).json()["comments"]) == 1


async def test_put_replay_applies_once(api: Api):
    n = (await api.ticket())["number"]
    key = {"Idempotency-Key": "put-1"}
    a = await api.put(f"/tickets/{n}", {"priority": "critical"}, headers=key)
    await api.put(f"/tickets/{n}", {"priority": "low"})  # someone else changes it meanwhile
    b = await api.put(f"/tickets/{n}", {"priority": "critical"}, headers=key)
    assert b.json() == a.json() and b.json()["priority"] == "critical"
    assert (await api.get(f"/tickets/{n}")).json()["priority"] == "low"  # the replay did not run again


async def test_same_key_different_request_is_422(api: Api):
    key = {"Idempotency-Key": "reused"}
    assert (await api.post("/tickets", {"subject": "one"}, headers=key)).status_code == 201
    body = assert_problem(await api.post("/tickets", {"subject": "two"}, headers=key), 422,
                          kind="idempotency-key-reused")
    assert body["field"] == "Idempotency-Key"
    n = 1
    assert_problem(await api.post(f"/tickets/{n}/comments", {"body": "one"}, headers=key), 422)
    assert await _count(api) == 1


async def test_service_errors_are_saved_and_replayed(api: Api):
    key = {"Idempotency-Key": "err-1"}
    a = await api.post("/tickets/4040/comments", {"body": "hello"}, headers=key)
    assert_problem(a, 404)
    await api.ticket()  # ticket #1 now exists, #4040 still not; the saved answer comes back unchanged
    b = await api.post("/tickets/4040/comments", {"body": "hello"}, headers=key)
    assert b.status_code == 404 and b.json() == a.json() and b.headers["idempotent-replayed"] == "true"


async def test_invalid_request_does_not_consume_the_key(api: Api):
    key = {"Idempotency-Key": "after-fix"}
    assert_problem(await api.post("/tickets", {"subject": ""}, headers=key), 422)
    assert (await api.post("/tickets", {"subject": "fixed"}, headers=key)).status_code == 201


async def test_bad_key_header_is_rejected(api: Api):
    assert_problem(await api.post("/tickets", {"subject": "x"}, headers={"Idempotency-Key": "k" * 256}), 422)
    assert_problem(await api.post("/tickets", {"subject": "x"}, headers={"Idempotency-Key": "has space"}), 422)
    assert await _count(api) == 0


async def test_in_flight_key_is_409_and_nothing_runs(api: Api):
    svc: IdempotencyService = api.container.idempotency
    body = {"subject": "slow"}
    claim = await svc.claim(api.ws, "busy", request_hash("POST", "/api/msp-portal/tickets", body))
    assert isinstance(claim, Claim)
    body_409 = assert_problem(await api.post("/tickets", body, headers={"Idempotency-Key": "busy"}), 409)
    assert "still being processed" in body_409["detail"]
    assert await _count(api) == 0


async def test_concurrent_requests_with_one_key_create_one_ticket(api: Api):
    key = {"Idempotency-Key": "race"}
    results = await asyncio.gather(*[api.post("/tickets", {"subject": "race"}, headers=key) for _ in range(5)])
    codes = sorted(r.status_code for r in results)
    assert codes.count(201) >= 1 and set(codes) <= {201, 409}
    created = {r.json()["number"] for r in results if r.status_code == 201}
    assert created == {1}
    assert await _count(api) == 1


async def test_claim_flips_to_committed_inside_the_work_transaction(api: Api):
    clock = [utcnow()]
    svc = IdempotencyService(api.container.db, clock=lambda: clock[0], lock_timeout=timedelta(seconds=60))
    tickets = TicketService(api.container.db)
    actor = Actor(workspace_id=api.ws, origin=Origin.API, display="apikey:test")

    async def state(key: str) -> str | None:
        async with api.container.db.read(Scope.workspace(api.ws)) as s:
            row = (await s.exec(select(IdempotencyKey).where(IdempotencyKey.key == key))).first()
        return row.state if row else None

    crashed = await svc.claim(api.ws, "died-before-commit", "h1")
    assert isinstance(crashed, Claim)
    with svc.committed_with_work(crashed), pytest.raises(RuntimeError):
        async with api.container.db.write(actor.scope):
            raise RuntimeError("process died mid-transaction")
    assert await state("died-before-commit") == "inflight"

    done = await svc.claim(api.ws, "committed-then-died", "h2")
    assert isinstance(done, Claim)
    with svc.committed_with_work(done):
        await tickets.create(actor, subject="landed")
    assert await state("committed-then-died") == "committed"

    clock[0] += timedelta(minutes=2)  # both attempts are now stale
    again = await svc.claim(api.ws, "died-before-commit", "h1")
    assert isinstance(again, Claim) and again.record_id == crashed.record_id  # safe to run: nothing committed
    with pytest.raises(Conflict, match="completed"):
        await svc.claim(api.ws, "committed-then-died", "h2")  # never run twice

    await svc.complete(done, 201, {"body": {"ok": True}, "headers": {}})
    assert await svc.claim(api.ws, "committed-then-died", "h2") == Replay(201, {"body": {"ok": True}, "headers": {}})


async def test_prune_keeps_keys_at_least_24_hours(api: Api):
    svc: IdempotencyService = api.container.idempotency
    now = utcnow()
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        for key, age in (("fresh", timedelta(hours=2)), ("day-old", timedelta(hours=23)), ("old", timedelta(hours=25))):
            s.add(IdempotencyKey(workspace_id=api.ws, key=key, request_hash="h", state="done", response_status=201,
                                 response_body={}, created_at=now - age, locked_at=now - age))
    assert await svc.prune(now, older_than=timedelta(hours=1)) == 1  # asking for less than 24 h still keeps 24 h
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        left = sorted(r.key for r in (await s.exec(select(IdempotencyKey))).all())
    assert left == ["day-old", "fresh"]
    # A pruned key starts a new request.
    assert isinstance(await svc.claim(api.ws, "old", "other-hash"), Claim)
