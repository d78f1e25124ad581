"""Slack calls share one HTTP session once the surface has started (issue 20 item 4): slack_sdk otherwise opens
a session and a TCP connection (with real Slack, a TLS handshake) for every Web API call."""

from __future__ import annotations

from tests.bot.slack.conftest import SlackHarness


async def test_web_api_calls_of_clicks_and_of_the_notifier_reuse_one_connection(slack: SlackHarness):
    for n in (5001, 5003, 5001):  # each click opens the status form: a views.open on the request's client
        await slack.interactive(slack.action_payload("status", str(n)))
    await slack.settle()
    opened = slack.fake.of("views.open")
    assert len(opened) == 3
    notifier = slack.c.slack.notifier
    client = await notifier._client("T0001")  # the notifier's client (card updates, thread posts)
    assert client is not None
    await client.chat_postMessage(channel="C1", text="hello")
    peers = {c.peer for c in opened} | {slack.fake.of("chat.postMessage")[-1].peer}
    assert None not in peers and len(peers) == 1  # one kept-alive connection for all four calls
    assert client.session is slack.c.slack.http


async def test_response_url_posts_reuse_the_shared_connection(slack: SlackHarness):
    """bolt's respond() opened a session (and a connection) per post; now every answer of a command uses the
    surface's session: three `/tickets` answers arrive over one connection, with bolt's message shape."""
    for _ in range(3):
        await slack.slash("/tickets", "mine")
    posts = slack.fake.webhooks[-3:]
    assert len(posts) == 3
    assert all(p["response_type"] == "ephemeral" and p["blocks"] and p["text"] for p in posts)
    peers = {p["_peer"] for p in posts}
    assert None not in peers and len(peers) == 1
