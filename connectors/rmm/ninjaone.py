"""NinjaOne v2 webhook activities ("Ninja RMM Public API v2.0.5 Webhooks"), as NinjaOne sends them.

    {"id": 901, "activityTime": 1765090000.5, "deviceId": 42, "severity": "MAJOR", "priority": "HIGH",
     "seriesUid": "…", "activityType": "CONDITION", "statusCode": "TRIGGERED" | "RESET", "sourceName": "…",
     "subject": "…", "message": "…", "device": {"id", "systemName", "displayName", "organizationId",
     "locationId", …}, "organization": {"id", "name"}, "location": {"id", "name"}}

Alerts are CONDITION activities: TRIGGERED opens, RESET resolves, both named by `seriesUid`. Other
activities (script results, system events) are not alerts and are answered "ignored".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.alerts import AlertEvent, AlertFormatError
from connectors.rmm.common import body_hash, require_object, severity, text, timestamp

_STATUS = {"TRIGGERED": "trigger", "RESET": "resolve"}


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse(body: Mapping[str, Any], raw: bytes) -> list[AlertEvent]:
    body = require_object(body, "NinjaOne activity")
    status = str(body.get("statusCode") or "").upper()
    if str(body.get("activityType") or "").upper() != "CONDITION" or status not in _STATUS:
        return []
    device = _obj(body.get("device"))
    refs = _obj(device.get("references"))
    org = _obj(body.get("organization")) or _obj(refs.get("organization"))
    loc = _obj(body.get("location")) or _obj(refs.get("location"))
    device_id = text(body.get("deviceId")) or text(device.get("id"))
    series = text(body.get("seriesUid"), 255)
    if not series:
        config = text(body.get("sourceConfigUid"), 120)
        if not (config and device_id):
            raise AlertFormatError("The activity has no seriesUid (nor sourceConfigUid and deviceId).",
                                   "Send CONDITION activities as NinjaOne emits them.")
        series = f"{config}:{device_id}"
    subject = text(body.get("subject"), 1024) or text(body.get("message"), 1024) or text(body.get("sourceName"), 1024)
    return [AlertEvent(
        action=_STATUS[status],  # type: ignore[arg-type]
        dedup_key=series,
        occurrence=text(body.get("id"), 64) or body_hash(raw),
        summary=subject or "NinjaOne condition",
        severity=severity(body.get("severity"), default="warning"),
        occurred_at=timestamp(body.get("activityTime")),
        device_id=device_id,
        device_name=text(device.get("displayName"), 200) or text(device.get("systemName"), 200)
        or text(device.get("dnsName"), 200),
        site_id=text(device.get("locationId")) or text(loc.get("id")),
        site_name=text(loc.get("name"), 200),
        org_id=text(device.get("organizationId")) or text(org.get("id")),
        org_name=text(org.get("name"), 200),
        component=text(body.get("sourceName"), 255),
        alert_class=text(body.get("type"), 255),
        details={k: body[k] for k in ("message", "activityResult", "priority", "sourceConfigUid") if k in body},
    )]
