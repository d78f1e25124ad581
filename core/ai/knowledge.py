"""KB linking for technicians: keep a workspace's knowledge-base articles, and link the ones that answer a ticket.

Sources (each replaces only its own articles, and only after a complete read):
- the documentation platforms already connected for doc links (core/docs_links.py): Hudu's `/articles`, general
  ones and per company, and IT Glue's published documents with the text of their sections, per organization;
  the company or organization matched to our customer by its PSA id, then its name (an article whose company
  matches no customer is left out: it is never shown as a general one);
- a folder of Markdown files an admin imports (`deskbridge ai kb-import`), general articles.

- the PSAs' own knowledge bases where the connector reads one (HaloPSA, ConnectWise; core/ai/psa_kb.py), one source per
  connection, a customer-limited article matched only to a customer of that connection.

Linking is technicians' only (never a customer's view), scoped to general articles and
the ticket's own customer's, shown with its source, the matching paragraph and the score, and only above the
workspace's `kb_threshold`: no link is a valid answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from connectors.docs import DocArticle
from core.ai import psa_kb
from core.ai import settings as ai_settings
from core.ai.kb import Article, KbIndex, KbLink, html_to_text
from core.ai.text import ticket_text
from core.context import Actor
from core.errors import InvalidInput, PermissionDenied
from core.ticket_lookup import ticket_id_not_found
from store.db import Database, Scope
from store.tables import Customer, KbArticle, Ticket, Workspace
from store.types import utcnow

log = logging.getLogger("deskbridge.ai.kb")

MARKDOWN = "markdown"
MAX_FILE_BYTES = 1_000_000
SOURCE_NAMES = {"hudu": "Hudu", "itglue": "IT Glue", MARKDOWN: "Markdown folder"}
# The platforms' articles by kind (DocsService.kb_articles): None for a platform that failed or has no text.
ArticleReader = Callable[[int], Awaitable[Mapping[str, tuple[DocArticle, ...] | None]]]


@dataclass(frozen=True, slots=True)
class RefreshReport:
    sources: dict[str, int]  # source -> articles kept
    skipped: dict[str, str]  # source -> why nothing changed for it


class KnowledgeBase:
    def __init__(self, db: Database, *, read_platforms: ArticleReader | None = None) -> None:
        self.db = db
        self._read_platforms = read_platforms
        self._indexes: dict[int, tuple[tuple[int, datetime | None], KbIndex]] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    # --- sources ----------------------------------------------------------------------------------
    async def refresh(self, workspace_id: int) -> RefreshReport:
        """Re-read every connected platform's articles into the workspace's KB (a platform that fails keeps
        what it had)."""
        found = await self._read_platforms(workspace_id) if self._read_platforms is not None else {}
        kept, skipped = {}, {}
        for source, articles in found.items():
            if articles is None:
                skipped[source] = "not readable now, or no article text in its API"
                continue
            scoped = await self._scoped(workspace_id, articles, connection_id=psa_kb.connection_of(source))
            kept[source] = await self._replace(workspace_id, source, scoped)
        return RefreshReport(kept, skipped)

    async def refresh_all(self) -> int:
        """The scheduled refresh: every workspace with KB linking on. Returns the articles kept."""
        async with self.db.read(Scope.system_wide()) as session:
            workspaces = (await session.execute(select(Workspace.id, Workspace.settings))).all()
        total = 0
        for ws, stored in workspaces:
            if ai_settings.effective(stored)["kb"]:
                try:
                    total += sum((await self.refresh(ws)).sources.values())
                except Exception:  # one workspace's failure never stops the others
                    log.exception("KB refresh failed", extra={"workspace_id": ws})
        return total

    async def _scoped(self, workspace_id: int, articles: tuple[DocArticle, ...], *, connection_id: int | None = None
                      ) -> list[tuple[DocArticle, int | None]]:
        """Each article with its customer (None: general); company articles matching no customer are dropped.
        A PSA's article (`connection_id`) matches only that connection's customers."""
        query = sa.select(col(Customer.id), col(Customer.external_id), col(Customer.name))
        if connection_id is not None:
            query = query.where(col(Customer.connection_id) == connection_id)
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            customers = (await session.execute(query)).all()
        by_psa = {str(ext): cid for cid, ext, _ in customers if ext}
        by_name = {str(name).strip().lower(): cid for cid, _, name in customers if name}
        out: list[tuple[DocArticle, int | None]] = []
        for a in articles:
            if a.customer_psa_id is None and a.customer_name is None:
                out.append((a, None))
                continue
            cid = by_psa.get(a.customer_psa_id or "") or by_name.get((a.customer_name or "").strip().lower())
            if cid is not None:
                out.append((a, cid))
        return out

    async def _replace(self, workspace_id: int, source: str, articles: list[tuple[DocArticle, int | None]]) -> int:
        """Make the workspace's articles of `source` exactly these (insert, update, delete), in one transaction."""
        now = utcnow()
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            existing = {r.external_id: r for r in (await session.execute(
                select(KbArticle).where(KbArticle.source == source))).scalars().all()}
            seen = set()
            for a, customer_id in articles:
                if a.external_id in seen:
                    continue
                seen.add(a.external_id)
                body = html_to_text(a.body) if a.html else a.body
                url = a.url if a.url and len(a.url) <= 2000 else None  # the column's width: no link rather than an error
                row = existing.get(a.external_id) or KbArticle(
                    workspace_id=workspace_id, source=source, external_id=a.external_id[:300], title="", body="")
                if (row.title, row.body, row.url, row.customer_id) != (a.title[:300], body, url, customer_id):
                    row.title, row.body, row.url, row.customer_id, row.updated_at = (
                        a.title[:300], body, url, customer_id, now)
                    session.add(row)
            for ext, row in existing.items():
                if ext not in seen:
                    await session.delete(row)
        return len(seen)

    async def import_folder(self, actor: Actor, path: str) -> int:
        """Make the workspace's Markdown articles the `.md` files under `path` (admins only). Each file is one
        article: its first `#` heading (or file name) is the title, its path inside the folder the source."""
        if not actor.is_admin:
            raise PermissionDenied("Only a workspace admin can import knowledge-base articles.",
                                   hint="Ask an admin, or on the server: `deskbridge ai kb-import FOLDER`.")
        articles = await asyncio.to_thread(_read_folder, path)
        return await self._replace(actor.workspace_id, MARKDOWN, [(a, None) for a in articles])

    # --- linking ----------------------------------------------------------------------------------
    async def _index(self, workspace_id: int) -> KbIndex:
        """The workspace's index, rebuilt (in a worker thread) when its articles changed."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            count, newest = (await session.execute(sa.select(sa.func.count(col(KbArticle.id)),
                                                             sa.func.max(col(KbArticle.updated_at))))).one()
        version = (int(count), newest)
        cached = self._indexes.get(workspace_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        async with self._locks.setdefault(workspace_id, asyncio.Lock()):
            cached = self._indexes.get(workspace_id)
            if cached is not None and cached[0] == version:
                return cached[1]
            async with self.db.read(Scope.workspace(workspace_id)) as session:
                rows = (await session.execute(select(KbArticle))).scalars().all()
            articles = [Article(article_id=r.id or 0, source=r.source, title=r.title, body=r.body, url=r.url,
                                customer_id=r.customer_id) for r in rows]
            index = await asyncio.to_thread(KbIndex().build, articles)
            self._indexes[workspace_id] = (version, index)
            return index

    async def links(self, actor: Actor, ticket_id: int, *, k: int = 2,
                    loaded: tuple[Ticket, dict[str, Any]] | None = None) -> tuple[KbLink, ...]:
        """The articles that answer this ticket, best first (technicians only; empty when off or none clears the
        threshold). `loaded`: the ticket (read in the actor's scope) and the effective AI settings, when the
        caller has just read them."""
        if not actor.is_member or actor.customer_scope_id is not None:
            raise PermissionDenied("Knowledge-base links are for technicians.",
                                   hint="Ask your MSP's technician; they see the matching articles on the ticket.")
        if loaded is not None:
            ticket, opts = loaded
        else:
            async with self.db.read(actor.scope) as session:
                found = await session.get(Ticket, ticket_id)
                ws = await session.get(Workspace, actor.workspace_id)
            if found is None or found.deleted_at is not None or ws is None:
                raise ticket_id_not_found(ticket_id)
            ticket, opts = found, ai_settings.effective(ws.settings)
        if not opts["kb"]:
            return ()
        return await self.search(actor.workspace_id, ticket_text(ticket.subject, ticket.description),
                                 customer_id=ticket.customer_id, k=k, threshold=opts["kb_threshold"])

    async def search(self, workspace_id: int, text: str, *, customer_id: int | None, k: int = 2,
                     threshold: float) -> tuple[KbLink, ...]:
        """Articles for `text`: general ones and those of `customer_id` only."""
        index = await self._index(workspace_id)
        return tuple(index.search(text, customers={customer_id}, k=k, threshold=threshold))

    async def count(self, workspace_id: int) -> dict[str, int]:
        """Articles per source."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.execute(sa.select(col(KbArticle.source), sa.func.count(col(KbArticle.id)))
                                          .group_by(col(KbArticle.source)))).all()
        return {str(s): int(n) for s, n in rows}


def source_name(source: str) -> str:
    return SOURCE_NAMES.get(source) or psa_kb.source_name(source) or source


def _read_folder(path: str) -> list[DocArticle]:
    """The `.md` files under `path` as articles; InvalidInput (nothing imported) for a bad folder or file."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InvalidInput(f"'{path}' is not a folder on this server.", field="path",
                           hint="Give the folder that holds the articles' .md files; nothing was imported.")
    files = sorted(p for p in root.rglob("*.md") if p.is_file())
    articles: list[DocArticle] = []
    unreadable = []
    for p in files:
        try:
            if p.stat().st_size > MAX_FILE_BYTES:
                raise ValueError("too large")
            text = p.read_text(encoding="utf-8")
        except (OSError, ValueError):
            unreadable.append(str(p.relative_to(root)))
            continue
        title = next((ln.lstrip("#").strip() for ln in text.splitlines() if ln.startswith("# ")), p.stem)
        articles.append(DocArticle(external_id=str(p.relative_to(root)), title=title, body=text, html=False))
    if unreadable:
        raise InvalidInput(f"{len(unreadable)} file(s) could not be read as UTF-8 text under 1 MB: "
                           + ", ".join(unreadable[:5]), field="path",
                           hint="Fix or remove them and import again; nothing was imported.")
    if not articles:
        raise InvalidInput(f"There are no .md files under '{path}'.", field="path",
                           hint="Put one Markdown file per article in the folder; nothing was imported.")
    return articles
