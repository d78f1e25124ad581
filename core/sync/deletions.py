"""Deletions from the PSA's own deletion log (connectors.base.DeletionLog; Autotask `DeletedTicketLogs`).

Every sync run of such a connection reads the log since its own watermark (cursor entity `deleted_tickets`,
less the engine's overlap), and the tickets it names leave the local copy in that run (`deleted_at`, one
TicketChanged(deleted) each). The watermark moves only after they are marked; the first read starts at
the ticket watermark. The id-listing reconcile (core/sync/reconcile.py) stays as the periodic fallback.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from connectors.base import DeletionLog, PsaConnector
from connectors.errors import PsaError
from core.sync import runs
from store.tables import PsaConnection

if TYPE_CHECKING:
    from core.sync.engine import SyncEngine

log = logging.getLogger(__name__)
DELETIONS = "deleted_tickets"  # cursor entity of the deletion log's watermark
MARK_CHUNK = 500


async def read_log(engine: SyncEngine, conn: PsaConnection, connector: PsaConnector, counts: dict[str, int], *,
                   before: datetime | None, after: datetime | None) -> str | None:
    """Mark the tickets the log names since the last read as deleted; None, or why the log could not be read
    (the run is then partial, and the next run reads the log again from the same watermark)."""
    if not isinstance(connector, DeletionLog):
        return None
    ws, cid = conn.workspace_id, conn.id
    assert cid is not None  # a stored row
    stored = runs.parse_cursor(await runs.get_cursor(engine.db, ws, cid, DELETIONS))
    start = stored or before or after or engine.clock()
    newest, gone, page_cursor = start, [], None
    try:
        while True:
            page = await engine.call(counts, connector.list_deleted_tickets, start - engine.overlap, page_cursor)
            gone += [d.external_id for d in page.items]
            newest = max([newest, *(d.deleted_at for d in page.items)])
            page_cursor = page.next_cursor
            if not page_cursor:
                break
    except PsaError as exc:
        log.warning("sync: the deletion log could not be read", extra={"connection_id": cid, "error": str(exc)})
        return f"deleted tickets could not be read ({exc}); the next sync reads them again"
    marked = 0
    for i in range(0, len(gone), MARK_CHUNK):
        marked += await engine.mark_deleted(conn, gone[i:i + MARK_CHUNK])
    counts["deleted"] = counts.get("deleted", 0) + marked
    await runs.set_cursor(engine.db, ws, cid, runs.format_cursor(newest), engine.clock(), DELETIONS)
    return None
