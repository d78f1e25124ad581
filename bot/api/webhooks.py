"""PSA webhook receivers: `POST /webhooks/{connection_id}/{token-or-kind}`.

Translation only: the raw body and headers go to the sync service (core/sync/webhooks.py), which
verifies, deduplicates and records the push durably before this answers; the named ticket is re-read right
after (core/sync/callbacks.py). Answers:
200 accepted/duplicate/ignored · 400 malformed body · 401 unverifiable (logged, nothing processed) ·
404 unknown connection · 413 body too large · 503 not verifiable or recordable now (the PSA retries).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from core.errors import InvalidInput, NotFound
from core.numbers import whole
from core.sync.service import SyncService
from core.sync.webhooks import WebhookRefused, WebhookUnavailable

log = logging.getLogger("deskbridge.api.webhooks")

MAX_BODY_BYTES = 1024 * 1024

router = APIRouter(tags=["webhooks"])


def _error(status: int, message: str, hint: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": "error", "error": message}
    if hint:
        body["hint"] = hint
    return JSONResponse(body, status_code=status)


MAX_ID = 2_147_483_647  # ids are 32-bit on PostgreSQL; a larger one names no connection


def _connection_id(raw: str) -> int | None:
    """The connection id of the path, or None when it cannot name one (not ASCII digits, 0, too large)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None


@router.post("/webhooks/{connection_id}/{token}")
async def receive(connection_id: str, token: str, request: Request) -> JSONResponse:
    """Receive one PSA push; answered once it is recorded, the ticket it names is re-read right after."""
    conn_id = _connection_id(connection_id)
    if conn_id is None:
        return _error(404, f"Connection {connection_id[:20]} was not found.",
                      "List connections with `deskbridge connection list`; `deskbridge connection callbacks` "
                      "registers the right URL in the PSA.")
    declared = request.headers.get("content-length")
    if declared and (whole(declared, max_value=2**62) or 0) > MAX_BODY_BYTES:  # malformed: the body says
        return _error(413, "Webhook body too large.")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _error(413, "Webhook body too large.")
    sync: SyncService = request.app.state.container.sync
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        result = await sync.ingest_webhook(conn_id, token, headers, body)
    except NotFound as exc:
        return _error(404, exc.message, exc.hint)
    except WebhookRefused as exc:
        log.warning("webhook refused", extra={"connection_id": conn_id, "reason": exc.message})
        return _error(401, exc.message, exc.hint)
    except InvalidInput as exc:
        log.info("malformed webhook", extra={"connection_id": conn_id, "reason": exc.message})
        return _error(400, exc.message, exc.hint)
    except WebhookUnavailable as exc:
        return _error(503, exc.message, exc.hint)
    return JSONResponse({"status": result.status, "event_id": result.event_id,
                         "ticket": result.ticket_external_id})


def install(app: FastAPI) -> None:
    """Mount the webhook receivers on the app (the container is read from app.state)."""
    app.include_router(router)
