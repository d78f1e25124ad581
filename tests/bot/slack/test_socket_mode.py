"""Socket Mode end to end: the real bolt AsyncSocketModeHandler (slack_sdk's aiohttp client) started by the
FastAPI lifespan, connected to the loopback fake's WebSocket, driven with envelopes like Slack's."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from sqlmodel import select

from bot.api.app import create_app
from bot.main import build
from bot.settings import Settings
from store.crypto import generate_key
from store.db import Scope
from store.tables import OutboxOp
from tests.bot.slack.conftest import CHANNEL, TEAM, TECH, SlackHarness, seed_tickets
from tests.factories import psa_backed

APP_TOKEN = "xapp-1-test"


def socket_app(db_url: str, api_url: str, tmp_path: Any, app_token: str = APP_TOKEN) -> tuple[Any, Any]:
    """The app in token mode plus an app token (no signing secret: Socket Mode needs none)."""
    settings = Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                        secret_key_file=tmp_path / "k", workspace_slug="acme-msp", run_scheduler=False,
                        run_outbox_worker=False, slack_bot_token="xoxb-test-token", slack_app_token=app_token,
                        slack_api_url=api_url)
    container = build(settings)
    assert container.slack is not None
    return create_app(container, start_background=False), container


@pytest.fixture
async def socket(db, db_url, workspace_id, fake_slack, tmp_path):
    """Lifespan running (so `slack.start()` connected), the client greeted with `hello`."""
    setup = await psa_backed(db, workspace_id)
    await seed_tickets(db, workspace_id, setup)
    app, container = socket_app(db_url, fake_slack.api_url, tmp_path)
    async with app.router.lifespan_context(app):
        await fake_slack.wait_connected()
        h = SlackHarness(app, container, fake_slack, workspace_id, setup)
        yield h
        await h.settle()
        await h.http.aclose()
    assert fake_slack.socket_closed is not None and fake_slack.socket_closed.is_set()


def command_envelope(h: SlackHarness, command: str, text: str = "") -> dict[str, Any]:
    n = h._next()
    return {"envelope_id": str(uuid.uuid4()), "type": "slash_commands", "accepts_response_payload": True,
            "payload": {"token": "x", "team_id": TEAM, "team_domain": "fake", "channel_id": CHANNEL,
                        "channel_name": "tech", "user_id": TECH, "user_name": TECH.lower(), "command": command,
                        "text": text, "api_app_id": "A0001", "is_enterprise_install": "false",
                        "response_url": h.fake.response_url(n), "trigger_id": f"trig.{n}"}}


def message_envelope(text: str, *, event_id: str, thread_ts: str, retry: int = 0) -> dict[str, Any]:
    event = {"type": "message", "channel": CHANNEL, "user": TECH, "text": text, "ts": f"{time.time():.6f}",
             "thread_ts": thread_ts, "channel_type": "channel", "team": TEAM}
    return {"envelope_id": str(uuid.uuid4()), "type": "events_api", "accepts_response_payload": False,
            "retry_attempt": retry, "retry_reason": "timeout" if retry else "",
            "payload": {"token": "x", "team_id": TEAM, "api_app_id": "A0001", "type": "event_callback",
                        "event_id": event_id, "event_time": int(time.time()), "event": event,
                        "authorizations": [{"team_id": TEAM, "user_id": "UBOT", "is_bot": True}]}}


async def push(h: SlackHarness, envelope: dict[str, Any], *, settle: bool = True) -> dict[str, Any]:
    """Send an envelope and wait for the client's ack, then let the work finish. That the ack does not wait for
    the work (Slack's deadline is 3 s) is shown with the workers held (below), not with a stopwatch: a 3 s bound
    here is a latency figure on a loaded machine (bench/slack_ack.py measures it)."""
    await h.fake.socket_send(envelope)
    ack = await h.fake.socket_ack(envelope["envelope_id"], within_s=60.0)
    if settle:
        await h.settle()
    return ack


async def notes(h: SlackHarness) -> list[OutboxOp]:
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return list((await s.exec(select(OutboxOp).where(OutboxOp.kind == "add_note").order_by(OutboxOp.id))).all())


async def test_lifespan_connects_with_the_app_token(socket):
    opens = socket.fake.of("apps.connections.open")
    assert [c.token for c in opens] == [APP_TOKEN]  # the app-level token, never the bot token
    assert socket.fake.socket_connections == 1
    assert [c.token for c in socket.fake.of("auth.test")] == ["xoxb-test-token"]  # token mode still records the team


async def test_slash_command_is_acked_and_answered_through_response_url(socket):
    env = command_envelope(socket, "/tickets", "mine")
    async with socket.workers_held():  # the work cannot start: the ack comes before it, whatever the load
        ack = await push(socket, env, settle=False)
        assert ack["envelope_id"] == env["envelope_id"] and socket.fake.webhooks == []
    await socket.settle()
    hook = socket.fake.webhooks[-1]
    assert hook["response_type"] == "ephemeral"
    text = json.dumps(hook["blocks"])
    assert "#5001" in text and "VPN down" in text and "#5002" not in text


async def test_thread_message_becomes_one_note_even_when_redelivered(socket):
    await push(socket, command_envelope(socket, "/ticket", "5001"))
    card = socket.fake.of("chat.postMessage")[-1]
    assert card.args["channel"] == CHANNEL and "5001" in json.dumps(card.args["blocks"])
    thread_ts = f"{socket.fake._ts}.000100"

    first = message_envelope("looked at the firewall", event_id="EvS1", thread_ts=thread_ts)
    ack = await push(socket, first)
    assert ack == {"envelope_id": first["envelope_id"]}
    # Slack redelivers an unacked event in a new envelope, same event_id: acked again, written once
    again = message_envelope("looked at the firewall", event_id="EvS1", thread_ts=thread_ts, retry=1)
    assert (await push(socket, again))["envelope_id"] == again["envelope_id"]

    got = await notes(socket)
    assert [(o.payload["visibility"], o.payload["text"]) for o in got] == [("internal", "looked at the firewall")]
    confirms = [c.args["text"] for c in socket.fake.of("chat.postMessage") if c.args.get("thread_ts") == thread_ts]
    assert len(confirms) == 1 and "Internal note" in confirms[0]


async def test_unknown_workspace_is_acked_but_nothing_runs(socket):
    env = command_envelope(socket, "/tickets", "mine")
    env["payload"]["team_id"] = "T_UNKNOWN"
    socket.fake.clear()
    await push(socket, env)
    assert socket.fake.of("users.info") == [] and socket.fake.of("chat.postMessage") == []
    assert all("VPN down" not in json.dumps(w) for w in socket.fake.webhooks)


async def test_http_events_are_refused_without_a_signing_secret(socket):
    body = json.dumps({"type": "url_verification", "challenge": "c", "token": "x"})
    resp = await socket.http.post("/slack/events", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 404  # nothing could verify it: Slack talks to us over the socket only


async def test_a_refused_app_token_does_not_hold_up_the_start(db, db_url, workspace_id, fake_slack, tmp_path):
    """slack_sdk retries a refused apps.connections.open every 10 s, forever. Counted, not timed (3 s and 5 s
    stopwatches here failed on a loaded machine): a start or stop that waited for the loop would never end (the
    timeout), and one that waited for a retry would have asked twice."""
    app, container = socket_app(db_url, fake_slack.api_url, tmp_path, app_token="xapp-1-revoked")
    async with asyncio.timeout(120), app.router.lifespan_context(app):
        assert len(fake_slack.of("apps.connections.open")) <= 1  # started without waiting for a retry
        t0 = time.monotonic()
        while not fake_slack.of("apps.connections.open"):  # the background connect asks once, is refused, waits
            assert time.monotonic() - t0 < 60, "the background connect never asked"
            await asyncio.sleep(0.02)
        assert [c.token for c in fake_slack.of("apps.connections.open")] == ["xapp-1-revoked"]
        assert container.slack.client.base_url == fake_slack.api_url
        assert fake_slack.socket_connections == 0
        assert fake_slack.of("auth.test")  # the bot token was still checked and recorded
    # and stopping did not wait for the retry loop (nor for its next attempt)
    assert [c.token for c in fake_slack.of("apps.connections.open")] == ["xapp-1-revoked"]
