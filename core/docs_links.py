"""Documentation links beside a ticket: the customer's page, the device's asset/configuration and a few runbooks
from the workspace's Hudu and IT Glue, one click from a technician's card.

Rules:
- One platform of each kind per workspace: its base URL and API key, the key encrypted at rest (store.crypto),
  tested before it is saved (a wrong key or URL is refused with what to fix, and nothing is stored).
- Technicians only: never for an end user or in a customer channel (the card leaves them out there too).
- The customer is found by its PSA id first, then its name; the device by the ticket's device reference.
- Platforms are asked in parallel; results are cached per (workspace, customer, device) for `ttl` seconds; a
  platform that fails is left out of the card (logged without its key), never failing the card.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlsplit

from sqlmodel import select

from connectors.docs import DocArticle, DocLink, DocsError, DocsPlatform, DocsQuery
from core.context import Actor
from core.errors import InvalidInput, PermissionDenied
from core.ticket_lookup import ticket_id_not_found
from store.crypto import CredentialCipher
from store.db import Database, Scope
from store.tables import Customer, DocPlatform, Ticket

log = logging.getLogger("deskbridge.docs")

KINDS = {"hudu": "Hudu", "itglue": "IT Glue"}
# (kind, base URL, API key) -> a client (bot/main.py builds connectors.hudu / connectors.itglue).
DocsFactory = Callable[[str, str, str], DocsPlatform]
CACHE_MAX = 2000
ROWS_TTL = 30.0  # seconds: another instance's new platform shows up on cards within this


class DocsService:
    """Configure documentation platforms and find a ticket's documentation links."""

    def __init__(self, db: Database, *, cipher: CredentialCipher, factory: DocsFactory, ttl: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db, self.cipher, self._factory, self.ttl, self._clock = db, cipher, factory, ttl, clock
        self._clients: dict[tuple[int, str], tuple[str, DocsPlatform]] = {}  # (ws, kind) -> (key digest, client)
        self._cache: dict[tuple[int, int, str], tuple[float, tuple[DocLink, ...]]] = {}
        self._rows: dict[int, tuple[float, list[DocPlatform]]] = {}  # workspace -> its platforms, briefly

    async def aclose(self) -> None:
        for _, client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def configure(self, actor: Actor, kind: str, base_url: str, api_key: str) -> None:
        """Save (or replace) a platform after one successful call with these settings."""
        if not actor.is_admin:
            raise PermissionDenied("Only a Deskbridge admin can set up documentation platforms.",
                                   hint="Ask an admin, or on the server: `deskbridge customer docs-platform`.")
        if kind not in KINDS:
            raise InvalidInput(f"'{kind}' is not a documentation platform.", field="kind", hint="Use hudu or itglue.")
        url = (base_url or "").strip().rstrip("/")
        parts = urlsplit(url)
        local = parts.hostname in ("127.0.0.1", "localhost")
        if parts.scheme not in ("https", "http") or not parts.hostname or (parts.scheme == "http" and not local):
            raise InvalidInput(f"'{base_url}' is not an https URL.", field="url",
                               hint="e.g. https://acme.huducloud.com or https://api.itglue.com (api.eu.itglue.com).")
        if not api_key or not api_key.strip():
            raise InvalidInput("An API key is needed.", field="api_key",
                               hint=f"Create one in {KINDS[kind]} (Admin > API keys) and give it; nothing was saved.")
        client = self._factory(kind, url, api_key.strip())
        try:
            await client.check()
        except DocsError as exc:
            raise InvalidInput(f"{KINDS[kind]} did not accept these settings: {exc.message}", field="api_key",
                               hint="Nothing was saved. Check the URL and the key, then try again.") from None
        finally:
            await client.aclose()
        blob = self.cipher.encrypt({"api_key": api_key.strip()}, workspace_id=actor.workspace_id, kind=f"docs-{kind}")
        async with self.db.write(actor.scope) as session:
            row = (await session.exec(select(DocPlatform).where(DocPlatform.kind == kind))).first() or DocPlatform(
                workspace_id=actor.workspace_id, kind=kind, base_url=url, credentials_ciphertext=blob)
            row.base_url, row.credentials_ciphertext = url, blob
            session.add(row)
        self._cache = {k: v for k, v in self._cache.items() if k[0] != actor.workspace_id}
        self._rows.pop(actor.workspace_id, None)

    async def _platform_rows(self, actor: Actor) -> list[DocPlatform]:
        """The workspace's platforms, re-read at most every ROWS_TTL seconds (a card pays no read for them)."""
        hit = self._rows.get(actor.workspace_id)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        async with self.db.read(actor.scope) as session:
            rows = list((await session.exec(select(DocPlatform).where(
                DocPlatform.workspace_id == actor.workspace_id))).all())
        self._rows[actor.workspace_id] = (self._clock() + ROWS_TTL, rows)
        return rows

    async def platforms(self, actor: Actor) -> list[tuple[str, str]]:
        """(kind, base URL) of the configured platforms (never the key)."""
        async with self.db.read(actor.scope) as session:
            rows = (await session.exec(select(DocPlatform).where(
                DocPlatform.workspace_id == actor.workspace_id))).all()
        return [(r.kind, r.base_url) for r in rows]

    async def links(self, actor: Actor, ticket_id: int) -> tuple[DocLink, ...]:
        """The ticket's documentation links from every configured platform (empty when there are none)."""
        if not actor.is_member or actor.customer_scope_id is not None:
            raise PermissionDenied("Documentation links are for technicians only.",
                                   hint="Open the ticket in a technicians' channel or a direct message.")
        rows = await self._platform_rows(actor)
        if not rows:
            return ()
        async with self.db.read(actor.scope) as session:
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None or ticket.workspace_id != actor.workspace_id:
                raise ticket_id_not_found(ticket_id)
            customer = await session.get(Customer, ticket.customer_id) if ticket.customer_id else None
        if customer is None or customer.id is None or not rows:
            return ()
        device = ticket.device_ref or ""
        key = (actor.workspace_id, customer.id, device)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        query = DocsQuery(customer_name=customer.name, customer_psa_id=customer.external_id,
                          device_name=device or None)
        found = await asyncio.gather(*(self._ask(actor.workspace_id, row, query) for row in rows))
        links = tuple(link for group in found if group is not None for link in group)
        if all(group is not None for group in found):  # only complete answers are cached
            if len(self._cache) >= CACHE_MAX:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = (self._clock() + self.ttl, links)
        return links

    async def _client(self, workspace_id: int, row: DocPlatform) -> DocsPlatform:
        digest = hashlib.sha256(row.credentials_ciphertext + row.base_url.encode()).hexdigest()
        cached = self._clients.get((workspace_id, row.kind))
        if cached is None or cached[0] != digest:
            if cached is not None:
                await cached[1].aclose()
            secret = self.cipher.decrypt(row.credentials_ciphertext, workspace_id=workspace_id, kind=f"docs-{row.kind}")
            cached = self._clients[(workspace_id, row.kind)] = (digest, self._factory(row.kind, row.base_url,
                                                                                        str(secret["api_key"])))
        return cached[1]

    async def _ask(self, workspace_id: int, row: DocPlatform, query: DocsQuery) -> tuple[DocLink, ...] | None:
        client = await self._client(workspace_id, row)
        try:
            found = await client.links(query)
        except DocsError as exc:
            log.warning("documentation links not available", extra={"platform": row.kind, "error": exc.message})
            return None
        # A record's URL is the platform's data: only web links become buttons (a chat platform refuses a whole
        # card over one bad button URL, and a `javascript:` link must never reach a technician's click).
        return tuple(link for link in found if _web_url(link.url))

    async def kb_articles(self, workspace_id: int) -> dict[str, tuple[DocArticle, ...] | None]:
        """Each configured platform's knowledge-base articles (core/ai/knowledge.py indexes them): None for a
        platform that failed (logged without its key) or offers no article text; an article's URL is kept
        only when it is a web link."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = list((await session.exec(select(DocPlatform).where(
                DocPlatform.workspace_id == workspace_id))).all())
        out: dict[str, tuple[DocArticle, ...] | None] = {}
        for row in rows:
            client = await self._client(workspace_id, row)
            try:
                found = await client.articles()
            except DocsError as exc:
                log.warning("knowledge-base articles not available", extra={"platform": row.kind, "error": exc.message})
                found = None
            out[row.kind] = None if found is None else tuple(
                a if a.url is None or _web_url(a.url) else replace(a, url=None) for a in found)
        return out

    async def card_links(self, actor: Actor, ticket_id: int) -> tuple[tuple[str, str], ...]:
        """(title, url) pairs for a technician's card (core/chat/cards.py renders them as link buttons)."""
        return tuple((link.title, link.url) for link in await self.links(actor, ticket_id))


def _web_url(url: str) -> bool:
    """An absolute http(s) URL with a host."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme in ("https", "http") and bool(parts.hostname)
