"""Pure intake rules: severity -> priority, the order customer mapping rules are tried, source settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.alerts import AlertEvent
from core.errors import InvalidInput
from core.numbers import whole
from store.enums import Priority

SOURCE_KINDS = ("events_v2", "ninjaone", "datto")
SCOPES = ("device", "site", "org")
DEFAULT_SEVERITY_MAP = {"critical": "critical", "error": "high", "warning": "medium", "info": "low"}
ON_RESOLVE = ("note", "resolve")


@dataclass(frozen=True, slots=True)
class SourceSettings:
    on_resolve: str = "note"  # note: add a note only; resolve: also resolve the ticket when all its alerts are
    severity_map: Mapping[str, str] | None = None
    group_window_minutes: int = 15
    storm_threshold: int = 3  # alert tickets of one customer within the window before new alerts are grouped

    def priority(self, severity: str) -> Priority:
        """The ticket priority for an alert severity (the source's map over the default one)."""
        mapping = {**DEFAULT_SEVERITY_MAP, **(self.severity_map or {})}
        return Priority(mapping.get(severity, "medium"))


def source_settings(raw: Mapping[str, Any] | None) -> SourceSettings:
    raw = raw or {}
    return SourceSettings(
        on_resolve=str(raw.get("on_resolve", "note")),
        severity_map=raw.get("severity_map") or None,
        group_window_minutes=int(raw.get("group_window_minutes", 15)),
        storm_threshold=int(raw.get("storm_threshold", 3)),
    )


def check_setting(name: str, value: str) -> Any:
    """Validate one source setting given as text (CLI), returning its stored value."""
    if name == "on_resolve":
        if value not in ON_RESOLVE:
            raise InvalidInput(f"on_resolve is {value!r}.", hint="Use note (add a note) or resolve (also resolve "
                               "the ticket when all its alerts are resolved).", field=name)
        return value
    if name in ("group_window_minutes", "storm_threshold"):
        number = whole(value, max_value=10_000)
        if not number:
            raise InvalidInput(f"{name} must be a whole number from 1 to 10000.",
                               hint=f"e.g. `deskbridge intake set SOURCE {name} {10 if name == 'group_window_minutes' else 50}`.",
                               field=name)
        return int(value)
    if name.startswith("severity."):
        severity = name.split(".", 1)[1]
        if severity not in DEFAULT_SEVERITY_MAP:
            raise InvalidInput(f"'{severity}' is not a severity.", hint="Use critical, error, warning or info.")
        try:
            return Priority(value.lower()).value
        except ValueError:
            raise InvalidInput(f"'{value}' is not a priority.", hint="Use critical, high, medium or low.") from None
    raise InvalidInput(f"'{name}' is not a source setting.",
                       hint="Use on_resolve, group_window_minutes, storm_threshold or severity.<critical|error|"
                            "warning|info>.")


def mapping_candidates(event: AlertEvent) -> list[tuple[str, str, str]]:
    """(scope, by, value) lookups in the order they decide: RMM ids (device, site, org), then names."""
    out: list[tuple[str, str, str]] = []
    for scope, value in (("device", event.device_id), ("site", event.site_id), ("org", event.org_id)):
        if value:
            out.append((scope, "id", value))
    for scope, value in (("device", event.device_name), ("site", event.site_name), ("org", event.org_name)):
        if value:
            out.append((scope, "name", value.strip().lower()))
    return out


def name_candidates(event: AlertEvent) -> list[str]:
    """Names compared with customers' names and identifiers as the last resort (org first, then site)."""
    return [n.strip().lower() for n in (event.org_name, event.site_name) if n and n.strip()]
