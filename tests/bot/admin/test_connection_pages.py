"""A connection's admin page: health and sync lag, mappings changed through the page reach the tickets,
re-authentication against a real (fake, loopback) ConnectWise with credentials never echoed, callbacks,
and another workspace's connection out of reach."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from store.db import Scope
from store.tables import AuditLog, PicklistItem, PsaConnection, StatusMapping, SyncRun, Ticket
from store.types import utcnow
from tests.bot.admin.helpers import csrf_of, sign_in
from tests.bot.api.conftest import Api, make_api
from tests.factories import psa_backed
from tests.fakes.connectwise import FakeConnectWise


async def _ticket(api: Api, connection_id: int, status_id: str, number: int) -> int:
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        t = Ticket(workspace_id=api.ws, connection_id=connection_id, external_id=str(number), number=number,
                   subject="Mail down", stage="in_progress", priority="medium", board_external_id="1",
                   psa_status_id=status_id, psa_status_name="In Progress")
        s.add(t)
        await s.flush()
        return t.id  # type: ignore[return-value]


async def test_status_mapping_changed_on_the_page_moves_the_tickets(api: Api):
    setup = await psa_backed(api.container.db, api.ws)
    ticket_id = await _ticket(api, setup.connection_id, "11", 501)
    csrf = await sign_in(api)
    page = await api.client.get(f"/admin/connections/{setup.connection_id}")
    assert page.status_code == 200 and 'id="status-mappings"' in page.text and "In Progress" in page.text
    r = await api.client.post(f"/admin/connections/{setup.connection_id}/map-status",
                              data={"csrf": csrf, "status": "11", "board": "1", "stage": "waiting"})
    assert r.status_code == 303 and r.headers["location"].endswith("?done=mapped")
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        m = (await s.exec(select(StatusMapping).where(StatusMapping.psa_status_id == "11"))).one()
        t = await s.get(Ticket, ticket_id)
        audit = (await s.exec(select(AuditLog).where(AuditLog.action == "mapping.status"))).one()
    assert (m.stage, m.overridden, t.stage) == ("waiting", True, "waiting")  # type: ignore[union-attr]
    assert audit.actor == "admin-page:link" and audit.request["tickets"] == 1 and audit.outcome == "changed"
    shown = await api.client.get(r.headers["location"])
    assert "Mapping saved" in shown.text and "In Progress *" in shown.text
    bad = await api.client.post(f"/admin/connections/{setup.connection_id}/map-status",
                                data={"csrf": csrf, "status": "11", "board": "1", "stage": "someday"})
    assert bad.status_code == 400 and "is not a stage" in bad.text and "in_progress" in bad.text
    forged = await api.client.post(f"/admin/connections/{setup.connection_id}/map-priority",
                                   data={"csrf": "nope", "psa_priority": "4", "priority": "critical"})
    assert forged.status_code == 403
    ok = await api.client.post(f"/admin/connections/{setup.connection_id}/map-priority",
                               data={"csrf": csrf, "psa_priority": "4", "priority": "critical"})
    assert ok.status_code == 303
    statuses, priorities = await api.container.sync.mappings.list(api.ws, setup.connection_id)
    assert {p.psa_priority_id: p.priority for p in priorities}["4"] == "critical"


async def test_sync_lag_and_last_errors_are_shown_without_secrets(api: Api):
    setup = await psa_backed(api.container.db, api.ws)
    now = utcnow()
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        conn = await s.get(PsaConnection, setup.connection_id)
        conn.settings = {"site": "psa.example", "api_secret": "s3cret-setting", "webhook_token": "hook-tok-123"}  # type: ignore[union-attr]
        conn.last_error = "401 for Authorization: Basic cHJpdmF0ZS1rZXk6c2VjcmV0"  # type: ignore[union-attr]
        s.add(SyncRun(workspace_id=api.ws, connection_id=setup.connection_id, kind="incremental", status="ok",
                      started_at=now - timedelta(minutes=10), finished_at=now - timedelta(minutes=9)))
        s.add(SyncRun(workspace_id=api.ws, connection_id=setup.connection_id, kind="full", status="failed",
                      started_at=now - timedelta(minutes=2), finished_at=now - timedelta(minutes=1),
                      error="PSA answered 503"))
    await sign_in(api)
    page = (await api.client.get(f"/admin/connections/{setup.connection_id}")).text
    assert 'id="sync-lag">9 min<' in page and "PSA answered 503" in page and "psa.example" in page
    for secret in ("s3cret-setting", "hook-tok-123", "cHJpdmF0ZS1rZXk6c2VjcmV0"):
        assert secret not in page


async def test_reauth_checks_first_and_never_echoes_a_credential(db_url: str, tmp_path: Path):
    fake = FakeConnectWise()
    with fake.serve() as root:
        api, _ = await make_api(db_url, tmp_path)
        try:
            conn, _ = await api.container.connections.add(api.ws, kind="connectwise", name="cw",
                                                          settings=fake.settings(root), credentials=fake.credentials())
            csrf = await sign_in(api)
            page = (await api.client.get(f"/admin/connections/{conn.id}")).text
            assert 'name="cred_private_key"' in page and 'name="cred_public_key"' in page
            assert fake.private_key not in page and fake.public_key not in page
            wrong = "typo-private-key-XY12"
            r = await api.client.post(f"/admin/connections/{conn.id}/reauth", data={
                "csrf": csrf, "cred_public_key": fake.public_key, "cred_private_key": wrong})
            assert r.status_code == 422 and 'id="problem"' in r.text and wrong not in r.text
            assert api.container.connections.config_for(
                await api.container.connections.get(api.ws, conn.id)).credentials["private_key"] == fake.private_key
            empty = await api.client.post(f"/admin/connections/{conn.id}/reauth", data={
                "csrf": csrf, "cred_public_key": fake.public_key, "cred_private_key": " "})
            assert empty.status_code == 400 and "private_key is empty" in empty.text
            fake.private_key = "rotated-key-77"
            ok = await api.client.post(f"/admin/connections/{conn.id}/reauth", data={
                "csrf": csrf, "cred_public_key": fake.public_key, "cred_private_key": "rotated-key-77"})
            assert ok.status_code == 303 and ok.headers["location"].endswith("done=reauthed")
            saved = api.container.connections.config_for(await api.container.connections.get(api.ws, conn.id))
            assert saved.credentials["private_key"] == "rotated-key-77"
            async with api.container.db.read(Scope.workspace(api.ws)) as s:
                rows = (await s.exec(select(AuditLog).where(AuditLog.action == "connection.reauth"))).all()
            assert len(rows) == 1 and rows[0].request == {"replaced": ["private_key", "public_key"]}
            assert "rotated-key-77" not in (await api.client.get(f"/admin/connections/{conn.id}")).text
            checked = await api.client.post(f"/admin/connections/{conn.id}/check", data={"csrf": csrf})
            assert checked.status_code == 200 and "The PSA accepts the credentials" in checked.text
        finally:
            await api.client.aclose()
            await api.container.aclose()


async def test_callbacks_without_a_public_url_say_what_to_set(api: Api):
    setup = await psa_backed(api.container.db, api.ws)
    csrf = await sign_in(api)
    r = await api.client.post(f"/admin/connections/{setup.connection_id}/callbacks", data={"csrf": csrf})
    assert r.status_code == 400 and "DESKBRIDGE_PUBLIC_URL" in r.text


async def test_callbacks_are_registered_in_connectwise(db_url: str, tmp_path: Path):
    fake = FakeConnectWise()
    with fake.serve() as root:
        api, _ = await make_api(db_url, tmp_path, public_url="https://desk.example.com")
        try:
            conn, _ = await api.container.connections.add(api.ws, kind="connectwise", name="cw",
                                                          settings=fake.settings(root), credentials=fake.credentials())
            api.client.base_url = "https://deskbridge.test"  # type: ignore[assignment]
            csrf = await sign_in(api)
            r = await api.client.post(f"/admin/connections/{conn.id}/callbacks", data={"csrf": csrf})
            assert r.status_code == 303 and r.headers["location"].endswith("done=callbacks"), r.text
            assert fake.callbacks and all(c["url"].startswith(f"https://desk.example.com/webhooks/{conn.id}/")
                                          for c in fake.callbacks.values())
        finally:
            await api.client.aclose()
            await api.container.aclose()


async def test_another_workspaces_connection_is_not_found(api: Api):
    theirs = await psa_backed(api.container.db, api.other_ws)
    csrf = await sign_in(api)
    assert (await api.client.get(f"/admin/connections/{theirs.connection_id}")).status_code == 404
    r = await api.client.post(f"/admin/connections/{theirs.connection_id}/map-status",
                              data={"csrf": csrf, "status": "11", "board": "1", "stage": "waiting"})
    assert r.status_code == 404
    async with api.container.db.read(Scope.workspace(api.other_ws)) as s:
        m = (await s.exec(select(StatusMapping).where(StatusMapping.psa_status_id == "11"))).one()
    assert (m.stage, m.overridden) == ("in_progress", False)
    assert csrf_of((await api.client.get("/admin")).text) == csrf


async def test_picklists_with_their_last_refresh_and_rate_limit_headroom(api: Api):
    setup = await psa_backed(api.container.db, api.ws, kind="connectwise")
    fetched = utcnow() - timedelta(hours=3)
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        board = (await s.exec(select(PicklistItem).where(PicklistItem.kind == "board"))).one()
        board.fetched_at = fetched
        board.active = False
        s.add(AuditLog(workspace_id=api.ws, op_id=None, connection_id=setup.connection_id, attempt=1,
                       action="add_note", outcome="retry", response_status=429, error="Too Many Requests"))
    await sign_in(api)
    page = (await api.client.get(f"/admin/connections/{setup.connection_id}")).text
    table = page.split('id="picklists"')[1].split("</table>")[0]
    assert "<td>board</td><td>1</td><td>0</td>" in table and fetched.strftime("%Y-%m-%d %H:%M") in table
    assert "<td>priority</td><td>4</td><td>4</td>" in table and "<td>status</td>" in table
    headroom = page.split('id="headroom"')[1].split("</ul>")[0]
    assert "rate limited 1 time(s) in the last 24 h (1 on writes" in headroom
    assert "ConnectWise publishes no quota" in headroom  # what to do about it
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        quiet = PsaConnection(workspace_id=api.ws, kind="halopsa", name="halo")
        s.add(quiet)
        await s.flush()
        quiet_id = quiet.id
    page = (await api.client.get(f"/admin/connections/{quiet_id}")).text
    assert "no 429 (too many requests) answer in the last 24 h" in page and "None cached yet" in page


async def test_a_connection_is_added_from_the_page_checked_first_and_encrypted(db_url: str, tmp_path: Path):
    """The add form of each kind shows its fields; against a loopback ConnectWise a missing setting, refused keys
    and a taken name each say what to fix and save nothing (keys never echoed, the other values kept); the saved
    connection's keys are encrypted at rest and the audit row names the page's admin and no key."""
    fake = FakeConnectWise()
    with fake.serve() as root:
        api, _ = await make_api(db_url, tmp_path)
        try:
            csrf = await sign_in(api)
            assert 'href="/admin/connections/new"' in (await api.client.get("/admin")).text
            halo = (await api.client.get("/admin/connections/new", params={"kind": "halopsa"})).text
            assert 'name="set_url"' in halo and 'name="cred_client_secret"' in halo and 'type="password"' in halo
            unknown = await api.client.get("/admin/connections/new", params={"kind": "nope"})
            assert "There is no PSA kind" in unknown.text and 'id="add-connection"' not in unknown.text
            form = {"csrf": csrf, "kind": "connectwise", "name": "cw", "set_site": root,
                    "set_company_id": fake.company_id, "set_client_id": fake.client_id, "default": "on",
                    "cred_public_key": fake.public_key, "cred_private_key": fake.private_key}
            missing = await api.client.post("/admin/connections/new", data={**form, "set_client_id": " "})
            assert missing.status_code == 422 and "client_id" in missing.text and "Fill them in" in missing.text
            wrong = "typo-private-key-XY12"
            refused = await api.client.post("/admin/connections/new", data={**form, "cred_private_key": wrong})
            assert refused.status_code == 422 and "refused these credentials" in refused.text
            assert wrong not in refused.text and fake.public_key not in refused.text
            assert f'value="{fake.company_id}"' in refused.text  # the settings typed are kept
            bad_more = await api.client.post("/admin/connections/new", data={**form, "more": "default_board_id 12"})
            assert bad_more.status_code == 400 and "is not name=value" in bad_more.text
            forged = await api.client.post("/admin/connections/new", data={**form, "csrf": "forged"})
            assert forged.status_code == 403
            assert await api.container.connections.list(api.ws) == []  # nothing saved by any of those
            ok = await api.client.post("/admin/connections/new", data={**form, "more": "default_board_id=1\n"})
            assert ok.status_code == 303 and ok.headers["location"].endswith("done=added"), ok.text
            conn = await api.container.connections.by_name(api.ws, "cw")
            assert ok.headers["location"].startswith(f"/admin/connections/{conn.id}")
            assert conn.settings["default_board_id"] == "1" and conn.is_default
            async with api.container.db.read(Scope.workspace(api.ws)) as s:
                raw = (await s.exec(select(PsaConnection).where(PsaConnection.id == conn.id))).one()
                rows = (await s.exec(select(AuditLog).where(AuditLog.action == "connection.add"))).all()
            assert fake.private_key.encode() not in bytes(raw.credentials_ciphertext)
            assert api.container.connections.config_for(conn).credentials["private_key"] == fake.private_key
            assert len(rows) == 1 and rows[0].actor.startswith("admin-page:")
            assert rows[0].request["stored_encrypted"] == ["private_key", "public_key"]
            assert fake.private_key not in str(rows[0].request) and fake.public_key not in str(rows[0].request)
            taken = await api.client.post("/admin/connections/new", data=form)
            assert taken.status_code == 400 and "already exists" in taken.text and "reauth" in taken.text
            page = await api.client.get(ok.headers["location"])
            assert "Connected: the PSA accepted" in page.text and fake.private_key not in page.text
        finally:
            await api.client.aclose()
            await api.container.aclose()
