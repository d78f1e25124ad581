"""IT Glue over httpx (JSON:API): the organization by `filter[psa_id]` (then `filter[name]`), the device's
configuration by `filter[psa_id]` (ConnectWise Manage configuration ids match directly) or name, and the
organization's documents; each record's `resource-url` is the deep link. Pages follow `links.next`.
Passwords are never read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors.docs import DocLink, DocsError, DocsQuery
from connectors.docs_http import DocsHttp

PAGE_SIZE = 50
MAX_PAGES = 5
MAX_LINKS = 3


class ItGlueDocs:
    kind = "itglue"

    def __init__(self, base_url: str, api_key: str, *, transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        kw: dict[str, Any] = {"sleep": sleep} if sleep else {}
        self.http = DocsHttp(base_url, api_key, name="IT Glue", transport=transport,
                             headers={"Content-Type": "application/vnd.api+json"}, **kw)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def check(self) -> None:
        await self.http.get("/organizations", {"page[size]": "1"})

    async def _all(self, path: str, params: dict[str, str], *, limit: int = 200) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        url: str | None = path
        query: dict[str, str] | None = {**params, "page[size]": str(PAGE_SIZE)}
        for _ in range(MAX_PAGES):
            if url is None or len(out) >= limit:
                break
            body = await self.http.get(url, query)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise DocsError(f"IT Glue answered {path} without a data list.")
            out += [r for r in body["data"] if isinstance(r, dict)]
            nxt = (body.get("links") or {}).get("next")
            url, query = (_path(str(nxt)), None) if nxt else (None, None)
        return out[:limit]

    async def _org(self, q: DocsQuery) -> dict[str, Any] | None:
        if q.customer_psa_id:
            found = await self._all("/organizations", {"filter[psa_id]": q.customer_psa_id})
            if found:
                return found[0]
        found = await self._all("/organizations", {"filter[name]": q.customer_name})
        return found[0] if found else None

    async def links(self, query: DocsQuery) -> tuple[DocLink, ...]:
        org = await self._org(query)
        if org is None:
            return ()
        attrs, oid = org.get("attributes") or {}, str(org.get("id"))
        links = [DocLink("company", f"IT Glue: {attrs.get('name') or query.customer_name}", str(attrs["resource-url"]))
                 ] if attrs.get("resource-url") else []
        configs: list[dict[str, Any]] = []
        if query.device_psa_id:
            configs = await self._all("/configurations", {"filter[organization_id]": oid,
                                                          "filter[psa_id]": query.device_psa_id}, limit=1)
        if not configs and query.device_name:
            configs = await self._all("/configurations", {"filter[organization_id]": oid,
                                                          "filter[name]": query.device_name}, limit=1)
        for c in configs[:1]:
            a = c.get("attributes") or {}
            if a.get("resource-url"):
                links.append(DocLink("asset", f"IT Glue configuration: {a.get('name')}", str(a["resource-url"])))
        docs = await self._all(f"/organizations/{oid}/relationships/documents", {}, limit=MAX_LINKS)
        for d in docs[:MAX_LINKS]:
            a = d.get("attributes") or {}
            if a.get("resource-url"):
                links.append(DocLink("article", f"IT Glue: {a.get('name')}", str(a["resource-url"])))
        return tuple(links)

    async def articles(self) -> None:
        """None: IT Glue's documents keep their text in document sections, which the API reference we build
        against (reference/teams-graph-intake.md §5) does not describe; KB linking does not read IT Glue yet."""
        return None


def _path(link: str) -> str:
    """A `links.next` URL as a path + query on our base URL (IT Glue answers absolute links)."""
    parts = urlsplit(link)
    return parts.path + (f"?{parts.query}" if parts.query else "") if parts.scheme else link
