"""PSA webhook ingestion: verify, deduplicate, and re-read the ticket the push names.

Webhooks are hints (psa-apis.md §5): the payload is never trusted for content, only for which ticket to
re-fetch. The connector verifies the PSA's signature where it has one; a connection may also carry a
`webhook_token` setting that the URL's last segment must match (for PSAs that cannot sign). The event
id is recorded first, so a retried delivery is a no-op; if the re-fetch then fails (the PSA is
unavailable, or anything on our side), the record is removed again and the caller answers 503 so the
PSA retries.

Callbacks that arrive while a refresh of the same connection is running wait for it and are then
re-read together, written in one transaction (group commit): under a burst of PSA edits the database
does one write per batch instead of several per callback, and two callbacks of one ticket never race
each other's version fence. Each request still answers only once its own ticket is stored.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col

from connectors.errors import PsaError, PsaValidationError, WebhookRejected
from core import scheduling
from core.errors import DeskbridgeError, InvalidInput, NotFound
from core.sync.engine import SyncEngine
from store.db import Scope
from store.tables import ProcessedEvent

log = logging.getLogger(__name__)


class WebhookRefused(DeskbridgeError):
    """The push could not be verified (answer 401; nothing was processed)."""


class WebhookUnavailable(DeskbridgeError):
    """The ticket could not be re-read or stored now (answer 503 so the PSA retries; the event was un-marked)."""


@dataclass(frozen=True, slots=True)
class WebhookResult:
    status: str  # processed, duplicate, ignored
    event_id: str | None = None
    ticket_external_id: str | None = None


class _Batch:
    """Tickets of one connection waiting for the next refresh, and the task running refreshes."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.runner: asyncio.Task[None] | None = None


class WebhookService:
    def __init__(self, engine: SyncEngine) -> None:
        self.engine = engine
        self.db = engine.db
        self._batches: dict[int, _Batch] = {}
        self.batches_run = 0  # refreshes made (each covers one or more callbacks)

    async def refresh(self, connection_id: int, external_id: str) -> None:
        """Re-read one ticket; joins the next batched refresh of its connection. Raises what its re-read raised."""
        batch = self._batches.setdefault(connection_id, _Batch())
        fut = batch.waiting.get(external_id)
        if fut is None:
            fut = batch.waiting[external_id] = asyncio.get_running_loop().create_future()
            fut.add_done_callback(_retrieved)  # a request that went away leaves no "never retrieved" warning
        if batch.runner is None or batch.runner.done():
            batch.runner = asyncio.create_task(self._run_batches(connection_id, batch))
        await asyncio.shield(fut)

    async def _run_batches(self, connection_id: int, batch: _Batch) -> None:
        while batch.waiting:
            taken, batch.waiting = batch.waiting, {}
            self.batches_run += 1
            try:
                failed = await self.engine.refresh_tickets(connection_id, list(taken))
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request (answered 503)
                failed = dict.fromkeys(taken, exc)
            for ext, fut in taken.items():
                if fut.done():
                    continue
                if ext in failed:
                    fut.set_exception(failed[ext])
                else:
                    fut.set_result(None)

    async def ingest(self, connection_id: int, path_token: str, headers: Mapping[str, str],
                     body: bytes) -> WebhookResult:
        """Handle one push; the named ticket is refreshed before this returns."""
        conn = await self.engine.connection(connection_id)  # NotFound -> 404
        if not conn.enabled:
            return WebhookResult("ignored")
        expected = str(conn.settings.get("webhook_token") or "")
        if expected and not hmac.compare_digest(expected.encode(), path_token.encode()):
            log.warning("webhook refused: wrong URL token", extra={"connection_id": connection_id})
            raise WebhookRefused("This webhook URL's token is wrong.",
                                 hint="Copy the webhook URL from `deskbridge connection list` again.")
        _check_body(headers, body)
        connector = self.engine.connections.shared(conn)
        try:
            try:
                event = await connector.parse_webhook(headers, body)
            except WebhookRejected as exc:
                log.warning("webhook refused: verification failed",
                            extra={"connection_id": connection_id, "reason": exc.message})
                raise WebhookRefused(f"Webhook rejected: {exc.message}",
                                     hint="Check the PSA's callback configuration.") from exc
            except PsaValidationError as exc:
                raise InvalidInput(f"Malformed webhook body: {exc.message}",
                                   hint="Send the PSA's JSON callback payload unchanged.") from exc
            except PsaError as exc:
                raise WebhookUnavailable(f"Could not verify the webhook: {exc.message}",
                                         hint="The PSA will retry the delivery.") from exc
            source = f"{conn.kind}:{conn.id}"
            if not await scheduling.mark_event_processed(self.db, source, event.event_id, conn.workspace_id):
                return WebhookResult("duplicate", event.event_id, event.ticket_external_id)
            if not event.ticket_external_id:
                return WebhookResult("ignored", event.event_id)
            try:
                await self.refresh(connection_id, event.ticket_external_id)
            except PsaError as exc:
                await self._forget(source, event.event_id)
                raise WebhookUnavailable(f"Could not re-read ticket {event.ticket_external_id}: {exc.message}",
                                         hint="The PSA will retry; the scheduled sync also catches up.") from exc
            except Exception as exc:
                # Not the PSA's fault (our database, a notifier…): un-mark the event so the PSA's retry runs.
                log.exception("webhook refresh failed", extra={"connection_id": connection_id,
                                                               "ticket": event.ticket_external_id})
                await self._forget(source, event.event_id)
                raise WebhookUnavailable(f"Could not process the change to ticket {event.ticket_external_id} now.",
                                         hint="The PSA will retry; the scheduled sync also catches up.") from exc
            return WebhookResult("processed", event.event_id, event.ticket_external_id)
        finally:
            await connector.aclose()

    async def _forget(self, source: str, event_id: str) -> None:
        async with self.db.write(Scope.system_wide()) as s:  # processed_event is not workspace-owned
            await s.execute(sa.delete(ProcessedEvent).where(col(ProcessedEvent.source) == source,
                                                            col(ProcessedEvent.event_id) == event_id[:200]))


def _retrieved(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()


def _check_body(headers: Mapping[str, str], body: bytes) -> None:
    """Every PSA we support pushes a JSON object; anything else is malformed (400), not unverified (401)."""
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "application/json")
    if "json" not in ctype.lower() and ctype.strip():
        return  # let the connector judge other encodings
    try:
        data = json.loads(body or b"")
    except (ValueError, RecursionError):  # RecursionError: nested deeper than any callback is
        data = None
    if not isinstance(data, dict):
        raise InvalidInput("Malformed webhook body: expected a JSON object.",
                           hint="Send the PSA's JSON callback payload unchanged.")


__all__ = ["NotFound", "WebhookRefused", "WebhookResult", "WebhookService", "WebhookUnavailable"]
