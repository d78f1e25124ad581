"""The alert seam: one canonical `AlertEvent` every RMM format is parsed into (connectors/rmm/ holds the
vendor parsers; core/intake sees only this module).

An event is a trigger, acknowledge or resolve of one alert, named by its `dedup_key` (stable across the
alert's life) and `occurrence` (what makes this delivery distinct from another of the same action: the
vendor's activity id, or a hash of the body, so a sender's retry of one delivery is recognised).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

AlertAction = Literal["trigger", "acknowledge", "resolve"]
ACTIONS: tuple[str, ...] = ("trigger", "acknowledge", "resolve")
SEVERITIES: tuple[str, ...] = ("critical", "error", "warning", "info")


class AlertFormatError(ValueError):
    """The body is not a valid alert of the source's format; `hint` says what the sender must change."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertEvent:
    action: AlertAction
    dedup_key: str
    occurrence: str
    summary: str
    severity: str = "warning"  # one of SEVERITIES
    occurred_at: datetime | None = None
    device_id: str | None = None
    device_name: str | None = None
    site_id: str | None = None
    site_name: str | None = None
    org_id: str | None = None
    org_name: str | None = None
    component: str | None = None
    group: str | None = None
    alert_class: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()  # (href, text)

    @property
    def device_key(self) -> str | None:
        """What identifies the device for correlation: its RMM id, else its name."""
        return self.device_id or (self.device_name.lower() if self.device_name else None)


AlertParser = Callable[[Mapping[str, Any], bytes], list[AlertEvent]]
"""Parses one decoded JSON body (and its raw bytes, for the occurrence hash) into events."""
