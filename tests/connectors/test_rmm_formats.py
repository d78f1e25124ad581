"""The RMM parsers: NinjaOne activities, Events v2 bodies, and Datto bodies built from our template."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from connectors.alerts import AlertFormatError
from connectors.rmm import PARSERS, datto

DATTO_VARS = {"[alert_uid]": "a1b2-c3", "[alert_message_en]": "CPU above 95% for 15 minutes",
              "[device_hostname]": "WS-ANNA", "[alert_priority]": "High", "[alert_type]": "perf_mon",
              "[device_id]": "884422", "[site_id]": "s-77", "[site_name]": "Acme HQ", "[platform]": "windows"}


def _fill(template: str) -> bytes:
    for var, value in DATTO_VARS.items():
        template = template.replace(var, value)
    return template.encode()


def test_datto_template_bodies_parse_into_one_alert_trigger_and_resolve():
    [trig] = PARSERS["datto"](json.loads(raw := _fill(datto.TRIGGER_TEMPLATE)), raw)
    [res] = PARSERS["datto"](json.loads(raw2 := _fill(datto.RESOLVE_TEMPLATE)), raw2)
    assert (trig.action, res.action) == ("trigger", "resolve") and trig.dedup_key == res.dedup_key == "datto:a1b2-c3"
    assert trig.severity == "error" and trig.device_id == "884422" and trig.site_name == "Acme HQ"
    assert trig.device_key == "884422" and trig.summary.startswith("CPU above")
    with pytest.raises(AlertFormatError, match="alert uid"):
        PARSERS["datto"](json.loads(datto.TRIGGER_TEMPLATE), datto.TRIGGER_TEMPLATE.encode())


def test_ninjaone_condition_trigger_and_reset_share_the_series():
    body = {"id": 5, "activityTime": 1765090000, "deviceId": 9, "severity": "CRITICAL", "seriesUid": "ser-1",
            "activityType": "CONDITION", "statusCode": "TRIGGERED", "subject": "Offline",
            "device": {"id": 9, "systemName": "DC01", "organizationId": 3, "locationId": 4}}
    [t] = PARSERS["ninjaone"](body, b"x")
    [r] = PARSERS["ninjaone"]({**body, "id": 6, "statusCode": "RESET"}, b"y")
    assert (t.action, r.action, t.dedup_key, r.dedup_key) == ("trigger", "resolve", "ser-1", "ser-1")
    assert t.occurrence == "5" and r.occurrence == "6" and t.severity == "critical" and t.org_id == "3"
    assert t.occurred_at == datetime.fromtimestamp(1765090000, tz=UTC) and t.device_name == "DC01"
    assert PARSERS["ninjaone"]({**body, "activityType": "ACTIONSET"}, b"z") == []
    with pytest.raises(AlertFormatError):
        PARSERS["ninjaone"]({**body, "seriesUid": None}, b"w")


def test_events_v2_retries_share_an_occurrence_and_new_events_do_not():
    body = {"event_action": "trigger", "dedup_key": "k", "payload": {"summary": "s", "severity": "info",
                                                                       "timestamp": "2026-12-07T10:00:00+01:00"}}
    raw = json.dumps(body).encode()
    [a], [b] = PARSERS["events_v2"](body, raw), PARSERS["events_v2"](body, raw)
    [c] = PARSERS["events_v2"](body, raw + b" ")
    assert a.occurrence == b.occurrence != c.occurrence
    assert a.occurred_at == datetime(2026, 12, 7, 9, 0, tzinfo=UTC) and a.severity == "info"
