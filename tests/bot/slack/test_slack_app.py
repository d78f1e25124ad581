"""The real bolt app, signed requests through FastAPI, a loopback fake Slack API that records calls."""

from __future__ import annotations

import asyncio
import json
import time

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from sqlmodel import select

from store.db import Scope
from store.tables import ChatLink, OutboxOp, ProcessedEvent
from tests.bot.slack.conftest import ADMIN, CHANNEL, STRANGER, TEAM, TECH


def assert_valid_blocks(blocks, limit=50):
    assert 0 < len(blocks) <= limit
    for b in blocks:
        Block.parse(b).validate_json()


async def ops(h):
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return list((await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all())


async def post_card(h, number="5001"):
    resp = await h.slash("/ticket", number)
    assert resp.status_code == 200
    post = h.fake.of("chat.postMessage")[-1]
    return post, h.fake.calls and json.loads(json.dumps(post.args))


async def test_tickets_mine_answers_ephemeral_queue(slack):
    # The ack never waits for the work (Slack allows 3 s): with every post-ack worker held, /tickets is still
    # answered, and the queue follows once a worker is free. (A 2 s stopwatch here failed on a loaded machine;
    # the ack's latency is measured in bench/slack_ack.py.)
    async with slack.workers_held():
        resp = await asyncio.wait_for(slack.slash("/tickets", "mine", settle=False), 60)
        assert resp.status_code == 200 and slack.fake.webhooks == []
    await slack.settle()
    hook = slack.fake.webhooks[-1]
    assert hook["response_type"] == "ephemeral"
    text = json.dumps(hook["blocks"])
    assert "#5001" in text and "VPN down" in text and "#5002" not in text
    assert_valid_blocks(hook["blocks"])
    # auto-linked by the Slack profile's e-mail (users.info), once
    assert [c.args["user"] for c in slack.fake.of("users.info")] == [TECH]


async def test_each_of_the_three_commands_is_handled_and_no_other(slack):
    """One bolt listener serves /tickets, /ticket and /deskbridge (bot/slack/listeners/commands.py): each is
    answered, a command that only starts or ends like one of them is not ours (bolt's 404, nothing sent)."""
    for command in ("/tickets", "/ticket", "/deskbridge"):
        before = len(slack.fake.webhooks)
        resp = await slack.slash(command, "help")
        assert resp.status_code == 200, command
        assert len(slack.fake.webhooks) == before + 1 and slack.fake.webhooks[-1]["response_type"] == "ephemeral"
    sent = len(slack.fake.webhooks)
    for command in ("/ticketsx", "/tickets\n", "/desk", "/x/tickets"):
        resp = await slack.slash(command, "help")
        assert resp.status_code == 404, command
    assert len(slack.fake.webhooks) == sent


async def test_ticket_card_is_posted_with_buttons_and_becomes_a_thread(slack):
    post, _ = await post_card(slack)
    blocks = post.args["blocks"]
    assert_valid_blocks(blocks)
    actions = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert actions[:4] == ["db_reply", "db_note", "db_status", "db_time"]  # Bob already owns it: no Assign to me
    assert "db_open_psa" in actions
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        link = (await s.exec(select(ChatLink))).one()
    assert (link.channel_id, link.team_id) == (CHANNEL, TEAM)


async def test_untrusted_text_is_escaped(slack):
    await slack.slash("/ticket", "5003")
    post = slack.fake.of("chat.postMessage")[-1].args
    mrkdwn = [json.dumps(b) for b in post["blocks"] if b["type"] != "header"]
    assert "<!channel>" not in "".join(mrkdwn) + post["text"]
    assert "&lt;!channel&gt;" in post["text"]
    assert post["blocks"][0]["text"]["type"] == "plain_text"  # headers are never parsed for mentions


async def test_status_button_opens_the_boards_statuses_and_submission_writes_reply_and_status(slack):
    await slack.slash("/ticket", "5001")
    card_ts = slack.fake.of("chat.postMessage")[-1]
    ts = str(slack.fake._ts) + ".000100"
    assert card_ts
    await slack.interactive(slack.action_payload("status", "5001", message_ts=ts))
    view = slack.last_view()
    View(**view).validate_json()
    status = next(b for b in view["blocks"] if b["block_id"] == "status")
    assert [o["value"] for o in status["element"]["options"]] == [
        "New", "In Progress", "Waiting Customer Response", "Resolved", "Closed"]
    submission = {
        "type": "view_submission", "team": {"id": TEAM}, "user": {"id": TECH, "team_id": TEAM},
        "api_app_id": "A0001", "trigger_id": "trig.x",
        "view": {**view, "id": "V0001", "state": {"values": {
            "status": {"v": {"type": "static_select", "selected_option": {"value": "Waiting Customer Response"}}},
            "text": {"v": {"type": "plain_text_input", "value": "Please reboot and tell us."}},
            "visibility": {"v": {"type": "static_select", "selected_option": {"value": "public"}}}}}}}
    slack.fake.clear()
    resp = await slack.interactive(submission)
    assert resp.status_code == 200 and resp.text == ""
    got = await ops(slack)
    assert [(o.kind, o.payload.get("visibility") or o.payload.get("status_external_id")) for o in got] == [
        ("add_note", "public"), ("update_ticket", "12")]
    confirm = slack.fake.of("chat.postMessage")[-1]
    assert confirm.args["thread_ts"] == ts and "queued for the PSA" in confirm.args["text"]
    update = slack.fake.of("chat.update")[-1]
    assert update.args["ts"] == ts and "Waiting Customer Response" in json.dumps(update.args["blocks"])
    assert_valid_blocks(update.args["blocks"])


async def test_invalid_submission_shows_a_field_error_and_writes_nothing(slack):
    await slack.interactive(slack.action_payload("time", "5001", message_ts="1.1"))
    view = slack.last_view()
    submission = {"type": "view_submission", "team": {"id": TEAM}, "user": {"id": TECH, "team_id": TEAM},
                  "view": {**view, "state": {"values": {
                      "minutes": {"v": {"type": "plain_text_input", "value": "soon"}}}}}}
    resp = await slack.interactive(submission)
    body = resp.json()
    assert body["response_action"] == "errors" and "minutes" in body["errors"]
    assert "30m" in body["errors"]["minutes"]
    assert await ops(slack) == []


async def thread_message(h, text, *, event_id, user=TECH, thread_ts, extra=None, **event):
    return await h.event({"type": "message", "channel": CHANNEL, "user": user, "text": text,
                          "ts": f"{time.time():.6f}", "thread_ts": thread_ts, "channel_type": "channel", **event},
                         event_id=event_id, extra=extra)


async def test_a_modal_submitted_twice_writes_once_and_a_corrected_resubmission_is_taken(slack):
    """Same view id, hash and values (a double click, or both copies at once): one note. A refused
    submission is not remembered, so the corrected one (the same view, new values) is written."""
    await slack.interactive(slack.action_payload("note", "5001", message_ts="1.1"))
    view = {**slack.last_view(), "id": "V_DUP", "hash": "h-dup"}

    def submission(text: str, minutes: str | None = None) -> dict:
        values = {"text": {"v": {"type": "plain_text_input", "value": text}}}
        return {"type": "view_submission", "team": {"id": TEAM}, "user": {"id": TECH, "team_id": TEAM},
                "view": {**view, "state": {"values": values}}}

    same = submission("Replaced the toner.")
    await asyncio.gather(slack.interactive(same, settle=False), slack.interactive(same, settle=False))
    await slack.interactive(same)  # and once more after both were answered
    assert [o.payload["text"] for o in await ops(slack)] == ["Replaced the toner."]
    # a refused submission (empty text) is forgotten: fixing it and sending again writes
    refused = await slack.interactive(submission(""))
    assert refused.json()["response_action"] == "errors"
    again = await slack.interactive(submission(""))  # the same refused values: refused again, not swallowed
    assert again.json()["response_action"] == "errors"
    await slack.interactive(submission("Toner replaced, printer tested."))
    assert [o.payload["text"] for o in await ops(slack)] == ["Replaced the toner.", "Toner replaced, printer tested."]


async def test_thread_messages_become_notes_and_retries_are_absorbed(slack):
    await slack.slash("/ticket", "5001")
    root = slack.fake.of("chat.postMessage")[-1]
    thread_ts = f"{slack.fake._ts}.000100"
    assert root.args["channel"] == CHANNEL
    r = await thread_message(slack, "looked at the firewall", event_id="Ev1", thread_ts=thread_ts)
    assert r.status_code == 200
    # Slack retries the same event (e.g. after a timeout): nothing is written twice
    await thread_message(slack, "looked at the firewall", event_id="Ev1", thread_ts=thread_ts,
                         extra={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    # a retry of an event we never saw is processed (it may be the only copy)
    await thread_message(slack, "!public We are on it", event_id="Ev2", thread_ts=thread_ts,
                         extra={"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"})
    got = await ops(slack)
    assert [(o.kind, o.payload["visibility"], o.payload["text"]) for o in got] == [
        ("add_note", "internal", "looked at the firewall"), ("add_note", "public", "We are on it")]
    confirms = [c.args["text"] for c in slack.fake.of("chat.postMessage") if c.args.get("thread_ts") == thread_ts]
    assert "Internal note" in confirms[0] and "Public reply" in confirms[1]


async def test_slack_markup_never_reaches_the_psa(slack):
    """A thread message is written as people read it in Slack: mentions by name, links as text and URL,
    channels by name, entities decoded (with !public this text is what the customer's e-mail says)."""
    slack.fake.add_user("W222", email="ana@acme-msp.example", name="Ana Tech")
    await slack.slash("/ticket", "5001")
    thread_ts = f"{slack.fake._ts}.000100"
    await thread_message(slack, "!public <@W222> checked <https://status.example.com/i/7|the status page> "
                                "in <#C9|it-ops>: R&amp;D &lt;prod&gt; is back", event_id="EvMk", thread_ts=thread_ts)
    (op,) = await ops(slack)
    assert op.payload["visibility"] == "public"
    assert op.payload["text"] == ("@Ana Tech checked the status page (https://status.example.com/i/7) in #it-ops: "
                                  "R&D <prod> is back")


async def test_bot_messages_and_non_thread_messages_are_ignored(slack):
    await slack.slash("/ticket", "5001")
    thread_ts = f"{slack.fake._ts}.000100"
    await thread_message(slack, "echo from us", event_id="Ev3", thread_ts=thread_ts, bot_id="BBOT",
                         subtype="bot_message")
    await thread_message(slack, "not in a thread", event_id="Ev4", thread_ts=None)
    await thread_message(slack, "a customer typing", event_id="Ev5", thread_ts=thread_ts, user=STRANGER)
    assert await ops(slack) == []


async def test_message_shortcut_opens_a_prefilled_new_ticket_form(slack):
    payload = {"type": "message_action", "callback_id": "create_ticket_from_message", "team": {"id": TEAM},
               "user": {"id": TECH, "team_id": TEAM}, "channel": {"id": CHANNEL}, "trigger_id": "trig.s",
               "response_url": slack.fake.response_url("s"),
               "message": {"ts": "1700000000.000200", "text": "Outlook keeps crashing\nsince the update", "user": "U9"}}
    await slack.interactive(payload)
    view = slack.last_view()
    View(**view).validate_json()
    subject = next(b for b in view["blocks"] if b["block_id"] == "subject")
    assert subject["element"]["initial_value"] == "Outlook keeps crashing"
    assert json.loads(view["private_metadata"])["source_ts"] == "1700000000.000200"
    values = {"subject": {"v": {"type": "plain_text_input", "value": "Outlook keeps crashing"}},
              "customer": {"v": {"type": "static_select", "selected_option": {"value": str(slack.setup.customer_id)}}},
              "board": {"v": {"type": "static_select", "selected_option": {"value": "1"}}},
              "priority": {"v": {"type": "static_select", "selected_option": {"value": "high"}}}}
    await slack.interactive({"type": "view_submission", "team": {"id": TEAM}, "user": {"id": TECH, "team_id": TEAM},
                             "view": {**view, "state": {"values": values}}})
    (op,) = await ops(slack)
    assert op.kind == "create_ticket" and op.payload["company_external_id"] == "250"
    card = slack.fake.of("chat.postMessage")[-1]
    assert card.args["thread_ts"] == "1700000000.000200"  # the card lands in the message's thread


async def test_customer_channel_scopes_everything_and_strangers_are_refused_elsewhere(slack):
    r = await slack.slash("/deskbridge", "bind customer GLOBEX", user=ADMIN, channel="C_GLOBEX")
    assert r.status_code == 200
    assert "bound to customer Globex" in slack.fake.webhooks[-1]["text"]
    await slack.slash("/tickets", "", user=TECH, channel="C_GLOBEX")
    text = json.dumps(slack.fake.webhooks[-1]["blocks"])
    assert "Printer jammed" in text and "VPN down" not in text
    await slack.slash("/tickets", "customer:ACME", user=TECH, channel="C_GLOBEX")
    assert "VPN down" not in json.dumps(slack.fake.webhooks[-1]["blocks"])
    await slack.slash("/ticket", "5001", user=STRANGER, channel="C_GLOBEX")
    assert "was not found" in slack.fake.webhooks[-1]["text"]
    await slack.slash("/tickets", "", user=STRANGER, channel="C_OTHER")
    assert "does not know you" in slack.fake.webhooks[-1]["text"]
    await slack.slash("/deskbridge", "bind customer ACME", user=STRANGER, channel="C_OTHER")
    assert "does not know you" in slack.fake.webhooks[-1]["text"]


async def test_unknown_filter_gets_suggestions(slack):
    await slack.slash("/tickets", "custmer:ACME")
    hook = slack.fake.webhooks[-1]
    assert "customer:ACME" in json.dumps(hook["blocks"])


async def test_refused_requests_write_nothing(slack):
    body = "command=%2Ftickets&text=mine&team_id=T0001&user_id=U_BOB&channel_id=C1"
    bad = await slack.http.post("/slack/events", content=body, headers=slack.headers(body, secret="wrong"))
    stale = await slack.http.post("/slack/events", content=body, headers=slack.headers(body, ts=int(time.time()) - 600))
    malformed = await slack.post("payload=%7Bnot-json", settle=True)
    unknown = await slack.slash("/tickets", "mine", team="T_UNKNOWN")
    assert bad.status_code == 401 and stale.status_code == 401
    assert malformed.status_code == 400
    assert unknown.status_code == 200
    assert "not connected to Deskbridge" in (slack.fake.webhooks[-1]["text"] if slack.fake.webhooks else unknown.text)
    await slack.event({"type": "message", "channel": CHANNEL, "user": TECH, "text": "x", "ts": "2.0",
                       "thread_ts": "1.0"}, event_id="EvU", team="T_UNKNOWN")
    assert await ops(slack) == []
    async with slack.c.db.read(Scope.system_wide()) as s:
        assert (await s.exec(select(ProcessedEvent))).all() == []
    assert slack.fake.of("chat.postMessage") == [] and slack.fake.of("users.info") == []


async def test_rate_limited_post_is_retried_after_retry_after(slack):
    slack.fake.fail("chat.postMessage", status=429, retry_after=1)
    t0 = time.monotonic()
    await slack.slash("/ticket", "5001")
    posts = slack.fake.of("chat.postMessage")
    assert len(posts) == 2 and posts[1].at - posts[0].at >= 0.9
    assert time.monotonic() - t0 >= 0.9


async def test_bind_fails_closed_when_the_channel_cannot_be_inspected(slack):
    """A channel the app cannot inspect might be shared with a customer: refuse, explain, bind nothing."""
    slack.fake.fail("conversations.info", error="channel_not_found")
    r = await slack.slash("/deskbridge", "bind customer GLOBEX", user=ADMIN, channel="C_PRIVATE")
    assert r.status_code == 200
    reply = slack.fake.webhooks[-1]["text"]
    assert "Nothing was bound" in reply and "/invite @Deskbridge" in reply
    info = await slack.c.chat.channel(slack.ws, "slack", "T0001", "C_PRIVATE")
    assert info.customer_id is None and not info.kinds
    # once the app can see the channel, the same command binds it
    await slack.slash("/deskbridge", "bind customer GLOBEX", user=ADMIN, channel="C_PRIVATE")
    assert "bound to customer Globex" in slack.fake.webhooks[-1]["text"]


async def test_app_home_buttons_republish_the_tab(slack):
    """App Home has no response_url: "Next page" re-publishes the tab, and an error shows at its top."""

    def home_click(value: str) -> dict:
        p = slack.action_payload("page", value)
        p.pop("response_url"), p.pop("channel"), p.pop("message")
        p["container"] = {"type": "view", "view_id": "VHOME"}
        p["view"] = {"id": "VHOME", "type": "home"}
        return p

    slack.fake.clear()
    r = await slack.interactive(home_click(json.dumps({"f": "", "c": None})))
    assert r.status_code == 200
    published = slack.fake.of("views.publish")
    assert len(published) == 1 and published[0].args["user_id"] == TECH
    view = published[0].args["view"]
    assert view["type"] == "home" and "VPN down" in json.dumps(view["blocks"])
    assert_valid_blocks(view["blocks"])
    await slack.interactive(home_click("{not json"))
    err = slack.fake.of("views.publish")[-1].args["view"]
    assert "button's data was not understood" in json.dumps(err["blocks"])
    assert not slack.fake.webhooks  # nothing was sent to a response_url that does not exist


async def test_long_message_prefills_a_subject_the_psa_accepts(slack):
    words = "The finance share on FS01 is read-only for everyone in accounts since this morning's patch run " * 3
    payload = {"type": "message_action", "callback_id": "create_ticket_from_message", "team": {"id": TEAM},
               "user": {"id": TECH, "team_id": TEAM}, "channel": {"id": CHANNEL}, "trigger_id": "trig.l",
               "response_url": slack.fake.response_url("l"),
               "message": {"ts": "1700000000.000300", "text": words, "user": "U9"}}
    await slack.interactive(payload)
    subject = next(b for b in slack.last_view()["blocks"] if b["block_id"] == "subject")["element"]
    assert len(subject["initial_value"]) <= subject["max_length"] == 100
    assert subject["initial_value"].startswith("The finance share on FS01") and subject["initial_value"].endswith("…")
    assert not subject["initial_value"][:-1].endswith(" ")  # cut on a word boundary


async def test_a_form_slack_refuses_to_open_is_explained_to_the_technician(slack):
    slack.fake.fail("views.open", error="expired_trigger_id")
    await slack.interactive(slack.action_payload("status", "5001", message_ts="1700000000.000100"))
    assert slack.fake.of("views.open")  # it was tried
    assert "Click the button again" in slack.fake.webhooks[-1]["text"]
    assert slack.fake.webhooks[-1].get("replace_original") is False  # the card itself is left alone
