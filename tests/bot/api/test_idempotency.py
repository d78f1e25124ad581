"""Idempotency-Key with Stripe's semantics: replay, 422 on a different body, 409 while in flight, per-workspace
keys, pruning after 24 h, and the claim flipped to `committed` inside the work's own transaction."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from core.context import Actor
from core.idempotency import Claim, IdempotencyService, KeyBusy, Replay, request_hash
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
    svc = IdempotencyService(api.container.db, clock=lambda: clock[0], lease=timedelta(seconds=10))
    tickets = TicketService(api.container.db)
    actor = Actor(workspace_id=api.ws, origin=Origin.API, display="apikey:test")

    async def row(key: str) -> IdempotencyKey | None:
        async with api.container.db.read(Scope.workspace(api.ws)) as s:
            return (await s.exec(select(IdempotencyKey).where(IdempotencyKey.key == key))).first()

    crashed = await svc.claim(api.ws, "died-before-commit", "h1")
    assert isinstance(crashed, Claim)
    with pytest.raises(RuntimeError):
        async with svc.held(crashed), api.container.db.write(actor.scope):
            raise RuntimeError("process died mid-transaction")
    assert (await row("died-before-commit")).state == "inflight"  # type: ignore[union-attr]

    done = await svc.claim(api.ws, "committed-then-died", "h2")
    assert isinstance(done, Claim)
    async with svc.held(done):
        made = await tickets.create(actor, subject="landed")
    committed = await row("committed-then-died")
    assert committed is not None and committed.state == "committed"
    assert committed.response_body == {"rebuild": {"tickets": [made.summary.id], "entries": []}}

    # While the lease runs, a retry is told to wait, with how long.
    with pytest.raises(KeyBusy) as busy:
        await svc.claim(api.ws, "committed-then-died", "h2")
    assert busy.value.retry_after == 10 and "being recorded" in busy.value.message
    clock[0] += timedelta(seconds=4)
    with pytest.raises(KeyBusy) as busy:
        await svc.claim(api.ws, "died-before-commit", "h1")
    assert busy.value.retry_after == 6

    clock[0] += timedelta(seconds=7)  # both leases lapsed: their instances are gone
    again = await svc.claim(api.ws, "died-before-commit", "h1")
    assert again == Claim(api.ws, crashed.record_id, "died-before-commit")  # nothing committed: the work runs
    rebuilt = await svc.claim(api.ws, "committed-then-died", "h2")
    assert isinstance(rebuilt, Claim) and rebuilt.rebuild == {"tickets": [made.summary.id], "entries": []}
    with pytest.raises(KeyBusy):  # the rebuild is taken by one retry at a time
        await svc.claim(api.ws, "committed-then-died", "h2")

    await svc.complete(rebuilt, 201, {"body": {"ok": True}, "headers": {}})
    assert await svc.claim(api.ws, "committed-then-died", "h2") == Replay(201, {"body": {"ok": True}, "headers": {}})


async def test_the_lease_is_renewed_while_the_work_runs(api: Api):
    # The service's clock moves only when the test moves it, each step shorter than the lease and followed by a
    # heartbeat: with real time a heartbeat late by 0.3 s on a loaded machine lost the lease.
    now = [utcnow()]
    svc = IdempotencyService(api.container.db, clock=lambda: now[0], lease=timedelta(seconds=0.3))
    claim = await svc.claim(api.ws, "slow-work", "h")
    assert isinstance(claim, Claim)

    async def heartbeat_seen() -> None:
        for _ in range(3000):
            async with api.container.db.read(Scope.workspace(api.ws)) as s:
                row = (await s.exec(select(IdempotencyKey).where(IdempotencyKey.key == "slow-work"))).one()
            if row.locked_at >= now[0]:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the lease was not renewed")

    async with svc.held(claim):
        for _ in range(4):  # 0.8 s of work, longer than the lease: the heartbeat keeps it
            now[0] += timedelta(seconds=0.2)
            await heartbeat_seen()
        with pytest.raises(KeyBusy):
            await svc.claim(api.ws, "slow-work", "h")
    now[0] += timedelta(seconds=0.4)  # no heartbeat any more: a dead holder's key is free once the lease lapses
    assert isinstance(await svc.claim(api.ws, "slow-work", "h"), Claim)


async def test_in_flight_409_carries_retry_after(api: Api):
    svc: IdempotencyService = api.container.idempotency
    body = {"subject": "slow"}
    assert isinstance(await svc.claim(api.ws, "busy-2", request_hash("POST", "/api/msp-portal/tickets", body)), Claim)
    r = await api.post("/tickets", body, headers={"Idempotency-Key": "busy-2"})
    problem = assert_problem(r, 409)
    assert 1 <= int(r.headers["retry-after"]) <= 10 and problem["retry_after"] == int(r.headers["retry-after"])


async def test_a_retry_after_a_crash_between_commit_and_response_replays_over_http(api: Api):
    """The first attempt's work committed but its instance died before saving the response: each endpoint's
    retry answers what the first attempt would have, and nothing is written twice."""
    svc: IdempotencyService = api.container.idempotency
    svc.lease = timedelta(seconds=0.2)
    n = (await api.ticket())["number"]

    async def crash_after_commit(method: str, path: str, body: dict, key: str, run) -> None:  # noqa: ANN001
        claim = await svc.claim(api.ws, key, request_hash(method, "/api/msp-portal" + path, body))
        assert isinstance(claim, Claim)
        async with svc.held(claim):
            await run()  # ... and the process dies here: no complete(), no release()

    actor = Actor(workspace_id=api.ws, origin=Origin.API, display="apikey:write-key")
    await crash_after_commit("POST", "/tickets", {"subject": "Crashy"}, "k-create",
                             lambda: api.container.tickets.create(actor, subject="Crashy"))
    await crash_after_commit("POST", f"/tickets/{n}/comments", {"body": "hi"}, "k-comment",
                             lambda: api.container.tickets.comment(actor, n, "hi"))
    await crash_after_commit("PUT", f"/tickets/{n}", {"priority": "high"}, "k-put",
                             lambda: api.container.tickets.update(actor, n, priority="high"))
    await asyncio.sleep(0.3)
    created = await api.post("/tickets", {"subject": "Crashy"}, headers={"Idempotency-Key": "k-create"})
    assert created.status_code == 201 and created.headers["idempotent-replayed"] == "true"
    assert created.json()["subject"] == "Crashy" and created.headers["location"].endswith(f"/id:{created.json()['id']}")
    again = await api.post("/tickets", {"subject": "Crashy"}, headers={"Idempotency-Key": "k-create"})
    assert again.json() == created.json()  # saved now: a plain replay
    comment = await api.post(f"/tickets/{n}/comments", {"body": "hi"}, headers={"Idempotency-Key": "k-comment"})
    assert comment.status_code == 201 and comment.json()["body"] == "hi"
    put = await api.put(f"/tickets/{n}", {"priority": "high"}, headers={"Idempotency-Key": "k-put"})
    assert put.status_code == 200 and put.json()["priority"] == "high"
    assert await _count(api) == 2  # the first ticket and "Crashy": nothing twice
    assert len((await api.get(f"/tickets/{n}")).json()["comments"]) == 1


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
