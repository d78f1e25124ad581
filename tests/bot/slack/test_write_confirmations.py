"""A technician's write from Slack confirmed "in the PSA" without chat.update's budget (bot/slack/confirm.py).

The real bolt app in the real FastAPI app, the fake Slack Web API (with response_urls bound to the clicked card
and reactions), a fake ConnectWise on loopback, and the real outbox worker (drained by the test). A click's card
is replaced through the click's response_url when its write lands or is refused; a thread message gets a ✅ when
its write lands and none when it is refused (the thread says so, loudly); in both cases one intent is one write,
and the post-ack job builds no card (it is built when its update is sent, after the write).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import bot.slack.confirm as confirm
import bot.slack.context as slack_context
from bot.api.app import create_app
from bot.main import build
from bot.settings import Settings
from store.crypto import generate_key
from tests.bot.slack.conftest import CHANNEL, SIGNING_SECRET, TEAM, SlackHarness
from tests.fakes.connectwise import FakeClock, FakeConnectWise

CW_TECH = "U_CW_BOB"  # Bob in Slack; bob@msp.example is the fake ConnectWise's member "bob"
CARD_TS = "1700000000.000500"
PRODUCTION_HOLD_S = slack_context.CLICK_QUEUED_AFTER_S


@pytest.fixture
async def cw(db_url, workspace_id, fake_slack, tmp_path):
    fake = FakeConnectWise(clock=FakeClock(datetime.now(UTC)))
    ticket = fake.add_ticket("VPN drops every hour", company={"id": min(fake.companies)},
                             board={"id": min(fake.boards)})
    fake_slack.add_user(CW_TECH, email="bob@msp.example", name="Bob Tech")
    with fake.serve() as root:
        settings = Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                            secret_key_file=tmp_path / "k", workspace_slug="acme-msp", run_scheduler=False,
                            run_outbox_worker=False, slack_bot_token="xoxb-test-token",
                            slack_signing_secret=SIGNING_SECRET, slack_api_url=fake_slack.api_url)
        c = build(settings)
        c.default_workspace_id = workspace_id
        await c.slack.start()
        conn, _ = await c.connections.add(workspace_id, kind="connectwise", name="cw",
                                          settings=fake.settings(root=root), credentials=fake.credentials())
        assert (await c.sync.run(conn.id)).ok
        from core.context import Actor

        detail = await c.tickets.get(Actor.system(workspace_id), f"id:{await _local_id(c, workspace_id, ticket)}")
        await c.chat.record_post(workspace_id, ticket_id=detail.summary.id, platform="slack", team_id=TEAM,
                                 channel_id=CHANNEL, message_ts=CARD_TS)
        fake_slack.messages[(CHANNEL, CARD_TS)] = {"text": "the card as posted", "blocks": []}
        h = SlackHarness(create_app(c, start_background=False), c, fake_slack, workspace_id, None)
        h.cw, h.cw_ticket, h.number = fake, ticket, detail.summary.number
        h.monkeypatch = pytest.MonkeyPatch()
        fake_slack.clear()
        yield h
        await h.settle()
        await h.http.aclose()
        await c.aclose()
        h.monkeypatch.undo()


async def _local_id(c: Any, ws: int, ticket: dict[str, Any]) -> int:
    import sqlalchemy as sa

    from store.db import Scope
    from store.tables import Ticket

    async with c.db.read(Scope.workspace(ws)) as s:
        return int((await s.execute(sa.select(Ticket.id).where(Ticket.external_id == str(ticket["id"])))).scalar_one())


def _writes(h: SlackHarness, method: str, suffix: str) -> list[Any]:
    return [r for r in h.cw.requests if r.method == method and r.path.endswith(suffix)]


def _card_updates(h: SlackHarness) -> list[Any]:
    return [c for c in h.fake.of("chat.update") if c.args.get("ts") == CARD_TS]


async def _click_assign_me(h: SlackHarness, url_name: str = "click1") -> str:
    """Click "Assign to me" on the card (its held "queued" replace is left out unless a test shortens the hold)."""
    if slack_context.CLICK_QUEUED_AFTER_S == PRODUCTION_HOLD_S:
        h.monkeypatch.setattr(slack_context, "CLICK_QUEUED_AFTER_S", 600.0)
    payload = h.action_payload("assign_me", str(h.number), user=CW_TECH, message_ts=CARD_TS)
    url = h.fake.response_url(url_name, message=(CHANNEL, CARD_TS))
    await h.interactive({**payload, "response_url": url})
    return url


async def _deliver(h: SlackHarness) -> None:
    await h.c.outbox_worker.drain()
    await h.settle()


def _count_card_builds(h: SlackHarness, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts cards built (TicketCards.ticket_from_detail); the post-ack job's share is measured around it."""
    cards = h.c.chat_views.cards
    built = [0]
    real = cards.ticket_from_detail

    async def counting(*a: Any, **kw: Any) -> Any:
        built[0] += 1
        return await real(*a, **kw)

    monkeypatch.setattr(cards, "ticket_from_detail", counting)
    return built


def _builds_inside(h: SlackHarness, monkeypatch: pytest.MonkeyPatch, method: str, built: list[int]) -> list[int]:
    """Wrap ChatCommands.<method> (the post-ack job's write) and record the cards built while it ran."""
    inside: list[int] = []
    real = getattr(h.c.chat_commands, method)

    async def wrapped(*a: Any, **kw: Any) -> Any:
        before = built[0]
        try:
            return await real(*a, **kw)
        finally:
            inside.append(built[0] - before)

    monkeypatch.setattr(h.c.chat_commands, method, wrapped)
    return inside


async def test_a_click_is_confirmed_on_its_card_through_the_response_url(cw, monkeypatch):
    h = cw
    built = _count_card_builds(h, monkeypatch)
    inside = _builds_inside(h, monkeypatch, "action", built)
    await _click_assign_me(h)
    assert inside == [0]  # the post-ack job wrote and built no card
    thread = [p for p in h.fake.of("chat.postMessage") if p.args.get("thread_ts") == CARD_TS]
    assert len(thread) == 1 and "Assigned to Bob" in thread[0].args["text"] and "queued" in thread[0].args["text"]
    assert _card_updates(h) == []  # the outcome replaces the card: no chat.update spent on "queued"
    await _deliver(h)
    assert len(_writes(h, "PATCH", f"/service/tickets/{h.cw_ticket['id']}")) == 1  # one click, one write
    assert h.cw.tickets[h.cw_ticket["id"]]["owner"]["identifier"] == "bob"
    replaced = [w for w in h.fake.webhooks if w["name"] == "click1"]
    assert len(replaced) == 1 and replaced[0]["replace_original"] is True
    shown = json.dumps(replaced[0]["blocks"])
    assert "Bob" in shown and "queued" not in shown  # "in the PSA": no write waiting any more
    assert h.fake.messages[(CHANNEL, CARD_TS)]["blocks"] == replaced[0]["blocks"]  # the card itself shows it
    assert _card_updates(h) == []  # not a single chat.update of the workspace's ~50/min
    assert built[0] >= 1  # the card was built once the write was in the PSA


async def test_a_refused_click_still_shows_loudly_in_the_thread_and_on_the_card(cw):
    h = cw
    h.cw.fail_next(400, times=None, match="PATCH /service/tickets")
    await _click_assign_me(h)
    await _deliver(h)
    assert (h.cw.tickets[h.cw_ticket["id"]].get("owner") or {}).get("identifier") != "bob"  # refused: not applied
    thread = [p.args["text"] for p in h.fake.of("chat.postMessage") if p.args.get("thread_ts") == CARD_TS]
    assert any("outbox" in text and "not" in text.lower() for text in thread), thread  # says so, with what to do
    replaced = [w for w in h.fake.webhooks if w["name"] == "click1"]
    assert len(replaced) == 1 and "queued" not in json.dumps(replaced[0]["blocks"])
    assert h.fake.of("reactions.add") == []


async def test_a_used_up_response_url_falls_back_to_chat_update(cw):
    h = cw
    url = await _click_assign_me(h)
    async with httpx.AsyncClient() as http:  # Slack allows 5 uses: all spent elsewhere (e.g. earlier answers)
        for _ in range(5):
            assert (await http.post(url, json={"text": "x"})).status_code == 200
    await _deliver(h)
    updates = _card_updates(h)
    assert len(updates) == 1 and "Bob" in json.dumps(updates[0].args["blocks"])
    assert "queued" not in json.dumps(updates[0].args["blocks"])


async def _reply(h: SlackHarness, text: str, ts: str) -> None:
    await h.event({"type": "message", "channel": CHANNEL, "user": CW_TECH, "text": text, "ts": ts,
                   "thread_ts": CARD_TS, "channel_type": "channel"}, event_id=f"Ev{ts}")


async def test_a_thread_reply_gets_a_check_mark_once_its_note_is_in_the_psa(cw, monkeypatch):
    h = cw
    built = _count_card_builds(h, monkeypatch)
    inside = _builds_inside(h, monkeypatch, "thread_message", built)
    ts = f"{time.time():.6f}"
    await _reply(h, "Rebooted the firewall, watching it", ts)
    assert inside == [0]  # the post-ack job wrote and built no card
    assert h.fake.reactions == {}  # not in the PSA yet: no ✅
    await _deliver(h)
    notes = _writes(h, "POST", f"/service/tickets/{h.cw_ticket['id']}/notes")
    assert len(notes) == 1 and "Rebooted the firewall" in notes[0].body.decode()
    assert h.fake.reactions == {(CHANNEL, ts): [confirm.DONE_REACTION]}
    last = _card_updates(h)[-1]  # the card caught up (a bulk refresh): the note, no longer queued
    assert "Rebooted the firewall" in json.dumps(last.args["blocks"]) and "queued" not in json.dumps(last.args["blocks"])


async def test_a_refused_thread_reply_gets_no_check_mark_and_is_told(cw):
    h = cw
    h.cw.fail_next(400, times=None, match="POST /service/tickets")
    ts = f"{time.time():.6f}"
    await _reply(h, "Customer says it works now", ts)
    await _deliver(h)
    assert len(_writes(h, "POST", f"/service/tickets/{h.cw_ticket['id']}/notes")) >= 1  # asked, and refused
    assert not [n for n in h.cw.notes.values() if "Customer says it works" in str(n.get("text"))]
    assert h.fake.reactions == {}
    thread = [p.args["text"] for p in h.fake.of("chat.postMessage") if p.args.get("thread_ts") == CARD_TS]
    assert any("outbox" in text for text in thread), thread


def test_a_response_url_serves_four_outcomes_within_its_half_hour():
    now = [0.0]
    kept = confirm.Confirmations(clock=lambda: now[0])
    kept.clicked("C1", "1.1", "https://hooks.slack.com/a")
    got = [kept.response_url("C1", "1.1") for _ in range(5)]
    assert got == ["https://hooks.slack.com/a"] * 4 + [None]  # one of Slack's 5 uses kept for the click's answer
    kept.clicked("C1", "1.1", "https://hooks.slack.com/b")  # a newer click on the card: its own url
    now[0] = confirm.RESPONSE_URL_TTL_S + 1
    assert kept.response_url("C1", "1.1") is None and not kept.has_click("C1", "1.1")


def test_a_write_outcome_is_told_once_per_message():
    kept = confirm.Confirmations(max_kept=2)
    assert kept.wrote(1, "T", "C", "1.1") is None
    kept.wrote(2, "T", "C", "1.2")
    kept.wrote(3, "T", "C", "1.3")  # beyond the bound: the oldest is forgotten (its card still refreshes)
    assert kept.outcome(1, delivered=True) is None
    assert kept.outcome(2, delivered=True) == ("T", "C", "1.2")
    assert kept.outcome(3, delivered=False) is None  # refused: no ✅, and forgotten
    assert kept.outcome(None, delivered=True) is None


def test_an_outcome_quicker_than_its_message_is_kept_for_it():
    kept = confirm.Confirmations()
    assert kept.outcome(7, delivered=True) is None and kept.outcome(8, delivered=False) is None
    assert kept.wrote(7, "T", "C", "1.7") is True  # landed already: the job reacts at once
    assert kept.wrote(8, "T", "C", "1.8") is False  # refused already: never a ✅
    assert kept.wrote(7, "T", "C", "1.7") is None  # told once


async def test_a_note_in_the_psa_before_its_job_is_done_still_gets_its_check_mark(cw, monkeypatch):
    """The outbox can deliver the note before the post-ack job that wrote it gets on: the ✅ still comes."""
    h = cw
    real = h.c.chat_commands.thread_message

    async def delivered_at_once(*a: Any, **kw: Any) -> Any:
        done = await real(*a, **kw)
        await h.c.outbox_worker.drain()  # written, delivered and recorded before the job goes on
        await h.c.slack.notifier.drain()
        return done

    monkeypatch.setattr(h.c.chat_commands, "thread_message", delivered_at_once)
    ts = f"{time.time():.6f}"
    await _reply(h, "Swapped the switch port", ts)
    await h.settle()
    assert len(_writes(h, "POST", f"/service/tickets/{h.cw_ticket['id']}/notes")) == 1
    assert h.fake.reactions == {(CHANNEL, ts): [confirm.DONE_REACTION]}


async def _held_done(h: SlackHarness) -> None:
    held = h.c.slack.context._held  # noqa: SLF001 - the clicked cards' hold tasks
    if held:
        await asyncio.wait_for(asyncio.gather(*held, return_exceptions=True), 60)


async def test_a_click_whose_write_is_slow_shows_queued_then_in_the_psa_on_its_card(cw, monkeypatch):
    h = cw
    monkeypatch.setattr(slack_context, "CLICK_QUEUED_AFTER_S", 0.05)
    await _click_assign_me(h)
    await _held_done(h)  # the outbox has not run: the write is still on its way
    replaced = [w for w in h.fake.webhooks if w["name"] == "click1"]
    assert len(replaced) == 1 and "queued" in json.dumps(replaced[0]["blocks"])
    await _deliver(h)
    replaced = [w for w in h.fake.webhooks if w["name"] == "click1"]
    assert len(replaced) == 2 and "queued" not in json.dumps(replaced[1]["blocks"])
    assert "Bob" in json.dumps(replaced[1]["blocks"])
    assert _card_updates(h) == []  # both through the click's url, none of chat.update's budget
    assert len(_writes(h, "PATCH", f"/service/tickets/{h.cw_ticket['id']}")) == 1


async def test_a_held_queued_card_never_follows_the_outcome(cw):
    """Once the outcome has replaced the clicked card, the click's held "queued" replace (its timer ends
    later) sends nothing: the card never goes back to "queued"."""
    h = cw
    await _click_assign_me(h)  # the hold is long here: the outcome comes first by construction
    await _deliver(h)
    replaced = [w for w in h.fake.webhooks if w["name"] == "click1"]
    assert len(replaced) == 1 and "queued" not in json.dumps(replaced[0]["blocks"])
    sent: list[str] = []

    async def send(url: str) -> bool:
        sent.append(url)
        return True

    # what the held task does when its timer ends
    assert await h.c.slack.context.confirmations.replace(CHANNEL, CARD_TS, send, outcome=False) is None
    assert sent == [] and len([w for w in h.fake.webhooks if w["name"] == "click1"]) == 1


async def test_a_clicked_card_is_built_only_once_the_post_ack_writes_are_done(cw, monkeypatch):
    """The outcome's card build waits (bounded) while post-ack jobs run: a burst's writes commit first."""
    import bot.slack.notifier as notifier

    h = cw
    monkeypatch.setattr(notifier, "WRITES_FIRST_MAX_S", 60.0)
    waiting, released, ended = asyncio.Event(), [False], []
    gate = h.c.slack.notifier.writes_first

    async def spied(max_wait_s: float) -> None:
        waiting.set()
        await gate(max_wait_s)
        ended.append(released[0])  # did the wait outlast the running job?

    monkeypatch.setattr(h.c.slack.notifier, "writes_first", spied)
    await _click_assign_me(h)
    async with h.workers_held():  # another technician's job still running
        await h.c.outbox_worker.drain()  # the click's write is in the PSA; its outcome is queued for Slack
        await asyncio.wait_for(waiting.wait(), 60)  # the outcome's card waits for the jobs ...
        await asyncio.sleep(0.2)
        assert [w for w in h.fake.webhooks if w["name"] == "click1"] == []  # ... and is not built meanwhile
        released[0] = True
    await h.settle()
    assert ended == [True]
    replaced = [w for w in h.fake.webhooks if w["name"] == "click1"]
    assert len(replaced) == 1 and "Bob" in json.dumps(replaced[0]["blocks"])
