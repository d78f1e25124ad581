"""Full reconciliation: compare every live PSA ticket id with the local copy.

Tickets missing at the PSA (deleted or merged away) get `deleted_at`; a guard refuses the prune when
more than `max_delete_ratio` of the connection's tickets would go (an empty or truncated listing is far
more likely than a mass deletion), records the refusal as the run's error, and changes nothing.
Tickets the PSA has but we lack are fetched (a missed change heals here). A ticket that reappears is
un-deleted by the next sync that sees it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from connectors.base import PsaConnector
from core.sync.runs import RecordedRun, RunKind, RunStatus, SyncOutcome
from store.db import Scope
from store.sql import table_of
from store.tables import PsaConnection, Ticket

if TYPE_CHECKING:
    from core.sync.engine import SyncEngine

log = logging.getLogger(__name__)

DEFAULT_MAX_DELETE_RATIO = 0.5
MIN_GUARDED = 3  # pruning this many or fewer tickets is never treated as a mass deletion
RECENT = timedelta(minutes=10)  # rows written this recently are left alone (a listing may predate them)
HEAL_LIMIT = 500  # tickets missing locally fetched per reconcile


async def reconcile(engine: SyncEngine, connection_id: int, *,
                    max_delete_ratio: float = DEFAULT_MAX_DELETE_RATIO, recent: timedelta = RECENT) -> SyncOutcome:
    """Detect deleted/merged tickets of a connection (guarded) and fetch ones we are missing (a failure is
    recorded and returned, never raised: the next scheduled reconcile tries again)."""
    conn = await engine.connection(connection_id)
    async with engine.lease(connection_id) as lost:
        if lost is None:
            return SyncOutcome(status=RunStatus.SKIPPED, error="another instance is syncing this connection")
        async with engine.recorded(conn, RunKind.RECONCILE) as run:
            connector = engine.connections.shared(conn)
            try:
                return await _compare(engine, conn, connector, run, lost, max_delete_ratio=max_delete_ratio,
                                      recent=recent)
            except Exception as exc:
                failed = await run.fail(exc)
                log.warning("reconcile failed", extra={"connection_id": connection_id, "error": str(exc)})
                return failed
            finally:
                await connector.aclose()


async def _compare(engine: SyncEngine, conn: PsaConnection, connector: PsaConnector, run: RecordedRun,
                   lost: asyncio.Event, *, max_delete_ratio: float, recent: timedelta) -> SyncOutcome:
    """List every live PSA ticket id, prune ours that are gone (guarded), heal the ones we lack."""
    ws, connection_id, counts = run.workspace_id, run.connection_id, run.counts
    live: set[str] = set()
    cursor: str | None = None
    while True:
        page = await engine.call(counts, connector.list_ticket_ids, cursor)
        live.update(str(x) for x in page.items)
        cursor = page.next_cursor
        if not cursor:
            break
    t = table_of(Ticket)
    async with engine.db.read(Scope.workspace(ws)) as s:
        res = await s.execute(sa.select(t.c.external_id, t.c.created_at, t.c.psa_updated_at).where(
            t.c.workspace_id == ws, t.c.connection_id == connection_id, t.c.external_id.is_not(None),
            t.c.deleted_at.is_(None)))
        local = res.all()
    cutoff = run.started_at - recent
    local_ids = {r.external_id for r in local}
    missing = sorted(r.external_id for r in local if r.external_id not in live
                     and r.created_at < cutoff and (r.psa_updated_at is None or r.psa_updated_at < cutoff))
    unknown = sorted(live - local_ids)
    counts.update(live=len(live), local=len(local_ids), missing=len(missing), unknown=len(unknown))
    if len(missing) > MIN_GUARDED and len(missing) > max_delete_ratio * len(local_ids):
        error = (f"mass-delete guard: {len(missing)} of {len(local_ids)} tickets are missing from the PSA "
                 f"listing (limit {max_delete_ratio:.0%}); nothing was pruned. Check the connection's "
                 "permissions, then run `deskbridge sync reconcile` again.")
        log.warning("reconcile refused a mass deletion", extra={"connection_id": connection_id, "counts": dict(counts)})
        return await run.finish(RunStatus.SKIPPED, error=error)
    counts["deleted"] = await engine.mark_deleted(conn, missing) if missing else 0
    target = engine.target(conn, connector)
    healed = 0
    for ext in unknown[:HEAL_LIMIT]:
        if lost.is_set():
            break
        try:
            ticket = await engine.call(counts, connector.get_ticket, ext)
        except Exception as exc:  # noqa: BLE001 - one ticket never sinks the reconcile
            log.warning("reconcile: could not fetch missing ticket",
                        extra={"external_id": ext, "error": str(exc)})
            continue
        await engine.process(connector, target, [ticket], counts, emit=True)
        healed += 1
    counts["healed"] = healed
    return await run.finish(RunStatus.OK)
