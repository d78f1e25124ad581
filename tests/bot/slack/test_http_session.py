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


async def _hook_server(drop_first: bool = False):
    """A loopback response_url: records each POST's headers and JSON; optionally drops the first connection."""
    from aiohttp import web

    seen: list[tuple[dict[str, str], object]] = []

    async def hook(request: web.Request) -> web.StreamResponse:
        if drop_first and not seen:
            seen.append(({}, None))
            assert request.transport is not None
            request.transport.close()  # the client sees a dropped connection
            return web.Response()
        seen.append((dict(request.headers), await request.json()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/commands/T1/1/abc", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/commands/T1/1/abc", seen


async def test_a_direct_response_url_post_sends_what_slack_sdks_webhook_client_sends():
    """post_response replaces AsyncWebhookClient on the hot path: same JSON (None fields left out, Block objects
    as dicts), same Content-Type and User-Agent, same WebhookResponse."""
    import aiohttp
    from slack_sdk.models.blocks import SectionBlock
    from slack_sdk.webhook.async_client import AsyncWebhookClient

    from bot.slack.respond import post_response

    runner, url, seen = await _hook_server()
    message = {"text": "3 tickets", "blocks": [SectionBlock(text="*Mine*"), {"type": "divider"}],
               "response_type": "ephemeral", "replace_original": False, "thread_ts": None, "metadata": None}
    # plain dicts only (what our renderers make: slack_sdk's conversion is skipped), a Block among attachments
    plain = {"text": "2 tickets", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*#1* é"}}],
             "attachments": [{"color": "#36a64f", "text": "x"}], "response_type": "ephemeral", "metadata": None}
    mixed = {"text": "t", "blocks": [{"type": "divider"}], "attachments": [{"text": "a"}, SectionBlock(text="b")]}
    try:
        async with aiohttp.ClientSession() as http:
            sdk = await AsyncWebhookClient(url, session=http).send_dict(dict(message))
            direct = await post_response(http, url, message)
            for other in (plain, mixed):
                await AsyncWebhookClient(url, session=http).send_dict(dict(other))
                await post_response(http, url, other)
    finally:
        await runner.cleanup()
    (sdk_headers, sdk_body), (headers, body) = seen[:2]
    assert seen[2][1] == seen[3][1] and seen[2][1]["blocks"][0]["text"]["text"] == "*#1* é"
    assert seen[4][1] == seen[5][1] and seen[5][1]["attachments"][1] == {"type": "section",
                                                                        "text": {"type": "mrkdwn", "text": "b"}}
    assert body == sdk_body
    assert body == {"text": "3 tickets", "response_type": "ephemeral", "replace_original": False,
                    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Mine*"}}, {"type": "divider"}]}
    for h in ("Content-Type", "User-Agent"):
        assert headers[h] == sdk_headers[h]
    assert (direct.status_code, direct.body, direct.api_url) == (sdk.status_code, sdk.body, sdk.api_url) == (200, "ok", url)


async def test_a_direct_response_url_post_retries_once_after_a_dropped_connection():
    """As slack_sdk's default retry handler: a connection dropped before the answer is tried once more."""
    import aiohttp

    from bot.slack import respond

    runner, url, seen = await _hook_server(drop_first=True)
    respond_retry = respond.RETRY_AFTER_S
    respond.RETRY_AFTER_S = 0.01
    try:
        async with aiohttp.ClientSession() as http:
            resp = await respond.post_response(http, url, {"text": "done"})
    finally:
        respond.RETRY_AFTER_S = respond_retry
        await runner.cleanup()
    assert resp.status_code == 200
    assert [b for _, b in seen] == [None, {"text": "done"}]
