"""A ticket card's AI part is computed once for the cards of the same viewer and ticket built while what the AI reads
of the ticket is unchanged (core/chat/cards.py AI_KEEP_S): a burst of "Add time" clicks no longer computes it per
click. A note (the AI reads none) keeps it; a new subject, or a change of the AI settings, computes it again."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from core.context import Actor
from store.db import Scope
from store.enums import Stage
from store.tables import Ticket
from tests.bot.teams.test_write_hold import TIME, card_in_channel, click


def counting(teams: Any) -> list[int]:
    """Count the AI suggester's computations for the clicking technician (it is injected into the card builder:
    core/chat/cards.py AiSuggester); cards redrawn for the channel by the notifier are the system's own."""
    cards = teams.c.chat_views.cards
    calls: list[int] = []
    real = cards._ai

    async def counted(actor: Actor, ticket_id: int) -> Any:
        if actor.member_id == teams.setup.member_id:
            calls.append(ticket_id)
        return await real(actor, ticket_id)

    cards._ai = counted
    cards._ai_kept.clear()  # the card's own post computed it already: start from nothing kept
    return calls


async def test_write_clicks_on_one_ticket_share_the_cards_ai_part(teams):
    card_id = await card_in_channel(teams)
    calls = counting(teams)
    for _ in range(3):
        resp = await teams.send(click(teams, card_id, TIME))
        assert "queued for the PSA" in resp.text
    assert len(calls) == 1  # three cards, three time entries, one AI computation


async def test_a_note_keeps_it_a_new_subject_or_an_ai_setting_computes_it_again(teams):
    card_id = await card_in_channel(teams)
    calls = counting(teams)
    await teams.send(click(teams, card_id, TIME))
    await teams.send(click(teams, card_id, {"action": "reply", "submit": True, "text": "Checked the PSU fan",
                                            "visibility": "internal"}))
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:  # moved to another open stage, someone else's
        await s.exec(sa.update(Ticket).where(Ticket.number == 5001).values(stage=Stage.WAITING,
                                                                          psa_status_name="Waiting on customer",
                                                                          assignee_member_id=None))
    await teams.send(click(teams, card_id, TIME))
    assert len(calls) == 1  # the AI reads no notes, status or owner (core/chat/cards.py ai_basis): still right
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:
        await s.exec(sa.update(Ticket).where(Ticket.number == 5001).values(subject="Printer jams on tray 2"))
    await teams.send(click(teams, card_id, TIME))
    assert calls == [calls[0]] * 2  # the text it matches on changed: computed again
    await teams.c.ai.set_setting(Actor(workspace_id=teams.ws, origin="system", is_admin=True), "drafts", "on")
    resp = await teams.send(click(teams, card_id, TIME))
    assert len(calls) == 3 and "Draft a reply" in resp.text  # the new setting shows at once
