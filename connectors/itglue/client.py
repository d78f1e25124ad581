"""IT Glue over httpx (JSON:API): the organization by `filter[psa_id]` (then `filter[name]`), the device's
configuration by `filter[psa_id]` (ConnectWise Manage configuration ids match directly) or name, and the
organization's documents; each record's `resource-url` is the deep link. Pages follow `links.next`.
Passwords are never read.

Knowledge base (`articles`): every organization's documents (`/organizations/{id}/relationships/documents`
with `filter[document_folder_id]=null`, which lists the documents inside folders too; without it IT Glue lists
only the root's), leaving out archived, unpublished and restricted ones; then each document's text from its
sections (`/documents/{id}/relationships/sections`, ordered by `sort`): `Document::Heading` (with its `level`
1-6), `Document::Text` and `Document::Step` carry HTML in `content`; `Document::Gallery` has no text. These
names are from two public IT Glue clients (the Celerium.ITGlue PowerShell module and a TypeScript client), not
from reference/teams-graph-intake.md §5, which does not describe sections [report]. One call per document,
against IT Glue's 3,000 requests per 5 minutes: at most MAX_KB_DOCUMENTS documents are read per refresh, the
most recently updated first (the rest are named in the log).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from html import escape, unescape
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors.docs import DocArticle, DocLink, DocsError, DocsQuery
from connectors.docs_http import DocsHttp

PAGE_SIZE = 50
MAX_PAGES = 5
MAX_LINKS = 3
KB_PAGE_SIZE = 1000  # IT Glue's largest page
MAX_KB_DOCUMENTS = 1000  # documents whose sections one refresh reads (one call each)
MAX_KB_ORGANIZATIONS = 2000
_TEXT_SECTIONS = ("Document::Text", "Document::Step")

log = logging.getLogger(__name__)


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

    async def _all(self, path: str, params: dict[str, str], *, limit: int = 200, page_size: int = PAGE_SIZE,
                   pages: int = MAX_PAGES) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        url: str | None = path
        query: dict[str, str] | None = {**params, "page[size]": str(page_size)}
        for _ in range(pages):
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

    async def articles(self) -> tuple[DocArticle, ...]:
        """The organizations' published documents with their text (see the module docstring), each with its
        organization's PSA id (`psa-id`) and name so the caller can match its customer."""
        orgs = await self._all("/organizations", {}, limit=MAX_KB_ORGANIZATIONS, page_size=KB_PAGE_SIZE,
                               pages=MAX_KB_ORGANIZATIONS // KB_PAGE_SIZE + 1)
        found: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for org in orgs:
            docs = await self._all(f"/organizations/{org.get('id')}/relationships/documents",
                                   {"filter[document_folder_id]": "null"}, limit=10 * MAX_KB_DOCUMENTS,
                                   page_size=KB_PAGE_SIZE, pages=10)
            found += [(org, d) for d in docs if _readable(d)]
        found.sort(key=lambda od: str((od[1].get("attributes") or {}).get("updated-at") or ""), reverse=True)
        if len(found) > MAX_KB_DOCUMENTS:
            log.warning("IT Glue has more published documents than one refresh reads; the most recently updated "
                        "are kept", extra={"documents": len(found), "read": MAX_KB_DOCUMENTS})
        out = []
        for org, doc in found[:MAX_KB_DOCUMENTS]:
            sections = await self._all(f"/documents/{doc.get('id')}/relationships/sections", {}, limit=10_000,
                                       page_size=KB_PAGE_SIZE, pages=10)
            oa, da = org.get("attributes") or {}, doc.get("attributes") or {}
            out.append(DocArticle(
                external_id=str(doc["id"]), title=str(da.get("name") or ""), body=sections_html(sections),
                url=str(da["resource-url"]) if da.get("resource-url") else None,
                customer_psa_id=str(oa["psa-id"]) if oa.get("psa-id") else None,
                customer_name=str(oa.get("name") or "")))
        return tuple(out)


def _readable(doc: dict[str, Any]) -> bool:
    """A document to index: it has an id, and is not archived, unpublished (a draft) or restricted to some
    users (every technician sees a linked article)."""
    a = doc.get("attributes") or {}
    return doc.get("id") is not None and not a.get("archived") and a.get("published", True) is not False \
        and not a.get("restricted")


def sections_html(sections: list[dict[str, Any]]) -> str:
    """A document's sections, in `sort` order, as one HTML body: headings at their level, text and steps as they
    are, galleries left out."""
    parts = []
    for s in sorted(sections, key=lambda r: (int((r.get("attributes") or {}).get("sort") or 0), str(r.get("id")))):
        a = s.get("attributes") or {}
        kind, content = a.get("resource-type"), str(a.get("content") or a.get("rendered-content") or "")
        if not content.strip():
            continue
        if kind == "Document::Heading":
            level = min(max(int(a.get("level") or 2), 1), 6)
            parts.append(f"<h{level}>{escape(_plain(content))}</h{level}>")
        elif kind in _TEXT_SECTIONS:
            parts.append(content)
    return "\n".join(parts)


def _plain(html: str) -> str:
    """A heading's content as text (IT Glue may send it plain or wrapped in markup)."""
    return unescape(re.sub(r"<[^>]+>", "", html)).strip()


def _path(link: str) -> str:
    """A `links.next` URL as a path + query on our base URL (IT Glue answers absolute links)."""
    parts = urlsplit(link)
    return parts.path + (f"?{parts.query}" if parts.query else "") if parts.scheme else link
