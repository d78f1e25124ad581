"""A technician's day in Slack against an Autotask connection (the fake Autotask behind the real composition
root): queue, card with its deep link into Autotask, a thread message as an internal note, a status change
with a public reply, time; the outbox delivers it as written (internal never published, written as the
technician); a contact's note written in Autotask then arrives in the thread, and ours do not echo back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.main import build
from bot.settings import Settings
from store.crypto import generate_key
from store.db import Scope
from store.enums import OutboxStatus
from store.tables import OutboxOp
from tests.bot.slack.conftest import TEAM, SlackHarness
from tests.bot.slack.test_slack_app import assert_valid_blocks, thread_message
from tests.fakes.autotask import FakeAutotask, FakeClock

USER = "U_AUTOTASK_TECH"
ACME = 175


@pytest.fixture
async def day(db_url, workspace_id, fake_slack, tmp_path):  # type: ignore[no-untyped-def]
    fake = FakeAutotask(clock=FakeClock(datetime.now(UTC)))
    settings = Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                        secret_key_file=tmp_path / "k", workspace_slug="acme-msp", run_scheduler=False,
                        run_outbox_worker=False, slack_bot_token="xoxb-test-token",
                        slack_signing_secret="test-signing-secret", slack_api_url=fake_slack.api_url)
    c = build(settings, transport=fake.transport())
    c.default_workspace_id = workspace_id
    await c.slack.start()
    contact = next(x["id"] for x in fake.tables["Contacts"].values() if x["companyID"] == ACME)
    vpn = fake.add_ticket("VPN down for the Leeds office", companyID=ACME, contactID=contact, queueID=29682833,
                          assignedResourceID=fake.tech_id, assignedResourceRoleID=29683461)
    conn, _ = await c.connections.add(workspace_id, kind="autotask", name="autotask",
                                      settings=fake.settings(default_board_id="29682833"),
                                      credentials=fake.credentials())
    assert (await c.sync.run(conn.id)).ok
    from bot.api.app import create_app

    h = SlackHarness(create_app(c, start_background=False), c, fake_slack, workspace_id, None)
    h.conn, h.at, h.vpn, h.contact = conn, fake, vpn, contact
    yield h
    await h.settle()
    await h.http.aclose()
    await c.aclose()


async def test_technicians_day_against_autotask(day) -> None:  # type: ignore[no-untyped-def]
    h, c, at = day, day.c, day.at
    h.fake.add_user(USER, email="bob@msp.example", name="Bob Tech")
    h.fake.clear()
    number = str(h.vpn["id"])

    await h.slash("/tickets", "mine", user=USER)
    queue = h.fake.webhooks[-1]["blocks"]
    assert_valid_blocks(queue)
    assert f"#{number}" in json.dumps(queue)

    await h.slash("/ticket", number, user=USER)
    card = h.fake.of("chat.postMessage")[-1]
    card_ts = f"{h.fake._ts}.000100"
    assert_valid_blocks(card.args["blocks"])
    links = [e.get("url") for b in card.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert any(u and "ExecuteCommand.aspx?Code=OpenTicketDetail" in u and f"TicketID={number}" in u for u in links)

    await thread_message(h, "Checked the event log: disk errors", event_id="EvAt1", user=USER, thread_ts=card_ts)
    await h.interactive(h.action_payload("status", number, user=USER, message_ts=card_ts))
    view = h.last_view()
    options = next(b for b in view["blocks"] if b["block_id"] == "status")["element"]["options"]
    target = next(o["value"] for o in options if "In Progress" in json.dumps(o))
    await h.interactive({"type": "view_submission", "team": {"id": TEAM}, "user": {"id": USER, "team_id": TEAM},
                         "view": {**view, "state": {"values": {
                             "status": {"v": {"type": "static_select", "selected_option": {"value": target}}},
                             "text": {"v": {"type": "plain_text_input", "value": "We are replacing the disk today."}},
                             "visibility": {"v": {"type": "static_select", "selected_option": {"value": "public"}}},
                         }}}})
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

    h.fake.clear()
    assert await c.outbox_worker.drain() == 4
    await h.settle()
    async with c.db.read(Scope.workspace(h.ws)) as s:
        assert {o.status for o in (await s.exec(select(OutboxOp))).all()} == {OutboxStatus.DONE}
    tid = h.vpn["id"]
    notes = [(n["description"], n["publish"], n["creatorResourceID"]) for n in at.tables["TicketNotes"].values()
             if n["ticketID"] == tid]
    assert notes == [("Checked the event log: disk errors", at.pick("TicketNotes", "publish", "Internal Users Only"),
                      at.tech_id),
                     ("We are replacing the disk today.", at.publish_to_all("TicketNotes"), at.tech_id)]
    assert at.tables["Tickets"][tid]["status"] == at.pick("Tickets", "status", "In Progress")
    [entry] = at.tables["TimeEntries"].values()
    assert (entry["resourceID"], entry["hoursWorked"], entry["summaryNotes"]) == (at.tech_id, 0.75, "Diagnosis")
    updates = h.fake.of("chat.update")
    assert updates and "queued for the PSA" not in json.dumps(updates[-1].args["blocks"])

    h.fake.clear()
    at.add_note(tid, "Still broken after the reboot", publish=1, contact_id=h.contact)
    await c.sync.run(h.conn.id)
    await h.settle()
    thread_posts = [p for p in h.fake.of("chat.postMessage") if p.args.get("thread_ts") == card_ts]
    texts = json.dumps([p.args["blocks"] for p in thread_posts])
    assert "Still broken after the reboot" in texts
    assert "disk errors" not in texts and "replacing the disk" not in texts
