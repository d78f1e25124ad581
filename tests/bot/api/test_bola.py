"""OWASP API1 (BOLA): a key of workspace B never reads or changes workspace A's data. Another workspace's
ticket number is a 404 (the same answer as a number that does not exist), never a 403."""

from __future__ import annotations

from tests.bot.api.conftest import Api, assert_problem


async def _a_ticket(api: Api) -> tuple[int, int, int]:
    cust = await api.container.directory.add_customer(api.ws, identifier="ACME", name="Acme Corp")
    member = await api.container.directory.add_member(api.ws, name="Ana Tech")
    t = await api.ticket("Workspace A only", customer_id=cust.id, assignee_id=member.id)
    await api.post(f"/tickets/{t['number']}/comments", {"body": "A's internal note"})
    return t["number"], cust.id, member.id  # type: ignore[return-value]


async def test_every_ticket_route_is_404_across_workspaces(api: Api):
    number, _, _ = await _a_ticket(api)
    missing = assert_problem(await api.get("/tickets/999999", "other"), 404)
    foreign = assert_problem(await api.get(f"/tickets/{number}", "other"), 404)
    assert foreign["title"] == missing["title"] and "not found" in foreign["detail"]
    assert_problem(await api.put(f"/tickets/{number}", {"priority": "low"}, "other"), 404)
    assert_problem(await api.put(f"/tickets/{number}", {"status": "closed"}, "other"), 404)
    assert_problem(await api.put(f"/tickets/{number}", {"assignee_id": None}, "other"), 404)
    assert_problem(await api.post(f"/tickets/{number}/comments", {"body": "hi", "visibility": "public"}, "other"), 404)
    own = (await api.get(f"/tickets/{number}")).json()["id"]  # by stable id: the same 404 as a missing one
    by_id = assert_problem(await api.get(f"/tickets/id:{own}", "other"), 404)
    assert by_id["title"] == assert_problem(await api.get("/tickets/id:999999", "other"), 404)["title"]
    assert_problem(await api.put(f"/tickets/id:{own}", {"priority": "low"}, "other"), 404)
    assert_problem(await api.post(f"/tickets/id:{own}/comments", {"body": "hi"}, "other"), 404)
    # Nothing changed in A.
    t = (await api.get(f"/tickets/{number}")).json()
    assert (t["priority"], t["stage"], len(t["comments"]), t["assignee_id"] is not None) == ("medium", "new", 1, True)


async def test_lists_and_filters_never_show_another_workspace(api: Api):
    number, cust, _ = await _a_ticket(api)
    assert (await api.get("/tickets?stage=all&total=true", "other")).json()["total"] == 0
    assert (await api.get(f"/tickets?customer={cust}&stage=all", "other")).json()["items"] == []
    assert (await api.get(f"/tickets?q=%23{number}&stage=all", "other")).json()["items"] == []
    assert (await api.get("/tickets?q=Workspace", "other")).json()["items"] == []
    # A's customer identifier is unknown in B: a filter error, not a match.
    assert_problem(await api.get("/tickets?customer=ACME", "other"), 422)


async def test_creating_in_b_cannot_reference_a_customer_or_member(api: Api):
    _, cust, member = await _a_ticket(api)
    assert_problem(await api.post("/tickets", {"subject": "x", "customer_id": cust}, "other"), 404)
    assert_problem(await api.post("/tickets", {"subject": "x", "assignee_id": member}, "other"), 404)
    b = await api.ticket("B's own", which="other")
    assert_problem(await api.put(f"/tickets/{b['number']}", {"assignee_id": member}, "other"), 404)
    assert b["number"] == 1  # B numbers its own tickets; A's ticket #1 is untouched
    assert (await api.get("/tickets/1")).json()["subject"] == "Workspace A only"


async def test_idempotency_keys_are_per_workspace(api: Api):
    key = {"Idempotency-Key": "shared-key-1"}
    a = await api.post("/tickets", {"subject": "same"}, headers=key)
    b = await api.post("/tickets", {"subject": "same"}, "other", headers=key)
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    assert (await api.get("/tickets?total=true")).json()["total"] == 1
    assert (await api.get("/tickets?total=true", "other")).json()["total"] == 1
