"""Held Teams write clicks accepted in one group commit (store/group_commit.py, bot/teams/hold.py): each click is still
its own write in the PSA, a duplicate delivery of one of them is still one write, and an invalid click among them is
refused with its own message while the others land. The real Teams SDK app behind /api/messages with signed
activities, the loopback Bot Connector, a fake ConnectWise on loopback HTTP and the real outbox worker."""

from __future__ import annotations

import asyncio
import contextvars
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from bot.api.app import create_app
from bot.main import build
from bot.teams import cards
from store.db import Scope
from store.tables import Member, Ticket
from tests.bot.teams.conftest import CHANNEL, TECH, TENANT, TeamsHarness, teams_settings, text_of
from tests.fakes.connectwise import FakeClock, FakeConnectWise

TIME = {"action": "time", "submit": True, "minutes": "15m", "notes": "Swapped the PSU", "billable": "true"}
GOOD = 4


@pytest.fixture
async def cw_teams(db_url, workspace_id, fake_bf, tmp_path):
    fake = FakeConnectWise(clock=FakeClock(datetime.now(UTC)))
    desk = min(fake.boards)
    good = [fake.add_ticket(f"Laptop {i} will not boot", board={"id": desk}) for i in range(GOOD)]
    field = fake.add_board("Field work", [("Scheduled", False, True), ("On Hold - No Time", False, False, True)])
    held = fake.add_ticket("Site visit on hold", board={"id": field},
                           status={"id": fake.status_named(field, "On Hold - No Time")["id"]})
    with fake.serve() as root:
        c = build(teams_settings(db_url, tmp_path, fake_bf))
        c.default_workspace_id = workspace_id
        conn, _ = await c.connections.add(workspace_id, kind="connectwise", name="cw",
                                          settings=fake.settings(root=root), credentials=fake.credentials())
        assert (await c.sync.run(conn.id)).ok
        async with c.db.read(Scope.workspace(workspace_id)) as s:
            bob = (await s.exec(sa.select(Member.id).where(Member.identifier == "bob"))).scalar_one()
            numbers = {int(t["id"]): int((await s.exec(sa.select(Ticket.number).where(
                Ticket.external_id == str(t["id"])))).scalar_one()) for t in [*good, held]}
        await c.directory.link_chat_user(workspace_id, bob, platform="teams", team_id=TENANT, user_id=TECH)
        await c.teams.start()
        h = TeamsHarness(create_app(c, start_background=False), c, fake_bf, workspace_id, None)
        h.cw = fake  # type: ignore[attr-defined]
        h.good = [numbers[int(t["id"])] for t in good]  # type: ignore[attr-defined]
        h.held_number = numbers[int(held["id"])]  # type: ignore[attr-defined]
        yield h
        await h.settle()
        await h.http.aclose()
        await c.aclose()


async def post_card(h: Any, number: int) -> str:
    await h.say(f"ticket {number}")
    return next(reversed(h.fake.conversations[CHANNEL]))


def click(h: Any, card_id: str, number: int) -> dict[str, Any]:
    return h.activity(kind="invoke", conversation=CHANNEL, name="adaptiveCard/action", replyToId=card_id,
                      value={"action": {"type": "Action.Execute", "verb": cards.VERB,
                                        "data": {"ref": str(number), **TIME}}, "trigger": "manual"})


async def until(check: Any, what: str) -> None:
    for _ in range(2000):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(what)


def time_entries_in_the_psa(h: Any) -> list[int]:
    return sorted(int(e["chargeToId"]) for e in h.cw.time_entries.values())


def updates_of(h: Any, card_id: str) -> list[dict[str, Any]]:
    return [c.body for c in h.fake.calls if c.op == "update" and c.activity_id == card_id]


async def test_held_clicks_in_one_commit_are_one_psa_write_each_and_an_invalid_one_is_refused_alone(cw_teams):
    h = cw_teams
    cards_of = {n: await post_card(h, n) for n in [*h.good, h.held_number]}
    h.c.teams.holds.hold_s = 0.0  # every click answered "saving": its outcome follows up
    bodies = {n: click(h, cards_of[n], n) for n in cards_of}
    claims = h.c.chat.installations.claims
    written = claims.transactions
    for body in bodies.values():  # the clicks' once-only claims go first (as at a burst's ack), so that the
        h.c.chat.claim_ahead("teams-activity", f"{CHANNEL}|{body['id']}")  # writes below all meet in the group
    await until(lambda: claims.transactions > written and not claims._waiting, "the clicks' claims were not written")
    groups = h.c.db.groups
    before, ctx = groups.groups, contextvars.copy_context()
    with h.c.chat.grouped_writes():
        async with h.c.db.write(Scope.workspace(h.ws)):  # a group is open: the held clicks' writes queue for it
            sends = [asyncio.get_running_loop().create_task(h.send(b, settle=False), context=ctx)
                     for b in [*bodies.values(), bodies[h.good[0]]]]  # the first click delivered twice at once
            answers = await asyncio.gather(*sends)
            await until(lambda: groups.waiting() >= GOOD, f"{groups.waiting()} of {GOOD} writes queued")
            assert time_entries_in_the_psa(h) == []
    await h.settle()
    assert groups.groups == before + 1 and groups.largest >= GOOD + 1  # the four writes (and ours) in one commit
    assert all("Saving your time entry" in r.text for r in answers)
    await h.c.outbox_worker.drain()
    await h.settle()

    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        ext = dict((await s.exec(sa.select(Ticket.number, Ticket.external_id))).all())
    assert time_entries_in_the_psa(h) == sorted(int(ext[n]) for n in h.good)  # one each; the duplicate is not two
    for n in h.good:
        last = updates_of(h, cards_of[n])[-1]
        assert f"#{n}" in text_of(last) and "Saving" not in json.dumps(last)

    told = [c for c in h.fake.of("create") if c.conversation_id == f"{CHANNEL};messageid={cards_of[h.held_number]}"]
    assert [t.body["text"] for t in told] == [
        f"<at>aad-bob</at> Your time entry on #{h.held_number} was not saved: The PSA takes no time on tickets in "
        "status 'On Hold - No Time'. Change the status first, or log the time in the PSA. The form above has what "
        "you sent."]
    (form,) = [a["content"] for a in updates_of(h, cards_of[h.held_number])[-1]["attachments"]]
    assert "Swapped the PSU" in json.dumps(form) and "takes no time" in json.dumps(form)  # nothing lost
    assert not any("was not saved" in str(c.body.get("text")) for c in h.fake.of("create") if c not in told)
