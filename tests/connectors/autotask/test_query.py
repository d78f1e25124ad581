"""Queries: keyset paging to the end, every filter operator, the fake's paging and query rules, watermarks."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from connectors.autotask import query as aq
from connectors.autotask.client import AtClient
from connectors.autotask.mapping import parse_dt, ticket_changed_at
from connectors.errors import PsaNotFound, PsaValidationError
from tests.connectors.autotask.conftest import T0
from tests.fakes.autotask import FakeAutotask


def _query_bodies(fake: FakeAutotask, entity: str = "Tickets") -> list[dict[str, Any]]:
    return [r.json() for r in fake.requests if r.key == f"POST /{entity}/query"]


async def test_query_all_pages_to_the_end_by_id(fake: FakeAutotask, client: AtClient) -> None:
    fake.bulk_tickets(1203)
    fake.reset_counts()
    rows = await client.query_all("Tickets", [aq.eq("status", 1)], include_fields=["title", "status"])
    ids = [r["id"] for r in rows]
    assert ids == sorted(fake.tables["Tickets"]) and len(set(ids)) == 1203
    assert set(rows[0]) == {"id", "title", "status"}
    bodies = _query_bodies(fake)
    assert [r.method for r in fake.requests if r.key != "GET /zoneInformation"] == ["POST"] * 3
    assert all(b["MaxRecords"] == 500 and b["IncludeFields"] == ["id", "title", "status"] for b in bodies)
    assert bodies[0]["filter"][-1] == {"op": "gte", "field": "id", "value": 0}
    assert bodies[1]["filter"][-1] == {"op": "gt", "field": "id", "value": ids[499]}
    assert bodies[2]["filter"][-1] == {"op": "gt", "field": "id", "value": ids[999]}
    assert all(b["filter"][0] == {"op": "eq", "field": "status", "value": 1} for b in bodies)
    assert fake.count("POST /Tickets/query/next") == 0


async def test_a_full_last_page_costs_one_empty_query(fake: FakeAutotask, client: AtClient) -> None:
    fake.bulk_tickets(10)
    fake.reset_counts()
    rows = await client.query_all("Tickets", page_size=5)
    assert len(rows) == 10 and fake.count("POST /Tickets/query") == 3


async def test_page_size_is_capped_at_500(fake: FakeAutotask, client: AtClient) -> None:
    page = await client.query_page("Companies", page_size=2000)
    assert _query_bodies(fake, "Companies")[0]["MaxRecords"] == 500 and page.done and page.last_id == 177


def _seed(fake: FakeAutotask) -> dict[str, int]:
    ids = {}
    seeds: tuple[tuple[str, str, dict[str, Any]], ...] = (
        ("jam", "Printer jam", {"priority": 4, "externalID": "ext-1"}),
        ("fire", "printer ON fire", {"priority": 1, "queueID": 29682833}),
        ("mail", "E-mail down", {"priority": 2, "externalID": "ext-3"}),
        ("vpn", "VPN", {"priority": 3, "userDefinedFields": [{"name": "Customer PO", "value": "PO-77"}]}),
    )
    for n, (name, title, fields) in enumerate(seeds):
        fake.clock.set(T0 + timedelta(hours=1, seconds=n))
        ids[name] = fake.add_ticket(title, **fields)["id"]
    return ids


CASES: list[tuple[str, Callable[[dict[str, int]], list[aq.Condition]], list[str]]] = [
    ("eq is case-insensitive", lambda i: [aq.eq("title", "PRINTER JAM")], ["jam"]),
    ("noteq", lambda i: [aq.cond("priority", "noteq", 4)], ["fire", "mail", "vpn"]),
    ("gt", lambda i: [aq.gt("id", i["fire"])], ["mail", "vpn"]),
    ("gte", lambda i: [aq.gte("id", i["fire"])], ["fire", "mail", "vpn"]),
    ("lt", lambda i: [aq.cond("id", "lt", i["fire"])], ["jam"]),
    ("lte", lambda i: [aq.cond("id", "lte", i["fire"])], ["jam", "fire"]),
    ("beginsWith", lambda i: [aq.cond("title", "beginsWith", "printer")], ["jam", "fire"]),
    ("endsWith", lambda i: [aq.cond("title", "endsWith", "DOWN")], ["mail"]),
    ("contains", lambda i: [aq.cond("title", "contains", "on f")], ["fire"]),
    ("exist", lambda i: [aq.exist("externalID")], ["jam", "mail"]),
    ("notExist", lambda i: [aq.not_exist("externalID")], ["fire", "vpn"]),
    ("in", lambda i: [aq.in_("priority", [4, 3])], ["jam", "vpn"]),
    ("notIn", lambda i: [aq.cond("priority", "notIn", [4, 3])], ["fire", "mail"]),
    ("in with string ids", lambda i: [aq.in_("id", [str(i["mail"])])], ["mail"]),
    ("or group", lambda i: [aq.or_(aq.eq("priority", 4), aq.eq("title", "VPN"))], ["jam", "vpn"]),
    ("and inside or", lambda i: [aq.or_(aq.and_(aq.eq("priority", 1), aq.exist("queueID")),
                                        aq.eq("externalID", "ext-3"))], ["fire", "mail"]),
    ("top-level items AND", lambda i: [aq.cond("title", "beginsWith", "printer"), aq.eq("priority", 1)], ["fire"]),
    ("udf", lambda i: [aq.eq("Customer PO", "po-77", udf=True)], ["vpn"]),
    ("date gt", lambda i: [aq.gt("createDate", T0 + timedelta(hours=1, seconds=1, milliseconds=500))], ["mail", "vpn"]),
]


@pytest.mark.parametrize("label,build,expected", CASES, ids=[c[0] for c in CASES])
async def test_filter_operators(fake: FakeAutotask, client: AtClient, label: str,
                                build: Callable[[dict[str, int]], list[aq.Condition]], expected: list[str]) -> None:
    ids = _seed(fake)
    rows = await client.query_all("Tickets", build(ids))
    by_id = {v: k for k, v in ids.items()}
    assert [by_id[r["id"]] for r in rows] == expected


async def test_count(fake: FakeAutotask, client: AtClient) -> None:
    _seed(fake)
    assert await client.count("Tickets", [aq.cond("title", "contains", "printer")]) == 2
    assert await client.count("Tickets") == 4


def test_builder_refuses_what_autotask_refuses() -> None:
    with pytest.raises(ValueError):
        aq.eq("isActive", None)
    with pytest.raises(ValueError):
        aq.cond("title", "like", "x")
    with pytest.raises(ValueError):
        aq.in_("id", [])
    with pytest.raises(ValueError):
        aq.body([aq.or_(*[aq.eq("id", n) for n in range(501)])])
    assert aq.format_dt(T0.replace(microsecond=123456)) == "2026-01-05T12:00:00.123Z"
    assert aq.or_conditions([aq.eq("id", 1), aq.or_(aq.eq("id", 2), aq.and_(aq.eq("id", 3), aq.eq("id", 4)))]) == 3


@pytest.mark.parametrize("body,needle", [
    ({"filter": [{"op": "eq", "field": "bogus", "value": 1}]}, "Unable to find bogus"),
    ({"filter": [{"op": "eq", "field": "serviceLevelAgreementHasBeenMet", "value": None}]}, "null"),
    ({"filter": []}, "at least one filter"),
    ({"filter": [{"op": "or", "items": [{"op": "eq", "field": "id", "value": n} for n in range(501)]}]},
     "500 or fewer 'OR' conditions"),
    ({"MaxRecords": 501, "filter": [{"op": "gte", "field": "id", "value": 0}]}, "MaxRecords"),
    ({"filter": [{"op": "eq", "field": "creatorType", "value": 1}]}, "cannot be queried"),
    ({"filter": [{"op": "contains", "field": "priority", "value": 1}]}, "text fields"),
])
async def test_the_fake_refuses_bad_queries_with_500_errors(fake: FakeAutotask, client: AtClient,
                                                            body: dict[str, Any], needle: str) -> None:
    with pytest.raises(PsaValidationError) as caught:
        await client.json("POST", "Tickets/query", body=body)
    assert caught.value.status == 500 and needle in caught.value.message and not caught.value.retryable


async def test_include_fields_must_hold_id_beyond_one_page(fake: FakeAutotask, client: AtClient) -> None:
    fake.bulk_tickets(3)
    body = {"MaxRecords": 2, "IncludeFields": ["title"], "filter": [{"op": "gte", "field": "id", "value": 0}]}
    with pytest.raises(PsaValidationError):
        await client.json("POST", "Tickets/query", body=body)
    body["MaxRecords"] = 5
    assert len((await client.json("POST", "Tickets/query", body=body))["items"]) == 3


async def test_next_page_url_must_be_posted_with_the_same_body(fake: FakeAutotask, client: AtClient) -> None:
    fake.bulk_tickets(5)
    http = httpx.AsyncClient(transport=fake.transport())
    headers = {"ApiIntegrationCode": fake.integration_code, "UserName": fake.username, "Secret": fake.secret}
    body = {"MaxRecords": 2, "filter": [{"op": "gte", "field": "id", "value": 0}]}
    first = (await http.post("https://webservices2.autotask.net/ATServicesRest/V1.0/Tickets/query", json=body,
                             headers=headers)).json()
    details = first["pageDetails"]
    assert details["count"] == 2 and details["requestCount"] == 2 and details["prevPageUrl"] is None
    next_url = details["nextPageUrl"]
    assert next_url.startswith("https://webservices2.autotask.net/ATServicesRest/V1.0/Tickets/query/next?paging=")
    got = await http.get(next_url, headers=headers)
    assert got.status_code == 405 and "does not support http method 'GET'" in got.json()["Message"]
    second = (await http.post(next_url, json=body, headers=headers)).json()
    assert [t["id"] for t in second["items"]] == sorted(fake.tables["Tickets"])[2:4]
    assert second["pageDetails"]["prevPageUrl"] is not None
    other = await http.post(next_url, json={**body, "MaxRecords": 3}, headers=headers)
    assert other.status_code == 500 and "same query body" in other.json()["errors"][0]
    await http.aclose()


async def test_long_get_query_urls_answer_404_so_we_always_post(fake: FakeAutotask, client: AtClient) -> None:
    http = httpx.AsyncClient(transport=fake.transport())
    headers = {"ApiIntegrationCode": fake.integration_code, "UserName": fake.username, "Secret": fake.secret}
    url = "https://webservices2.autotask.net/atservicesrest/v1.0/Companies/query"
    short = {"filter": [{"op": "eq", "field": "companyName", "value": "Globex"}]}
    ok = await http.get(url, params={"search": json.dumps(short)}, headers=headers)
    assert [c["companyName"] for c in ok.json()["items"]] == ["Globex"]
    long = {"filter": [aq.in_("id", range(400))]}
    assert (await http.get(url, params={"search": json.dumps(long)}, headers=headers)).status_code == 404
    assert len(await client.query_all("Companies", long["filter"])) == 4  # the same filter, POSTed, works
    await http.aclose()


async def test_watermarks_move_as_documented(fake: FakeAutotask, client: AtClient) -> None:
    t = fake.add_ticket("Watermarks")
    created = parse_dt(t["createDate"])
    assert created is not None
    fake.clock.advance(60)
    fake.add_note(t["id"], "A note from the UI")
    item = await client.get_item(f"Tickets/{t['id']}")
    assert item["lastTrackedModificationDateTime"] == t["createDate"]  # a note does not move it [unverified]
    noted = parse_dt(item["lastActivityDate"])
    assert noted is not None and noted >= created + timedelta(seconds=60) and ticket_changed_at(item) == noted
    fake.clock.advance(60)
    fake.edit_ticket(t["id"], title="Edited")
    item = await client.get_item(f"Tickets/{t['id']}")
    edited = parse_dt(item["lastTrackedModificationDateTime"])
    assert edited is not None and edited > noted and parse_dt(item["lastActivityDate"]) == edited
    since = await client.query_all("Tickets", [aq.gte("lastActivityDate", noted + timedelta(seconds=1))])
    assert [r["id"] for r in since] == [t["id"]]
    assert await client.query_all("Tickets", [aq.gt("lastActivityDate", edited)]) == []


async def test_new_records_can_lag_behind_reads(fake: FakeAutotask, client: AtClient) -> None:
    fake.read_lag = 2
    tid = await client.create("Tickets", {"companyID": 175, "title": "Lagging", "status": 1, "priority": 2})
    with pytest.raises(PsaNotFound) as caught:
        await client.get_item(f"Tickets/{tid}")
    assert caught.value.code == "ItemNull"
    assert await client.query_all("Tickets", [aq.eq("id", tid)]) == []
    assert (await client.get_item(f"Tickets/{tid}"))["title"] == "Lagging"
