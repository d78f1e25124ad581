"""PagerDuty Events v2-shaped bodies (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/).

    {"event_action": "trigger" | "acknowledge" | "resolve", "dedup_key": "...",
     "payload": {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"},
     "links": [{"href", "text"}]}

`payload.source` is the device (host name); `custom_details` may carry `device_id`, `site_id`, `site_name`,
`org_id`, `org_name` (or `customer`) so the alert maps to a customer by the RMM's ids. A trigger without a
dedup_key gets one from source, component and summary, so repeats still correlate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from connectors.alerts import ACTIONS, AlertEvent, AlertFormatError
from connectors.rmm.common import body_hash, require_object, severity, text, timestamp

MAX_DEDUP_CHARS = 255


def parse(body: Mapping[str, Any], raw: bytes) -> list[AlertEvent]:
    return [event(require_object(body, "Events v2"), raw, vendor_severity=False)]


def event(body: Mapping[str, Any], raw: bytes, *, vendor_severity: bool) -> AlertEvent:
    """One Events v2 body as an AlertEvent (`vendor_severity`: accept vendor words like High/Moderate)."""
    action = str(body.get("event_action") or "").strip().lower()
    if action not in ACTIONS:
        raise AlertFormatError(f"event_action is {body.get('event_action')!r}; expected trigger, acknowledge or resolve.",
                               "Set event_action to trigger, acknowledge or resolve.")
    payload = body.get("payload") or {}
    if not isinstance(payload, Mapping):
        raise AlertFormatError("payload must be a JSON object.", "Send payload as {summary, source, severity, ...}.")
    details = payload.get("custom_details") or {}
    if not isinstance(details, Mapping):
        details = {"details": details}
    summary = text(payload.get("summary"), 1024)
    source = text(payload.get("source"), 255)
    dedup = text(body.get("dedup_key"), MAX_DEDUP_CHARS + 1)
    if dedup and len(dedup) > MAX_DEDUP_CHARS:
        raise AlertFormatError(f"dedup_key is longer than {MAX_DEDUP_CHARS} characters.", "Send a shorter dedup_key.")
    if action == "trigger":
        if not summary:
            raise AlertFormatError("A trigger needs payload.summary.", "Add a one-line summary of the problem.")
        if not dedup:
            seed = "\x1f".join([source or "", text(payload.get("component")) or "", summary])
            dedup = "auto:" + hashlib.sha256(seed.encode()).hexdigest()[:32]
    elif not dedup:
        raise AlertFormatError(f"An {action} needs the dedup_key of its trigger.",
                               "Send the same dedup_key as the trigger it ends.")
    sev_raw = payload.get("severity")
    if action == "trigger" and not vendor_severity and sev_raw is not None \
            and str(sev_raw).lower() not in ("critical", "error", "warning", "info"):
        raise AlertFormatError(f"payload.severity is {sev_raw!r}.", "Use critical, error, warning or info.")
    links = []
    for link in body.get("links") or []:
        if isinstance(link, Mapping) and text(link.get("href")):
            links.append((text(link.get("href"), 2000) or "", text(link.get("text"), 200) or ""))
    return AlertEvent(
        action=action,  # type: ignore[arg-type]
        dedup_key=dedup,
        occurrence=body_hash(raw),
        summary=summary or f"Alert {action}d",
        severity=severity(sev_raw),
        occurred_at=timestamp(payload.get("timestamp")),
        device_id=text(details.get("device_id"), 200),
        device_name=source,
        site_id=text(details.get("site_id"), 200),
        site_name=text(details.get("site_name"), 200),
        org_id=text(details.get("org_id"), 200),
        org_name=text(details.get("org_name") or details.get("customer"), 200),
        component=text(payload.get("component"), 255),
        group=text(payload.get("group"), 255),
        alert_class=text(payload.get("class"), 255),
        details=dict(details),
        links=tuple(links[:10]),
    )
