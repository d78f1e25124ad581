"""bolt's `respond()` over the surface's shared HTTP session (issue 20 item 4).

bolt's AsyncRespond opens an aiohttp session, and so a TCP connection (with real Slack, a TLS handshake), for every
response_url post: one for each `/tickets`, each button's answer. A middleware gives each request a respond that
posts the same message through the session every other Slack call uses.

`post_response` is that post, made directly on the session: the body and headers slack_sdk's webhook client
would send (`None` fields left out, Block objects as dicts, its User-Agent), one retry after a dropped connection
as its default retry handler does, and the same WebhookResponse back. It skips the client's per-post set-up
(proxy lookup in the environment, retry state objects, debug checks): ~2-3% of a `/tickets mine` job's CPU. A body
of plain dicts skips slack_sdk's model-object conversion (its ABC checks were ~1-2% more).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.context.respond.internals import _build_message
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.internal_utils import _parse_web_class_objects, get_user_agent
from slack_sdk.webhook import WebhookResponse

_HEADERS = {"Content-Type": "application/json;charset=utf-8", "User-Agent": get_user_agent()}
# slack_sdk's default webhook retry: once, after a connection that dropped or could not be made
_RETRY_ON = (aiohttp.ServerConnectionError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
RETRY_AFTER_S = 0.5


async def post_response(session: aiohttp.ClientSession, url: str, message: Mapping[str, Any], *,
                        proxy: str | None = None, ssl: Any = None) -> WebhookResponse:
    """POST `message` to a response_url (or incoming webhook) over `session`, as AsyncWebhookClient.send_dict."""
    body = {k: v for k, v in message.items() if v is not None}
    if not _plain_dicts(body):  # slack_sdk's conversion of Block/Attachment objects; plain dicts it leaves as they are
        _parse_web_class_objects(body)
    data = json.dumps(body)
    for attempt in (0, 1):
        try:
            async with session.post(url, data=data, headers=_HEADERS, proxy=proxy, ssl=ssl) as res:
                text = await res.text()
                return WebhookResponse(url=url, status_code=res.status, body=text, headers=res.headers)  # type: ignore[arg-type]  # as slack_sdk passes it
        except _RETRY_ON:
            if attempt:
                raise
            await asyncio.sleep(RETRY_AFTER_S)
    raise AssertionError("unreachable")  # pragma: no cover


def _plain_dicts(body: Mapping[str, Any]) -> bool:
    """Every block and attachment is a plain dict (what our renderers make): `_parse_web_class_objects` would give
    the same lists back (it converts only slack_sdk model objects), at ~6 ABC instance checks per element."""
    for name in ("blocks", "user_auth_blocks", "attachments"):
        items = body.get(name)
        if items is not None and not (isinstance(items, list) and all(type(x) is dict for x in items)):
            return False
    return True


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
        if not isinstance(text, str):
            return await post_response(self.session, self.response_url, text, proxy=self.proxy, ssl=self.ssl)
        return await post_response(self.session, self.response_url, _build_message(
            text=text, blocks=blocks, attachments=attachments, response_type=response_type,
            replace_original=replace_original, delete_original=delete_original, unfurl_links=unfurl_links,
            unfurl_media=unfurl_media, thread_ts=thread_ts, metadata=metadata), proxy=self.proxy, ssl=self.ssl)


class SharedRespond(AsyncMiddleware):
    """A bolt middleware: this request's `respond` uses `session()` while it is open.

    A middleware class (bolt's AsyncMiddleware) rather than a function: bolt calls a function middleware
    through its argument injection, which builds every argument a listener could ask for on each request
    (~1.5-2% of a click's CPU); a class's `async_process` is called with the request as it is.
    """

    def __init__(self, session: Callable[[], aiohttp.ClientSession | None]) -> None:
        self.session = session

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse | None:  # noqa: A002
        context = req.context
        http = self.session()
        if context.response_url and http is not None and not http.closed \
                and not isinstance(context.get("respond"), SessionRespond):  # bolt made its own already
            context["respond"] = SessionRespond(response_url=context.response_url, proxy=context.client.proxy,
                                                ssl=context.client.ssl, session=http)
        return await next()


def shared_respond(session: Callable[[], aiohttp.ClientSession | None]) -> SharedRespond:
    """The middleware giving each request a respond over `session()` (bolt's `app.middleware(...)` takes it)."""
    return SharedRespond(session)
