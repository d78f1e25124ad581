"""The audit log of every PSA attempt: redaction of what is recorded, and the row builder.

Recorded: the request payload with secrets and file bodies redacted and long text shortened, the
response status, the PSA's error text, the duration and who triggered the write. Never recorded:
credentials, tokens, authorization headers, attachment bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from core.redact import REDACTED
from core.redact import redact_text as _redact_text
from store.tables import AuditLog

MAX_TEXT = 2_000

_SECRET_KEY = re.compile(
    r"(?i)(pass(word|wd)?|secret|token|api[_-]?key|authori[sz]ation|credential|private[_-]?key|"
    r"integration[_-]?code|cookie|signature|client[_-]?secret)")
_BODY_KEY = re.compile(r"(?i)^(content|data|bytes|file|body_base64|content_base64)$")


class Outcome(StrEnum):
    OK = "ok"  # delivered
    RECONCILED = "reconciled"  # an earlier attempt had landed: found by its marker, not written again
    RETRY = "retry"  # failed, will try again
    DEAD = "dead"  # gave up (non-retryable, or out of attempts)
    PARKED = "parked"  # not attempted (breaker open, no budget): no attempt spent
    STALE = "stale"  # finished after losing its lease; a newer attempt owns the op
    REDRIVEN = "redriven"  # an operator sent a dead op back
    DISCARDED = "discarded"  # an operator dropped it, with a reason
    BREAKER = "breaker"  # the connection's breaker opened (one row, not one per op)


def redact_text(text: str) -> str:
    """Mask anything in free text that looks like a credential; shorten long text."""
    return _redact_text(text, limit=MAX_TEXT)


def redact(value: Any, *, key: str | None = None) -> Any:
    """A JSON-safe copy of a request payload with secrets and file bodies removed."""
    if key is not None and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"[{len(value)} bytes]"
    if key is not None and _BODY_KEY.match(key) and isinstance(value, str) and len(value) > 200:
        return f"[{len(value)} characters of file content]"
    if isinstance(value, Mapping):
        return {str(k): redact(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact_text(str(value))


def audit_row(*, workspace_id: int, op_id: int | None, connection_id: int | None, attempt: int, action: str,
              outcome: Outcome | str, actor: str, request: Mapping[str, Any] | None = None,
              response_status: int | None = None, error: str | None = None, duration_ms: int | None = None,
              at: datetime | None = None) -> AuditLog:
    """One audit row (redacted); the caller adds it to the transaction that records the outcome."""
    row = AuditLog(
        workspace_id=workspace_id,
        op_id=op_id,
        connection_id=connection_id,
        attempt=attempt,
        action=action[:64],
        request=redact(dict(request or {})),
        response_status=response_status,
        outcome=str(outcome)[:24],
        error=redact_text(error) if error else None,
        duration_ms=duration_ms,
        actor=(actor or "system")[:200],
    )
    if at is not None:
        row.created_at = at
    return row
