"""PSA webhook ingestion: verify, deduplicate, record, answer; the named ticket is re-read after the answer.

Webhooks are hints (psa-apis.md §5): the payload is never trusted for content, only for which ticket to
re-fetch. The connector verifies the PSA's signature where it has one; a connection may also carry a
`webhook_token` setting that the URL's last segment must match (for PSAs that cannot sign). The event id
and the ticket it names are then committed together (core/sync/callbacks.py), and only then is the push
answered: a retried delivery is a no-op, and a process that stops before the re-read re-reads the ticket
when it starts again. The re-read itself runs in a small pool that coalesces callbacks of one ticket
(Autotask drops an event after 5 slow or failed deliveries: answering within milliseconds, not after a
PSA round trip, is what keeps every event; psa-apis.md §3.7). If the record cannot be written the answer
is 503 and nothing was recorded, so the PSA's retry is taken.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from connectors.errors import PsaError, PsaValidationError, WebhookRejected
from core.errors import DeskbridgeError, InvalidInput, NotFound
from core.sync.callbacks import MAX_EXTERNAL_ID, Callback, CallbackLog, RefreshPool
from core.sync.engine import SyncEngine
from core.sync.worker import WorkerClient
from store.tables import PsaConnection

log = logging.getLogger(__name__)

CONNECTION_TTL_S = 5.0


class WebhookRefused(DeskbridgeError):
    """The push could not be verified (answer 401; nothing was processed)."""


class WebhookUnavailable(DeskbridgeError):
    """The push could not be verified with the PSA or recorded now (answer 503 so the PSA retries; nothing was
    recorded)."""


@dataclass(frozen=True, slots=True)
class WebhookResult:
    status: str  # accepted (re-read right after the answer), duplicate, ignored
    event_id: str | None = None
    ticket_external_id: str | None = None


class WebhookService:
    def __init__(self, engine: SyncEngine) -> None:
        self.engine = engine
        self.db = engine.db
        self.callbacks = CallbackLog(engine.db)
        self.pool = RefreshPool(engine, self.callbacks)
        self.worker: WorkerClient | None = None  # re-reads in a worker process (core/sync/worker.py), if set
        # The connection row each callback checks (enabled, URL token), kept briefly: a read per callback was
        # 1.5% of the process's CPU at 20 callbacks/s. Any change to a connection in this process drops it at
        # once; another process's change shows within CONNECTION_TTL_S.
        self._connections: dict[int, tuple[float, PsaConnection]] = {}
        engine.db.on_table_change("psa_connection", self._connections.clear)

    @property
    def batches_run(self) -> int:
        return self.pool.batches_run

    def use_worker(self, worker: WorkerClient) -> None:
        """Re-read in `worker`'s process from now on (the pool still decides what and when)."""
        self.worker = worker
        self.pool.use(worker.refresh)

    async def start(self) -> int:
        """Start the worker process (if any), then re-read tickets named by callbacks a stopped process answered
        but never re-read; returns how many."""
        if self.worker is not None:
            await self.worker.start()
        return await self.pool.start()

    async def settled(self) -> None:
        """Wait until every re-read asked for so far is done (tests, benches, a graceful stop)."""
        await self.pool.settled()

    async def stop(self) -> None:
        await self.pool.stop()  # running re-reads finish (5 s); the rest stays recorded
        if self.worker is not None:
            await self.worker.stop()

    async def _connection(self, connection_id: int) -> PsaConnection:
        now = time.monotonic()
        kept = self._connections.get(connection_id)
        if kept is not None and kept[0] > now:
            return kept[1]
        conn = await self.engine.connection(connection_id)
        self._connections[connection_id] = (now + CONNECTION_TTL_S, conn)
        return conn

    async def ingest(self, connection_id: int, path_token: str, headers: Mapping[str, str],
                     body: bytes) -> WebhookResult:
        """Handle one push: verified and recorded when this returns; the named ticket is re-read right after."""
        conn = await self._connection(connection_id)  # NotFound -> 404
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
            ext = event.ticket_external_id if event.ticket_external_id and len(
                event.ticket_external_id) <= MAX_EXTERNAL_ID else None
            cb = Callback(source=f"{conn.kind}:{conn.id}", event_id=event.event_id, workspace_id=conn.workspace_id,
                          connection_id=connection_id, external_id=ext)
            try:
                new = await self.callbacks.record(cb)
            except Exception as exc:
                log.exception("webhook could not be recorded", extra={"connection_id": connection_id})
                raise WebhookUnavailable("Could not record the change now.",
                                         hint="The PSA will retry; the scheduled sync also catches up.") from exc
            if not new:
                return WebhookResult("duplicate", event.event_id, event.ticket_external_id)
            if ext is None:
                return WebhookResult("ignored", event.event_id)
            self.pool.submit(connection_id, ext)
            return WebhookResult("accepted", event.event_id, ext)
        finally:
            await connector.aclose()


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
