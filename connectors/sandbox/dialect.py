"""The sandbox API's own small dialect: records are dicts with int ids and ISO timestamps; errors carry
an HTTP-like status. Only connectors/sandbox/ sees it (the connector translates to canonical models)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

Record = dict[str, Any]


class SandboxApiError(Exception):
    """An error answer of the sandbox API (the connector translates it into a PsaError)."""

    def __init__(self, status: int, code: str, message: str, *, fields: Mapping[str, str] | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = dict(fields or {})
        self.retry_after = retry_after


def iso(when: datetime) -> str:
    """Timestamps are stored as ISO strings with milliseconds, UTC."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_ts(value: str) -> datetime:
    """A stored ISO timestamp as an aware UTC datetime."""
    return datetime.fromisoformat(value).astimezone(UTC)
