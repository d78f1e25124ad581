"""A created ticket is addressable at once: create answers its stable `id` and a Location by it; the id names
the ticket on every route (read, update, comment) before the PSA has numbered it, and keeps working after the
number arrives, when the number works too. Real sandbox PSA, real outbox worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from core.errors import InvalidInput
from core.ticket_lookup import TicketRef, parse_ticket_ref
from store.db import Scope
from store.tables import PsaConnection
from tests.bot.api.conftest import PREFIX, Api, assert_problem, make_api


def test_one_parser_names_tickets_by_number_or_stable_id():
    assert parse_ticket_ref("1042") == parse_ticket_ref(" #1042 ") == parse_ticket_ref(1042) == TicketRef(number=1042)
    assert parse_ticket_ref("id:17") == parse_ticket_ref("ID: 17") == TicketRef(id=17)
    assert str(TicketRef(id=17)) == "id:17" and str(TicketRef(number=5)) == "#5"
    for bad in ("0", "id:0", "²", "id:²", "abc", "id:", "17:id", "-3", "", True, None):
        with pytest.raises(InvalidInput, match="not a ticket number or id") as err:
            parse_ticket_ref(bad)  # type: ignore[arg-type]
        assert "id:17" in (err.value.hint or "")


async def test_a_psa_ticket_is_addressable_from_creation_and_numbered_when_the_psa_has_it(db_url: str, tmp_path: Path):
    api, _ = await make_api(db_url, tmp_path, sandbox="on")
    try:
        async with api.container.db.read(Scope.workspace(api.ws)) as s:
            conn = (await s.exec(select(PsaConnection))).one()
        await api.container.sync.run(conn.id)
        cust = (await api.get("/customers")).json()["items"][0]["id"]
        r = await api.post("/tickets", {"subject": "New laptop", "customer_id": cust, "type": "Service Request"})
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["number"] is None and isinstance(made["id"], int)  # queued for the PSA, yet it exists
        assert r.headers["location"] == f"{PREFIX}/tickets/id:{made['id']}"
        ref = f"id:{made['id']}"
        got = await api.client.get(r.headers["location"], headers=api.auth("read"))
        assert got.status_code == 200 and got.json()["id"] == made["id"]
        put = await api.put(f"/tickets/{ref}", {"priority": "high"})
        assert put.status_code == 200 and put.json()["priority"] == "high", put.text
        note = await api.post(f"/tickets/{ref}/comments", {"body": "Ordered", "visibility": "public"})
        assert note.status_code == 201, note.text
        listed = (await api.get("/tickets?sort=newest&limit=5")).json()["items"]
        assert [(t["id"], t["number"]) for t in listed if t["id"] == made["id"]] == [(made["id"], None)]

        await api.container.outbox_worker.drain()  # the PSA creates it (then the change and the note, in order)
        numbered = (await api.get(f"/tickets/{ref}")).json()
        assert numbered["number"] is not None and numbered["id"] == made["id"]
        by_number = (await api.get(f"/tickets/{numbered['number']}")).json()
        assert by_number == numbered and by_number["priority"] == "high" and len(by_number["comments"]) == 1
        assert (numbered["pending_writes"], numbered["dead_writes"]) == (0, 0)
    finally:
        await api.client.aclose()
        await api.container.aclose()


async def test_malformed_and_impossible_refs(api: Api):
    assert_problem(await api.get("/tickets/id:abc"), 422)
    assert_problem(await api.get("/tickets/0"), 422)
    assert_problem(await api.get("/tickets/99999999999"), 404)  # well formed, past any id: simply not found
    assert_problem(await api.get("/tickets/id:99999999999"), 404)
    t = await api.ticket()
    assert (await api.get(f"/tickets/id:{t['id']}")).json() == (await api.get(f"/tickets/{t['number']}")).json()
