"""slack_sdk formats its debug lines (the whole request and answer) only when they would be logged (SdkLog)."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from bot.slack.poster import make_client
from tests.fakes.slack_api import FakeSlackApi

TEAM = "T0001"


class Counted(str):
    """A text that counts how often it is formatted with repr (what slack_sdk's debug line does to the
    request's fields); JSON encodes it as the plain string."""

    reprs = 0

    def __repr__(self) -> str:
        Counted.reprs += 1
        return super().__repr__()


@pytest.fixture
async def fake():
    api = await FakeSlackApi(team_id=TEAM).start()
    try:
        yield api
    finally:
        await api.stop()


async def test_web_api_calls_format_no_debug_line_unless_debug_is_on(fake, caplog):
    Counted.reprs = 0
    async with aiohttp.ClientSession() as http:
        client = make_client(fake.api_url, "xoxb-test-token", http)
        with caplog.at_level(logging.INFO, logger="slack_sdk"):
            resp = await client.chat_postMessage(channel="C1", text=Counted("hello"))
        assert resp["ok"] and fake.of("chat.postMessage")[-1].args["text"] == "hello"
        assert Counted.reprs == 0  # the "Sending a request" line was never built
        assert "Sending a request" not in caplog.text

        with caplog.at_level(logging.DEBUG, logger="slack_sdk"):  # asked for: the lines are there, as before
            await client.chat_postMessage(channel="C1", text=Counted("again"))
        assert Counted.reprs > 0
        assert "Sending a request" in caplog.text and "again" in caplog.text
        assert "Received the following response" in caplog.text


async def test_a_response_url_post_builds_no_debug_line_unless_debug_is_on(fake, caplog):
    """slack_sdk's webhook client (SlackContext.respond_to) checks the same `level` before building its lines."""
    from bot.slack.context import WEBHOOK_LOG, SlackContext

    sc = SlackContext.__new__(SlackContext)  # only respond_to's parts: the allowed hosts and the session
    sc.response_hosts, sc._plain_http_host = frozenset({"127.0.0.1"}), "127.0.0.1"
    async with aiohttp.ClientSession() as http:
        sc.session = http
        url = fake.response_url("r1")
        with caplog.at_level(logging.INFO, logger="slack_sdk"):
            assert WEBHOOK_LOG.level > logging.DEBUG  # what slack_sdk reads: "do not build the lines"
            assert await sc.respond_to(url, text="done", response_type="ephemeral") is True
        assert "Sending a request" not in caplog.text
        with caplog.at_level(logging.DEBUG, logger="slack_sdk"):
            assert WEBHOOK_LOG.level == logging.DEBUG
            assert await sc.respond_to(url, text="done again") is True
        assert "Sending a request" in caplog.text and "done again" in caplog.text
    assert [w["text"] for w in fake.webhooks] == ["done", "done again"]
