"""A refused held click's form, given back on its card with what the technician sent, is their work in progress
(bot/teams/redraws.py): a later redraw of the ticket (another write delivered, a change in the PSA) does not draw
the ticket over it. Once someone clicks on the card again, its answer replaces the form and redraws reach it again.
Signed activities through `/api/messages`, the real SDK's Bot Connector client, the loopback connector."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from core.notify import TicketChanged
from tests.bot.teams.conftest import text_of
from tests.bot.teams.test_threads import open_thread
from tests.bot.teams.test_write_hold import BAD_TIME, click, hold_everything, updates_of


async def changed_in_the_psa(h: Any, ticket_id: int) -> None:
    await h.c.notifier.notify(TicketChanged(workspace_id=h.ws, ticket_id=ticket_id, ticket_number=5001, origin="psa",
                                            occurred_at=datetime.now(UTC), changes={"priority": ("high", "low")}))
    await h.settle()


async def test_a_refused_form_on_its_card_is_not_drawn_over_until_the_card_is_clicked_again(teams):
    thread, ticket_id = await open_thread(teams)
    card_id = thread.split(";messageid=")[1]
    hold_everything(teams)
    await teams.send(click(teams, card_id, BAD_TIME))
    (form,) = updates_of(teams, card_id)
    assert "'banana' is not a duration." in json.dumps(form) and "Reseated the RAM and ran memtest" in json.dumps(form)
    assert any("The form above has what you sent." in str(c.body.get("text")) for c in teams.fake.of("create"))

    await changed_in_the_psa(teams, ticket_id)
    await changed_in_the_psa(teams, ticket_id)
    assert updates_of(teams, card_id) == [form]  # what they typed is still on the card
    assert teams.c.teams.notifier.redraws.kept_forms == 2

    back = await teams.send(click(teams, card_id, {"action": "open"}))  # they close the form: the ticket again
    assert "#5001 VPN down" in text_of({"value": back.json()["value"]})
    await changed_in_the_psa(teams, ticket_id)
    updates = updates_of(teams, card_id)
    assert len(updates) == 2 and "#5001 VPN down" in text_of(updates[-1]) and "banana" not in json.dumps(updates[-1])


async def test_the_refused_click_redelivered_does_not_release_its_form(teams):
    """Teams retrying the refused click itself is not someone acting on the form."""
    thread, ticket_id = await open_thread(teams)
    card_id = thread.split(";messageid=")[1]
    hold_everything(teams)
    body = click(teams, card_id, BAD_TIME)
    await teams.send(body)
    await teams.send(body)  # the same activity again
    await changed_in_the_psa(teams, ticket_id)
    (form,) = updates_of(teams, card_id)
    assert "Reseated the RAM and ran memtest" in json.dumps(form)
