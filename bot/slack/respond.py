"""bolt's `respond()` over the surface's shared HTTP session (issue 20 item 4).

bolt's AsyncRespond opens an aiohttp session, and so a TCP connection (with real Slack, a TLS handshake), for every
response_url post: one for each `/tickets`, each button's answer. A middleware gives each request a respond that
posts the same message through the session every other Slack call uses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.context.respond.internals import _build_message
from slack_sdk.webhook import WebhookResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient


class SessionRespond(AsyncRespond):
    """AsyncRespond posting through `session` (the same message bolt would build)."""

    def __init__(self, *, response_url: str | None, proxy: str | None, ssl: Any, session: aiohttp.ClientSession) -> None:
        super().__init__(response_url=response_url, proxy=proxy, ssl=ssl)
        self.session = session

    async def __call__(self, text: str | dict[str, Any] = "", blocks: Sequence[Any] | None = None,
                       attachments: Sequence[Any] | None = None, response_type: str | None = None,
                       replace_original: bool | None = None, delete_original: bool | None = None,
                       unfurl_links: bool | None = None, unfurl_media: bool | None = None,
                       thread_ts: str | None = None, metadata: dict[str, Any] | None = None) -> WebhookResponse:
        if self.response_url is None or self.session.closed:  # bolt's own path (and its error when no URL)
            return await super().__call__(text, blocks, attachments, response_type, replace_original,
                                          delete_original, unfurl_links, unfurl_media, thread_ts, metadata)
        client = AsyncWebhookClient(url=self.response_url, proxy=self.proxy, ssl=self.ssl, session=self.session)
        if not isinstance(text, str):
            return await client.send_dict(text)
        return await client.send_dict(_build_message(
            text=text, blocks=blocks, attachments=attachments, response_type=response_type,
            replace_original=replace_original, delete_original=delete_original, unfurl_links=unfurl_links,
            unfurl_media=unfurl_media, thread_ts=thread_ts, metadata=metadata))


def shared_respond(session: Callable[[], aiohttp.ClientSession | None]) -> Callable[..., Awaitable[Any]]:
    """A bolt middleware: this request's `respond` uses `session()` while it is open."""

    async def middleware(context: AsyncBoltContext, next: Callable[[], Awaitable[Any]]) -> Any:  # noqa: A002
        http = session()
        if context.response_url and http is not None and not http.closed \
                and not isinstance(context.get("respond"), SessionRespond):  # bolt made its own already
            context["respond"] = SessionRespond(response_url=context.response_url, proxy=context.client.proxy,
                                                ssl=context.client.ssl, session=http)
        return await next()

    return middleware
