"""Typeahead customer search in the new-ticket card above 100 customers: an `Input.ChoiceSet` whose `choices.data`
is a `Data.Query` on `customers`, answered through the `application/search` invoke at /api/messages (signed token,
the real SDK router, our handler): this workspace's customers only, a customer channel only its own."""

from __future__ import annotations

import copy
from typing import Any

import sqlalchemy as sa

from store.db import Scope
from store.tables import ChannelBinding, Customer, Ticket
from tests.bot.teams.conftest import CHANNEL, STRANGER, TENANT, text_of
from tests.bot.teams.test_commands import assert_valid_card, cards_in, invoke, outbox_ops

SEARCH_TYPE = "application/vnd.microsoft.search.searchResponse"


async def many_customers(h: Any, count: int = 120) -> None:
    async with h.c.db.write(Scope.workspace(h.ws)) as s:
        for i in range(count):
            s.add(Customer(workspace_id=h.ws, connection_id=h.setup.connection_id, external_id=f"9{i:03d}",
                           identifier=f"CUST{i:03d}", name=f"Customer {i:03d}"))


async def search(h: Any, text: str, *, dataset: str = "customers", user: str = "aad-bob",
                 conversation: str = CHANNEL, skip: int = 0, top: int = 15, token: str | None = None) -> Any:
    """The invoke Teams sends while someone types in a Data.Query choice set."""
    body = h.activity(kind="invoke", user=user, conversation=conversation, name="application/search",
                      value={"queryText": text, "queryOptions": {"skip": skip, "top": top}, "dataset": dataset})
    return await h.send(body, token=token)


def results(resp: Any) -> list[tuple[str, str]]:
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["type"] == SEARCH_TYPE
    return [(r["title"], r["value"]) for r in out["value"]["results"]]


def typeahead_checked(card: dict[str, Any]) -> dict[str, Any]:
    """The card with Teams' dynamic-typeahead extension checked and taken out, for the 1.5 schema check.

    `choices.data` (a Data.Query) and `style: filtered` on Input.ChoiceSet are what Teams documents for dynamic
    typeahead; the official 1.5 schema predates them (they are in 1.6), so they are checked here by their
    documented shape: {type: Data.Query, dataset: non-empty string, count/skip: optional integers}."""
    card = copy.deepcopy(card)
    for el in card["body"]:
        if el.get("type") == "Input.ChoiceSet" and "choices.data" in el:
            q = el.pop("choices.data")
            assert q["type"] == "Data.Query" and isinstance(q["dataset"], str) and q["dataset"]
            assert set(q) <= {"type", "dataset", "count", "skip"}
            assert el.pop("style") == "filtered"
    return card


async def test_above_100_customers_the_form_asks_as_you_type(teams):
    await many_customers(teams)
    await teams.say("ticket new Printer on fire")
    (form,) = cards_in(teams.posted()[-1])
    field = next(b for b in form["body"] if b.get("id") == "customer")
    assert field["type"] == "Input.ChoiceSet"
    assert field["choices.data"] == {"type": "Data.Query", "dataset": "customers"}
    assert field["choices"] == []  # not 122 static choices
    assert_valid_card(typeahead_checked(form))


async def test_search_answers_through_api_messages_best_match_first(teams):
    await many_customers(teams)
    assert results(await search(teams, "acme")) == [("Acme Corp (ACME)", str(teams.setup.customer_id))]
    found = results(await search(teams, "cust01"))
    assert [t for t, _ in found] == [f"Customer 01{i} (CUST01{i})" for i in range(10)]
    page = results(await search(teams, "customer", top=5))
    assert len(page) == 5
    nxt = results(await search(teams, "customer", top=5, skip=5))
    assert len(nxt) == 5 and not {v for _, v in page} & {v for _, v in nxt}
    assert len(results(await search(teams, "customer", top=500))) == 50  # our ceiling per request
    assert results(await search(teams, "no such customer")) == []


async def test_search_sees_this_workspace_only(teams, other_workspace_id):
    async with teams.c.db.write(Scope.workspace(other_workspace_id)) as s:
        s.add(Customer(workspace_id=other_workspace_id, connection_id=None, external_id="1", identifier="ZETA",
                       name="Zeta Other MSP's customer"))
    async with teams.c.db.read(Scope.workspace(other_workspace_id)) as s:
        assert (await s.exec(sa.select(sa.func.count()).select_from(Customer))).scalar_one() == 1
    assert results(await search(teams, "zeta")) == []
    assert {t for t, _ in results(await search(teams, ""))} == {"Acme Corp (ACME)", "Globex (GLOBEX)"}


async def test_a_customer_channel_only_sees_its_own_customer(teams):
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:
        s.add(ChannelBinding(workspace_id=teams.ws, platform="teams", team_id=TENANT, channel_id=CHANNEL,
                             kind="customer", customer_id=teams.setup.customer_id))
    teams.c.chat.invalidate()
    assert results(await search(teams, "glo")) == []
    assert results(await search(teams, "")) == [("Acme Corp (ACME)", str(teams.setup.customer_id))]


async def test_nobody_unknown_and_no_other_dataset_gets_results(teams):
    assert results(await search(teams, "acme", user=STRANGER)) == []
    assert results(await search(teams, "acme", dataset="members")) == []


async def test_a_search_without_a_valid_token_is_refused(teams):
    resp = await search(teams, "acme", token="not-a-token")
    assert resp.status_code == 401 and "Acme" not in resp.text


async def test_the_chosen_customer_is_the_ticket_s_customer(teams):
    await many_customers(teams)
    await teams.say("ticket new Printer on fire")
    (form,) = cards_in(teams.posted()[-1])
    ((title, value),) = results(await search(teams, "CUST042"))
    assert title == "Customer 042 (CUST042)"
    data = {**form["actions"][0]["data"], "subject": "Printer on fire", "customer": value, "priority": "high"}
    _, resp = await invoke(teams, data)
    assert resp.status_code == 200 and "Printer on fire" in text_of({"value": resp.json()["value"]})
    assert [op.kind for op in await outbox_ops(teams)] == ["create_ticket"]
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        ticket = (await s.exec(sa.select(Ticket).where(Ticket.subject == "Printer on fire"))).scalar_one()
    assert str(ticket.customer_id) == value


async def test_a_refused_new_ticket_comes_back_with_its_chosen_customer_named(teams):
    await many_customers(teams)
    ((_, value),) = results(await search(teams, "CUST042"))
    data = {"action": "new_ticket", "ref": "", "submit": True, "subject": "   ", "customer": value,
            "priority": "high", "description": "Smoke from tray 2"}
    _, resp = await invoke(teams, data)
    out = resp.json()
    assert resp.status_code == 200 and out["type"] == "application/vnd.microsoft.card.adaptive", out
    form = out["value"]
    assert_valid_card(typeahead_checked(form))
    fields = {b["id"]: b for b in form["body"] if "id" in b}
    assert fields["customer"]["value"] == value
    assert fields["customer"]["choices"] == [{"title": "Customer 042 (CUST042)", "value": value}]
    assert fields["description"]["value"] == "Smoke from tray 2"  # nothing the user wrote is lost
    assert "subject" in text_of({"value": form}).lower()
    assert await outbox_ops(teams) == []
    # a customer the user may not pick is not put back
    data["customer"] = "999999"
    _, resp = await invoke(teams, data)
    fields = {b["id"]: b for b in resp.json()["value"]["body"] if "id" in b}
    assert "value" not in fields["customer"] and fields["customer"]["choices"] == []
