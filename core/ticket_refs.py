"""Ticket names across PSA connections: `cw-1002`, `halo-88`.

A workspace may run two PSAs (a migration, an acquisition) whose ticket numbers collide: ConnectWise #1002
and Autotask #1002. The number a person sees stays the PSA's own; where a workspace has more than one
connection, each ticket is also named with its connection's prefix (`cw-1002`), and that name is accepted
everywhere a ticket is named (chat, console, REST). A ticket whose PSA number is already taken by another
connection's ticket keeps no workspace number (the number column is unique per workspace) but is never
hidden: it is shown and found by its prefixed name.

Prefixes: the connection's `ref_prefix` setting, else by kind (cw, at, halo, sb), a second connection of a
kind numbered (cw2). Cached per workspace for a few seconds; connections change rarely.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import Database, Scope
from store.tables import PsaConnection

KIND_PREFIX = {"connectwise": "cw", "autotask": "at", "halopsa": "halo", "sandbox": "sb"}
PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")
CACHE_S = 5.0
_cache: dict[tuple[str, int], tuple[float, dict[int, str]]] = {}  # (database, workspace) -> (until, prefixes)


def valid_prefix(prefix: str) -> bool:
    return bool(PREFIX_RE.match(prefix))


_PREFIX_QUERY = select(col(PsaConnection.id), col(PsaConnection.kind), col(PsaConnection.settings)).order_by(
    col(PsaConnection.id))


async def prefixes(session: AsyncSession, workspace_id: int) -> dict[int, str]:
    """connection id -> prefix for every connection of the workspace (active or not: old tickets keep names)."""
    bind = session.bind
    key = (str(getattr(bind, "url", "") or getattr(getattr(bind, "engine", None), "url", "")), workspace_id)
    hit = _cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    return _remember(key, (await session.exec(_PREFIX_QUERY)).all())


async def prefixes_of(db: Database, workspace_id: int) -> dict[int, str]:
    """`prefixes` for callers without a session (the one-hop reads of queue pages)."""
    key = ("db:" + db.url, workspace_id)
    hit = _cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    return _remember(key, await db.rows(Scope.workspace(workspace_id), _PREFIX_QUERY))


def _remember(key: tuple[str, int], rows: Sequence[Any]) -> dict[int, str]:
    out: dict[int, str] = {}
    used: set[str] = set()
    for conn_id, kind, settings in rows:
        if conn_id is None:
            continue
        wanted = str((settings or {}).get("ref_prefix") or "").lower()
        base = wanted if valid_prefix(wanted) else KIND_PREFIX.get(kind, re.sub(r"[^a-z0-9]", "", kind.lower())[:6] or "psa")
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}{n}"
        used.add(name)
        out[conn_id] = name
    _cache[key] = (time.monotonic() + CACHE_S, out)
    return out


def forget(workspace_id: int) -> None:
    """Drop the cached prefixes of a workspace (a connection was added, removed or renamed)."""
    for key in [k for k in _cache if k[1] == workspace_id]:
        _cache.pop(key, None)


def psa_name(prefixes: dict[int, str], *, number: int | None, connection_id: int | None,
             external_id: str | None) -> str | None:
    """The prefixed name shown for a ticket: where the workspace has several connections, or where its PSA
    number could not be its workspace number; None otherwise (the plain number is unambiguous)."""
    if connection_id is None or not external_id or connection_id not in prefixes:
        return None
    if len(prefixes) > 1 or number is None:
        return f"{prefixes[connection_id]}-{external_id}"
    return None


async def connection_for(session: AsyncSession, workspace_id: int, prefix: str) -> int | None:
    wanted = prefix.lower()
    return next((cid for cid, p in (await prefixes(session, workspace_id)).items() if p == wanted), None)
