"""SyncService: the one object surfaces and the scheduler use for everything sync."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from core.context import Actor
from core.singleflight import SingleFlight
from core.sync import history, picklists, reconcile, runs
from core.sync.engine import ProgressFn, SyncEngine
from core.sync.mapping import MappingChange, MappingService
from core.sync.runs import SyncOutcome
from core.sync.webhooks import WebhookResult, WebhookService


class SyncService:
    def __init__(self, engine: SyncEngine) -> None:
        self.engine = engine
        self.mappings = MappingService(engine.db)
        self.webhooks = WebhookService(engine)
        self._histories: SingleFlight[bool] = SingleFlight()

    async def run(self, connection_id: int, *, full: bool = False, progress: ProgressFn | None = None) -> SyncOutcome:
        """Incremental (or full) ticket sync of one connection; picklists first if none are cached yet."""
        if full or not await picklists.has_picklists(self.engine, connection_id):
            await self.refresh_picklists(connection_id)
        outcome = await self.engine.run(connection_id, full=full, progress=progress)
        if outcome.ok:  # callbacks another instance recorded and never re-read (it stopped): taken over here
            await self.webhooks.pool.sweep(connection_id)
        if full and outcome.ok:
            # A full sync also settles deletions (tickets gone from the PSA leave the queue now).
            gone = await self.reconcile(connection_id)
            outcome.counts["deleted"] = int(gone.counts.get("deleted", 0))
            if gone.error:
                outcome.counts["reconcile_skipped"] = 1
        return outcome

    async def refresh_picklists(self, connection_id: int) -> SyncOutcome:
        return await picklists.refresh_picklists(self.engine, connection_id)

    async def reconcile(self, connection_id: int) -> SyncOutcome:
        return await reconcile.reconcile(self.engine, connection_id)

    async def refresh_ticket(self, connection_id: int, external_id: str) -> SyncOutcome:
        return await self.engine.refresh_ticket(connection_id, external_id)

    async def load_history(self, connection_id: int, external_id: str) -> bool:
        """Read a ticket's notes, time entries and documents now if they were never read (someone opened a
        closed ticket after a first sync); callers opening the same ticket at once share one read."""
        return await self._histories.run((connection_id, external_id),
                                         lambda: history.load_one(self.engine, connection_id, external_id))

    async def ingest_webhook(self, connection_id: int, path_token: str, headers: Mapping[str, str],
                             body: bytes) -> WebhookResult:
        return await self.webhooks.ingest(connection_id, path_token, headers, body)

    async def status(self, workspace_id: int, now: datetime | None = None) -> list[runs.ConnectionSyncStatus]:
        """Last runs, lag and errors per connection of a workspace."""
        return await runs.sync_status(self.engine.db, workspace_id, now or self.engine.clock())

    async def map_status(self, workspace_id: int, connection_id: int, status: str, stage: str,
                         board: str | None = None, *, actor: Actor | None = None) -> list[MappingChange]:
        """An admin's status override (audited as `actor`); the connection's tickets move at once."""
        return await self.mappings.set_status(workspace_id, connection_id, status, stage, board, actor=actor)

    async def map_priority(self, workspace_id: int, connection_id: int, psa_priority: str,
                           priority: str, *, actor: Actor | None = None) -> MappingChange:
        """An admin's priority override (audited as `actor`)."""
        return await self.mappings.set_priority(workspace_id, connection_id, psa_priority, priority, actor=actor)
