"""HaloClient against the fake tenant over real httpx: paging and its traps, filters, throttling, errors."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from connectors.errors import (
    PsaAuthError,
    PsaNotFound,
    PsaRateLimited,
    PsaTimeout,
    PsaUnavailable,
    PsaValidationError,
)
from connectors.halopsa import queries
from connectors.halopsa.client import HaloClient, PageScan
from tests.connectors.halopsa.conftest import T0, make_client
from tests.fakes.halopsa import RATE_LIMIT_TEXT, FakeHalo


def _ticket_queries(fake: FakeHalo) -> list[dict[str, str]]:
    return [r.params for r in fake.requests if r.key == "GET /api/Tickets"]


# ---------------------------------------------------------------- paging


async def test_the_fake_repeats_the_last_page_past_the_end(fake: FakeHalo, halo: HaloClient) -> None:
    fake.bulk_tickets(150)
    p2 = await halo.get("Tickets", {"pageinate": "true", "page_size": 100, "page_no": 2})
    p9 = await halo.get("Tickets", {"pageinate": "true", "page_size": 100, "page_no": 9})
    assert [t["id"] for t in p9["tickets"]] == [t["id"] for t in p2["tickets"]] and len(p2["tickets"]) == 50


async def test_paging_stops_on_a_repeated_page_when_the_last_page_is_full(fake: FakeHalo, halo: HaloClient) -> None:
    fake.bulk_tickets(200)
    fake.reset_counts()
    assert len(await halo.get_all("Tickets", "tickets")) == 200
    assert fake.count("GET /api/Tickets") == 2  # record_count said 200: no third request
    inner = fake.transport()

    class NoCount(httpx.AsyncBaseTransport):  # a tenant that does not send record_count
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            resp = await inner.handle_async_request(request)
            if request.url.path != "/api/Tickets":
                return resp
            data = json.loads(resp.content)
            data.pop("record_count", None)
            return httpx.Response(resp.status_code, json=data, request=request)

    client = make_client(fake, transport=NoCount())
    fake.reset_counts()
    scan, pages = PageScan(), []
    while not scan.done:
        pages.append(await client.get_page("Tickets", "tickets", {}, scan, page_size=100))
    await client.aclose()
    assert [(len(p.rows), p.repeated) for p in pages] == [(100, False), (100, False), (0, True)]
    assert fake.count("GET /api/Tickets") == 3  # page 3 was page 2 again: caught by its first id
    assert len({r["id"] for p in pages for r in p.rows}) == 200
    # Each guard alone: the repeated first id (a resumed cursor keeps no seen-set) ...
    resumed = PageScan(page_no=3, previous_first_id=pages[1].first_id)
    assert (await halo.get_page("Tickets", "tickets", {}, resumed)).repeated
    # ... and rows that are all seen already (the first row moved, so its id is new to the guard above).
    moved = PageScan(page_no=3, previous_first_id="not-it", seen={str(r["id"]) for r in pages[1].rows})
    assert (await halo.get_page("Tickets", "tickets", {}, moved)).repeated


async def test_get_all_reads_every_ticket_once(fake: FakeHalo, halo: HaloClient) -> None:
    ids = set(fake.bulk_tickets(250))
    fake.reset_counts()
    rows = await halo.get_all("Tickets", "tickets", {"client_id": 12})
    assert [r["id"] for r in rows] == sorted(ids) and len(rows) == 250
    sent = _ticket_queries(fake)
    assert [q["page_no"] for q in sent] == ["1", "2", "3"]  # 100, 100, 50 (short: done)
    assert all(q["pageinate"] == "true" and q["page_size"] == "100" and q["client_id"] == "12" for q in sent)


async def test_page_size_is_clamped_to_100_before_halo_does_it(fake: FakeHalo, halo: HaloClient) -> None:
    fake.bulk_tickets(130)
    fake.reset_counts()
    rows = await halo.get_all("Tickets", "tickets", page_size=500)
    assert len(rows) == 130 and _ticket_queries(fake)[0]["page_size"] == "100"
    fake.reset_counts()  # a server that clamps silently: a full page of 100 must not read as "short"
    data = await halo.get("Tickets", {"pageinate": "true", "page_size": 500, "page_no": 1})
    assert data["page_size"] == 100 and len(data["tickets"]) == 100


async def test_a_page_with_no_new_ids_ends_the_scan(fake: FakeHalo, halo: HaloClient) -> None:
    fake.bulk_tickets(30)
    scan = PageScan()
    first = await halo.get_page("Tickets", "tickets", {}, scan, page_size=10)
    scan.previous_first_id = None  # as if the first row moved: only the seen-ids guard remains
    scan.page_no = 1
    again = await halo.get_page("Tickets", "tickets", {}, scan, page_size=10)
    assert len(first.rows) == 10 and again.last and again.rows == []


async def test_other_lists_page_under_their_own_keys(fake: FakeHalo, halo: HaloClient) -> None:
    users = await halo.get_all("Users", "users", queries.users(include_inactive=True), page_size=2)
    clients = await halo.get_all("Client", "clients", queries.clients(), page_size=2)
    assert {u["emailaddress"] for u in users} >= {"pat@acme.example", "gone@acme.example"}
    assert [c["name"] for c in clients] == ["Unallocated", "Acme Corp", "Globex", "Initech"]  # inactive left out


# ---------------------------------------------------------------- filters


async def test_named_ticket_filters(fake: FakeHalo, halo: HaloClient) -> None:
    old = fake.add_ticket("Old one", client_id=13)
    fake.clock.advance(3600)
    since = fake.clock.now
    new = fake.add_ticket("New one", client_id=13, tickettype_id=2, user_id=502, status_id=2)
    closed = fake.add_ticket("Done", client_id=13, status_id=9)
    teamed = fake.add_ticket("Second line", client_id=14, team="Second Line", agent_id=3)

    async def ids(**kw: object) -> list[int]:
        return [t["id"] for t in await halo.get_all("Tickets", "tickets", queries.tickets(**kw))]  # type: ignore[arg-type]

    assert await ids(client_id="13") == [old["id"], new["id"], closed["id"]]
    assert await ids(updated_since=since) == [new["id"], closed["id"], teamed["id"]]
    assert await ids(updated_since=since, open_only=True) == [new["id"], teamed["id"]]
    assert await ids(closed_only=True) == [closed["id"]]
    assert await ids(status_ids=["2", "9"]) == [new["id"], closed["id"]]
    assert await ids(ticket_type_id="2") == [new["id"]]
    assert await ids(team_ids=["2"]) == [teamed["id"]]
    assert await ids(agent_id="3") == [teamed["id"]]
    assert await ids(ticket_ids=[str(old["id"]), str(teamed["id"])]) == [old["id"], teamed["id"]]
    assert await ids(date_field="dateoccured", start=since - timedelta(seconds=1)) == [new["id"], closed["id"],
                                                                                       teamed["id"]]
    assert await ids(search="second") == [teamed["id"]]
    assert await ids(client_id="13", order="last_update", descending=True) == [closed["id"], new["id"], old["id"]]
    sent = _ticket_queries(fake)[1]
    assert sent["lastupdatefromdate"] == since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_a_value_that_does_not_bind_is_a_field_error(halo: HaloClient) -> None:
    with pytest.raises(PsaValidationError) as info:
        await halo.get("Tickets", {"client_id": "acme"})
    assert info.value.fields == {"client_id": "The value 'acme' is not valid."}
    with pytest.raises(PsaValidationError) as info:
        await halo.post_one("Tickets", {"summary": "x", "client_id": "twelve"})
    assert set(info.value.fields) == {"client_id"} and info.value.status == 400


# ---------------------------------------------------------------- throttling and errors


async def test_429_carries_retry_after(fake: FakeHalo, halo: HaloClient) -> None:
    fake.fail_next(429, match="GET /api/Tickets", retry_after=37)
    with pytest.raises(PsaRateLimited) as info:
        await halo.get("Tickets")
    assert info.value.retry_after == 37 and info.value.details["retry_after_source"] == "header"
    assert RATE_LIMIT_TEXT in info.value.message

    fake.retry_after_header = False
    fake.rate_limit = (4, 300.0)
    other = make_client(fake)  # a cold instance: its authinfo and token calls count against the budget too
    await other.get("Tickets")
    await other.get("Tickets")
    with pytest.raises(PsaRateLimited) as info:
        await other.get("Tickets")
    assert info.value.retry_after == 60.0 and info.value.details["retry_after_source"] == "default"
    assert [r.route for r in fake.requests[-5:]] == ["/api/authinfo", "/auth/token", "/api/Tickets",
                                                     "/api/Tickets", "/api/Tickets"]
    fake.retry_after_header = True
    fake.clock.advance(200)
    with pytest.raises(PsaRateLimited) as info:
        await other.get("Tickets")
    assert info.value.retry_after == 100  # the rolling window frees its oldest slot in 100 s
    fake.clock.advance(101)
    assert await other.get("Tickets") is not None
    await other.aclose()


async def test_vendor_error_shapes_become_psa_errors(fake: FakeHalo, halo: HaloClient) -> None:
    t = fake.add_ticket(client_id=12)
    with pytest.raises(PsaValidationError) as info:  # a bare JSON string
        await halo.post_one("Actions", {"ticket_id": t["id"], "note": "x", "outcome_id": 10})
    assert info.value.message == "You do not have access to this Action at the moment"
    with pytest.raises(PsaValidationError) as info:  # .NET exception style
        await halo.post_one("Tickets", {"summary": "x", "client_id": 12, "team": "3"})
    assert info.value.message == "Team '3' does not exist." and info.value.code == "System.Exception"
    with pytest.raises(PsaNotFound):
        await halo.get_record("Tickets", 999999)
    with pytest.raises(PsaNotFound):
        await halo.post_one("Actions", {"ticket_id": 999999, "note": "x", "outcome_id": 6})
    fake.fail_next(403, match="GET /api/Agent")
    with pytest.raises(PsaAuthError):
        await halo.get_list("Agent")
    fake.fail_next(502, match="GET /api/Agent")
    with pytest.raises(PsaUnavailable) as down:
        await halo.get_list("Agent")
    assert down.value.message == "HaloPSA had a server error." and not down.value.outcome_unknown


async def test_server_errors_on_writes_are_outcome_unknown(fake: FakeHalo, halo: HaloClient) -> None:
    fake.fail_next(500, match="POST /api/Tickets")
    with pytest.raises(PsaUnavailable) as info:
        await halo.post_one("Tickets", {"summary": "x", "client_id": 12})
    assert info.value.outcome_unknown and info.value.retryable
    assert "Object reference not set" in info.value.message


async def test_a_lost_response_after_the_write_landed(fake: FakeHalo, halo: HaloClient) -> None:
    fake.lose_next_response(match="POST /api/Tickets")
    before = len(fake.tickets)
    with pytest.raises(PsaTimeout) as info:
        await halo.post_one("Tickets", {"summary": "Lost answer", "client_id": 12})
    assert info.value.outcome_unknown and len(fake.tickets) == before + 1  # it did land


async def test_slow_reads_time_out_without_outcome_doubt(fake: FakeHalo) -> None:
    client = make_client(fake, timeout=0.05)
    await client.get_list("Status")
    fake.slow(0.2, times=1, match="GET /api/Team")
    with pytest.raises(PsaTimeout) as info:
        await client.get_list("Team")
    assert not info.value.outcome_unknown
    await client.aclose()


async def test_connect_errors_retry_reads_once_but_never_writes(fake: FakeHalo) -> None:
    calls: list[str] = []
    inner = fake.transport()

    async def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if calls.count(calls[-1]) == 1:  # the first attempt at every endpoint is refused
            raise httpx.ConnectError("refused", request=request)
        return await inner.handle_async_request(request)

    class Flaky(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await flaky(request)

    client = make_client(fake, transport=Flaky())
    assert await client.get_list("Team")  # authinfo, token and Team each refused once, then sent again
    before = len(fake.tickets)
    with pytest.raises(PsaUnavailable) as info:
        await client.post_one("Tickets", {"summary": "x", "client_id": 12})
    assert not info.value.outcome_unknown and len(fake.tickets) == before  # nothing was sent
    assert calls.count("POST /api/Tickets") == 1  # and the write was not tried again
    await client.aclose()


async def test_garbled_json_is_unavailable(fake: FakeHalo) -> None:
    inner = fake.transport()

    class Garbled(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            resp = await inner.handle_async_request(request)
            if request.url.path == "/api/Team":
                return httpx.Response(200, content=b"<html>maintenance</html>", request=request)
            return resp

    client = make_client(fake, transport=Garbled())
    with pytest.raises(PsaUnavailable):
        await client.get_list("Team")
    await client.aclose()


async def test_posting_several_records_returns_a_list(halo: HaloClient) -> None:
    saved = await halo.post("Tickets", [{"summary": "one", "client_id": 12}, {"summary": "two", "client_id": 13}])
    assert [s["summary"] for s in saved] == ["one", "two"]
    one = await halo.post_one("Tickets", {"summary": "three", "client_id": 12})
    assert one["summary"] == "three" and "lastupdate" in one and "last_update" not in one


async def test_the_same_flow_over_a_loopback_server(fake: FakeHalo) -> None:
    fake.bulk_tickets(120)
    with fake.serve() as root:
        client = make_client(fake, settings=fake.settings(root=root, tenant="acme"), real_http=True)
        rows = await client.get_all("Tickets", "tickets")
        assert len(rows) == 120
        fake.lose_next_response(match="POST /api/Tickets")
        with pytest.raises(PsaTimeout) as info:
            await client.post_one("Tickets", {"summary": "dropped", "client_id": 12})
        assert info.value.outcome_unknown and any(t["summary"] == "dropped" for t in fake.tickets.values())
        await client.aclose()
    assert fake.clock.now >= T0
