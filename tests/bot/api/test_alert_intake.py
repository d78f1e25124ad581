"""POST /webhooks/alerts/{key} through the real app: status codes, per-event outcomes, and nothing secret or
from the body in the logs."""

from __future__ import annotations

import json
import logging

from tests.core.intake.conftest import events_v2, ninja


async def _source(api, kind: str = "ninjaone", name: str = "ninja") -> tuple[str, str]:
    await api.container.directory.add_customer(api.ws, identifier="ACME", name="Acme Corp")
    info, secret = await api.container.alert_sources.add(api.ws, name=name, kind=kind)
    return info.path, secret


async def test_ninjaone_trigger_replay_and_reset_over_http(api, caplog):
    path, secret = await _source(api)
    caplog.set_level(logging.DEBUG, logger="deskbridge")
    h = {"X-Deskbridge-Secret": secret}
    r = await api.client.post(path, json=ninja(at=1000), headers=h)
    assert r.status_code == 200, r.text
    [ev] = r.json()["events"]
    assert r.json()["status"] == "accepted" and ev["outcome"] == "created" and ev["ticket_number"] == 1
    assert (await api.client.post(path, json=ninja(at=1000), headers=h)).json()["status"] == "duplicate"
    r = await api.client.post(path, json=ninja("RESET", activity=2, at=1100), headers=h)
    assert r.json()["events"][0]["outcome"] == "noted"
    ticket = (await api.get("/tickets/1")).json()
    assert ticket["subject"] == "Disk C: 95% full"
    bad = await api.client.post(path, json=ninja(at=1000), headers={"X-Deskbridge-Secret": "nope"})
    assert bad.status_code == 401 and bad.json()["hint"]
    text = caplog.text
    assert secret not in text and "Disk C" not in text and "nope" not in text


async def test_bad_bodies_and_sizes_get_clear_errors(api):
    path, secret = await _source(api, kind="events_v2", name="pd")
    h = {"Authorization": f"Bearer {secret}"}
    r = await api.client.post(path, content=b"{", headers=h)
    assert r.status_code == 400 and "JSON" in r.json()["error"] and r.json()["hint"]
    r = await api.client.post(path, json={"event_action": "trigger", "payload": {"summary": "x", "severity": "bad"}},
                              headers=h)
    assert r.status_code == 400 and "critical, error, warning or info" in r.json()["hint"]
    r = await api.client.post(path, content=b"x" * (300 * 1024), headers=h)
    assert r.status_code == 413
    r = await api.client.post("/webhooks/alerts/unknown-key", json=events_v2(), headers=h)
    assert r.status_code == 401
    r = await api.client.post(path, content=json.dumps(events_v2(org_name="Nobody Inc")), headers=h)
    assert r.status_code == 200 and r.json()["events"][0]["outcome"] == "triage"
