"""Ticket, customer and member routes through the real app: filters, paging, timeline, changes."""

from __future__ import annotations

from datetime import timedelta

from store.db import Scope
from store.tables import Ticket
from store.types import utcnow
from tests.bot.api.conftest import PREFIX, Api, assert_problem


async def _directory(api: Api) -> tuple[int, int, int]:
    acme = await api.container.directory.add_customer(api.ws, identifier="ACME", name="Acme Corp")
    globex = await api.container.directory.add_customer(api.ws, identifier="GLOBEX", name="Globex")
    ana = await api.container.directory.add_member(api.ws, name="Ana Tech", email="ana@msp.example")
    return acme.id, globex.id, ana.id  # type: ignore[return-value]


async def test_create_then_read_with_timeline(api: Api):
    acme, _, ana = await _directory(api)
    r = await api.post("/tickets", {"subject": "  Printer jams  ", "description": "2nd floor", "customer_id": acme,
                                    "priority": "high", "assignee_id": ana})
    assert r.status_code == 201, r.text
    t = r.json()
    assert r.headers["location"] == f"{PREFIX}/tickets/id:{t['id']}"
    assert (t["subject"], t["priority"], t["stage"], t["customer_name"], t["assignee_name"]) == (
        "Printer jams", "high", "new", "Acme Corp", "Ana Tech")
    await api.post(f"/tickets/{t['number']}/comments", {"body": "Customer called", "visibility": "public"})
    await api.post(f"/tickets/{t['number']}/comments", {"body": "Vendor case 4411"})
    await api.put(f"/tickets/{t['number']}", {"status": "in progress"})
    got = (await api.get(f"/tickets/{t['number']}")).json()
    assert [(c["visibility"], c["body"], c["origin"]) for c in got["comments"]] == [
        ("public", "Customer called", "api"), ("internal", "Vendor case 4411", "api")]
    assert [a["kind"] for a in got["activity"]] == ["status_change"]
    assert got["comments"][0]["author_name"] == "apikey:write-key"
    assert got["stage"] == "in_progress"


async def test_update_status_priority_assignee_and_unassign(api: Api):
    _, _, ana = await _directory(api)
    n = (await api.ticket())["number"]
    r = await api.put(f"/tickets/{n}", {"status": "waiting", "priority": "critical", "assignee_id": ana})
    assert r.status_code == 200, r.text
    t = r.json()
    assert (t["stage"], t["priority"], t["assignee_id"]) == ("waiting", "critical", ana)
    assert {a["kind"] for a in t["activity"]} == {"status_change", "priority_change", "assignment"}
    t = (await api.put(f"/tickets/{n}", {"assignee_id": None})).json()
    assert t["assignee_id"] is None
    assert_problem(await api.put(f"/tickets/{n}", {}), 422)
    assert_problem(await api.put(f"/tickets/{n}", {"priority": None}), 422)
    bad = assert_problem(await api.put(f"/tickets/{n}", {"status": "exploded"}), 422)
    assert bad["field"] == "status"
    assert_problem(await api.put(f"/tickets/{n}", {"assignee_id": 999_999}), 404)


async def test_comment_returns_the_new_comment(api: Api):
    n = (await api.ticket())["number"]
    r = await api.post(f"/tickets/{n}/comments", {"body": "Replaced the fuser", "visibility": "public"})
    assert r.status_code == 201
    c = r.json()
    assert (c["visibility"], c["body"]) == ("public", "Replaced the fuser")
    assert_problem(await api.post(f"/tickets/{n}/comments", {"body": "x", "visibility": "secret"}), 422)
    assert_problem(await api.post(f"/tickets/{n}/comments", {"body": "   "}), 422)


async def test_list_filters_sort_and_total(api: Api):
    acme, globex, ana = await _directory(api)
    specs = [("VPN down", acme, "critical", ana), ("Printer jams", globex, "low", None),
             ("New laptop", acme, "medium", None), ("Printer toner", acme, "high", ana)]
    numbers = [(await api.ticket(s, customer_id=c, priority=p, assignee_id=a))["number"] for s, c, p, a in specs]
    await api.put(f"/tickets/{numbers[2]}", {"status": "closed"})

    async def nums(query: str) -> list[int]:
        r = await api.get("/tickets?" + query)
        assert r.status_code == 200, r.text
        return [t["number"] for t in r.json()["items"]]

    assert await nums("") == [numbers[0], numbers[1], numbers[3]]  # open, oldest first
    assert await nums("stage=all") == numbers
    assert await nums("stage=closed") == [numbers[2]]
    assert await nums("customer=acme") == [numbers[0], numbers[3]]
    assert await nums(f"customer={globex}") == [numbers[1]]
    assert await nums("assignee=unassigned") == [numbers[1]]
    assert await nums(f"assignee={ana}") == [numbers[0], numbers[3]]
    assert await nums("priority=critical,high") == [numbers[0], numbers[3]]
    assert await nums("priority=critical&priority=low") == [numbers[0], numbers[1]]
    assert await nums("q=printer") == [numbers[1], numbers[3]]
    assert await nums(f"q=%23{numbers[3]}") == [numbers[3]]
    assert await nums("sort=priority") == [numbers[0], numbers[3], numbers[1]]
    assert await nums("sort=newest") == [numbers[3], numbers[1], numbers[0]]
    assert await nums("status=New") == [numbers[0], numbers[1], numbers[3]]
    assert await nums("age=<1h") == [numbers[0], numbers[1], numbers[3]]
    assert await nums("age=>1d") == []
    page = (await api.get("/tickets?total=true")).json()
    assert page["total"] == 3
    assert (await api.get("/tickets")).json()["total"] is None


async def test_filter_errors_say_what_would_work(api: Api):
    body = assert_problem(await api.get("/tickets?stage=nwe"), 422, kind="invalid-filter")
    assert body["suggestions"] == ["new"]
    assert_problem(await api.get("/tickets?priority=urgentish"), 422)
    assert_problem(await api.get("/tickets?age=yesterday"), 422)
    assert_problem(await api.get("/tickets?sort=sideways"), 422)
    mine = assert_problem(await api.get("/tickets?assignee=mine"), 422)
    assert "GET /members" in mine["hint"]
    assert_problem(await api.get("/tickets?customer=nobody"), 422)
    assert_problem(await api.get("/tickets?cursor=garbage!!"), 422)
    assert_problem(await api.get("/tickets?limit=0"), 422)


async def test_keyset_pages_cover_everything_once(api: Api):
    now = utcnow()
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        for i in range(23):
            s.add(Ticket(workspace_id=api.ws, number=100 + i, subject=f"T{i}", priority="medium", priority_rank=2,
                         stage="new", created_at=now - timedelta(minutes=60 - i), updated_at=now))
    seen, cursor = [], None
    for _ in range(10):
        r = await api.get("/tickets", params={"limit": 5, **({"cursor": cursor} if cursor else {})})
        page = r.json()
        seen += [t["number"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(100, 123))
    other_sort = assert_problem(await api.get("/tickets", params={"sort": "newest", "cursor": (await api.get(
        "/tickets", params={"limit": 5})).json()["next_cursor"]}), 422)
    assert "different sort" in other_sort["detail"]


async def test_validation_errors_are_problems_and_unknown_fields_are_refused(api: Api):
    body = assert_problem(await api.post("/tickets", {"subject": "x", "stage": "closed"}), 422, kind="invalid-input")
    assert any(e["location"].endswith("stage") for e in body["errors"])
    body = assert_problem(await api.post("/tickets", {"subject": ""}), 422)
    assert body["errors"][0]["location"] == "body.subject"
    assert_problem(await api.post("/tickets", {"subject": "x", "customer_id": 2**40}), 422)
    assert_problem(await api.client.post(PREFIX + "/tickets", content=b"{not json", headers={
        **api.auth(), "content-type": "application/json"}), 422)
    assert_problem(await api.get("/tickets/abc"), 422)
    assert_problem(await api.get("/tickets/0"), 422)
    assert_problem(await api.post("/tickets", {"subject": "x", "customer_id": 424242}), 404)


async def test_customers_and_members(api: Api):
    acme, _, ana = await _directory(api)
    customers = (await api.get("/customers")).json()
    assert [(c["identifier"], c["name"]) for c in customers["items"]] == [("ACME", "Acme Corp"), ("GLOBEX", "Globex")]
    assert customers["next_cursor"] is None
    members = (await api.get("/members")).json()["items"]
    assert [(m["id"], m["name"], m["email"]) for m in members] == [(ana, "Ana Tech", "ana@msp.example")]
    assert (await api.get("/customers", "other")).json() == {"items": [], "next_cursor": None}
    assert (await api.get("/members", "other")).json() == {"items": [], "next_cursor": None}
    first = (await api.get("/customers?limit=1")).json()
    second = (await api.get(f"/customers?limit=1&cursor={first['next_cursor']}")).json()
    assert [c["identifier"] for c in first["items"] + second["items"]] == ["ACME", "GLOBEX"]
    assert second["next_cursor"] is None
    assert_problem(await api.get("/customers?cursor=abc"), 422)
    assert (await api.get("/members?cursor=9999999999")).json() == {"items": [], "next_cursor": None}


async def test_a_create_on_the_sandbox_is_valid_when_accepted_and_reaches_the_psa(db_url, tmp_path):
    """The embedded default, as a newcomer runs it: a ticket created through the API is delivered (the
    connection's default board), and what the PSA would refuse is a field error, never a dead write."""
    from sqlmodel import select

    from store.tables import OutboxOp, PsaConnection
    from tests.bot.api.conftest import make_api

    api, _ = await make_api(db_url, tmp_path, sandbox="on")
    try:
        async with api.container.db.read(Scope.workspace(api.ws)) as s:
            conn = (await s.exec(select(PsaConnection))).one()
        await api.container.sync.run(conn.id)  # picklists, customers and tickets, as the first sync does
        customers = (await api.get("/customers")).json()["items"]
        cust = customers[0]["id"]
        bad = assert_problem(await api.post("/tickets", {"subject": "x", "customer_id": cust, "board": "Nope"}), 422)
        assert bad["field"] == "board" and "Service Desk" in bad["hint"]
        wrong = assert_problem(await api.post("/tickets", {"subject": "x", "customer_id": cust,
                                                           "board": "Service Desk", "type": "Monitoring Alert"}), 422)
        assert wrong["field"] == "type"
        made = await api.ticket("Laptop for the new hire", customer_id=cust, type="Service Request")
        await api.container.outbox_worker.drain()
        async with api.container.db.read(Scope.workspace(api.ws)) as s:
            ops = (await s.exec(select(OutboxOp))).all()
        assert [(o.kind, o.status) for o in ops] == [("create_ticket", "done")]
        server = api.container.connections.shared(conn).server  # the sandbox PSA itself
        psa = next(t for t in server.data["tickets"] if t.get("summary") == "Laptop for the new hire")
        board = next(b for b in server.data["boards"] if b["id"] == psa["board_id"])
        kind = next(t for t in server.data["types"] if t["id"] == psa["type_id"])
        assert (board["name"], kind["name"]) == ("Service Desk", "Service Request")
        assert made["subject"] == "Laptop for the new hire"
    finally:
        await api.client.aclose()
        await api.container.aclose()
