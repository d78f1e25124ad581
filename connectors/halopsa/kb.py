"""HaloPSA's knowledge base as KB-linking articles (core/ai/knowledge.py indexes them; DocArticle is the seam).

What the spec (specs/psa/halopsa-openapi.json) gives: `GET /KBArticle` (paged with `pageinate`, `page_size`,
`page_no`; `includeactive`/`includeinactive`, `search`, `client_id`, …) and `GET /KBArticle/{id}`
(`includedetails`) answering a `KBEntry`: `name`, `description`/`description_html`, `resolution`/
`resolution_html`, `inactive`, `date_edited`, and `kbentryclientaccess` (`KbEntryAreaAccess`: `client_id`,
`client_name`), the clients an article is limited to. The list has no response schema; its wrapper key is
`articles` in two public clients (read, not copied): the HaloAPI PowerShell module's `Get-HaloKBArticle`
(ResourceType "articles") and an n8n HaloPSA node (`response.articles`). Paging and `record_count` follow
Halo's other paged lists (client.py).

What is read: every active article (inactive ones left out), newest edit first, at most MAX_ARTICLES per
refresh; each article's full record (the list row may omit the body and the access list), one call each.
An article limited to clients is that customer's (one entry per client, matched to our customer by its PSA
id); one limited to none is general. The body is the description with the resolution under a "Resolution"
heading, so chunking by heading keeps them apart. The link is the agent view ([unverified] path `/kb?id=`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from connectors.docs import DocArticle
from connectors.halopsa.client import HaloClient, PageScan

log = logging.getLogger("deskbridge.psa.halopsa")

KB_ARTICLE = "KBArticle"
MAX_ARTICLES = 1_000
MAX_PAGES = 50
KB_PAGE_SIZE = 100


def _text(row: Mapping[str, Any], plain: str, rich: str) -> tuple[str, bool]:
    html = str(row.get(rich) or "").strip()
    return (html, True) if html else (str(row.get(plain) or "").strip(), False)


def article_entries(row: Mapping[str, Any], ui_root: str) -> list[DocArticle]:
    """One Halo KBEntry (full record) as DocArticles: one general, or one per client it is limited to."""
    body, html = _text(row, "description", "description_html")
    resolution, res_html = _text(row, "resolution", "resolution_html")
    if resolution:
        html = html or res_html
        body = (f"{body}<h2>Resolution</h2>{resolution}" if html else f"{body}\n\n## Resolution\n\n{resolution}")
    if not body.strip():
        return []
    aid = str(row["id"])
    url = f"{ui_root}/kb?{httpx.QueryParams({'id': aid})}"
    title = str(row.get("name") or f"Article {aid}")
    clients = [a for a in row.get("kbentryclientaccess") or () if isinstance(a, Mapping) and a.get("client_id")]
    if not clients:
        return [DocArticle(external_id=aid, title=title, body=body, url=url, html=html)]
    return [DocArticle(external_id=f"{aid}:{a['client_id']}", title=title, body=body, url=url, html=html,
                       customer_psa_id=str(a["client_id"]), customer_name=str(a.get("client_name") or "") or None)
            for a in clients]


async def articles(client: HaloClient, ui_root: str, *, limit: int = MAX_ARTICLES) -> tuple[DocArticle, ...]:
    """Every active article the API application may read (see the module docstring)."""
    params = {"includeactive": "true", "includeinactive": "false", "order": "date_edited", "orderdesc": "true"}
    rows: list[dict[str, Any]] = []
    scan = PageScan()
    for _ in range(MAX_PAGES):
        page = await client.get_page(KB_ARTICLE, "articles", params, scan, page_size=KB_PAGE_SIZE)
        rows.extend(r for r in page.rows if r.get("id") and not r.get("inactive"))
        if page.last or len(rows) >= limit:
            break
    if len(rows) > limit:
        log.warning("HaloPSA KB articles capped", extra={"kept": limit, "left_out": len(rows) - limit})
    out: list[DocArticle] = []
    for row in rows[:limit]:
        full = await client.get_record(KB_ARTICLE, int(row["id"]), {"includedetails": "true"})
        if not full.get("inactive"):
            out.extend(article_entries(full, ui_root))
    return tuple(out)
