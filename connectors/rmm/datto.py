"""Datto RMM webhooks. Datto's body is authored by the MSP with bracket variables (Setup → Integrations →
Global Webhooks, or a monitor's webhook response), with separate trigger and resolve bodies. Deskbridge's
recommended template makes both Events v2-shaped, so this parser is the Events v2 one that also accepts
Datto's priority words (Critical, High, Moderate, Low, Information) as severity and requires a dedup_key.

Paste TRIGGER_TEMPLATE as the alert body and RESOLVE_TEMPLATE as the resolution body; add the header
`X-Deskbridge-Secret` with the source's secret (`deskbridge intake add-source --kind datto`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.alerts import AlertEvent, AlertFormatError
from connectors.rmm.common import require_object
from connectors.rmm.events_v2 import event

TRIGGER_TEMPLATE = """{
  "event_action": "trigger",
  "dedup_key": "datto:[alert_uid]",
  "payload": {
    "summary": "[alert_message_en]",
    "source": "[device_hostname]",
    "severity": "[alert_priority]",
    "class": "[alert_type]",
    "custom_details": {
      "device_id": "[device_id]",
      "site_id": "[site_id]",
      "site_name": "[site_name]",
      "platform": "[platform]"
    }
  }
}"""

RESOLVE_TEMPLATE = """{
  "event_action": "resolve",
  "dedup_key": "datto:[alert_uid]",
  "payload": {
    "summary": "[alert_message_en]",
    "source": "[device_hostname]",
    "custom_details": {"device_id": "[device_id]", "site_id": "[site_id]", "site_name": "[site_name]"}
  }
}"""


def parse(body: Mapping[str, Any], raw: bytes) -> list[AlertEvent]:
    body = require_object(body, "Datto RMM")
    dedup = str(body.get("dedup_key") or "")
    if not dedup or "[alert_uid]" in dedup:
        raise AlertFormatError("The Datto body has no alert uid in dedup_key.",
                               "Use Deskbridge's Datto template: dedup_key \"datto:[alert_uid]\".")
    return [event(body, raw, vendor_severity=True)]
