"""A technician's day in the console against a HaloPSA connection (the fake Halo behind the real composition
root): the queue, a ticket's conversation, an internal note and a public reply that e-mails the end user,
time, a status change, and a new ticket on a ticket type whose required field the create form asks for;
then the outbox delivers it all to Halo, exactly as written."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from bot.console.session import ConsoleSession
from bot.main import build
from bot.settings import Settings
from store.crypto import generate_key
from tests.fakes.halopsa import FakeHalo


class Script:
    def __init__(self, lines: Iterable[str]) -> None:
        self.lines = list(lines)
        self.prompts: list[str] = []

    async def __call__(self, prompt: str) -> str | None:
        self.prompts.append(prompt)
        return self.lines.pop(0) if self.lines else None


@pytest.fixture
def fake() -> FakeHalo:
    from datetime import UTC, datetime

    from tests.fakes.halopsa_http import HaloClock

    return FakeHalo(clock=HaloClock(datetime.now(UTC)))


@pytest.fixture
async def container(db_url, tmp_path, workspace_id, fake):  # type: ignore[no-untyped-def]
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k"), transport=fake.transport())
    c.default_workspace_id = workspace_id
    yield c
    await c.aclose()


async def test_a_technicians_day_against_halo(container, fake: FakeHalo, workspace_id: int) -> None:  # type: ignore[no-untyped-def]
    vpn = fake.add_ticket("VPN down for the Leeds office", client_id=12, user_id=501, agent_id=3)
    fake.add_reply(vpn["id"], "Still down this morning, please help!")
    fake.add_ticket("Printer jammed", client_id=13, user_id=502)
    conn, info = await container.connections.add(workspace_id, kind="halopsa", name="halo",
                                                 settings=fake.settings(rate_limit_per_second=50),
                                                 credentials=fake.credentials())
    assert "acting as Deskbridge API" in info.display_name
    assert (await container.sync.run(conn.id)).ok
    out: list[str] = []
    new_ticket = ["/ticket new", "New starter: laptop for Sam", "1", "3"]  # Acme Corp, board Service Request
    script = Script([
        "/tickets mine", "1",                                            # Bob's queue, open the VPN ticket
        "Checked the firewall logs: the tunnel flaps every 10 minutes.",  # a thread message: internal note
        "!public We replaced the VPN gateway; please try again.",         # a public reply (e-mails the user)
        "4", "45m", "Replaced the gateway", "y",                          # time
        "3", "2", "", "",                                                 # status -> In Progress
        *new_ticket, "", "", "", "", "",                                  # no contact: refused, nothing queued
        *new_ticket, "pat@acme.example", "", "", "", "Starts Monday.",    # the contact the type requires
                                                                          # (priority, type, category left
                                                                          # empty: only Change needs a category)
        "quit"])
    await ConsoleSession(container, read=script, write=out.append, as_email="bob@msp.example").run()
    text = "\n".join(out)
    prompts = "\n".join(script.prompts)
    assert "#2001     VPN down for the Leeds office" in text and "Printer jammed" not in text
    assert "[PUBLIC] Pat User-Acme: Still down this morning, please help!" in text  # Halo's conversation
    assert "Hardware › Printer" in prompts  # Halo's own categories offered on create (category_1)
    assert "Contact e-mail" in prompts and "Required on Service Request tickets." in prompts
    assert "Service Request tickets in halo need a contact." in text
    assert "Status → In Progress" in text and "45 min logged" in text
    for _ in range(5):  # deliver everything queued, as `deskbridge serve` does in the background
        await container.outbox_worker.drain()
    acts = [a for a in fake.actions[vpn["id"]].values() if a["who_agentid"] == 3]
    assert [(a["note"], a["hiddenfromuser"]) for a in acts if not a["timetaken"]] == [
        ("Checked the firewall logs: the tunnel flaps every 10 minutes.", True),
        ("We replaced the VPN gateway; please try again.", False)]
    assert [(a["timetaken"], a["note"]) for a in acts if a["timetaken"]] == [(0.75, "Replaced the gateway")]
    assert [(e["to"], e["body"]) for e in fake.emails] == [
        ("pat@acme.example", "We replaced the VPN gateway; please try again.")]  # the reply only
    assert fake.tickets[vpn["id"]]["status_id"] == 2
    [made] = [t for t in fake.tickets.values() if t["summary"] == "New starter: laptop for Sam"]
    assert (made["tickettype_id"], made["client_id"], made["user_id"]) == (2, 12, 501)
    assert made["details"] == "Starts Monday." and str(made["third_party_id_string"]).startswith("db:")
    assert not any("db:" in a["note"] for acts in fake.actions.values() for a in acts.values())


async def test_the_slack_create_modal_asks_for_the_contact_a_halo_type_requires(container, fake: FakeHalo,  # type: ignore[no-untyped-def]
                                                                                 workspace_id: int) -> None:
    """The same FormView rendered as Slack's modal: the contact input is there, and what Slack submits for it
    reaches the create (one form model for console, Slack and the API)."""
    from bot.slack.blocks import form_modal, form_values
    from core.context import Actor

    conn, _ = await container.connections.add(workspace_id, kind="halopsa", name="halo", settings=fake.settings(),
                                              credentials=fake.credentials())
    assert (await container.sync.run(conn.id)).ok
    actor = Actor.system(workspace_id)
    form = await container.chat_views.new_ticket_form(actor)
    modal = form_modal(form, {"form": form.form})
    [contact] = [b for b in modal["blocks"] if b.get("block_id") == "contact"]
    assert contact["element"]["type"] == "plain_text_input" and contact.get("optional") is True
    assert "Service Request" in str(contact)
    state = {"contact": {"v": {"type": "plain_text_input", "value": "pat@acme.example"}}}
    assert form_values(state) == {"contact": "pat@acme.example"}


async def test_a_type_with_a_mandatory_category_gets_it_from_the_create_form(container, fake: FakeHalo,  # type: ignore[no-untyped-def]
                                                                             workspace_id: int) -> None:
    """Halo's Change type makes category_1 (the ticket's category) mandatory: the create form asks for it with
    the category select (only values Halo lists; no free-text field of its own), a create without it or with a
    value Halo does not list is refused on that field with nothing queued, and with a listed one the ticket
    reaches Halo with exactly Halo's category_1 value."""
    from sqlmodel import select

    from bot.slack.blocks import form_modal
    from core.context import Actor
    from core.errors import InvalidInput
    from store.db import Scope
    from store.tables import Member, OutboxOp

    conn, _ = await container.connections.add(workspace_id, kind="halopsa", name="halo", settings=fake.settings(),
                                              credentials=fake.credentials())
    assert (await container.sync.run(conn.id)).ok
    async with container.db.read(Scope.workspace(workspace_id)) as s:
        bob = (await s.exec(select(Member).where(Member.email == "bob@msp.example"))).one()
    actor = Actor(workspace_id=workspace_id, origin=Actor.system(workspace_id).origin, member_id=bob.id,
                  display="console:bob")
    form = await container.chat_views.new_ticket_form(actor)
    assert not [f for f in form.fields if f.name.startswith("custom:")]  # no free-text category_1 field
    [field] = [f for f in form.fields if f.name == "category"]
    assert field.kind == "select" and field.hint == "Required on Change tickets."
    assert [o.label for o in field.options] == ["Hardware", "Hardware › Laptop", "Hardware › Printer",
                                                "Software › E-mail", "Software › Office"]  # as Halo lists them
    [block] = [b for b in form_modal(form, {"form": "new_ticket"})["blocks"] if b.get("block_id") == "category"]
    assert block["element"]["type"] == "static_select"
    base = {"subject": "Upgrade the firewall firmware", "customer": str(min(
        c.value for c in next(f for f in form.fields if f.name == "customer").options)), "board": "3",
        "priority": "medium"}
    with pytest.raises(InvalidInput) as missing:
        await container.chat_commands.submit(actor, "new_ticket", base)
    assert missing.value.field == "category" and "Change" in missing.value.message
    for bad, hint in (("Network", "Valid categories: Hardware, Software."),  # Halo does not list it
                      ("Software", "Pick one of: Software › E-mail, Software › Office.")):  # only as a parent
        with pytest.raises(InvalidInput) as refused:
            await container.chat_commands.submit(actor, "new_ticket", {**base, "category": bad})
        assert refused.value.field == "category" and refused.value.hint == hint and bad in refused.value.message
    with pytest.raises(InvalidInput):  # an old form's free-text field does not stand in for the category
        await container.chat_commands.submit(actor, "new_ticket", {**base, "custom:category_1": "Hardware"})
    async with container.db.read(Scope.workspace(workspace_id)) as s:
        assert (await s.exec(select(OutboxOp))).all() == []
    printer = next(o.value for o in field.options if o.label == "Hardware › Printer")
    await container.chat_commands.submit(actor, "new_ticket", {**base, "category": printer})
    await container.chat_commands.submit(actor, "new_ticket", {**base, "board": "1", "subject": "Incident"})
    for _ in range(3):
        await container.outbox_worker.drain()
    [made] = [t for t in fake.tickets.values() if t["summary"] == "Upgrade the firewall firmware"]
    assert made["tickettype_id"] == 3 and made["category_1"] == "Hardware>Printer"
    [incident] = [t for t in fake.tickets.values() if t["summary"] == "Incident"]
    assert incident["tickettype_id"] == 1 and not incident["category_1"]  # Incident does not require it
