"""Slack delivery: per-channel queues (pacing, coalescing, bounds), the notifier's own queue, dispatch channels
and App Home refreshes. Unit tests use a recording client and an injected clock; the rest drive the real
bolt app against the fake Slack Web API (tests/fakes/slack_api.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select

from bot.slack.home import HomeRefresher
from bot.slack.notifier import SlackNotifier
from bot.slack.outbound import QUEUE_FULL, Posted, SlackOutbound
from connectors.sandbox.demo import customer_opens_ticket, sandbox_server, technician_changes_status
from core.chat import ChatUser
from core.context import Actor
from core.notify import TicketCreated, WriteDead
from core.queue import QueueFilter
from store.db import Scope
from store.tables import ChatLink, ChatPost, OutboxOp
from tests.bot.slack import test_technician_day
from tests.bot.slack.conftest import ADMIN, CHANNEL, TEAM
from tests.bot.slack.test_slack_app import assert_valid_blocks, thread_message
from tests.bot.slack.test_technician_day import USER

day = test_technician_day.day  # the harness against the sandbox PSA, synced once


class RecordingClient:
    """Stands in for AsyncWebClient in unit tests: records each call, answers like Slack."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._ts = 0

    async def chat_postMessage(self, **kw: Any) -> dict[str, Any]:  # noqa: N802 - slack_sdk's name
        self.calls.append(("post", kw))
        self._ts += 1
        return {"ok": True, "ts": f"{self._ts}.0001"}

    async def chat_update(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("update", kw))
        return {"ok": True}


class FakeTime:
    """A clock that moves only when the code under test sleeps, and only once the test opens the gate."""

    def __init__(self, *, gated: bool = True) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await self.gate.wait()
        self.now += seconds


async def spin(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def card(i: int) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": f"v{i}"}}]


# ---------------------------------------------------------------- SlackOutbound


async def test_a_busy_channel_does_not_hold_up_another_channel():
    ft = FakeTime()
    out = SlackOutbound(clock=ft.clock, sleep=ft.sleep)
    client = RecordingClient()
    busy = [out.post(client, "C_A", text=f"a{i}", blocks=card(i)) for i in range(5)]
    await spin()
    assert [kw["text"] for _, kw in client.calls] == ["a0"] and out.queued_in("C_A") == 4
    other = await asyncio.wait_for(out.post(client, "C_B", text="b", blocks=card(9)), 30)  # A waits on the gate for ever: "eventually"
    assert other.ts is not None and out.queued_in("C_A") == 4  # B went out while A still waits its turn
    ft.gate.set()
    await out.drain()
    assert [kw["text"] for _, kw in client.calls] == ["a0", "b", "a1", "a2", "a3", "a4"]
    assert ft.sleeps == [1.0] * 4  # one second between posts to the same channel
    assert all(f.done() and f.result().ts for f in busy)


async def test_three_updates_of_one_card_become_one_update_with_the_last_blocks():
    out = SlackOutbound(clock=FakeTime().clock)
    client = RecordingClient()
    for i in range(3):
        out.update(client, "C_A", "111.1", text=f"t{i}", blocks=card(i))
    await out.drain()
    assert client.calls == [("update", {"channel": "C_A", "ts": "111.1", "text": "t2", "blocks": card(2)})]


async def test_updates_are_paced_and_those_waiting_collapse():
    ft = FakeTime()
    out = SlackOutbound(clock=ft.clock, sleep=ft.sleep)
    client = RecordingClient()
    out.update(client, "C_A", "111.1", text="t0", blocks=card(0))
    await spin()  # sent at once
    for i in (1, 2, 3):
        out.update(client, "C_A", "111.1", text=f"t{i}", blocks=card(i))
        await spin()
    out.update(client, "C_A", "222.2", text="other card", blocks=card(7))
    ft.gate.set()
    await out.drain()
    assert [kw["text"] for _, kw in client.calls] == ["t0", "t3", "other card"]
    assert ft.sleeps == [1.0, 1.0]


async def test_full_queues_drop_the_oldest_update_first_and_refuse_posts_loudly(caplog):
    out = SlackOutbound(post_interval=0, update_interval=0, max_per_channel=3, max_total=5)
    client = RecordingClient()
    with caplog.at_level(logging.WARNING, logger="deskbridge.slack"):
        p1 = out.post(client, "C_A", text="p1", blocks=card(1))
        u1 = out.update(client, "C_A", "1.1", text="u1", blocks=card(1))
        u2 = out.update(client, "C_A", "2.2", text="u2", blocks=card(2))
        p2 = out.post(client, "C_A", text="p2", blocks=card(2))  # full: u1 (the oldest update) makes room
        p3 = out.post(client, "C_A", text="p3", blocks=card(3))  # full: u2 makes room
        p4 = out.post(client, "C_A", text="p4", blocks=card(4))  # only posts left: refused, not dropped
        u3 = out.update(client, "C_A", "3.3", text="u3", blocks=card(3))
        assert u1.result() is False and u2.result() is False and u3.result() is False
        assert p4.result().ts is None and p4.result().error == QUEUE_FULL
        # the overall bound: 3 queued in C_A, 2 more fit; then an update elsewhere gives way
        ub = out.update(client, "C_B", "9.9", text="ub", blocks=card(9))
        q1 = out.post(client, "C_C", text="q1", blocks=card(1))
        q2 = out.post(client, "C_C", text="q2", blocks=card(2))
        assert ub.result() is False and out.queued == 5
        q3 = out.post(client, "C_C", text="q3", blocks=card(3))
        assert q3.result().error == QUEUE_FULL
    assert "Slack post refused" in caplog.text and any(r.levelno == logging.ERROR for r in caplog.records)
    await out.drain()
    assert [kw["text"] for _, kw in client.calls] == ["p1", "p2", "p3", "q1", "q2"]
    assert all(f.result().ts for f in (p1, p2, p3, q1, q2))
    assert out.dropped_updates == 4 and out.refused_posts == 2


async def test_a_slack_error_is_reported_to_the_caller_and_the_channel_goes_on():
    class Failing(RecordingClient):
        async def chat_postMessage(self, **kw: Any) -> dict[str, Any]:  # noqa: N802
            from slack_sdk.errors import SlackApiError
            from slack_sdk.web.async_slack_response import AsyncSlackResponse

            if kw["text"] == "bad":
                raise SlackApiError("no", AsyncSlackResponse(client=None, http_verb="POST", api_url="x", req_args={},
                                                             data={"ok": False, "error": "not_in_channel"},
                                                             headers={}, status_code=200))
            return await super().chat_postMessage(**kw)

    out = SlackOutbound(post_interval=0)
    client = Failing()
    seen = []

    async def then(result):
        seen.append(result)

    bad = out.post(client, "C_A", text="bad", blocks=card(0), then=then)
    good = out.post(client, "C_A", text="good", blocks=card(1))
    await out.drain()
    assert bad.result().error == "not_in_channel" and good.result().ts is not None
    assert [r.error for r in seen] == ["not_in_channel"]  # the follow-up ran (post_card tells the user)


async def test_a_post_whose_answer_was_lost_is_found_in_the_channel_not_posted_twice():
    """The connection drops after Slack accepted a post: the post is looked up by the id in its message
    metadata (a card in the channel, a reply in a thread) and its ts used; nothing is posted twice. A post
    Slack never got is sent again once."""
    from bot.slack.poster import make_client
    from tests.fakes.slack_api import FakeSlackApi

    fake = await FakeSlackApi(team_id=TEAM).start()
    try:
        client = make_client(fake.api_url, "xoxb-test-token")
        out = SlackOutbound(post_interval=0)
        fake.lose_answer("chat.postMessage")
        root = out.post(client, "C_A", text="card", blocks=card(0))
        await out.drain()
        (posted,) = fake.messages  # Slack has it once
        assert root.result().ts == posted[1] and root.result().error is None
        fake.lose_answer("chat.postMessage")
        reply = out.post(client, "C_A", text="in thread", blocks=card(1), thread_ts=posted[1])
        await out.drain()
        assert len(fake.messages) == 2 and reply.result().ts is not None
        assert fake.messages[("C_A", reply.result().ts)]["text"] == "in thread"
        looked = [c.method for c in fake.calls if c.method.startswith("conversations.")]
        assert looked == ["conversations.history", "conversations.replies"]
        # a post whose connection dropped before Slack did anything is sent again, once
        fake.drop_request("chat.postMessage")
        again = out.post(client, "C_A", text="second try", blocks=card(2))
        await out.drain()
        assert again.result().ts is not None and len(fake.messages) == 3
        assert [m["text"] for m in fake.messages.values()].count("second try") == 1
    finally:
        await fake.stop()


# ---------------------------------------------------------------- the notifier's own queue


async def test_a_full_notifier_backlog_drops_and_logs_instead_of_waiting(caplog):
    class Nothing:
        async def posts_for_ticket(self, *a: Any) -> list[Any]:
            return []

    n = SlackNotifier(chat=Nothing(), views=None, poster=None, api_url="http://x", workers=1,  # type: ignore[arg-type]
                      max_backlog=1)
    now = datetime.now(UTC)
    with caplog.at_level(logging.ERROR, logger="deskbridge.slack"):
        for i in range(3):
            await n.notify(WriteDead(workspace_id=1, ticket_id=1, ticket_number=7, origin="system", occurred_at=now,
                                     op_id=i, kind="add_note", error="x"))
    assert n.dropped == 2 and "backlog full" in caplog.text
    await n.drain()
    assert n.idle
    await n.close()


async def test_app_home_publishes_are_coalesced_per_user():
    ft = FakeTime()
    published = []

    async def publish(ws: int, team: str, user: str) -> None:
        published.append((user, ft.now))

    homes = HomeRefresher(publish, interval=5.0, clock=ft.clock, sleep=ft.sleep)
    homes.opened(TEAM, "U1")
    homes.opened(TEAM, "U2")
    homes.request(1, TEAM, "U1")
    await spin()
    for _ in range(3):
        homes.request(1, TEAM, "U1")
    homes.request(1, TEAM, "U2")
    await spin()
    assert published == [("U1", 1000.0), ("U2", 1000.0)]  # first ones at once; U1's others wait
    ft.gate.set()
    await homes.drain()
    assert published[2:] == [("U1", 1005.0)] and ft.sleeps == [5.0]  # three requests, one more publish


async def test_app_home_is_published_only_for_technicians_who_have_it_open():
    ft = FakeTime(gated=False)
    published = []

    async def publish(ws: int, team: str, user: str) -> None:
        published.append(user)

    homes = HomeRefresher(publish, open_for=600.0, clock=ft.clock, sleep=ft.sleep)
    homes.opened(TEAM, "U_LOOKS")
    homes.opened(TEAM, "U_LEFT")
    ft.now += 601.0  # U_LEFT opened Home ten minutes ago and never since ...
    homes.opened(TEAM, "U_LOOKS")  # ... U_LOOKS just did
    for user in ("U_LOOKS", "U_LEFT", "U_NEVER"):
        homes.request(1, TEAM, user)
    await homes.drain()
    assert published == ["U_LOOKS"] and homes.skipped == 2


async def test_app_home_refreshes_are_paced_within_tier_4_oldest_request_first():
    """Forty technicians with Home open, each queue changed at once: the burst goes at once, the rest at the
    team's rate (per_minute), in the order they were asked for; every one is published, once."""
    ft = FakeTime(gated=False)
    published: list[tuple[str, str, float]] = []

    async def publish(ws: int, team: str, user: str) -> None:
        published.append((team, user, ft.now))

    homes = HomeRefresher(publish, per_minute=60.0, burst=10, interval=2.0, clock=ft.clock, sleep=ft.sleep)
    users = [f"U{i:02d}" for i in range(40)]
    homes.opened("T_OTHER", "U00")
    homes.request(1, "T_OTHER", "U00")  # another team: its own budget, not behind this one
    for u in users:
        homes.opened(TEAM, u)
    for u in users:
        homes.request(1, TEAM, u)
    homes.request(1, TEAM, "U05")  # asked again while due: still one publish
    await homes.drain()
    assert [(u, at) for team, u, at in published if team == "T_OTHER"] == [("U00", 1000.0)]
    ours = [(u, at) for team, u, at in published if team == TEAM]
    assert [u for u, _ in ours] == users  # each once, oldest request first
    assert [at for _, at in ours] == [1000.0] * 10 + [1000.0 + n for n in range(1, 31)]  # burst, then 1/s
    assert homes.published == 41


async def test_a_change_during_a_home_publish_publishes_the_newest_state_after_it():
    ft = FakeTime(gated=False)
    state = {"v": 1}
    shown: list[int] = []
    release = asyncio.Event()

    async def publish(ws: int, team: str, user: str) -> None:
        seen = state["v"]  # the view is built from the state of the publish's moment ...
        if not shown:
            await release.wait()  # ... and this first one is slow
        shown.append(seen)

    homes = HomeRefresher(publish, interval=2.0, clock=ft.clock, sleep=ft.sleep)
    homes.opened(TEAM, "U1")
    homes.request(1, TEAM, "U1")
    await spin()
    state["v"] = 2  # changed while the first publish is on its way
    homes.request(1, TEAM, "U1")
    release.set()
    await homes.drain()
    assert shown == [1, 2] and ft.sleeps == [2.0]


async def test_app_homes_of_different_users_publish_at_once_but_one_user_never_twice_at_once():
    ft = FakeTime(gated=False)
    started: list[str] = []
    release = asyncio.Event()

    async def publish(ws: int, team: str, user: str) -> None:
        started.append(user)
        await release.wait()  # building a Home is slow on a busy process

    homes = HomeRefresher(publish, interval=0.0, concurrency=2, clock=ft.clock, sleep=ft.sleep)
    for u in ("U1", "U2", "U3"):
        homes.opened(TEAM, u)
        homes.request(1, TEAM, u)
    await spin()
    homes.request(1, TEAM, "U1")  # U1 changed again while its publish is in flight
    await spin()
    assert started == ["U1", "U2"]  # two at once (concurrency), not one after the other; U1 not twice
    release.set()
    await homes.drain()
    assert sorted(started[2:]) == ["U1", "U3"] and homes.published == 4


# ---------------------------------------------------------------- through the harness


async def test_a_busy_channel_does_not_occupy_the_post_ack_workers(slack):
    await slack.slash("/tickets", "mine")  # links Bob's account first (one auto-link attempt per user)
    slack.fake.clear()
    ft = FakeTime()
    out = SlackOutbound(clock=ft.clock, sleep=ft.sleep)
    slack.c.slack.poster.outbound = out
    for _ in range(5):
        await slack.slash("/ticket", "5001", channel="C_BUSY", settle=False)
    # The busy channel's posts wait on the fake sleep until the test opens the gate: were they holding the
    # post-ack workers, these drains would never finish (the bounds are only "eventually", for a loaded machine).
    await asyncio.wait_for(slack.c.slack.context.work.drain(), 30)
    assert out.queued_in("C_BUSY") == 4 and len(slack.fake.of("chat.postMessage")) == 1
    # another technician clicks a button: the form opens although C_BUSY has posts waiting
    await slack.interactive(slack.action_payload("status", "5001", message_ts="1.1"), settle=False)
    await asyncio.wait_for(slack.c.slack.context.work.drain(), 30)
    assert slack.fake.of("views.open")  # opened while the gate still holds C_BUSY's posts
    assert out.queued_in("C_BUSY") == 4
    ft.gate.set()
    await slack.settle()
    assert [c.args["channel"] for c in slack.fake.of("chat.postMessage")] == ["C_BUSY"] * 5
    assert ft.sleeps == [1.0] * 4
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        links = (await s.exec(select(ChatLink).where(ChatLink.channel_id == "C_BUSY"))).all()
    assert len(links) == 5  # every card became a thread once posted


async def test_notify_returns_before_slack_is_called(slack):
    ticket_id = await ticket_id_of(slack, 5001)
    await slack.c.chat.record_post(slack.ws, ticket_id=ticket_id, platform="slack", team_id=TEAM, channel_id=CHANNEL,
                                   message_ts="1700000000.000500")
    slack.fake.fail("chat.postMessage", status=429, retry_after=1)  # Slack is slow: the post takes 1 s+
    t0 = time.monotonic()
    await slack.c.notifier.notify(WriteDead(workspace_id=slack.ws, ticket_id=ticket_id, ticket_number=5001,
                                            origin="system", occurred_at=datetime.now(UTC), op_id=5, kind="add_note",
                                            error="HTTP 400"))
    # the outbox worker is free at once: notify came back before Slack was called at all (had it waited for the
    # post, both the 429 and the retry would be recorded; a wall-clock bound here failed on a loaded machine)
    assert slack.fake.calls == []
    await slack.settle()
    posts = slack.fake.of("chat.postMessage")
    assert len(posts) == 2 and "outbox redrive 5" in posts[1].args["text"]
    assert posts[1].at - t0 >= 0.9


async def test_a_dead_write_says_what_an_admin_can_do_about_its_cause(slack):
    ticket_id = await ticket_id_of(slack, 5001)
    await slack.c.chat.record_post(slack.ws, ticket_id=ticket_id, platform="slack", team_id=TEAM, channel_id=CHANNEL,
                                   message_ts="1700000000.000600")
    for op_id, cause in ((7, "credentials"), (8, "deleted"), (9, "refused"), (10, "permission")):
        await slack.c.notifier.notify(WriteDead(workspace_id=slack.ws, ticket_id=ticket_id, ticket_number=5001,
                                                origin="system", occurred_at=datetime.now(UTC), op_id=op_id,
                                                kind="add_note", error="summary: Needs <b>100</b> & less",
                                                cause=cause, connection="cw-prod"))
    await slack.settle()
    texts = [p.args["text"] for p in slack.fake.of("chat.postMessage")]
    assert any("deskbridge connection reauth cw-prod" in x and "redrive 7" in x for x in texts)
    assert any("no longer in the PSA" in x and "discard 8" in x and "redrive 8" not in x for x in texts)
    # Refused content: the PSA's reason (escaped for mrkdwn), and that a retry as it is would be refused again.
    (refused,) = [x for x in texts if "redrive 9" in x]
    assert "summary: Needs &lt;b&gt;100&lt;/b&gt; &amp; less" in refused
    assert "refused again" in refused and "discard 9" in refused
    (role,) = [x for x in texts if "redrive 10" in x]
    assert "security role" in role and "reauth" not in role


async def ticket_id_of(h: Any, number: int) -> int:
    page = await h.c.queue.list(Actor.system(h.ws), QueueFilter(text=str(number)), limit=5)
    return next(t.id for t in page.items if t.number == number)


async def test_dispatch_channels_get_new_tickets_and_replies_there_become_notes(day):
    h, c = day, day.c
    server = sandbox_server(h.conn.settings)
    actor = Actor.system(h.ws)
    company, other = server.data["companies"][0], server.data["companies"][1]
    me = next(m for m in await c.directory.members(h.ws) if m.email)
    h.fake.add_user(USER, email=me.email, name=me.name)

    r = await h.slash("/deskbridge", "bind dispatch", user=ADMIN, channel="C_DISPATCH")
    assert r.status_code == 200 and "dispatch" in h.fake.webhooks[-1]["text"].lower()

    def user(channel: str) -> ChatUser:
        return ChatUser(platform="slack", team_id=TEAM, user_id="U1", channel_id=channel)

    await c.chat.bind(actor, user("C_DISPATCH_OTHER"), "dispatch", other["name"])  # another customer's dispatch
    await c.chat.bind(actor, user("C_SHARED"), "customer", company["name"], shared=True)
    await c.chat.bind(actor, user("C_SHARED"), "dispatch", company["name"], shared=True)
    h.fake.clear()

    customer_opens_ticket(server, company["identifier"], "Laptop will not boot after BIOS update")
    await c.sync.run(h.conn.id)
    await h.settle()
    posts = {p.args["channel"]: p for p in h.fake.of("chat.postMessage")
             if "Laptop will not boot" in p.args["text"]}
    assert sorted(posts) == ["C_DISPATCH", "C_SHARED"]  # not the other customer's dispatch channel
    assert_valid_blocks(posts["C_DISPATCH"].args["blocks"])
    actions = [e["action_id"] for b in posts["C_DISPATCH"].args["blocks"] if b["type"] == "actions"
               for e in b["elements"]]
    assert "db_note" in actions
    shared = json.dumps(posts["C_SHARED"].args["blocks"])
    assert "db_note" not in shared and "db_status" not in shared  # the customer-audience card

    new = next(t for t in (await c.queue.list(actor, QueueFilter(text="Laptop will not boot"), limit=5)).items)
    threads = {p.channel_id: p for p in await c.chat.posts_for_ticket(h.ws, new.id, "slack")}
    assert set(threads) == {"C_DISPATCH", "C_SHARED"}
    async with c.db.read(Scope.workspace(h.ws)) as s:  # each card's own record (redaction), written with its thread
        recorded = {(p.channel_id, p.message_ts, p.kind, p.audience) for p in (await s.exec(
            select(ChatPost).where(ChatPost.ticket_id == new.id))).all()}
    assert recorded == {("C_DISPATCH", threads["C_DISPATCH"].thread_ts, "card", "tech"),
                        ("C_SHARED", threads["C_SHARED"].thread_ts, "card", "customer")}

    # a technician answers in the dispatch thread: it becomes a note on that ticket
    await thread_message(h, "On my way to the customer", event_id="EvDisp1", user=USER,
                         thread_ts=threads["C_DISPATCH"].thread_ts, channel="C_DISPATCH")
    async with c.db.read(Scope.workspace(h.ws)) as s:
        ops = (await s.exec(select(OutboxOp).where(OutboxOp.ticket_id == new.id))).all()
    assert [(o.kind, o.payload["text"]) for o in ops] == [("add_note", "On my way to the customer")]

    # the same ticket announced again (a replayed event): no second card where it already has a thread
    h.fake.clear()
    await c.notifier.notify(TicketCreated(workspace_id=h.ws, ticket_id=new.id, ticket_number=new.number,
                                          origin="psa", occurred_at=datetime.now(UTC), subject=new.subject,
                                          customer_id=new.customer_id))
    await h.settle()
    assert h.fake.of("chat.postMessage") == []


async def test_dispatch_channel_rules_are_decided_in_core(day):
    h, c = day, day.c
    actor = Actor.system(h.ws)
    customers = await c.directory.customers(h.ws)
    a, b = customers[0], customers[1]

    def user(channel: str) -> ChatUser:
        return ChatUser(platform="slack", team_id=TEAM, user_id="U1", channel_id=channel)

    await c.chat.bind(actor, user("C_ALL"), "dispatch")
    await c.chat.bind(actor, user("C_A"), "customer", a.name)  # a technicians' channel for customer A ...
    await c.chat.bind(actor, user("C_A"), "dispatch")  # ... also bound dispatch: A's tickets only
    await c.chat.bind(actor, user("C_SHARED_ALL"), "dispatch", shared=True)  # shared, no customer: nothing
    await c.chat.bind(actor, user("C_NOT_DISPATCH"), "customer", a.name)
    got_a = await c.chat.dispatch_channels(h.ws, "slack", customer_id=a.id)
    got_b = await c.chat.dispatch_channels(h.ws, "slack", customer_id=b.id)
    assert sorted(got_a) == [(TEAM, "C_A", "tech"), (TEAM, "C_ALL", "tech")]
    assert got_b == [(TEAM, "C_ALL", "tech")]


async def test_app_home_is_republished_after_assign_to_me_is_delivered(day):
    h, c = day, day.c
    me = next(m for m in await c.directory.members(h.ws) if m.email)
    h.fake.add_user(USER, email=me.email, name=me.name)
    await h.event({"type": "app_home_opened", "user": USER, "tab": "home", "channel": "D1"}, event_id="EvHome1")
    items = (await c.queue.list(Actor.system(h.ws), QueueFilter(), limit=100)).items
    target = next(t for t in items if t.assignee_id != me.id)
    await h.interactive(h.action_payload("assign_me", str(target.number), user=USER))
    h.fake.clear()
    assert await c.outbox_worker.drain() >= 1
    await h.settle()
    published = h.fake.of("views.publish")
    assert [p.args["user_id"] for p in published] == [USER]
    view = published[0].args["view"]
    assert view["type"] == "home" and f"#{target.number}" in json.dumps(view["blocks"])
    assert_valid_blocks(view["blocks"], limit=100)


async def test_app_home_follows_a_reassignment_in_the_psa_for_old_and_new_assignee(day):
    h, c = day, day.c
    server = sandbox_server(h.conn.settings)
    members = [m for m in await c.directory.members(h.ws) if m.email]
    items = (await c.queue.list(Actor.system(h.ws), QueueFilter(), limit=100)).items
    target = next(t for t in items if t.assignee_id is not None)
    old = next(m for m in members if m.id == target.assignee_id)
    new = next(m for m in members if m.id != old.id)
    for uid, m in (("U_OLD", old), ("U_NEW", new)):
        h.fake.add_user(uid, email=m.email, name=m.name)
        await c.chat.link_user(h.ws, ChatUser(platform="slack", team_id=TEAM, user_id=uid), m.email)
        await h.event({"type": "app_home_opened", "user": uid, "tab": "home", "channel": "D1"}, event_id=f"Ev{uid}")
    h.fake.clear()
    technician_changes_status(server, str(target.number), target.status_name, technician=new.email)
    await c.sync.run(h.conn.id)
    await h.settle()
    published = {p.args["user_id"]: json.dumps(p.args["view"]["blocks"]) for p in h.fake.of("views.publish")}
    assert set(published) == {"U_OLD", "U_NEW"}
    assert f"#{target.number}" in published["U_NEW"] and f"#{target.number}" not in published["U_OLD"]


async def test_a_ticket_created_here_is_dispatched_once_the_psa_has_it(day):
    """Chat and API creations emit no TicketCreated: their delivery to the PSA dispatches them, skipping a
    channel where the ticket already has a thread (e.g. the card of the form that created it)."""
    h, c = day, day.c
    server = sandbox_server(h.conn.settings)
    me = next(m for m in await c.directory.members(h.ws) if m.email)
    h.fake.add_user(USER, email=me.email, name=me.name)
    await c.chat.link_user(h.ws, ChatUser(platform="slack", team_id=TEAM, user_id=USER), me.email)
    tech = await c.chat.member_actor(h.ws, "slack", TEAM, USER)
    assert tech is not None and tech.member_id == me.id
    system = Actor.system(h.ws)
    for channel in ("C_DISPATCH", "C_WHERE_CREATED"):
        await c.chat.bind(system, ChatUser(platform="slack", team_id=TEAM, user_id="U1", channel_id=channel),
                          "dispatch")
    customer = (await c.directory.customers(h.ws))[0]
    detail = await c.tickets.create(tech, subject="New starter needs a laptop", customer_id=customer.id,
                                    board_external_id=str(server.data["boards"][0]["id"]))
    await c.chat.record_post(h.ws, ticket_id=detail.summary.id, platform="slack", team_id=TEAM,
                             channel_id="C_WHERE_CREATED", message_ts="1700000000.000700")
    h.fake.clear()
    await h.settle()
    assert h.fake.of("chat.postMessage") == []  # not dispatched while the PSA does not have it yet
    assert await c.outbox_worker.drain() == 1
    await h.settle()
    cards = [p for p in h.fake.of("chat.postMessage") if "New starter needs a laptop" in p.args["text"]]
    assert [p.args["channel"] for p in cards] == ["C_DISPATCH"]
    assert {p.channel_id for p in await c.chat.posts_for_ticket(h.ws, detail.summary.id, "slack")} == {
        "C_DISPATCH", "C_WHERE_CREATED"}


async def test_which_app_homes_a_change_touches_is_decided_in_core(day):
    h, c = day, day.c
    members = [m for m in await c.directory.members(h.ws) if m.email]
    items = (await c.queue.list(Actor.system(h.ws), QueueFilter(), limit=100)).items
    target = next(t for t in items if t.assignee_id is not None)
    owner = next(m for m in members if m.id == target.assignee_id)
    other = next(m for m in members if m.id != owner.id)
    for uid, m in (("U_OWNER", owner), ("U_OTHER", other)):
        await c.chat.link_user(h.ws, ChatUser(platform="slack", team_id=TEAM, user_id=uid), m.email)

    async def targets(**kw: Any) -> list[str]:
        return [u for _, u in await c.chat.app_home_targets(h.ws, "slack", ticket_id=target.id, **kw)]

    assert await targets(changes={"stage": ("in_progress", "closed")}) == ["U_OWNER"]  # closed: off their queue
    assert await targets(created=True) == ["U_OWNER"]
    assert sorted(await targets(changes={"assignee_member_id": (other.id, owner.id)})) == ["U_OTHER", "U_OWNER"]
    assert await targets(changes={"contact_id": (1, 2)}) == []  # nothing a queue row shows
    assert await targets() == []
    assert await c.chat.app_home_targets(h.ws, "teams", ticket_id=target.id, created=True) == []  # no identity there
    assert await c.chat.member_actor(h.ws, "slack", TEAM, "U_NOBODY") is None


async def test_card_updates_keep_within_the_workspace_budget_and_keep_collapsing():
    """chat.update is tier 3 per workspace (~50/min): across channels, past the burst, updates wait for the
    budget (coalescing meanwhile) instead of running into 429s."""
    ft = FakeTime()
    out = SlackOutbound(clock=ft.clock, sleep=ft.sleep, updates_per_minute=60, update_burst=3)
    client, other_team = RecordingClient(), RecordingClient()
    client.token, other_team.token = "xoxb-team-a", "xoxb-team-b"
    for i in range(5):  # five cards in five channels of one workspace
        out.update(client, f"C_{i}", f"{i}.1", text=f"card {i}", blocks=card(i))
    out.update(other_team, "C_B", "9.1", text="team b", blocks=card(9))
    await spin()
    assert len(client.calls) == 3 and len(other_team.calls) == 1  # the burst; the other workspace is unaffected
    out.update(client, "C_4", "4.1", text="card 4 newer", blocks=card(44))  # collapses while it waits
    ft.gate.set()
    await out.drain()
    texts = [kw["text"] for _, kw in client.calls]
    assert texts[:3] == ["card 0", "card 1", "card 2"] and sorted(texts[3:]) == ["card 3", "card 4 newer"]
    assert ft.now - 1000.0 >= 2.0 - 1e-9  # two more updates at 1/s once the burst was spent


async def test_a_post_overtakes_an_update_waiting_for_the_workspace_budget():
    ft = FakeTime()
    out = SlackOutbound(clock=ft.clock, sleep=ft.sleep, updates_per_minute=6, update_burst=1, update_interval=0)
    client = RecordingClient()
    client.token = "xoxb-team-a"
    out.update(client, "C_A", "1.1", text="card", blocks=card(1))
    out.update(client, "C_A", "2.2", text="card 2", blocks=card(2))  # must wait ~10 s for the budget
    out.post(client, "C_A", text="confirmation", blocks=card(3))
    await spin()
    assert [kw["text"] for _, kw in client.calls] == ["card", "confirmation"]  # the post did not wait 10 s
    ft.gate.set()
    await out.drain()
    assert [kw["text"] for _, kw in client.calls][-1] == "card 2"


async def test_new_tickets_build_no_card_when_no_channel_takes_them(day, monkeypatch):
    """A sync bringing new tickets into a workspace with no dispatch channel reads only their headers: no ticket
    card (timeline, SLA, AI, context) is built for a post nobody gets."""
    h, c = day, day.c
    server = sandbox_server(h.conn.settings)
    built: list[int] = []
    real = c.chat_views.ticket_by_id

    async def counting(actor: Actor, ticket_id: int, **kw: Any) -> Any:
        built.append(ticket_id)
        return await real(actor, ticket_id, **kw)

    monkeypatch.setattr(c.chat_views, "ticket_by_id", counting)
    h.fake.clear()
    for n in range(3):
        customer_opens_ticket(server, server.data["companies"][0]["identifier"], f"Nobody dispatches this {n}")
    await c.sync.run(h.conn.id)
    await h.settle()
    assert built == [] and h.fake.of("chat.postMessage") == []
    await c.chat.bind(Actor.system(h.ws), ChatUser(platform="slack", team_id=TEAM, user_id="U1",
                                                   channel_id="C_DISPATCH"), "dispatch", None)
    customer_opens_ticket(server, server.data["companies"][0]["identifier"], "Now a channel takes it")
    await c.sync.run(h.conn.id)
    await h.settle()
    assert len(built) == 1 and [p.args["channel"] for p in h.fake.of("chat.postMessage")] == ["C_DISPATCH"]


async def test_a_rendered_post_is_built_when_its_turn_comes_and_nothing_is_posted_for_none():
    """A new ticket's dispatch card is built in its channel's drain task when its turn comes (not by the
    notifier's worker): the post shows the state of that moment; a render with nothing to show posts nothing."""
    from bot.slack.outbound import NOTHING_TO_POST

    ft = FakeTime()
    out = SlackOutbound(clock=ft.clock, sleep=ft.sleep)
    client = RecordingClient()
    state = {"v": "old"}
    built: list[str] = []

    async def render_card() -> tuple[str, list[dict[str, Any]]]:
        built.append(state["v"])
        return f"card {state['v']}", [{"type": "section", "text": {"type": "mrkdwn", "text": state["v"]}}]

    async def nothing() -> None:
        return None

    out.post(client, "C_A", text="first", blocks=card(0))
    later = out.post(client, "C_A", render=render_card)
    gone = out.post(client, "C_B", render=nothing)
    await spin()
    assert built == [] and [kw["text"] for _, kw in client.calls] == ["first"]  # queued behind the first post
    state["v"] = "new"  # changed while it waited for the channel's pace
    ft.gate.set()
    await out.drain()
    assert built == ["new"] and [kw["text"] for _, kw in client.calls] == ["first", "card new"]
    assert (await later).ts is not None and (await gone) == Posted(None, NOTHING_TO_POST)
