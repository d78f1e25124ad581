"""Hudu over httpx: find the company by its PSA id (`id_in_integration`, then by name), the device's asset
(by name), and the company's procedures and articles; each record's `url` is the deep link.

Hudu pages lists at 25 items per `page` (no next link: a short page is the last). Passwords are never read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from connectors.docs import DocArticle, DocLink, DocsError, DocsQuery
from connectors.docs_http import DocsHttp

PAGE = 25
MAX_PAGES = 8
MAX_LINKS = 3  # runbooks and articles shown per card
MAX_KB_PAGES = 80  # articles (and companies) read per KB refresh: 2,000 each


class HuduDocs:
    kind = "hudu"

    def __init__(self, base_url: str, api_key: str, *, transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        base = base_url.rstrip("/")
        base = base if base.endswith("/api/v1") else base + "/api/v1"
        kw: dict[str, Any] = {"sleep": sleep} if sleep else {}
        self.http = DocsHttp(base, api_key, name="Hudu", transport=transport, **kw)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def check(self) -> None:
        await self.http.get("/companies", {"page": "1", "page_size": "1"})

    async def _all(self, path: str, key: str, params: dict[str, str], *, pages: int = MAX_PAGES) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for page in range(1, pages + 1):
            body = await self.http.get(path, {**params, "page": str(page)})
            rows = body.get(key) if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise DocsError(f"Hudu answered {path} without a '{key}' list.")
            out += [r for r in rows if isinstance(r, dict)]
            if len(rows) < PAGE:
                break
        return out

    async def _company(self, q: DocsQuery) -> dict[str, Any] | None:
        if q.customer_psa_id:
            found = await self._all("/companies", "companies", {"id_in_integration": q.customer_psa_id})
            if found:
                return found[0]
        found = await self._all("/companies", "companies", {"name": q.customer_name})
        exact = [c for c in found if str(c.get("name", "")).lower() == q.customer_name.lower()]
        best = exact or found
        return best[0] if best else None

    async def links(self, query: DocsQuery) -> tuple[DocLink, ...]:
        company = await self._company(query)
        if company is None or not company.get("url"):
            return ()
        cid = str(company["id"])
        links = [DocLink("company", f"Hudu: {company.get('name') or query.customer_name}", str(company["url"]))]
        if query.device_name:
            assets = await self._all("/assets", "assets", {"company_id": cid, "name": query.device_name})
            links += [DocLink("asset", f"Hudu asset: {a.get('name')}", str(a["url"])) for a in assets[:1] if a.get("url")]
        procedures = await self._all("/procedures", "procedures", {"company_id": cid})
        links += [DocLink("runbook", f"Hudu: {p.get('name')}", str(p["url"])) for p in procedures[:MAX_LINKS]
                  if p.get("url")]
        return tuple(links)

    async def articles(self) -> tuple[DocArticle, ...]:
        """The knowledge base (`GET /articles`, general and per company; drafts left out), each company article
        with its company's PSA id (`id_in_integration`) and name so the caller can match its customer."""
        rows = await self._all("/articles", "articles", {}, pages=MAX_KB_PAGES)
        companies: dict[str, dict[str, Any]] = {}
        if any(r.get("company_id") is not None for r in rows):
            companies = {str(c.get("id")): c for c in await self._all("/companies", "companies", {},
                                                                        pages=MAX_KB_PAGES)}
        out = []
        for r in rows:
            if r.get("draft") or r.get("id") is None:
                continue
            company = companies.get(str(r["company_id"])) if r.get("company_id") is not None else None
            if r.get("company_id") is not None and company is None:
                continue  # a company article whose company we cannot name is never shown as general
            out.append(DocArticle(
                external_id=str(r["id"]), title=str(r.get("name") or ""), body=str(r.get("content") or ""),
                url=str(r["url"]) if r.get("url") else None,
                customer_psa_id=str(company["id_in_integration"]) if company and company.get("id_in_integration")
                else None,
                customer_name=str(company.get("name") or "") if company else None))
        return tuple(out)
