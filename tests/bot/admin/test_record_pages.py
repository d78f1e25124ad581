"""Audit search, API keys and channel bindings in the admin pages: filters and pages over real rows, a key shown
once that then works (and stops working when revoked) on the REST API, unbinding through the page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from store.db import Scope
from store.enums import OutboxStatus
from store.tables import AuditLog, ChannelBinding, OutboxOp, Ticket
from store.types import utcnow
from tests.bot.admin.helpers import sign_in
from tests.bot.api.conftest import Api
from tests.factories import psa_backed


async def _audit_rows(api: Api, ws: int) -> None:
    """Ticket 700 has two attempts (retry then ok) by slack:U1; ticket 701 one dead attempt by apikey:ci; plus
    70 old ok rows by system (paging), one of them carrying a secret that slipped into its error text."""
    setup = await psa_backed(api.container.db, ws)
    now = utcnow()
    async with api.container.db.write(Scope.workspace(ws)) as s:
        ops = []
        for number in (700, 701):
            t = Ticket(workspace_id=ws, connection_id=setup.connection_id, external_id=str(number), number=number,
                       subject="x", stage="new", priority="low")
            s.add(t)
            await s.flush()
            op = OutboxOp(workspace_id=ws, connection_id=setup.connection_id, ticket_id=t.id, kind="add_note",
                          payload={}, marker=f"{ws:04d}{number:028d}", status=OutboxStatus.DONE.value, next_attempt_at=now)
            s.add(op)
            await s.flush()
            ops.append(op.id)
        s.add(AuditLog(workspace_id=ws, op_id=ops[0], connection_id=setup.connection_id, attempt=1, action="add_note",
                       outcome="retry", response_status=503, actor="slack:U1 (Ana)", created_at=now - timedelta(hours=2)))
        s.add(AuditLog(workspace_id=ws, op_id=ops[0], connection_id=setup.connection_id, attempt=2, action="add_note",
                       outcome="ok", response_status=201, actor="slack:U1 (Ana)", created_at=now - timedelta(hours=1)))
        s.add(AuditLog(workspace_id=ws, op_id=ops[1], connection_id=setup.connection_id, attempt=8, action="add_note",
                       outcome="dead", response_status=400, actor="apikey:ci", created_at=now,
                       request={"text": "hi", "password": "pw-in-request-991"}))
        for i in range(70):
            s.add(AuditLog(workspace_id=ws, connection_id=setup.connection_id, attempt=1, action="sync",
                           outcome="ok", actor="system", created_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i),
                           error="Authorization: Bearer sk-live-abcdef1234567890abcdef" if i == 3 else None))


async def test_audit_search_filters_by_ticket_user_time_and_outcome(api: Api):
    await _audit_rows(api, api.ws)
    await _audit_rows(api, api.other_ws)
    await sign_in(api)

    async def rows(**params: str) -> list[str]:
        r = await api.client.get("/admin/audit", params=params)
        assert r.status_code == 200, r.text
        return re.findall(r"<tr><td>\d{4}-\d\d-\d\d [\d:]+ UTC</td>", r.text)

    assert len(await rows(ticket="700")) == 2 and len(await rows(ticket="#701")) == 1
    assert len(await rows(actor="ana")) == 2 and len(await rows(actor="apikey:")) == 1
    assert len(await rows(outcome="dead")) == 1 and len(await rows(outcome="retry", ticket="700")) == 1
    assert len(await rows(since="2026-01-01", until="2026-01-01")) == 50  # a full page of the 70 January rows
    # the two slack rows are 2 h and 1 h old: both from the older one's day on, none from the day after now (the
    # days are taken from the rows' own times, so the test does not depend on the hour it runs at, e.g. 00:30 UTC)
    first_day, next_day = (utcnow() - timedelta(hours=2)).date(), utcnow().date() + timedelta(days=1)
    assert len(await rows(since=first_day.isoformat(), actor="slack")) == 2
    assert len(await rows(since=next_day.isoformat(), actor="slack")) == 0
    assert len(await rows(until=(first_day - timedelta(days=1)).isoformat(), actor="slack")) == 0
    page = (await api.client.get("/admin/audit", params={"ticket": "701"})).text
    assert "pw-in-request-991" not in page and "[redacted]" in page


async def test_audit_pages_keep_the_filters_and_never_show_secrets(api: Api):
    await _audit_rows(api, api.ws)
    await sign_in(api)
    first = await api.client.get("/admin/audit", params={"actor": "system"})
    nxt = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert nxt is not None and "actor=system" in nxt.group(1)
    second = await api.client.get(nxt.group(1).replace("&amp;", "&"))
    shown = re.findall(r"<tr><td>\d{4}-\d\d-\d\d [\d:]+ UTC</td>", first.text + second.text)
    assert len(shown) == 70 and 'rel="next"' not in second.text
    assert "sk-live-abcdef1234567890abcdef" not in first.text + second.text


async def test_audit_filters_that_are_not_understood_say_what_to_write(api: Api):
    await sign_in(api)
    for params, words in (({"since": "yesterday"}, "2026-12-07"), ({"ticket": "abc"}, "Write the number"),
                          ({"outcome": "exploded"}, "Use one of"), ({"cursor": "x"}, "first page")):
        r = await api.client.get("/admin/audit", params=params)
        assert r.status_code == 400 and words in r.text, params


async def test_api_key_is_shown_once_works_and_dies_when_revoked(api: Api):
    csrf = await sign_in(api)
    r = await api.client.post("/admin/api-keys", data={"csrf": csrf, "name": "billing-sync", "scope": "read"})
    assert r.status_code == 200 and 'id="new-key"' in r.text
    key = re.search(r"<pre>(dbk_[A-Za-z0-9_-]+)</pre>", r.text).group(1)  # type: ignore[union-attr]
    listing = await api.client.get("/admin/api-keys")
    assert "billing-sync" in listing.text and key not in listing.text and key.split("_", 2)[2] not in listing.text
    rest = await api.client.get("/api/msp-portal/tickets", headers={"Authorization": f"Bearer {key}"})
    assert rest.status_code == 200
    key_id = key.split("_")[1]
    revoked = await api.client.post(f"/admin/api-keys/{key_id}/revoke", data={"csrf": csrf})
    assert revoked.status_code == 303
    rest = await api.client.get("/api/msp-portal/tickets", headers={"Authorization": f"Bearer {key}"})
    assert rest.status_code == 401
    dup = await api.client.post("/admin/api-keys", data={"csrf": csrf, "name": "billing-sync", "scope": "read"})
    assert dup.status_code == 400 and "already exists" in dup.text and "Pick another name" in dup.text
    bad = await api.client.post("/admin/api-keys", data={"csrf": csrf, "name": "x", "scope": "root"})
    assert bad.status_code == 400 and "Use read, write or admin" in bad.text
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        audit = (await s.exec(select(AuditLog).where(AuditLog.action.startswith("apikey."),  # type: ignore[attr-defined]
                                                     AuditLog.actor.startswith("admin-page:")))).all()  # type: ignore[attr-defined]
    assert [a.action for a in audit] == ["apikey.create", "apikey.revoke"] and all(key not in str(a.request)
                                                                                   for a in audit)
    searched = await api.client.get("/admin/audit", params={"outcome": "changed"})
    assert "apikey.revoke" in searched.text and key not in searched.text


async def test_other_workspaces_key_cannot_be_revoked_from_here(api: Api):
    csrf = await sign_in(api)
    theirs = next(k for k in await api.container.apikeys.list(api.other_ws))
    r = await api.client.post(f"/admin/api-keys/{theirs.key_id}/revoke", data={"csrf": csrf})
    assert r.status_code == 404
    assert all(k.revoked_at is None for k in await api.container.apikeys.list(api.other_ws))


async def test_bindings_are_listed_paged_and_unbound(api: Api):
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        for i in range(55):
            s.add(ChannelBinding(workspace_id=api.ws, platform="slack", team_id="T1", channel_id=f"C{i:03d}",
                                 kind="dispatch", created_by="slack:U1"))
    async with api.container.db.write(Scope.workspace(api.other_ws)) as s:
        theirs = ChannelBinding(workspace_id=api.other_ws, platform="slack", team_id="T9", channel_id="CTHEIRS",
                                kind="dispatch")
        s.add(theirs)
        await s.flush()
        theirs_id = theirs.id
    await api.container.chat.bindings.channel(api.ws, "slack", "T1", "C000")  # cached before the unbind
    csrf = await sign_in(api)
    first = await api.client.get("/admin/bindings")
    assert first.text.count("<td>dispatch</td>") == 50 and "CTHEIRS" not in first.text
    nxt = re.search(r'rel="next" href="([^"]+)"', first.text).group(1)  # type: ignore[union-attr]
    assert (await api.client.get(nxt)).text.count("<td>dispatch</td>") == 5
    binding_id = int(re.search(r"<tr><td>(\d+)</td><td>slack</td><td>T1</td><td>C000<", first.text).group(1))  # type: ignore[union-attr]
    r = await api.client.post(f"/admin/bindings/{binding_id}/delete", data={"csrf": csrf})
    assert r.status_code == 303
    info = await api.container.chat.bindings.channel(api.ws, "slack", "T1", "C000")
    assert "dispatch" not in info.kinds
    assert (await api.client.post(f"/admin/bindings/{theirs_id}/delete", data={"csrf": csrf})).status_code == 404
    async with api.container.db.read(Scope.workspace(api.other_ws)) as s:
        assert (await s.get(ChannelBinding, theirs_id)) is not None


async def test_api_keys_are_paged_by_name(api: Api):
    for i in range(52):
        await api.container.apikeys.create(api.ws, name=f"key-{i:02d}", scopes=["read"])
    await sign_in(api)
    first = (await api.client.get("/admin/api-keys")).text
    more = re.search(r'rel="next" href="([^"]+)"', first)
    assert more is not None and first.count("/revoke") == 50
    second = (await api.client.get(more.group(1).replace("&amp;", "&"))).text
    one, two = (re.findall(r"<td>(key-\d\d)</td>", page) for page in (first, second))
    assert two and not set(one) & set(two) and 'rel="next"' not in second  # (the fixture's own keys count too)
    assert sorted(one + two) == [f"key-{i:02d}" for i in range(52)] and max(one) < min(two)
