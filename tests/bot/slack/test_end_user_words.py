"""An end user's `/ticket new …` and message shortcut in their customer's Slack channel, through the real bolt
app and the fake Slack API: each is their request (core/intake/requests.py), one ticket per command or
message whatever they click again, the card in the channel (or in the message's thread); technicians' forms
are unchanged, and with requests off the end user is refused as before."""

from __future__ import annotations

import json

from sqlmodel import select

from store.db import Scope
from store.tables import ChatLink, Ticket
from tests.bot.slack.conftest import ADMIN, STRANGER, TEAM

CUST = "C_CUST"


async def _customer_channel(slack) -> None:
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel=CUST)
    await slack.settle()


async def _tickets(slack, like: str) -> list[Ticket]:
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        return list((await s.exec(select(Ticket).where(Ticket.subject.like(f"%{like}%")))).all())


def _shortcut(slack, ts: str, text: str) -> dict:
    return {"type": "message_action", "callback_id": "create_ticket_from_message", "team": {"id": TEAM},
            "user": {"id": STRANGER, "team_id": TEAM}, "channel": {"id": CUST}, "trigger_id": f"trig.{ts}",
            "response_url": slack.fake.response_url(f"s{ts}"), "message": {"ts": ts, "text": text, "user": "U9"}}


async def test_ticket_new_from_an_end_user_opens_their_ticket_in_their_customers_channel(slack):
    await _customer_channel(slack)
    await slack.slash("/ticket", "new Scanner offline since Monday", user=STRANGER, channel=CUST)
    await slack.settle()
    [ticket] = await _tickets(slack, "Scanner offline")
    assert ticket.customer_id == slack.setup.customer_id and ticket.description.startswith("Scanner offline since")
    said = json.dumps(slack.fake.webhooks[-1])
    assert "opened: Scanner offline since Monday" in said
    posts = [c for c in slack.fake.of("chat.postMessage") if c.args.get("channel") == CUST]
    assert any("Scanner offline" in json.dumps(c.args) for c in posts)
    assert not slack.fake.of("views.open")  # no technician's form for an end user
    await slack.slash("/ticket", "new", user=STRANGER, channel=CUST)
    await slack.settle()
    assert "Write what you need help with" in json.dumps(slack.fake.webhooks[-1])


async def test_the_message_shortcut_from_an_end_user_opens_one_ticket_for_that_message(slack):
    await _customer_channel(slack)
    ts = "1800000200.000100"
    await slack.interactive(_shortcut(slack, ts, "Teams calls drop after 5 minutes"))
    await slack.interactive(_shortcut(slack, ts, "Teams calls drop after 5 minutes"))  # again
    await slack.settle()
    [ticket] = await _tickets(slack, "Teams calls drop")
    answers = [json.dumps(w) for w in slack.fake.webhooks[-2:]]
    assert any("opened" in a for a in answers) and any("already opened" in a for a in answers)
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        [link] = (await s.exec(select(ChatLink).where(ChatLink.ticket_id == ticket.id))).all()
    assert (link.channel_id, link.message_ts) == (CUST, ts)  # that message's thread is the ticket's


async def test_with_requests_off_an_end_users_ticket_new_is_refused_as_before(slack):
    await _customer_channel(slack)
    await slack.c.workspaces.set_option(slack.ws, "end_user_requests", "off")
    await slack.slash("/ticket", "new Scanner offline", user=STRANGER, channel=CUST)
    await slack.settle()
    assert "Only technicians can create tickets here" in json.dumps(slack.fake.webhooks[-1])
    assert await _tickets(slack, "Scanner offline") == []
