"""RMM alert formats: each parser turns one vendor webhook body into canonical `AlertEvent`s.

`events_v2`: a PagerDuty Events v2-shaped body (Rewst, n8n, Power Automate, scripts). `ninjaone`: NinjaOne
v2 webhook activities as sent. `datto`: Datto RMM webhooks built from the template in `datto.py`.
"""

from __future__ import annotations

from connectors.alerts import AlertParser
from connectors.rmm import datto, events_v2, ninjaone

PARSERS: dict[str, AlertParser] = {
    "events_v2": events_v2.parse,
    "ninjaone": ninjaone.parse,
    "datto": datto.parse,
}

__all__ = ["PARSERS"]
