"""Where a Slack interaction has no thread or no response_url (ephemeral cards, App Home, modals), slow
forms and writes, what customers see, and tickets that have no PSA number yet."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from sqlmodel import select

from bot.slack import context as slack_context
from bot.slack import listeners
from core.context import Actor
from core.errors import InvalidInput
from core.outbox.ops import AddNote, enqueue
from store.db import Scope
from store.enums import OutboxStatus
from store.tables import ChatLink, OutboxOp, Ticket
from tests.bot.slack.conftest import ADMIN, CHANNEL, STRANGER, TEAM, TECH, production_budgets


async def ops(h):
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return list((await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all())


def ephemeral_click(h, action, value):
    """A button on an ephemeral message: Slack sends no `message`, and the container says ephemeral."""
    p = h.action_payload(action, value)
    p["container"] = {"type": "message", "message_ts": "1700000000.000900", "channel_id": CHANNEL,
                      "is_ephemeral": True}
    p.pop("message", None)
    return p


def submission(view, values, user=TECH):
    return {"type": "view_submission", "team": {"id": TEAM}, "user": {"id": user, "team_id": TEAM},
            "view": {**view, "id": "V0001", "state": {"values": values}}}


def note_values(text, visibility="internal"):
    return {"text": {"v": {"type": "plain_text_input", "value": text}},
            "visibility": {"v": {"type": "static_select", "selected_option": {"value": visibility}}},
            "status": {"v": {"type": "static_select", "selected_option": {"value": "__same__"}}}}


# ---------------------------------------------------------------- ephemeral cards


async def test_assign_on_an_ephemeral_card_updates_that_card(slack):
    """An ephemeral card has no thread: the card itself is replaced, saying what was done."""
    await slack.interactive(ephemeral_click(slack, "assign_me", "5003"))
    (op,) = await ops(slack)
    assert op.kind == "update_ticket"
    hook = slack.fake.webhooks[-1]
    assert hook["replace_original"] is True
    blocks = hook["blocks"]
    for b in blocks:
        Block.parse(b).validate_json()
    text = json.dumps(blocks)
    assert "Assigned to Bob Tech" in text
    assert slack.fake.of("chat.postMessage") == []  # nothing posted in the channel


async def test_assign_to_me_twice_changes_nothing_and_says_so_privately(slack):
    """The second click on an assigned ticket queues nothing and posts nothing in the thread: the clicker
    alone is told. The first click's confirmation in the shared thread names who did it."""
    await slack.slash("/ticket", "5003")
    ts = f"{slack.fake._ts}.000100"
    await slack.interactive(slack.action_payload("assign_me", "5003", message_ts=ts))
    (op,) = await ops(slack)
    posts = [c for c in slack.fake.of("chat.postMessage") if c.args.get("thread_ts") == ts]
    assert len(posts) == 1 and f"<@{TECH}>" in posts[0].args["text"] and "Assigned to Bob Tech" in posts[0].args["text"]
    for _ in range(3):
        await slack.interactive(slack.action_payload("assign_me", "5003", message_ts=ts))
    assert len(await ops(slack)) == 1  # nothing more queued
    assert [c for c in slack.fake.of("chat.postMessage") if c.args.get("thread_ts") == ts] == posts
    told = slack.fake.webhooks[-3:]
    assert all(w["response_type"] == "ephemeral" and "already assigned to you" in w["text"] for w in told)


async def test_a_form_opened_from_an_ephemeral_card_updates_that_card_when_sent(slack):
    click = ephemeral_click(slack, "note", "5001")
    await slack.interactive(click)
    view = slack.last_view()
    assert json.loads(view["private_metadata"])["response_url"] == click["response_url"]
    slack.fake.webhooks.clear()
    resp = await slack.interactive(submission(view, note_values("Checked the VPN logs")))
    assert resp.status_code == 200
    (op,) = await ops(slack)
    assert op.kind == "add_note" and op.payload["text"] == "Checked the VPN logs"
    (hook,) = slack.fake.webhooks
    assert hook["name"] == click["response_url"].rsplit("/", 1)[1] and hook["replace_original"] is True
    assert "Internal note" in json.dumps(hook["blocks"]) and "queued for the PSA" in json.dumps(hook["blocks"])


async def test_a_response_url_is_only_ever_sent_to_slack(slack):
    sc = slack.c.slack.context
    assert not await sc.respond_to("https://attacker.example/hook", text="x")
    assert not await sc.respond_to("http://hooks.slack.com/commands/1", text="x")  # not over plain http
    assert slack.fake.webhooks == []


# ---------------------------------------------------------------- App Home ticket modal


async def test_buttons_in_a_ticket_opened_from_app_home_work_in_the_modal(slack):
    p = slack.action_payload("open", "5003", channel=None)
    p["container"] = {"type": "view", "view_id": "VHOME"}
    p["view"] = {"id": "VHOME", "type": "home", "hash": "h"}
    p.pop("channel")
    await slack.interactive(p)
    (opened,) = slack.fake.of("views.open")
    modal = slack.last_view()  # on a loaded machine the modal opens as "Loading…" and is then updated
    View(**modal).validate_json()
    assert "Assign to me" in json.dumps(modal)
    click = slack.action_payload("assign_me", "5003", channel=None)
    click.pop("channel")
    click.pop("response_url")
    click["container"] = {"type": "view", "view_id": "VTICKET"}
    click["view"] = {"id": "VTICKET", "type": "modal", "hash": "h2"}
    slack.fake.clear()
    await slack.interactive(click)
    (update,) = slack.fake.of("views.update")
    assert update.args["view_id"] == "VTICKET"
    assert "Assigned to Bob Tech" in json.dumps(update.args["view"])
    (op,) = await ops(slack)
    assert op.kind == "update_ticket"
    # a form from inside the modal is stacked on it (views.open is refused while a modal is open)
    form_click = slack.action_payload("time", "5003", channel=None)
    form_click.pop("channel")
    form_click["container"] = {"type": "view", "view_id": "VTICKET"}
    form_click["view"] = {"id": "VTICKET", "type": "modal", "hash": "h3"}
    await slack.interactive(form_click)
    assert slack.fake.of("views.push")[-1].args["view"]["callback_id"] == "db_form_time"
    # submitting the pushed form: it closes, and the ticket modal below shows the new state and what was done
    pushed = slack.fake.of("views.push")[-1].args["view"]
    slack.fake.clear()
    await slack.interactive({"type": "view_submission", "team": {"id": TEAM}, "user": {"id": TECH, "team_id": TEAM},
                             "view": {**pushed, "id": "VFORM", "hash": "h4", "previous_view_id": "VTICKET",
                                      "root_view_id": "VTICKET", "state": {"values": {
                                          "minutes": {"v": {"type": "plain_text_input", "value": "25"}},
                                          "notes": {"v": {"type": "plain_text_input", "value": "cleaned rollers"}}}}}})
    (below,) = [u for u in slack.fake.of("views.update") if u.args["view_id"] == "VTICKET"]
    shown = json.dumps(below.args["view"])
    assert "25" in shown and "queued" in shown.lower()
    View(**below.args["view"]).validate_json()


# ---------------------------------------------------------------- slow forms and writes


async def test_a_slow_form_opens_loading_at_once_then_fills_in(slack, monkeypatch):
    monkeypatch.setattr(slack_context, "FORM_BUDGET_S", 0.01)
    views = slack.c.slack.context.views
    real = views.status_form

    async def slow(*a, **kw):
        await asyncio.sleep(0.2)
        return await real(*a, **kw)

    monkeypatch.setattr(views, "status_form", slow)
    await slack.interactive(slack.action_payload("status", "5001", message_ts="1700000000.000100"))
    (opened,) = slack.fake.of("views.open")
    assert "Loading" in json.dumps(opened.args["view"])  # the trigger was used before the form was ready
    (update,) = slack.fake.of("views.update")
    assert update.args["view_id"] == "V0001" and update.args["view"]["callback_id"] == "db_form_status"
    View(**update.args["view"]).validate_json()


async def test_a_burst_of_clicks_uses_every_trigger_at_once_and_fills_the_forms_after(slack, monkeypatch):
    """Deadlines first: with more clicks than workers, a click whose turn comes while other clicks wait
    opens "Loading…" on its trigger at once and builds its form afterwards, so no trigger waits for the
    forms built ahead of it (Slack refuses a trigger 3 s after the click)."""
    production_budgets(monkeypatch)  # what the clicks' deadlines are in production (the harness waits longer)
    assert slack_context.TRIGGER_SAFE_S < 3.0 and slack_context.FORM_BUDGET_S < slack_context.TRIGGER_SAFE_S
    views = slack.c.slack.context.views
    real = views.status_form
    built: list[float] = []  # when each form build finished (time.monotonic, as the fake stamps its calls)

    async def slow(*a, **kw):
        await asyncio.sleep(1.0)
        form = await real(*a, **kw)
        built.append(time.monotonic())
        return form

    monkeypatch.setattr(views, "status_form", slow)
    clicks = [slack.action_payload("status", "5001", message_ts="1700000000.000100") for _ in range(16)]
    acked: dict[str, float] = {}

    async def click(payload):
        await slack.interactive(payload, settle=False)
        acked[payload["trigger_id"]] = time.monotonic()  # Slack has its ack: the trigger is ageing

    await asyncio.gather(*(click(c) for c in clicks))
    await slack.settle()
    opened = slack.fake.of("views.open")
    assert sorted(c.args["trigger_id"] for c in opened) == sorted(c["trigger_id"] for c in clicks)
    # Built one after another on 4 workers, the last four clicks would open only after the twelve builds ahead
    # of them; here a click waits at most for the builds already running when it came (4) and its own, with a
    # few "Loading…" fills overlapping. Counted, not timed: a 2.5 s stopwatch on the last open failed on a
    # loaded machine.
    waited = [sum(acked[c.args["trigger_id"]] < b < c.at for b in built) for c in opened]
    assert max(waited) <= 8, waited
    loading = {c.args["trigger_id"] for c in opened if "Loading" in json.dumps(c.args["view"])}
    assert loading  # the clicks that waited used their trigger for "Loading…" ...
    updates = [u for u in slack.fake.of("views.update") if u.args["view"].get("callback_id") == "db_form_status"]
    assert len(updates) == len(loading)  # ... and got their form afterwards


async def test_a_slow_form_that_fails_shows_the_reason_in_its_modal(slack, monkeypatch):
    monkeypatch.setattr(slack_context, "FORM_BUDGET_S", 0.01)
    views = slack.c.slack.context.views

    async def slow_fail(*a, **kw):
        await asyncio.sleep(0.1)
        raise InvalidInput("Ticket #5001 was closed meanwhile.", hint="Reopen it first.")

    monkeypatch.setattr(views, "time_form", slow_fail)
    await slack.interactive(slack.action_payload("time", "5001", message_ts="1700000000.000100"))
    (update,) = slack.fake.of("views.update")
    text = json.dumps(update.args["view"])
    assert "closed meanwhile" in text and "Reopen it first" in text


def slow_submit(monkeypatch, slack, delay, *, fail=None):
    monkeypatch.setattr(listeners.forms, "SUBMIT_BUDGET_S", 0.05)
    commands = slack.c.slack.context.commands
    real = commands.submit

    async def slow(*a, **kw):
        await asyncio.sleep(delay)
        if fail:
            raise fail
        return await real(*a, **kw)

    monkeypatch.setattr(commands, "submit", slow)


async def test_a_slow_write_acks_in_time_and_the_modal_reports_the_outcome(slack, monkeypatch):
    await slack.interactive(slack.action_payload("note", "5001", message_ts="1700000000.000100"))
    view = slack.last_view()
    slow_submit(monkeypatch, slack, 0.3)
    resp = await slack.interactive(submission(view, note_values("Rebooted the firewall")), settle=False)
    ack = resp.json()
    assert ack["response_action"] == "update" and "Saving" in json.dumps(ack["view"])
    assert "submit" not in ack["view"]  # it cannot be sent twice from here
    await slack.settle()
    (op,) = await ops(slack)
    assert op.payload["text"] == "Rebooted the firewall"
    done = slack.fake.of("views.update")[-1].args
    assert done["view_id"] == "V0001" and "queued for the PSA" in json.dumps(done["view"])
    thread = slack.fake.of("chat.postMessage")[-1].args
    assert thread["thread_ts"] == "1700000000.000100"  # and the thread says so, as for a fast write


async def test_a_slow_write_that_is_refused_gives_the_form_back_filled_in(slack, monkeypatch):
    await slack.interactive(slack.action_payload("note", "5001", message_ts="1700000000.000100"))
    view = slack.last_view()
    slow_submit(monkeypatch, slack, 0.1, fail=InvalidInput("The note is empty.", hint="Write something."))
    await slack.interactive(submission(view, note_values("My careful three-paragraph analysis")))
    refused = slack.fake.of("views.update")[-1].args["view"]
    text = json.dumps(refused)
    assert "The note is empty." in text and refused["submit"]  # fix it and send again
    field = next(b for b in refused["blocks"] if b.get("block_id") == "text")
    assert field["element"]["initial_value"] == "My careful three-paragraph analysis"
    View(**refused).validate_json()
    assert await ops(slack) == []


async def test_a_slow_refused_write_whose_modal_was_closed_is_told_in_the_channel_with_the_text(slack, monkeypatch):
    await slack.interactive(slack.action_payload("note", "5001", message_ts="1700000000.000100"))
    view = slack.last_view()
    slow_submit(monkeypatch, slack, 0.1, fail=InvalidInput("Ticket #5001 is closed.", hint="Reopen it."))
    slack.fake.fail("views.update", error="not_found")
    await slack.interactive(submission(view, note_values("Replaced the PSU")))
    eph = slack.fake.of("chat.postEphemeral")[-1].args
    assert eph["user"] == TECH and eph["channel"] == CHANNEL
    assert "Ticket #5001 is closed." in eph["text"] and "Replaced the PSU" in eph["text"]


# ---------------------------------------------------------------- failures without a response_url


async def test_an_unexpected_failure_on_a_thread_message_is_told_in_the_thread(slack, monkeypatch):
    await slack.slash("/ticket", "5001")
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        ts = (await s.exec(select(ChatLink))).one().message_ts

    async def boom(*a, **kw):
        raise RuntimeError("database went away")

    monkeypatch.setattr(slack.c.slack.context.commands, "thread_message", boom)
    await slack.event({"type": "message", "channel": CHANNEL, "user": TECH, "text": "checking now",
                       "ts": "1799999999.000100", "thread_ts": ts}, event_id="EvBoom")
    eph = slack.fake.of("chat.postEphemeral")[-1].args
    assert eph["thread_ts"] == ts and eph["user"] == TECH and "Something went wrong" in eph["text"]
    assert "database went away" not in eph["text"]  # internals stay in the log


async def test_an_unexpected_failure_on_app_home_is_shown_on_the_tab(slack, monkeypatch):
    async def boom(*a, **kw):
        raise RuntimeError("nope")

    monkeypatch.setattr(slack.c.slack.context.commands, "my_queue", boom)
    await slack.event({"type": "app_home_opened", "user": TECH, "tab": "home", "channel": "D1"}, event_id="EvHome")
    published = slack.fake.of("views.publish")[-1].args
    assert published["user_id"] == TECH and "Something went wrong" in json.dumps(published["view"])


# ---------------------------------------------------------------- what customers see


async def _customer_ticket_state(slack):
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:
        t = (await s.exec(select(Ticket).where(Ticket.number == 5001))).one()
        t.device_ref, t.alert_ref, t.contract_ref = "FS01", "ALERT-77", "CONTRACT-9"
        t.psa_respond_by = t.created_at + timedelta(hours=1) if t.created_at else None
        op = enqueue(s, workspace_id=slack.ws, connection_id=slack.setup.connection_id,
                     payload=AddNote(text="internal plumbing failed", visibility="internal"),
                     ticket_id=t.id, actor="test")
        op.status = OutboxStatus.DEAD
        op.last_error = "HTTP 500 from the PSA"


async def test_customers_see_no_internal_fields_on_a_card(slack):
    await _customer_ticket_state(slack)
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
    await slack.slash("/ticket", "5001", user=STRANGER, channel="C_ACME")
    card = slack.fake.of("chat.postMessage")[-1].args
    text = json.dumps(card["blocks"])
    assert "VPN down" in text
    for internal in ("FS01", "ALERT-77", "CONTRACT-9", "could not be delivered", "SLA", "Service Desk",
                     "Open in PSA", "actions"):
        assert internal not in text, internal
    # the same ticket for a technician in a tech channel still shows them
    await slack.slash("/ticket", "5001", user=TECH, channel="C_TECH2")
    tech = json.dumps(slack.fake.of("chat.postMessage")[-1].args["blocks"])
    assert "FS01" in tech and "could not be delivered" in tech and "Service Desk" in tech


async def test_customers_queue_has_no_sla_and_cannot_filter_by_breaching(slack):
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:
        t = (await s.exec(select(Ticket).where(Ticket.number == 5001))).one()
        t.created_at = t.created_at - timedelta(days=10)  # long past its SLA
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
    await slack.slash("/tickets", "", user=STRANGER, channel="C_ACME")
    text = json.dumps(slack.fake.webhooks[-1]["blocks"])
    assert "VPN down" in text and ":rotating_light:" not in text and "exceeded" not in text
    await slack.slash("/tickets", "", user=TECH, channel="C_TECH2")
    assert ":rotating_light:" in json.dumps(slack.fake.webhooks[-1]["blocks"])  # technicians do see it
    await slack.slash("/tickets", "breaching", user=STRANGER, channel="C_ACME")
    assert "for technicians" in slack.fake.webhooks[-1]["text"]


# ---------------------------------------------------------------- tickets with no number yet


async def test_a_ticket_still_being_created_can_be_opened_and_noted(slack):
    await slack.slash("/ticket", "new Laptop will not boot")
    form = slack.last_view()
    values = {"subject": {"v": {"type": "plain_text_input", "value": "Laptop will not boot"}},
              "customer": {"v": {"type": "static_select", "selected_option": {"value": str(slack.setup.customer_id)}}},
              "board": {"v": {"type": "static_select", "selected_option": {"value": "1"}}},
              "priority": {"v": {"type": "static_select", "selected_option": {"value": "high"}}}}
    await slack.interactive(submission(form, values))
    card = slack.fake.of("chat.postMessage")[-1].args
    buttons = [e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]]
    note = next(e for e in buttons if e["action_id"] == "db_note")
    assert note["value"].startswith("id:")  # no PSA number yet
    await slack.interactive(slack.action_payload("note", note["value"], message_ts="1700000000.000500"))
    view = slack.last_view()
    assert view["callback_id"] == "db_form_reply"
    await slack.interactive(submission(view, note_values("Customer says it beeps 3 times")))
    # a technician's message in the new ticket's thread is written too
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        thread_ts = (await s.exec(select(ChatLink).order_by(ChatLink.id.desc()))).first().message_ts
    await slack.event({"type": "message", "channel": CHANNEL, "user": TECH, "text": "On my way",
                       "ts": "1799999998.000100", "thread_ts": thread_ts}, event_id="EvPending")
    kinds = [o.kind for o in await ops(slack)]
    assert kinds == ["create_ticket", "add_note", "add_note"]  # delivered in this order by the outbox
    # and a malformed id reference is refused cleanly
    await slack.interactive(slack.action_payload("note", "id:99999999999999999999", message_ts="1.0"))
    assert "not" in slack.fake.webhooks[-1]["text"]


# ---------------------------------------------------------------- core rules


async def test_autolink_is_decided_in_core_and_throttled(slack):
    from core.chat import ChatUser

    chat = slack.c.chat
    asked = []

    async def email():
        asked.append(1)
        return "bob@acme-msp.example"

    guest = ChatUser(platform="slack", team_id=TEAM, user_id="U_GUEST", user_team_id="T_OTHER")
    assert not await chat.autolink(slack.ws, guest, email)
    assert asked == []  # another org's guest: not even asked
    nobody = ChatUser(platform="slack", team_id=TEAM, user_id="U_NEW")

    async def unknown():
        asked.append(2)
        return "nobody@example.com"

    assert not await chat.autolink(slack.ws, nobody, unknown)
    assert not await chat.autolink(slack.ws, nobody, unknown)
    assert asked == [2]  # the second try within the retry window costs no profile lookup
    bob = ChatUser(platform="slack", team_id=TEAM, user_id="U_BOB2", channel_id="C_NEW")
    assert await chat.autolink(slack.ws, bob, email)  # a technician's verified e-mail links them
    actor, _ = await chat.actor_for(slack.ws, bob)
    assert actor.is_member and actor.member_id == slack.setup.member_id and isinstance(actor, Actor)


async def test_a_slow_ticket_from_app_home_opens_loading_then_the_card(slack, monkeypatch):
    monkeypatch.setattr(slack_context, "FORM_BUDGET_S", 0.01)
    views = slack.c.slack.context.views
    real = views.ticket

    async def slow(*a, **kw):
        await asyncio.sleep(0.2)
        return await real(*a, **kw)

    monkeypatch.setattr(views, "ticket", slow)
    p = slack.action_payload("open", "5001", channel=None)
    p.pop("channel")
    p["container"] = {"type": "view", "view_id": "VHOME"}
    p["view"] = {"id": "VHOME", "type": "home", "hash": "h"}
    await slack.interactive(p)
    (opened,) = slack.fake.of("views.open")
    assert "Loading" in json.dumps(opened.args["view"])
    (update,) = slack.fake.of("views.update")
    assert "VPN down" in json.dumps(update.args["view"])
    View(**update.args["view"]).validate_json()


async def test_a_crafted_or_inactive_customer_is_a_field_error_and_nothing_is_written(slack):
    await slack.slash("/ticket", "new Laptop will not boot")
    form = slack.last_view()

    def values(customer):
        return {"subject": {"v": {"type": "plain_text_input", "value": "Laptop will not boot"}},
                "customer": {"v": {"type": "static_select", "selected_option": {"value": customer}}},
                "board": {"v": {"type": "static_select", "selected_option": {"value": "1"}}},
                "priority": {"v": {"type": "static_select", "selected_option": {"value": "high"}}}}

    for crafted in ("1 OR 1=1", "²", "9" * 30):
        resp = await slack.interactive(submission(form, values(crafted)))
        assert resp.status_code == 200
        assert resp.json()["response_action"] == "errors" and "customer" in resp.json()["errors"]
    from store.tables import Customer

    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:
        (await s.get(Customer, slack.setup.other_customer_id)).active = False
    resp = await slack.interactive(submission(form, values(str(slack.setup.other_customer_id))))
    assert "inactive" in resp.json()["errors"]["customer"]
    assert await ops(slack) == []


async def test_a_new_users_simultaneous_first_requests_all_get_the_link(slack):
    from core.chat import ChatUser

    chat = slack.c.chat
    asked = []

    async def email():
        asked.append(1)
        await asyncio.sleep(0.05)
        return "bob@acme-msp.example"

    user = ChatUser(platform="slack", team_id=TEAM, user_id="U_FAST", channel_id="C_NEW")
    results = await asyncio.gather(*(chat.autolink(slack.ws, user, email) for _ in range(3)))
    assert results == [True, True, True] and asked == [1]  # one profile lookup, every request linked


async def test_channel_cards_drawn_for_everyone_offer_assign_to_me(slack):
    """Dispatch posts and refreshed channel cards are drawn for the system actor: every technician reading
    them may take the ticket, including when it is assigned to someone else."""
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        assigned = (await s.exec(select(Ticket).where(Ticket.number == 5001))).one()
    shared = await slack.c.chat_views.ticket_by_id(Actor.system(slack.ws), assigned.id)
    assert "assign_me" in [a.action for a in shared.actions]
    own = await slack.c.chat_views.ticket(
        Actor(workspace_id=slack.ws, origin=Actor.system(slack.ws).origin,
              member_id=slack.setup.member_id, display="bob"), 5001)
    assert "assign_me" not in [a.action for a in own.actions]  # Bob's own view: it is already his


async def test_a_ticket_from_a_message_in_a_channel_the_bot_is_not_in_is_shown_to_its_creator(slack):
    """The shortcut works anywhere; where the bot cannot post, the new ticket's card (and number) reaches the
    technician through the shortcut's response_url, so nobody creates it a second time."""
    payload = {"type": "message_action", "callback_id": "create_ticket_from_message", "team": {"id": TEAM},
               "user": {"id": TECH, "team_id": TEAM}, "channel": {"id": "C_NOBOT"}, "trigger_id": "trig.nb",
               "response_url": slack.fake.response_url("nb"),
               "message": {"ts": "1700000000.000777", "text": "Scanner offline", "user": "U9"}}
    await slack.interactive(payload)
    form = slack.last_view()
    slack.fake.fail("chat.postMessage", error="not_in_channel")
    values = {"subject": {"v": {"type": "plain_text_input", "value": "Scanner offline"}},
              "customer": {"v": {"type": "static_select", "selected_option": {"value": str(slack.setup.customer_id)}}},
              "board": {"v": {"type": "static_select", "selected_option": {"value": "1"}}},
              "priority": {"v": {"type": "static_select", "selected_option": {"value": "low"}}}}
    await slack.interactive(submission(form, values))
    (op,) = await ops(slack)
    assert op.kind == "create_ticket"
    hook = next(w for w in slack.fake.webhooks if w["name"] == "nb")
    assert hook["response_type"] == "ephemeral" and "Scanner offline" in json.dumps(hook["blocks"])
    assert "/invite @Deskbridge" in json.dumps(hook["blocks"])


async def test_a_slow_write_that_crashes_does_not_stay_saving(slack, monkeypatch):
    await slack.interactive(slack.action_payload("note", "5001", message_ts="1700000000.000100"))
    view = slack.last_view()
    slow_submit(monkeypatch, slack, 0.1, fail=RuntimeError("disk I/O error"))
    await slack.interactive(submission(view, note_values("Swapped the toner")))
    shown = slack.fake.of("views.update")[-1].args["view"]
    text = json.dumps(shown)
    assert "Saving" not in text and "went wrong" in text and "disk I/O" not in text
    field = next(b for b in shown["blocks"] if b.get("block_id") == "text")
    assert field["element"]["initial_value"] == "Swapped the toner"  # nothing the user typed is lost


async def test_slack_admins_are_deskbridge_admins_only_until_deskbridge_has_one(slack):
    """Bootstrap: a Slack workspace admin may bind channels and link people while Deskbridge has no admin of
    its own; once a technician is made admin, Slack admin rights grant nothing here."""
    from tests.bot.slack.conftest import ADMIN

    await slack.slash("/deskbridge", "bind sla", user=ADMIN, channel="C_BOOT")
    assert "bound to sla" in slack.fake.webhooks[-1]["text"]
    await slack.slash("/deskbridge", "link", user=TECH)  # Bob links himself (by his Slack e-mail)
    await slack.c.directory.set_admin(slack.ws, "bob@acme-msp.example")
    slack.c.chat.invalidate()
    for command in ("unbind", "settings first_reply_moves_to_in_progress on", "outbox redrive 1",
                    "link <@U_X> x@acme-msp.example"):
        await slack.slash("/deskbridge", command, user=ADMIN, channel="C_BOOT")
        assert "Only Deskbridge admins" in slack.fake.webhooks[-1]["text"] or \
            "does not know you" in slack.fake.webhooks[-1]["text"], command
    await slack.slash("/deskbridge", "settings first_reply_moves_to_in_progress on", user=TECH, channel="C_BOOT")
    assert "is now True" in slack.fake.webhooks[-1]["text"] or "is now on" in slack.fake.webhooks[-1]["text"]


async def test_customers_cannot_read_settings_or_bindings(slack):
    from tests.bot.slack.conftest import ADMIN, STRANGER

    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME_S")
    for command in ("settings", "bindings"):
        await slack.slash("/deskbridge", command, user=STRANGER, channel="C_ACME_S")
        assert "Only technicians" in slack.fake.webhooks[-1]["text"], command


async def test_a_full_work_queue_refuses_before_acking_and_a_retried_event_is_written(slack):
    """Nothing is acked and then dropped: a slash command is told to retry, an event gets a 5xx (Slack
    retries it), and the retry is written once the queue has room."""
    from bot.slack.work import AfterAck

    await slack.slash("/ticket", "5001")
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        thread_ts = (await s.exec(select(ChatLink))).one().message_ts
    sc = slack.c.slack.context
    real = sc.work
    sc.work = AfterAck(workers=0, max_backlog=1)  # nothing drains it: full after one job
    try:
        await slack.slash("/tickets", "mine", settle=False)
        busy = await slack.slash("/tickets", "mine", settle=False)
        assert busy.status_code == 200 and "very busy" in busy.text
        event = {"type": "message", "channel": CHANNEL, "user": TECH, "text": "Replaced the switch",
                 "ts": "1799999970.000100", "thread_ts": thread_ts}
        refused = await slack.event(event, event_id="EvFull", settle=False)
        assert refused.status_code >= 500
        click = await slack.interactive(slack.action_payload("assign_me", "5003"), settle=False)
        assert click.status_code >= 500
        assert slack.c.slack.refused == 3  # counted (and logged at most every few seconds)
    finally:
        sc.work = real
    await slack.event(event, event_id="EvFull", extra={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"})
    notes = [o for o in await ops(slack) if o.kind == "add_note"]
    assert [n.payload["text"] for n in notes] == ["Replaced the switch"]
