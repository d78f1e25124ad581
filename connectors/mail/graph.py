"""Microsoft 365 mailbox reader over Microsoft Graph (httpx): app-only token (client credentials), a delta
query on the Inbox, the raw MIME of each new message from `/messages/{id}/$value`.

Watermark: the `@odata.nextLink` of an unfinished round or the `@odata.deltaLink` of a finished one (both
opaque URLs from Graph). A page is fetched whole (`Prefer: odata.maxpagesize`); if a message's MIME cannot be
read, the messages before it are returned with the old watermark, so the page is read again (Message-IDs
keep that from doubling). An expired delta link (410 Gone) starts a new round from the Inbox's beginning; the
Message-IDs already taken keep that from doubling too. Access should be limited to this mailbox with Exchange RBAC for Applications.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

import httpx

from connectors.mailbox import MailBatch, MailboxError, MailItem

SCOPE = "https://graph.microsoft.com/.default"
log = logging.getLogger("deskbridge.mail.graph")


class GraphReader:
    def __init__(self, *, mailbox: str, tenant: str, client_id: str, client_secret: str,
                 graph_url: str = "https://graph.microsoft.com/v1.0", login_url: str = "https://login.microsoftonline.com",
                 transport: httpx.AsyncBaseTransport | None = None, timeout: float = 30.0) -> None:
        self.mailbox, self.tenant, self.client_id, self._secret = mailbox, tenant, client_id, client_secret
        self.graph_url, self.login_url = graph_url.rstrip("/"), login_url.rstrip("/")
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout)
        self._token: tuple[str, float] | None = None

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _bearer(self) -> str:
        if self._token and self._token[1] > time.monotonic():
            return self._token[0]
        r = await self._request("POST", f"{self.login_url}/{quote(self.tenant)}/oauth2/v2.0/token", auth=False, data={
            "grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self._secret,
            "scope": SCOPE})
        body = r.json()
        self._token = (str(body["access_token"]), time.monotonic() + float(body.get("expires_in", 3600)) - 60)
        return self._token[0]

    async def _request(self, method: str, url: str, *, auth: bool = True, gone_ok: bool = False,
                       **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if auth:
            headers["Authorization"] = f"Bearer {await self._bearer()}"
        try:
            r = await self._client.request(method, url, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise MailboxError(f"Microsoft Graph could not be reached ({type(exc).__name__}).",
                               "It is retried at the next poll.") from None
        if r.status_code == 410 and gone_ok:
            return r
        if r.status_code in (400, 401, 403):
            reason = _error(r)
            raise MailboxError(f"Microsoft Graph refused the request ({r.status_code}: {reason}).",
                               "Check the tenant, the app's client id and secret, its Mail.Read application "
                               "permission and that RBAC for Applications lets it read this mailbox.", auth=True)
        if r.status_code >= 400:
            raise MailboxError(f"Microsoft Graph answered {r.status_code}"
                               + (f" (retry after {r.headers['Retry-After']} s)" if "Retry-After" in r.headers else "")
                               + ".", "It is retried at the next poll.")
        return r

    async def fetch(self, watermark: str | None, limit: int) -> MailBatch:
        first = (f"{self.graph_url}/users/{quote(self.mailbox)}/mailFolders('Inbox')/messages/delta"
                 "?$select=id,internetMessageId")
        prefer = {"Prefer": f"odata.maxpagesize={max(1, limit)}"}
        resp = await self._request("GET", watermark or first, headers=prefer, gone_ok=watermark is not None)
        if resp.status_code == 410:
            # The delta token expired (Outlook keeps a limited cache of them): a new round lists the Inbox again,
            # and the Message-IDs already taken keep it from making a ticket twice.
            log.warning("Graph delta link expired (410): reading the Inbox again from the start")
            resp = await self._request("GET", first, headers=prefer)
        page = resp.json()
        items: list[MailItem] = []
        for entry in page.get("value", []):
            if "@removed" in entry or not entry.get("id"):
                continue
            try:
                raw = await self._request("GET", f"{self.graph_url}/users/{quote(self.mailbox)}/messages/"
                                          f"{quote(str(entry['id']))}/$value")
            except MailboxError:
                return MailBatch(tuple(items), watermark, more=False)
            items.append(MailItem(str(entry["id"]), raw.content))
        next_link = page.get("@odata.nextLink")
        return MailBatch(tuple(items), next_link or page.get("@odata.deltaLink") or watermark, more=bool(next_link))


def _error(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return "no details"
    err = body.get("error")
    if isinstance(err, dict):
        return str(err.get("code") or "error")
    return str(body.get("error_description") or err or "error")[:120]
