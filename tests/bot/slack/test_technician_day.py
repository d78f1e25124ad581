"""A technician's day in Slack against the sandbox PSA: queue, card, thread note, status + public reply,
time, delivery by the outbox, and a PSA-side note arriving in the thread (without echoing ours)."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from bot.main import bootstrap, build
from bot.settings import Settings
from connectors.sandbox.demo import customer_replies, sandbox_server
from core.notify import SlaWarningEvent, WriteDead
from store.crypto import generate_key
from store.db import Scope
from store.enums import OutboxStatus
from store.tables import OutboxOp, PsaConnection
from tests.bot.slack.conftest import CHANNEL, TEAM, SlackHarness
from tests.bot.slack.test_slack_app import assert_valid_blocks, thread_message

USER = "U_SANDBOX_TECH"


@pytest.fixture
async def day(db_url, workspace_id, fake_slack, tmp_path):
    settings = Settings(database_url=db_url, secret_key=generate_key(), sandbox="on", auto_migrate=False,
                        secret_key_file=tmp_path / "k", workspace_slug="acme-msp", run_scheduler=False,
                        run_outbox_worker=False, slack_bot_token="xoxb-test-token",
                        slack_signing_secret="test-signing-secret", slack_api_url=fake_slack.api_url)
    c = build(settings)
    await bootstrap(c)
    await c.slack.start()
    async with c.db.read(Scope.workspace(workspace_id)) as s:
        conn = (await s.exec(select(PsaConnection))).one()
    await c.sync.run(conn.id)
    from bot.api.app import create_app

    h = SlackHarness(create_app(c, start_background=False), c, fake_slack, workspace_id, None)
    h.conn = conn
    yield h
    await h.settle()
    await h.http.aclose()
    await c.aclose()


async def test_technicians_day(day):
    h, c = day, day.c
    server = sandbox_server(h.conn.settings)
    members = [m for m in await c.directory.members(h.ws) if m.email]
    from core.context import Actor
    from core.queue import QueueFilter

    me = None
    for m in members:
        page = await c.queue.list(Actor.system(h.ws), QueueFilter(assignee=m.id), limit=5)
        if page.items:
            me, mine = m, page.items
            break
    assert me is not None, "the sandbox seed has assigned open tickets"
    h.fake.add_user(USER, email=me.email, name=me.name)
    h.fake.clear()

    # 1. my queue
    await h.slash("/tickets", "mine", user=USER)
    queue = h.fake.webhooks[-1]["blocks"]
    assert_valid_blocks(queue)
    number = str(mine[0].number)
    assert f"#{number}" in json.dumps(queue)

    # 2. open the ticket: the card becomes the ticket's thread
    await h.slash("/ticket", number, user=USER)
    card = h.fake.of("chat.postMessage")[-1]
    card_ts = f"{h.fake._ts}.000100"
    assert_valid_blocks(card.args["blocks"])
    links = [e.get("url") for b in card.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert any(u and u.endswith(f"/tickets/{mine[0].number}") for u in links)  # deep link into the PSA

    # 3. a message in the thread -> internal note
    await thread_message(h, "Checked the event log: disk errors", event_id="EvDay1", user=USER, thread_ts=card_ts)

    # 4. change status with a public reply, in one submission
    await h.interactive(h.action_payload("status", number, user=USER, message_ts=card_ts))
    view = h.last_view()
    target = next(o["value"] for o in next(b for b in view["blocks"] if b["block_id"] == "status")["element"]
                  ["options"] if o["value"] != mine[0].status_name)
    await h.interactive({"type": "view_submission", "team": {"id": TEAM}, "user": {"id": USER, "team_id": TEAM},
                         "view": {**view, "state": {"values": {
                             "status": {"v": {"type": "static_select", "selected_option": {"value": target}}},
                             "text": {"v": {"type": "plain_text_input", "value": "We are replacing the disk today."}},
                             "visibility": {"v": {"type": "static_select", "selected_option": {"value": "public"}}},
                         }}}})
    # 5. log time
    await h.interactive(h.action_payload("time", number, user=USER, message_ts=card_ts))
    view = h.last_view()
    await h.interactive({"type": "view_submission", "team": {"id": TEAM}, "user": {"id": USER, "team_id": TEAM},
                         "view": {**view, "state": {"values": {
                             "minutes": {"v": {"type": "plain_text_input", "value": "45m"}},
                             "notes": {"v": {"type": "plain_text_input", "value": "Diagnosis"}},
                             "billable": {"v": {"type": "checkboxes", "selected_options": [{"value": "true"}]}}}}}})
    async with c.db.read(Scope.workspace(h.ws)) as s:
        ops = list((await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all())
    assert [o.kind for o in ops] == ["add_note", "add_note", "update_ticket", "add_time_entry"]
    assert h.fake.of("chat.update")  # cards showed the queued state

    # 6. the outbox delivers; the card is re-rendered without the queued marker
    h.fake.clear()
    assert await c.outbox_worker.drain() == 4
    await h.settle()
    async with c.db.read(Scope.workspace(h.ws)) as s:
        assert {o.status for o in (await s.exec(select(OutboxOp))).all()} == {OutboxStatus.DONE}
    notes = [n["text"] for n in server.data["notes"] if str(n["ticket_id"]) == number]
    assert any("disk errors" in n for n in notes) and any("replacing the disk" in n for n in notes)
    updates = h.fake.of("chat.update")
    assert updates and "queued for the PSA" not in json.dumps(updates[-1].args["blocks"])

    # 7. a note written in the PSA arrives in the thread after the next sync; ours do not echo back
    h.fake.clear()
    customer_replies(server, number, "Still broken after the reboot")
    await c.sync.run(h.conn.id)
    await h.settle()
    thread_posts = [p for p in h.fake.of("chat.postMessage") if p.args.get("thread_ts") == card_ts]
    texts = json.dumps([p.args["blocks"] for p in thread_posts])
    assert "Still broken after the reboot" in texts
    assert "disk errors" not in texts and "replacing the disk" not in texts


async def test_dead_write_and_sla_warning_reach_the_channel(day):
    h, c = day, day.c
    from core.context import Actor
    from core.queue import QueueFilter

    t = (await c.queue.list(Actor.system(h.ws), QueueFilter(), limit=1)).items[0]
    await c.chat.record_post(h.ws, ticket_id=t.id, platform="slack", team_id=TEAM, channel_id=CHANNEL,
                             message_ts="1700000000.000900")
    actor = Actor.system(h.ws)
    await c.chat.bind(actor, __import__("core.chat", fromlist=["ChatUser"]).ChatUser(
        platform="slack", team_id=TEAM, user_id="U1", channel_id="C_SLA"), "sla")
    h.fake.clear()
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    await c.notifier.notify(WriteDead(workspace_id=h.ws, ticket_id=t.id, ticket_number=t.number, origin="system",
                                      occurred_at=now, op_id=77, kind="add_note", error="HTTP 400 <script>"))
    await c.notifier.notify(SlaWarningEvent(workspace_id=h.ws, ticket_id=t.id, ticket_number=t.number,
                                            origin="system", occurred_at=now, metric="resolution", threshold=100,
                                            remaining_s=-900, due_at=now, customer_id=t.customer_id,
                                            subject=t.subject, priority="high"))
    await h.settle()  # notify() only queues: delivery runs on the notifier's own workers
    posts = h.fake.of("chat.postMessage")
    dead = next(p for p in posts if p.args.get("thread_ts") == "1700000000.000900")
    assert "outbox redrive 77" in dead.args["text"] and "<script>" not in dead.args["text"]
    sla = next(p for p in posts if p.args["channel"] == "C_SLA")
    assert "SLA breached" in json.dumps(sla.args["blocks"]) and "exceeded by 15m" in json.dumps(sla.args["blocks"])
    assert_valid_blocks(sla.args["blocks"])


async def test_dead_write_is_not_announced_in_a_customer_shared_channel(day):
    h, c = day, day.c
    from datetime import UTC, datetime

    from core.chat import ChatUser
    from core.context import Actor
    from core.queue import QueueFilter

    actor = Actor.system(h.ws)
    t = next(i for i in (await c.queue.list(actor, QueueFilter(), limit=50)).items if i.customer_name)
    await c.chat.bind(actor, ChatUser(platform="slack", team_id=TEAM, user_id="U1", channel_id="C_CUST"),
                      "customer", t.customer_name, shared=True)
    await c.chat.record_post(h.ws, ticket_id=t.id, platform="slack", team_id=TEAM, channel_id="C_CUST",
                             message_ts="1700000000.000950")
    await c.chat.record_post(h.ws, ticket_id=t.id, platform="slack", team_id=TEAM, channel_id=CHANNEL,
                             message_ts="1700000000.000951")
    h.fake.clear()
    await c.notifier.notify(WriteDead(workspace_id=h.ws, ticket_id=t.id, ticket_number=t.number, origin="system",
                                      occurred_at=datetime.now(UTC), op_id=78, kind="add_note",
                                      error="HTTP 400 internal detail"))
    await h.settle()
    posts = h.fake.of("chat.postMessage")
    assert [p.args["channel"] for p in posts if "outbox redrive 78" in p.args.get("text", "")] == [CHANNEL]


async def test_sla_warning_reaches_only_the_right_channels(day):
    """Customer channels get their own customer's warnings only (even when also bound `sla`); a channel
    shared with a customer gets none; the technicians' `sla` channel gets every warning, each once."""
    h, c = day, day.c
    from datetime import UTC, datetime

    from core.chat import ChatUser
    from core.context import Actor
    from core.queue import QueueFilter

    actor = Actor.system(h.ws)
    items = (await c.queue.list(actor, QueueFilter(), limit=100)).items
    mine = next(i for i in items if i.customer_name)
    other = next(i for i in items if i.customer_name and i.customer_id != mine.customer_id)

    def user(channel: str) -> ChatUser:
        return ChatUser(platform="slack", team_id=TEAM, user_id="U1", channel_id=channel)

    await c.chat.bind(actor, user("C_TECHS"), "sla")
    await c.chat.bind(actor, user("C_OWN"), "customer", mine.customer_name)  # technicians' channel for one customer
    await c.chat.bind(actor, user("C_OWN"), "sla", mine.customer_name)
    await c.chat.bind(actor, user("C_OTHER"), "customer", other.customer_name)
    await c.chat.bind(actor, user("C_OTHER"), "sla", other.customer_name)
    await c.chat.bind(actor, user("C_SHARED"), "customer", mine.customer_name, shared=True)
    await c.chat.bind(actor, user("C_SHARED"), "sla", mine.customer_name, shared=True)
    h.fake.clear()
    now = datetime.now(UTC)
    await c.notifier.notify(SlaWarningEvent(workspace_id=h.ws, ticket_id=mine.id, ticket_number=mine.number,
                                            origin="system", occurred_at=now, metric="resolution", threshold=75,
                                            remaining_s=600, due_at=now, customer_id=mine.customer_id,
                                            subject=mine.subject, priority="high"))
    await h.settle()
    channels = sorted(p.args["channel"] for p in h.fake.of("chat.postMessage"))
    assert channels == ["C_OWN", "C_TECHS"]
