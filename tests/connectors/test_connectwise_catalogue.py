"""ConnectWise's service catalogue (a board's type > subtype > item, Feature.TYPE_SUBTYPES) against the fake
server: read as the board's associations with their active flags, every page; a ticket's subtype and item read
as the seam's category pair; written after the type in one PATCH; a combination the board does not allow is
refused by the PSA and reaches the caller as a validation error."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import Feature, TicketPatch
from connectors.connectwise.connector import ConnectWiseConnector
from connectors.errors import PsaValidationError
from tests.fakes.connectwise import FakeClock, FakeConnectWise

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> FakeConnectWise:
    return FakeConnectWise(clock=FakeClock(T0, step=timedelta(seconds=1)))


@pytest.fixture
async def cw(fake: FakeConnectWise):  # type: ignore[no-untyped-def]
    conn = ConnectWiseConnector(fake.config(), transport=fake.transport())
    yield conn
    await conn.aclose()


def _desk(fake: FakeConnectWise) -> int:
    return next(b["id"] for b in fake.boards.values() if b["name"] == "Service Desk")


def _id(table: dict[int, dict], name: str) -> int:  # type: ignore[type-arg]
    return next(r["id"] for r in table.values() if r["name"] == name)


async def test_the_catalogue_is_read_per_board_with_inactive_subtypes_and_items(fake, cw) -> None:  # type: ignore[no-untyped-def]
    assert cw.capabilities.has(Feature.TYPE_SUBTYPES) and not cw.capabilities.has(Feature.TICKET_CATEGORIES)
    fake.items[_id(fake.items, "VPN")]["inactiveFlag"] = True
    picks = await cw.picklists()
    desk = str(_desk(fake))
    combos = {(a.type_external_id, a.subtype_name, a.item_name, a.active, a.item_active)
              for a in picks.associations}
    incident, request = (str(_id(fake.types, n)) for n in ("Incident", "Request"))
    assert combos == {(incident, "Email", None, True, True), (incident, "Email", "Outlook", True, True),
                      (incident, "Network", "VPN", True, False), (request, "Access", None, True, True)}
    assert all(a.board_external_id == desk for a in picks.associations)
    assert {"subtype", "item"} <= picks.complete
    for what in ("subtypes", "items", "typeSubTypeItemAssociations"):  # one read of each per board
        assert fake.count(f"GET /service/boards/{{id}}/{what}") == len(fake.boards)


async def test_every_page_of_a_large_catalogue_is_read(fake, cw) -> None:  # type: ignore[no-untyped-def]
    desk = _desk(fake)
    for i in range(1_050):  # past ConnectWise's 1,000-row page
        fake.add_catalogue(desk, "Request", f"Sub {i:04d}")
    picks = await cw.picklists()
    assert len({a.subtype_name for a in picks.associations}) == 1_050 + 3
    pages = [r.query for r in fake.requests if r.key == "GET /service/boards/{id}/typeSubTypeItemAssociations"]
    assert [p.get("page") for p in pages if p.get("pagesize") == "1000"][:2] == ["1", "2"]
    assert all(p.get("orderby") == "id asc" for p in pages)  # every parameter on every page


async def test_a_board_whose_catalogue_fails_is_named_and_nothing_is_marked_complete(fake, cw) -> None:  # type: ignore[no-untyped-def]
    fake.fail_next(500, times=1, match="GET /service/boards/{id}/items")
    picks = await cw.picklists()
    assert any("subtypes and items of board" in k for k in picks.problems)
    assert "subtype" not in picks.complete and "item" not in picks.complete
    assert {"board", "status", "type"} <= picks.complete  # the rest still arrives


async def test_subtype_and_item_are_read_and_written_after_the_type(fake, cw) -> None:  # type: ignore[no-untyped-def]
    desk = _desk(fake)
    raw = fake.add_ticket("Outlook keeps crashing", board={"id": desk}, type={"name": "Incident"},
                          subType={"name": "Email"}, item={"name": "Outlook"})
    t = await cw.get_ticket(str(raw["id"]))
    assert (t.type and t.type.name, t.category and t.category.name, t.subcategory and t.subcategory.name) == (
        "Incident", "Email", "Outlook")
    request, access = _id(fake.types, "Request"), _id(fake.subtypes, "Access")
    fake.requests.clear()
    # the item does not go with Request › Access: removed in the same PATCH, after type and subtype
    done = await cw.update_ticket(str(raw["id"]), TicketPatch(type_external_id=str(request),
                                                              category_external_id=str(access),
                                                              subcategory_external_id=""))
    assert (done.type.name, done.category.name, done.subcategory) == ("Request", "Access", None)  # type: ignore[union-attr]
    [patch] = [r for r in fake.requests if r.method == "PATCH"]
    assert json.loads(patch.body) == [{"op": "replace", "path": "type", "value": {"id": request}},
                                      {"op": "replace", "path": "subType", "value": {"id": access}},
                                      {"op": "remove", "path": "item"}]


@pytest.mark.parametrize(("patch", "field"), [
    ({"category": "Access"}, "subType"),  # Access is a Request subtype, not an Incident one
    ({"category": "Email", "item": "VPN"}, "item"),  # VPN goes with Network only
    ({"clear_type": True}, "subType"),  # a subtype without its type
])
async def test_a_combination_the_board_does_not_allow_is_refused_and_nothing_changes(
        fake, cw, patch: dict[str, object], field: str) -> None:  # type: ignore[no-untyped-def]
    desk = _desk(fake)
    raw = fake.add_ticket("VPN drops", board={"id": desk}, type={"name": "Incident"}, subType={"name": "Network"},
                          item={"name": "VPN"})
    before = dict(fake.tickets[raw["id"]])
    kwargs: dict[str, object] = {"clear_type": bool(patch.get("clear_type"))}
    if "category" in patch:
        kwargs["category_external_id"] = str(_id(fake.subtypes, str(patch["category"])))
    if "item" in patch:
        kwargs["subcategory_external_id"] = str(_id(fake.items, str(patch["item"])))
    with pytest.raises(PsaValidationError) as err:
        await cw.update_ticket(str(raw["id"]), TicketPatch(**kwargs))  # type: ignore[arg-type]
    assert field in str(err.value.fields) or field in str(err.value)
    assert fake.tickets[raw["id"]] == before


async def test_the_fake_filters_the_catalogue_like_connectwise(fake) -> None:  # type: ignore[no-untyped-def]
    import httpx

    desk = _desk(fake)
    async with httpx.AsyncClient(transport=fake.transport(), base_url="https://api-na.myconnectwise.net") as http:
        auth = fake.config().credentials
        headers = {"clientId": fake.client_id}
        url = f"/{fake.codebase}apis/3.0/service/boards/{desk}/typeSubTypeItemAssociations"
        basic = (f"{fake.company_id}+{auth['public_key']}", auth["private_key"])
        r = await http.get(url, params={"conditions": 'subType/name="Email"', "pageSize": 1}, headers=headers,
                           auth=basic)
        assert r.status_code == 200 and len(r.json()) == 1 and 'rel="next"' in r.headers["link"]
        assert r.json()[0]["subType"]["name"] == "Email"
        r = await http.get(f"/{fake.codebase}apis/3.0/service/boards/9999/subtypes", headers=headers, auth=basic)
        assert r.status_code == 404
