"""Alert webhooks: `POST /webhooks/alerts/{key}` (one URL per alert source; see core/intake/alerts.py).

Translation only. Answers: 200 accepted/duplicate/ignored with each event's outcome (created, noted,
grouped, triage, stale, resolved, recorded, queued, duplicate) · 400 not an alert of the source's format
(the reason and what to change) · 401 unknown source, missing or wrong secret, disabled source · 413 too
large. Neither the body nor the secret is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from core.errors import InvalidInput
from core.intake.alerts import AlertIntake, AlertRefused
from core.numbers import whole

log = logging.getLogger("deskbridge.api.intake")

MAX_BODY_BYTES = 256 * 1024

router = APIRouter(tags=["intake"])


def _error(status: int, message: str, hint: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": "error", "error": message}
    if hint:
        body["hint"] = hint
    return JSONResponse(body, status_code=status)


@router.post("/webhooks/alerts/{key}")
async def receive_alert(key: str, request: Request) -> JSONResponse:
    """Receive one alert event (Events v2, NinjaOne or Datto, per the source's format)."""
    declared = request.headers.get("content-length")
    if declared and (whole(declared, max_value=2**62) or 0) > MAX_BODY_BYTES:  # malformed: the body says
        return _error(413, "Alert body too large.", f"Send one event of at most {MAX_BODY_BYTES // 1024} KiB.")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _error(413, "Alert body too large.", f"Send one event of at most {MAX_BODY_BYTES // 1024} KiB.")
    intake: AlertIntake = request.app.state.container.alert_intake
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        result = await intake.ingest(key, headers, body)
    except AlertRefused as exc:
        log.warning("alert refused", extra={"source_key": key[:64], "reason": exc.message})
        return _error(401, exc.message, exc.hint)
    except InvalidInput as exc:
        log.info("malformed alert", extra={"source_key": key[:64], "reason": exc.message})
        return _error(400, exc.message, exc.hint)
    return JSONResponse({"status": result.status, "events": [
        {"dedup_key": e.dedup_key, "action": e.action, "outcome": e.outcome, "ticket_id": e.ticket_id,
         "ticket_number": e.ticket_number} for e in result.events]})


def install(app: FastAPI) -> None:
    """Mount the alert receiver (before the PSA webhooks, whose path pattern would also match)."""
    app.include_router(router)
