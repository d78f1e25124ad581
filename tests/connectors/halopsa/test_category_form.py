"""HaloPSA's categories on the create form, against the fake HaloPSA (real HTTP through the injected transport):
the form offers only values Halo lists (a bare parent such as "Software" only when Halo lists it itself), a
value Halo would refuse is refused before anything is queued (chat form and REST alike) naming the valid
choices, and a category whose name holds a "/" ("Email/Exchange") reaches Halo exactly as Halo gives it."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlmodel import select

from bot.api.app import create_app
from bot.main import bootstrap, build
from bot.settings import Settings
from core.context import Actor
from core.errors import InvalidInput
from store.crypto import generate_key
from store.db import Scope
from store.tables import Customer, OutboxOp, Ticket
from tests.bot.api.conftest import PREFIX, api_settings, assert_problem
from tests.fakes.halopsa import FakeHalo

ACME = 12


@pytest.fixture
def fake() -> FakeHalo:
    return FakeHalo()


@pytest.fixture
async def container(db_url, tmp_path, workspace_id, fake):  # type: ignore[no-untyped-def]
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k"), transport=fake.transport())
    c.default_workspace_id = workspace_id
    yield c
    await c.aclose()


async def _connect(container, fake: FakeHalo, ws: int) -> int:  # type: ignore[no-untyped-def]
    conn, _ = await container.connections.add(ws, kind="halopsa", name="halo", settings=fake.settings(),
                                              credentials=fake.credentials())
    assert (await container.sync.run(conn.id)).ok
    return int(conn.id)


async def _acme(container, ws: int) -> int:  # type: ignore[no-untyped-def]
    async with container.db.read(Scope.workspace(ws)) as s:
        return int((await s.exec(select(Customer).where(Customer.external_id == str(ACME)))).one().id)


async def _choices(container, ws: int) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    form = await container.chat_views.new_ticket_form(Actor.system(ws))
    [field] = [f for f in form.fields if f.name == "category"]
    return [(o.value, o.label) for o in field.options]


def _created(fake: FakeHalo) -> dict[str, str | None]:
    """summary -> category_1 of every ticket Deskbridge created in Halo (each POST /Tickets without an id)."""
    out: dict[str, str | None] = {}
    for r in fake.requests:
        if r.key == "POST /api/Tickets":
            for body in json.loads(r.body):
                if not body.get("id"):
                    out[body["summary"]] = body.get("category_1")
    return out


async def _queued(container, ws: int) -> list[OutboxOp]:  # type: ignore[no-untyped-def]
    async with container.db.read(Scope.workspace(ws)) as s:
        return list((await s.exec(select(OutboxOp))).all())


async def test_a_parent_halo_does_not_list_is_never_offered_and_refused_before_queueing(
        container, fake: FakeHalo, workspace_id: int) -> None:  # type: ignore[no-untyped-def]
    cid = await _connect(container, fake, workspace_id)
    # Halo lists Hardware, Hardware>Laptop, Hardware>Printer, Software>E-mail, Software>Office: no bare Software.
    assert await _choices(container, workspace_id) == [
        ("Hardware", "Hardware"), ("Hardware/Hardware>Laptop", "Hardware › Laptop"),
        ("Hardware/Hardware>Printer", "Hardware › Printer"),
        ("Software/Software>E-mail", "Software › E-mail"), ("Software/Software>Office", "Software › Office")]
    acme = await _acme(container, workspace_id)
    writes = container.chat_commands.writes
    before = len(fake.requests)
    for typed in ("Software", "software"):  # what a crafted Slack/Teams payload or a typed answer could send
        with pytest.raises(InvalidInput) as bad:
            await writes.submit(Actor.system(workspace_id), "new_ticket",
                                {"subject": "Mail down", "customer": str(acme), "board": "1", "category": typed})
        assert bad.value.field == "category" and "Software on its own" in bad.value.message
        assert bad.value.hint == "Pick one of: Software › E-mail, Software › Office."
    assert await _queued(container, workspace_id) == []
    async with container.db.read(Scope.workspace(workspace_id)) as s:
        assert (await s.exec(select(Ticket).where(Ticket.subject == "Mail down"))).all() == []
    assert len(fake.requests) == before  # nothing reached Halo either

    done = await writes.submit(Actor.system(workspace_id), "new_ticket",
                               {"subject": "Mail down", "customer": str(acme), "board": "1", "category": "Software/Software>E-mail"})
    assert done.view.facts[0] == ("Category", "Software › E-mail")
    fake.add_category("Software")  # an admin adds the bare value in Halo: now it is a choice of its own
    assert (await container.sync.refresh_picklists(cid)).ok
    assert ("Software", "Software") in await _choices(container, workspace_id)
    await writes.submit(Actor.system(workspace_id), "new_ticket",
                        {"subject": "Software in general", "customer": str(acme), "board": "1", "category": "Software"})
    for _ in range(3):
        await container.outbox_worker.drain()
    assert _created(fake) == {"Mail down": "Software>E-mail", "Software in general": "Software"}


async def test_the_rest_api_refuses_a_parent_halo_does_not_list(db_url, tmp_path, fake: FakeHalo) -> None:  # type: ignore[no-untyped-def]
    c = build(api_settings(db_url, tmp_path, api_rate_per_second=10_000.0, api_rate_burst=10_000),
              transport=fake.transport())
    await bootstrap(c)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(c, start_background=False)),
                               base_url="http://deskbridge.test")
    try:
        ws = c.default_workspace_id
        await _connect(c, fake, ws)
        auth = {"Authorization": f"Bearer {(await c.apikeys.create(ws, name='w', scopes=['write']))[1]}"}
        body = {"subject": "Mail down", "customer_id": await _acme(c, ws), "board": "1",
                "category": "Software"}
        bad = assert_problem(await client.post(PREFIX + "/tickets", json=body, headers=auth), 422)
        assert bad["hint"] == "Pick one of: Software › E-mail, Software › Office."
        assert await _queued(c, ws) == []
        # Halo's own value as the category alone, or the pair: both accepted
        for extra in ({"category": "Software>E-mail"}, {"subcategory": "E-mail"}):
            made = await client.post(PREFIX + "/tickets", json={**body, **extra}, headers=auth)
            assert made.status_code == 201, made.text
            assert (made.json()["category_name"], made.json()["subcategory_name"]) == ("Software", "E-mail")
        assert len(await _queued(c, ws)) == 2
    finally:
        await client.aclose()
        await c.aclose()


async def test_a_category_whose_name_holds_a_slash_reaches_halo_as_halo_gives_it(
        container, fake: FakeHalo, workspace_id: int) -> None:  # type: ignore[no-untyped-def]
    for value in ("Email", "Email/Exchange", "Email/Exchange>Outlook", "Email/Exchange>Shared/Team mailbox"):
        fake.add_category(value)  # "Email" too, so a split at the first "/" would find a category
    await _connect(container, fake, workspace_id)
    choices = await _choices(container, workspace_id)
    assert [c for c in choices if c[1].startswith("Email")] == [
        ("Email", "Email"), ("Email/Exchange", "Email/Exchange"),
        ("Email/Exchange/Email/Exchange>Outlook", "Email/Exchange › Outlook"),
        ("Email/Exchange/Email/Exchange>Shared/Team mailbox", "Email/Exchange › Shared/Team mailbox")]
    acme = await _acme(container, workspace_id)
    writes = container.chat_commands.writes
    picked = {"whole": "Email/Exchange", "outlook": "Email/Exchange/Email/Exchange>Outlook",
              "shared": "Email/Exchange/Email/Exchange>Shared/Team mailbox",
              "typed": "Email/Exchange › Outlook", "typed halo": "Email/Exchange>Shared/Team mailbox",
              "email": "Email"}
    for subject, value in picked.items():
        await writes.submit(Actor.system(workspace_id), "new_ticket",
                            {"subject": subject, "customer": str(acme), "board": "1", "category": value})
    with pytest.raises(InvalidInput) as bad:  # a pair Halo does not list is still refused, naming the valid ones
        await writes.submit(Actor.system(workspace_id), "new_ticket",
                            {"subject": "x", "customer": str(acme), "board": "1", "category": "Email/Exchange › Calendar"})
    assert bad.value.hint == "Valid subcategories of Email/Exchange: Outlook, Shared/Team mailbox."
    for _ in range(3):
        await container.outbox_worker.drain()
    assert _created(fake) == {"whole": "Email/Exchange", "outlook": "Email/Exchange>Outlook",
                              "shared": "Email/Exchange>Shared/Team mailbox", "typed": "Email/Exchange>Outlook",
                              "typed halo": "Email/Exchange>Shared/Team mailbox", "email": "Email"}
