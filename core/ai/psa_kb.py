"""The PSAs' own knowledge bases as KB-linking sources, beside the documentation platforms (core/ai/knowledge.py
indexes both through one ArticleReader).

A connector that can read its PSA's knowledge base has `kb_articles()` returning DocArticles (HaloPSA:
connectors/halopsa/kb.py; ConnectWise: connectors/connectwise/kb.py). Autotask has none: its REST API, as our
spec index shows it, has no knowledge-base article entity (session 8 notes). Each PSA connection
is its own source (`halo:<connection id>`; KbArticle.source is 16 characters), so one connection failing keeps
its articles and never touches the others'; a customer-limited article is matched only to a customer of that
same connection, by its company id (`connection_of`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from connectors.docs import DocArticle
from connectors.errors import PsaError
from core.connections import ConnectionService
from core.errors import ConnectionProblem
from store.tables import PsaConnection

log = logging.getLogger("deskbridge.ai.kb")

CODES = {"halopsa": "halo", "connectwise": "cw", "autotask": "at"}
NAMES = {"halo": "HaloPSA", "cw": "ConnectWise", "at": "Autotask"}
Reader = Callable[[int], Awaitable[Mapping[str, tuple[DocArticle, ...] | None]]]


def source_key(kind: str, connection_id: int) -> str:
    return f"{CODES.get(kind, kind[:8])}:{connection_id}"


def connection_of(source: str) -> int | None:
    """The PSA connection a source key names (None: a documentation platform or the Markdown folder)."""
    code, _, rest = source.partition(":")
    return int(rest) if code in NAMES and rest.isdigit() else None


def source_name(source: str) -> str | None:
    """"HaloPSA" for "halo:3" (None: not a PSA source)."""
    return NAMES.get(source.partition(":")[0]) if connection_of(source) is not None else None


async def _read_one(connections: ConnectionService, conn: PsaConnection) -> tuple[DocArticle, ...] | None | bool:
    """One connection's articles; None when the read failed (it keeps what it had); False: no knowledge base."""
    try:
        async with connections.open(conn) as connector:
            reader: Any = getattr(connector, "kb_articles", None)
            if reader is None:
                return False
            return tuple(await reader())
    except (PsaError, ConnectionProblem) as exc:  # the messages hold no secret (connectors/errors.py)
        log.warning("PSA knowledge base not available", extra={"connection_id": conn.id, "error": str(exc)})
        return None


def psa_reader(connections: ConnectionService) -> Reader:
    """Each enabled PSA connection's knowledge base, by source key (None: it failed; left out: it has none)."""
    async def read(workspace_id: int) -> dict[str, tuple[DocArticle, ...] | None]:
        out: dict[str, tuple[DocArticle, ...] | None] = {}
        for conn in await connections.list(workspace_id):
            if not conn.enabled or conn.id is None:
                continue
            found = await _read_one(connections, conn)
            if found is not False:
                out[source_key(conn.kind, conn.id)] = found if isinstance(found, tuple) else None
        return out

    return read


def combined(*readers: Reader) -> Reader:
    """One reader over several (documentation platforms and PSAs)."""
    async def read(workspace_id: int) -> dict[str, tuple[DocArticle, ...] | None]:
        out: dict[str, tuple[DocArticle, ...] | None] = {}
        for reader in readers:
            out.update(await reader(workspace_id))
        return out

    return read
