"""A customer's contact in Teams beyond their company's channel (core/chat/end_users.py through the real Teams
SDK app): their reply in a ticket's reply chain is their public reply when the ticket is their company's,
"tickets mine" in a chat with the bot lists their own tickets only, and someone who is no contact is still
told how to get in."""

from __future__ import annotations

import json

import sqlalchemy as sa

from store.db import Scope
from store.tables import ChannelBinding, Contact, Ticket, TimelineEntry
from tests.bot.teams.conftest import STRANGER
from tests.bot.teams.test_threads import open_thread
from tests.factories import BOARD


async def _contact(h) -> int:
    async with h.c.db.write(Scope.workspace(h.ws)) as s:
        c = Contact(workspace_id=h.ws, customer_id=h.setup.customer_id, name="Stranger",
                    email="someone@customer.example", external_id="900", connection_id=h.setup.connection_id)
        s.add(c)
        await s.flush()
        s.add(Ticket(workspace_id=h.ws, number=5100, external_id="5100", connection_id=h.setup.connection_id,
                     customer_id=h.setup.customer_id, contact_id=c.id, subject="Stranger's own laptop",
                     priority="low", priority_rank=3, stage="new", psa_status_id="10", psa_status_name="New",
                     board_external_id=BOARD, board_name="Service Desk", source="psa"))
        return int(c.id)  # type: ignore[arg-type]


async def _public_notes(h, ticket_id: int) -> list[str]:
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        rows = (await s.exec(sa.select(TimelineEntry.body).where(
            TimelineEntry.ticket_id == ticket_id, TimelineEntry.kind == "note_public"))).scalars()
        return list(rows)


async def test_a_contacts_reply_in_their_companys_ticket_chain_is_their_public_reply(teams):
    await _contact(teams)
    thread, acme_ticket = await open_thread(teams, 5001)  # ACME's ticket, posted by Bob in the tech channel
    other, globex_ticket = await open_thread(teams, 5002)
    await teams.say("Still broken here, sorry", conversation=thread, user=STRANGER)
    await teams.say("hello?", conversation=other, user=STRANGER)
    assert await _public_notes(teams, acme_ticket) == ["Still broken here, sorry"]
    assert await _public_notes(teams, globex_ticket) == []  # not their company's ticket


async def test_mine_in_a_chat_with_the_bot_lists_only_the_contacts_tickets(teams):
    await _contact(teams)
    await teams.say("tickets mine", user=STRANGER, ctype="personal", conversation="a:personal-stranger")
    shown = teams.last_text()
    assert "Stranger's own laptop" in shown and "VPN down" not in shown and "Printer jammed" not in shown
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        [binding] = (await s.exec(sa.select(ChannelBinding))).scalars().all()
    assert binding.channel_id == "a:personal-stranger" and binding.visibility == "customer"


async def test_someone_who_is_no_contact_is_still_told_how_to_get_in(teams):
    await teams.say("tickets mine", user=STRANGER, ctype="personal", conversation="a:personal-stranger")
    assert "does not know you yet" in teams.last_text()


async def test_a_ticket_cards_alert_chips_render_in_teams_for_technicians(teams):
    from dataclasses import replace

    from bot.teams import cards
    from core.context import Actor
    from core.views import AlertChip
    from tests.bot.teams.test_commands import assert_valid_card

    view = await teams.c.chat_views.ticket(Actor.system(teams.ws), "5001")
    chips = (AlertChip(source="ninja", severity="critical", state="triggered", summary="Disk C: 97% full",
                       triggers=3, url="https://rmm.example/alerts/9"),
             AlertChip(source="ninja", severity="warning", state="resolved", summary="CPU pegged"))
    card = cards.ticket_card(replace(view, alerts=chips))
    assert_valid_card(card)
    text = json.dumps(card, ensure_ascii=False)
    # the line is text shown exactly (a summary's own Markdown stays text); the RMM link is ours, on the run
    [chip] = [b for b in card["body"] if b.get("type") == "RichTextBlock"
              and b["inlines"][0]["text"] == "Alert · ninja · critical · triggered ×3 · Disk C: 97% full"]
    assert chip["inlines"][0]["selectAction"] == {"type": "Action.OpenUrl", "url": "https://rmm.example/alerts/9"}
    assert "Alert · ninja · warning · resolved · CPU pegged" in text
