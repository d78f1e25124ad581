"""What a customer sees of a ticket's files: only the files that are public. A technician's file dropped in an
internal thread is internal (core/chat/writes.py), and its name ("fw-admin-passwords.xlsx") is the MSP's
business as much as the internal note it came with."""

from __future__ import annotations

import json

from core.context import Actor
from tests.bot.slack.conftest import ADMIN, STRANGER, TECH


async def _files(slack) -> None:
    tech = Actor.system(slack.ws)
    await slack.c.tickets.attach(tech, 5001, filename="fw-admin-passwords.xlsx", content=b"secret",
                                 visibility="internal")
    await slack.c.tickets.attach(tech, 5001, filename="setup-guide.pdf", content=b"guide", visibility="public")


async def test_a_customer_card_names_public_files_only(slack):
    await _files(slack)
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
    await slack.slash("/ticket", "5001", user=STRANGER, channel="C_ACME")
    text = json.dumps(slack.fake.of("chat.postMessage")[-1].args["blocks"])
    assert "VPN down" in text and "setup-guide.pdf" in text
    assert "fw-admin-passwords" not in text
    # a technician in a tech channel sees both
    await slack.slash("/ticket", "5001", user=TECH, channel="C_TECH2")
    tech = json.dumps(slack.fake.of("chat.postMessage")[-1].args["blocks"])
    assert "fw-admin-passwords.xlsx" in tech and "setup-guide.pdf" in tech


async def test_a_file_the_psa_did_not_say_is_public_stays_off_a_customer_card(slack):
    """A file synced from the PSA whose visibility the PSA does not tell is not shown to the customer."""
    from sqlmodel import select

    from store.db import Scope
    from store.enums import EntryKind
    from store.tables import Ticket, TimelineEntry
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:
        t = (await s.exec(select(Ticket).where(Ticket.number == 5001))).one()
        s.add(TimelineEntry(workspace_id=slack.ws, ticket_id=t.id, kind=EntryKind.ATTACHMENT, origin="psa",
                            external_id="att-9", body="server-rack-photo.jpg",
                            data={"filename": "server-rack-photo.jpg", "size": 10, "content_type": "image/jpeg"}))
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
    await slack.slash("/ticket", "5001", user=STRANGER, channel="C_ACME")
    assert "server-rack-photo" not in json.dumps(slack.fake.of("chat.postMessage")[-1].args["blocks"])
    await slack.slash("/ticket", "5001", user=TECH, channel="C_TECH2")
    assert "server-rack-photo.jpg" in json.dumps(slack.fake.of("chat.postMessage")[-1].args["blocks"])


async def test_a_customer_card_shows_replies_without_the_write_plumbing(slack):
    """Queued or refused is the MSP's business (the technician's card says it): the customer reads the reply."""
    from sqlmodel import select

    from store.db import Scope
    from store.enums import OutboxStatus
    from store.tables import OutboxOp
    tech = Actor.system(slack.ws)
    await slack.c.tickets.comment(tech, 5001, "We replaced the VPN certificate.", visibility="public")
    await slack.c.tickets.comment(tech, 5001, "Please restart your laptop.", visibility="public")
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:
        first = (await s.exec(select(OutboxOp).order_by(OutboxOp.id))).first()
        first.status, first.last_error = OutboxStatus.DEAD, "HTTP 400 from the PSA"
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
    await slack.slash("/ticket", "5001", user=STRANGER, channel="C_ACME")
    text = json.dumps(slack.fake.of("chat.postMessage")[-1].args["blocks"])
    assert "We replaced the VPN certificate." in text and "Please restart your laptop." in text
    for plumbing in ("not in the PSA", "refused", "queued"):
        assert plumbing not in text, plumbing
    await slack.slash("/ticket", "5001", user=TECH, channel="C_TECH2")
    tech_text = json.dumps(slack.fake.of("chat.postMessage")[-1].args["blocks"])
    assert "not in the PSA (refused)" in tech_text and "queued" in tech_text  # technicians still see both


async def test_customers_see_people_not_chat_ids_or_api_key_names(slack):
    """Who wrote a reply, as a customer reads it: a person's name or the MSP's support, never a chat user id
    ("slack:U_ANN (Ann)") or an API key's name ("apikey:portal-sync")."""
    from core.context import Actor as A
    from store.enums import Origin
    api = A(workspace_id=slack.ws, origin=Origin.API, display="apikey:portal-sync")
    contact = A(workspace_id=slack.ws, origin=Origin.SLACK, display="slack:U_ANN99 (Ann Lee)", is_member=False,
                customer_scope_id=slack.setup.customer_id)
    await slack.c.tickets.comment(api, 5001, "Your new laptop ships today.", visibility="public")
    await slack.c.tickets.contact_reply(contact, 5001, "Great, thanks!")
    await slack.slash("/deskbridge", "bind customer ACME shared", user=ADMIN, channel="C_ACME")
    await slack.slash("/ticket", "5001", user=STRANGER, channel="C_ACME")
    post = slack.fake.of("chat.postMessage")[-1].args
    text = json.dumps(post["blocks"])
    assert "Your new laptop ships today." in text and "Ann Lee" in text
    for internal in ("apikey", "portal-sync", "U_ANN99", "slack:"):
        assert internal not in text, internal
    # a public note mirrored into the customer's thread (a channel shared with them) names its author the same way
    slack.fake.clear()
    await slack.c.tickets.comment(api, 5001, "Tracking number 1Z999.", visibility="public")
    await slack.settle()
    mirrored = [json.dumps(c.args) for c in slack.fake.of("chat.postMessage") if "1Z999" in json.dumps(c.args)
                and c.args.get("channel") == "C_ACME"]
    assert mirrored and all("apikey" not in m and "portal-sync" not in m for m in mirrored), mirrored
