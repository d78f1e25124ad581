"""The personal scope: `my queue` in the technician's chat with the bot is Slack's App Home (the same core
queue: their own open tickets, most urgent first, 20 a page), with paging, refresh and Open in place of
App Home's buttons; installing the personal app shows it at once."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from store.db import Scope
from store.tables import Ticket
from tests.bot.teams.conftest import STRANGER, text_of
from tests.bot.teams.test_commands import assert_valid_card, cards_in

PERSONAL = "a:1personal-bob"


def personal(h: Any, text: str, *, user: str = "aad-bob", conversation: str = PERSONAL) -> dict[str, Any]:
    """A message in the 1:1 chat with the bot, as Teams sends it there: no @mention."""
    body = h.activity(text, user=user, ctype="personal", conversation=conversation)
    body["text"], body["entities"] = text, []
    return body


async def click(h: Any, data: dict[str, Any], *, user: str = "aad-bob", conversation: str = PERSONAL) -> Any:
    body = h.activity(kind="invoke", user=user, ctype="personal", conversation=conversation,
                      name="adaptiveCard/action",
                      value={"action": {"type": "Action.Execute", "verb": "deskbridge", "data": data},
                             "trigger": "manual"})
    return await h.send(body)


def numbers(text: str) -> list[str]:
    return [line.split()[0] for line in text.splitlines() if line.startswith("#")]


async def add_bobs_tickets(h: Any, count: int) -> None:
    """`count` more open tickets assigned to Bob, every fourth one critical."""
    async with h.c.db.write(Scope.workspace(h.ws)) as s:
        for i in range(count):
            prio, rank = ("critical", 0) if i % 4 == 0 else ("low", 3)
            s.add(Ticket(workspace_id=h.ws, number=7000 + i, external_id=str(7000 + i),
                         connection_id=h.setup.connection_id, customer_id=h.setup.customer_id,
                         subject=f"Bob's {prio} {i}", priority=prio, priority_rank=rank, stage="new",
                         psa_status_id="10", psa_status_name="New", source="psa",
                         assignee_member_id=h.setup.member_id))


async def test_my_queue_in_the_personal_chat_is_the_technicians_own(teams):
    await teams.send(personal(teams, "my queue"))
    posted = teams.posted()[-1]
    (card,) = cards_in(posted)
    assert_valid_card(card)
    text = text_of(posted)
    assert "My tickets (1)" in text and "#5001 VPN down" in text
    assert "5002" not in text and "5003" not in text  # not Bob's
    assert "Filters:" not in text
    assert card["refresh"]["action"]["data"]["action"] == "my_queue"  # Teams redraws it whenever Bob looks
    assert teams.fake.calls[-1].conversation_id == PERSONAL  # answered in the 1:1 chat


async def test_my_queue_pages_most_urgent_first_and_refreshes(teams):
    await add_bobs_tickets(teams, 30)
    await teams.send(personal(teams, "home"))
    posted = teams.posted()[-1]
    (card,) = cards_in(posted)
    first = numbers(text_of(posted))
    assert len(first) == 20 and "My tickets (31)" in text_of(posted)
    # most urgent first: the 8 critical ones lead, then high (#5001), then the low ones
    assert first[:8] == sorted(first[:8]) and all(int(n[1:]) % 4 == 0 for n in first[:8])
    assert first[8] == "#5001"
    nxt = next(a for a in card["actions"] if a["title"] == "Next page")
    assert nxt["data"]["action"] == "my_queue" and nxt["data"]["cursor"]
    resp = await click(teams, nxt["data"])
    page2 = resp.json()["value"]
    assert_valid_card(page2)
    second = numbers(text_of({"value": page2}))
    assert len(second) == 11 and not set(first) & set(second)
    assert not any(a["title"] == "Next page" for a in page2.get("actions", []))
    # a ticket reassigned away disappears on the next refresh
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:
        await s.exec(sa.update(Ticket).where(Ticket.number == 5001).values(assignee_member_id=None))
    resp = await click(teams, {"action": "my_queue"})
    refreshed = text_of({"value": resp.json()["value"]})
    assert "My tickets (30)" in refreshed and "#5001" not in refreshed


async def test_open_from_my_queue_posts_the_ticket_below_and_keeps_the_queue(teams):
    await teams.send(personal(teams, "my queue"))
    (card,) = cards_in(teams.posted()[-1])
    row = next(b for b in card["body"] if b.get("type") == "Container")
    assert row["selectAction"]["data"] == {"action": "open", "ref": row["selectAction"]["data"]["ref"],
                                           "from": "my_queue"}
    before = len(teams.posted())
    resp = await click(teams, row["selectAction"]["data"])
    assert resp.status_code == 200
    assert "My tickets" in text_of({"value": resp.json()["value"]})  # the queue stays where it was
    assert len(teams.posted()) == before + 1
    ticket = teams.posted()[-1]
    assert teams.fake.calls[-1].conversation_id == PERSONAL
    (tcard,) = cards_in(ticket)
    assert_valid_card(tcard)
    assert "#5001 VPN down" in text_of(ticket)
    verbs = {a["data"]["action"] for a in tcard["actions"] if a["type"] == "Action.Execute"}
    assert {"reply", "note", "status", "time"} <= verbs  # the same actions as anywhere else


async def test_someone_not_linked_is_told_how_in_the_teams_form(teams):
    await teams.send(personal(teams, "my queue", user=STRANGER, conversation="a:1personal-stranger"))
    text = teams.last_text()
    assert "My tickets" not in text
    assert "@Deskbridge link" in text and "/deskbridge" not in text


async def test_installing_the_personal_app_shows_my_queue(teams):
    added = teams.activity(kind="installationUpdate", action="add", ctype="personal", conversation=PERSONAL)
    assert (await teams.send(added)).status_code == 200
    welcome, queue = teams.posted()[-2:]
    assert "my queue" in text_of(welcome)
    assert "My tickets (1)" in text_of(queue) and "#5001" in text_of(queue)
    assert await teams.c.teams.refs.get(teams.ws, tenant_id=teams.activity()["conversation"]["tenantId"],
                                        conversation_id=PERSONAL) is not None
