"""ConnectWise's knowledge base as KB-linking articles (core/ai/psa_kb.py; DocArticle is the seam).

Not in our reference or specs (there is no ConnectWise OpenAPI in specs/); the shape is the one two public
clients agree on (read, not copied; session 8 notes): `GET /service/knowledgeBaseArticles`, paged and
filtered like every other ConnectWise list (pyconnectwise's `ServiceKnowledgebasearticlesEndpoint`), rows
`KnowledgeBaseArticle` with `id`, `title`, `issue`, `resolution`, `locationId`, `businessUnitId`, `boardId`,
`categoryId`, `subCategoryId`, `dateCreated`, `createdBy` (ConnectPyse's model and pyconnectwise's).

An article carries no company: every one is general (the MSP's own). The body is the issue, then the
resolution under a "Resolution" heading (plain text), so chunking by heading keeps them apart. The newest
MAX_ARTICLES are read per refresh. No link is given: the agent-view URL of an article is not documented
anywhere we have, and a guessed link that lands on an error page is worse than none ([unverified]).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.connectwise.client import CwClient
from connectors.docs import DocArticle

PATH = "service/knowledgeBaseArticles"
MAX_ARTICLES = 1_000
PAGE_SIZE = 1_000


def article(row: Mapping[str, Any]) -> DocArticle | None:
    """One KnowledgeBaseArticle as a general DocArticle (None when it has no text)."""
    issue, resolution = str(row.get("issue") or "").strip(), str(row.get("resolution") or "").strip()
    if not (issue or resolution):
        return None
    body = issue + (f"\n\n## Resolution\n\n{resolution}" if resolution else "")
    aid = str(row["id"])
    return DocArticle(external_id=aid, title=str(row.get("title") or f"Article {aid}"), body=body, html=False)


async def articles(client: CwClient, *, limit: int = MAX_ARTICLES) -> tuple[DocArticle, ...]:
    """The newest `limit` articles (by id, newest first)."""
    rows = await client.get_all(PATH, {"orderBy": "id desc"}, page_size=min(PAGE_SIZE, limit),
                                max_pages=max(1, -(-limit // PAGE_SIZE)))
    out = [a for a in (article(r) for r in rows[:limit] if isinstance(r, Mapping) and r.get("id")) if a]
    return tuple(out)
