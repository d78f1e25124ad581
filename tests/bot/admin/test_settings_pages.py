"""SLA policies and calendars, AI settings and intake (alert sources, mapping rules, mailbox) in the admin pages:
each form changes what the CLI's service reads back, refusals say what to type, secrets are shown once or
never, and every change lands in the audit log."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from core.intake.mailbox import SETTINGS_KEY as MAILBOX_KEY
from store.db import Scope
from store.tables import Alert, AlertMapping, AlertSource, AuditLog, Workspace
from tests.bot.admin.helpers import sign_in
from tests.bot.api.conftest import Api
from tests.factories import psa_backed


async def _actions(api: Api) -> list[str]:
    """Changes made on the pages, in order (the fixture's own set-up is recorded as "cli"/"system")."""
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        return [a.action for a in (await s.exec(select(AuditLog).where(
            AuditLog.outcome == "changed", AuditLog.actor.startswith("admin-page:"))  # type: ignore[attr-defined]
            .order_by(AuditLog.id))).all()]


async def test_sla_target_and_mode_set_on_the_page(api: Api):
    csrf = await sign_in(api)
    page = await api.client.get("/admin/sla")
    assert page.status_code == 200 and 'id="sla-targets"' in page.text
    r = await api.client.post("/admin/sla/policy", data={"csrf": csrf, "priority": "critical",
                                                         "metric": "resolution", "duration": "3h"})
    assert r.status_code == 303
    policy, own = await api.container.sla_config.policy(api.ws)
    assert policy.to_dict()["targets"]["critical"]["resolution"] == "3h"
    assert own["targets"]["critical"]["resolution"] == 3 * 3600
    bad = await api.client.post("/admin/sla/policy", data={"csrf": csrf, "priority": "critical",
                                                           "metric": "resolution", "duration": "soon"})
    assert bad.status_code == 400 and 'id="problem"' in bad.text and "soon" in bad.text
    assert (await api.container.sla_config.policy(api.ws))[0].to_dict()["targets"]["critical"]["resolution"] == "3h"
    nothing = await api.client.post("/admin/sla/policy", data={"csrf": csrf})
    assert nothing.status_code == 400 and "Nothing to change" in nothing.text
    thresholds = await api.client.post("/admin/sla/policy", data={"csrf": csrf, "thresholds": "50,100"})
    assert thresholds.status_code == 303
    assert (await api.container.sla_config.policy(api.ws))[0].to_dict()["thresholds"] == [50, 100]
    assert await _actions(api) == ["sla.policy", "sla.policy"]


async def test_sla_override_for_one_customer(api: Api):
    await psa_backed(api.container.db, api.ws)
    csrf = await sign_in(api)
    r = await api.client.post("/admin/sla/policy", data={"csrf": csrf, "customer": "ACME", "priority": "low",
                                                         "metric": "first_response", "duration": "2d"})
    assert r.status_code == 303 and "customer=ACME" in r.headers["location"]
    acme = await api.container.directory.find_customer(api.ws, "ACME")
    assert (await api.container.sla_config.policy(api.ws, acme.id))[0].to_dict()["targets"]["low"][
        "first_response"] == "48h"
    assert (await api.container.sla_config.policy(api.ws))[1] == {}  # the workspace policy did not change
    unknown = await api.client.get("/admin/sla", params={"customer": "Nobody Inc"})
    assert unknown.status_code == 404


async def test_calendar_with_hours_and_holidays(api: Api):
    csrf = await sign_in(api)
    r = await api.client.post("/admin/sla/calendar", data={
        "csrf": csrf, "name": "acme-west", "tz": "America/Los_Angeles", "hours": "mon-fri 07:00-16:00",
        "country": "US", "add_holiday": "2026-12-24"})
    assert r.status_code == 303
    info = await api.container.sla_config.calendar(api.ws, "acme-west")
    assert (info.timezone, info.windows, info.holiday_country) == ("America/Los_Angeles", "mon-fri 07:00-16:00", "US")
    page = (await api.client.get("/admin/sla")).text
    assert 'id="calendar-acme-west"' in page and "2026-12-24" in page and "Christmas" in page
    for data, words in (({"tz": "Mars/Olympus"}, "Mars/Olympus"), ({"hours": "every day"}, "every day"),
                        ({"add_holiday": "24.12.2026"}, "2026-12-24")):
        bad = await api.client.post("/admin/sla/calendar", data={"csrf": csrf, "name": "acme-west", **data})
        assert bad.status_code == 400 and words in bad.text, data
    assert (await api.container.sla_config.calendar(api.ws, "acme-west")).version == info.version


async def test_sla_explain_as_a_page(api: Api):
    await sign_in(api)
    ticket = await api.ticket("Server down", priority="critical")
    r = await api.client.get("/admin/sla/explain", params={"ticket": str(ticket["number"])})
    assert r.status_code == 200 and 'id="explained"' in r.text and "resolution" in r.text
    assert (await api.client.get("/admin/sla/explain", params={"ticket": "999999"})).status_code == 404


async def test_ai_setting_changed_and_a_bad_value_explained(api: Api):
    csrf = await sign_in(api)
    page = await api.client.get("/admin/ai")
    assert page.status_code == 200 and "fill_threshold" in page.text and "No category model yet" in page.text
    r = await api.client.post("/admin/ai", data={"csrf": csrf, "name": "fill_threshold", "value": "90%"})
    assert r.status_code == 303
    assert (await api.container.ai.settings(api.ws))["fill_threshold"] == pytest.approx(0.9)
    bad = await api.client.post("/admin/ai", data={"csrf": csrf, "name": "fill_threshold", "value": "lots"})
    assert bad.status_code == 400 and "0.8" in bad.text
    unknown = await api.client.post("/admin/ai", data={"csrf": csrf, "name": "telepathy", "value": "on"})
    assert unknown.status_code == 400 and "categorize" in unknown.text
    assert (await api.container.ai.settings(api.ws))["fill_threshold"] == pytest.approx(0.9)
    assert await _actions(api) == ["ai.setting"]


async def test_alert_source_secret_is_shown_once_and_rotated(api: Api):
    await psa_backed(api.container.db, api.ws)
    csrf = await sign_in(api)
    r = await api.client.post("/admin/intake/sources", data={"csrf": csrf, "name": "ninja-main", "kind": "ninjaone"})
    assert r.status_code == 200 and 'id="secret"' in r.text
    secret = re.search(r'id="secret">.*?<pre>([^<]+)</pre>', r.text, re.S).group(1)  # type: ignore[union-attr]
    page = (await api.client.get("/admin/intake")).text
    assert "ninja-main" in page and secret not in page
    rotated = await api.client.post("/admin/intake/sources/ninja-main/rotate", data={"csrf": csrf})
    new = re.search(r'id="secret">.*?<pre>([^<]+)</pre>', rotated.text, re.S).group(1)  # type: ignore[union-attr]
    assert new != secret
    source = (await api.container.alert_sources.sources(api.ws))[0]
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        row = (await s.exec(select(AlertSource))).one()
    assert api.container.alert_sources.secret_of(row) == new and source.name == "ninja-main"
    setting = await api.client.post("/admin/intake/sources/ninja-main/set",
                                    data={"csrf": csrf, "option": "storm_threshold", "value": "25"})
    assert setting.status_code == 303
    assert (await api.container.alert_sources.sources(api.ws))[0].settings["storm_threshold"] == 25
    bad = await api.client.post("/admin/intake/sources/ninja-main/set",
                                data={"csrf": csrf, "option": "enabled", "value": "maybe"})
    assert bad.status_code == 400 and "on or off" in bad.text
    dup = await api.client.post("/admin/intake/sources", data={"csrf": csrf, "name": "ninja-main", "kind": "ninjaone"})
    assert dup.status_code == 400 and "exists already" in dup.text
    actions = await _actions(api)
    assert actions == ["intake.source.add", "intake.source.rotate", "intake.source.set"]
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        rows = (await s.exec(select(AuditLog).where(AuditLog.outcome == "changed"))).all()
    assert all(secret not in str(a.request) and new not in str(a.request) for a in rows)


async def test_mapping_rules_added_and_removed(api: Api):
    await psa_backed(api.container.db, api.ws)
    theirs = await psa_backed(api.container.db, api.other_ws)
    other_rule = await api.container.alert_sources.map(api.other_ws, scope="site", by="name", value="hq",
                                                       customer=str(theirs.customer_id))
    csrf = await sign_in(api)
    r = await api.client.post("/admin/intake/rules", data={"csrf": csrf, "scope": "site", "by": "name",
                                                           "value": "Acme HQ", "customer": "ACME"})
    assert r.status_code == 303
    rules = await api.container.alert_sources.mappings(api.ws)
    assert [(m.scope, m.value, m.customer) for m in rules] == [("site", "acme hq", "Acme Corp")]
    bad = await api.client.post("/admin/intake/rules", data={"csrf": csrf, "scope": "planet", "by": "name",
                                                             "value": "x", "customer": "ACME"})
    assert bad.status_code == 400 and "device, site or org" in bad.text
    assert (await api.client.post(f"/admin/intake/rules/{other_rule.id}/delete",
                                  data={"csrf": csrf})).status_code == 404
    assert len(await api.container.alert_sources.mappings(api.other_ws)) == 1
    gone = await api.client.post(f"/admin/intake/rules/{rules[0].id}/delete", data={"csrf": csrf})
    assert gone.status_code == 303 and await api.container.alert_sources.mappings(api.ws) == []


async def test_mailbox_that_cannot_be_read_is_not_saved_and_its_password_not_echoed(api: Api):
    csrf = await sign_in(api)
    password = "imap-pass-Zz91"
    r = await api.client.post("/admin/intake/mailbox", data={
        "csrf": csrf, "kind": "imap", "host": "127.0.0.1", "port": "1", "username": "help", "secret": password})
    assert r.status_code == 400 and 'id="problem"' in r.text and password not in r.text
    missing = await api.client.post("/admin/intake/mailbox", data={"csrf": csrf, "kind": "graph", "secret": "x"})
    assert missing.status_code == 400 and "needs mailbox, tenant, client_id" in missing.text
    port = await api.client.post("/admin/intake/mailbox", data={"csrf": csrf, "kind": "imap", "port": "imap"})
    assert port.status_code == 400 and "993" in port.text
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        ws = await s.get(Workspace, api.ws)
    assert MAILBOX_KEY not in ws.settings  # type: ignore[union-attr]
    assert 'id="mailbox">No mailbox configured' in (await api.client.get("/admin/intake")).text


async def test_sources_rules_and_triage_are_paged_each_on_its_own(api: Api):
    setup = await psa_backed(api.container.db, api.ws)
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        sources = [AlertSource(workspace_id=api.ws, key=f"k{i:03d}", name=f"src-{i:03d}", kind="ninjaone",
                               secret_ciphertext=b"x") for i in range(53)]
        s.add_all(sources)
        await s.flush()
        s.add_all([AlertMapping(workspace_id=api.ws, scope="device", by="id", value=f"dev-{i}",
                                customer_id=setup.customer_id) for i in range(51)])
        s.add_all([Alert(workspace_id=api.ws, source_id=sources[0].id, dedup_key=f"d{i}", status="triage",  # type: ignore[arg-type]
                         summary=f"Disk full {i:03d}") for i in range(57)])
    await sign_in(api)

    async def get(url: str) -> tuple[str, dict[str, str]]:
        text = (await api.client.get(url)).text
        links = {m.group(1): m.group(2).replace("&amp;", "&")
                 for m in re.finditer(r'id="more-(\w+)" href="([^"]+)"', text)}
        return text, links

    text, links = await get("/admin/intake")
    assert set(links) == {"sources", "rules", "triage"}
    assert text.count("/rotate") == 50 and text.count("/delete") == 50 and text.count("Disk full") == 50
    text, more = await get(links["sources"])
    assert text.count("/rotate") == 3 and "<td>src-052</td>" in text and "<td>src-000</td><td>ninjaone" not in text
    assert text.count("/delete") == 50 and "sources" not in more  # the other lists stay on their first page
    text, more = await get(links["triage"])
    assert text.count("Disk full") == 7 and "Disk full 056" in text and "Disk full 000" not in text
    text, _ = await get(more["rules"])  # still on triage's second page, rules move on
    assert text.count("/delete") == 1 and text.count("Disk full") == 7
    assert (await api.client.get("/admin/intake?rules=x")).status_code == 400
