"""Small pure helpers shared by the RMM parsers."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.alerts import AlertFormatError

# Vendor severity/priority words -> canonical severity (critical, error, warning, info).
_SEVERITY_WORDS = {
    "critical": "critical", "fatal": "critical", "emergency": "critical", "p1": "critical",
    "error": "error", "major": "error", "high": "error", "p2": "error",
    "warning": "warning", "warn": "warning", "moderate": "warning", "minor": "warning", "medium": "warning",
    "p3": "warning",
    "info": "info", "information": "info", "informational": "info", "low": "info", "none": "info",
    "notice": "info", "p4": "info",
}


def severity(value: Any, *, default: str = "warning") -> str:
    """A vendor's severity or priority word as a canonical severity; unknown words keep the default."""
    word = str(value or "").strip().lower()
    return _SEVERITY_WORDS.get(word, default)


def text(value: Any, limit: int = 1024) -> str | None:
    """A trimmed string (numbers allowed), or None when empty; overly long values are cut."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    out = str(value).replace("\x00", "").strip()
    return out[:limit] if out else None


def timestamp(value: Any) -> datetime | None:
    """ISO 8601 text or epoch seconds (or milliseconds) as an aware UTC datetime; None when absent or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value) / (1000.0 if value > 1e11 else 1.0)
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    raw = str(value).strip()
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def body_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:40]


def require_object(body: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise AlertFormatError(f"The {what} body must be a JSON object.", "Send one event per request as a JSON object.")
    return body
