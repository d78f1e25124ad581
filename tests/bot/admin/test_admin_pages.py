"""The admin pages (/admin): one-time sign-in link, signed session cookie, CSRF, security headers, the overview
and dead letters (inspect, redrive, discard); the real app driven in-process by httpx, the database checked."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlmodel import select
from typer.testing import CliRunner

from bot.admin import session as sessions
from bot.cli import app as cli
from core.admin_links import AdminLinkService, hash_token
from store.db import Scope
from store.enums import OutboxStatus
from store.tables import AdminLoginLink, AdminSession, AuditLog, OutboxOp, PsaConnection, SyncRun, Ticket
from store.types import utcnow
from tests.bot.admin.helpers import login, sign_in
from tests.bot.api.conftest import Api, make_api
from tests.factories import psa_backed

CRED_SECRET = "cw-private-key-Zq81xTT"
PAYLOAD_SECRET = "hunter2-payload-pw"



async def dead_op(api: Api, ws: int) -> int:
    setup = await psa_backed(api.container.db, ws)
    now = utcnow()
    async with api.container.db.write(Scope.workspace(ws)) as s:
        conn = await s.get(PsaConnection, setup.connection_id)
        conn.credentials_ciphertext = api.container.cipher.encrypt(  # type: ignore[union-attr]
            {"private_key": CRED_SECRET}, workspace_id=ws, kind="sandbox")
        conn.credentials_key_id = api.container.cipher.primary_key_id  # type: ignore[union-attr]
        conn.settings = {"site": "psa.example", "api_secret": CRED_SECRET}  # type: ignore[union-attr]
        op = OutboxOp(workspace_id=ws, connection_id=setup.connection_id, kind="add_note",
                      payload={"kind": "add_note", "text": "hello", "password": PAYLOAD_SECRET},
                      marker=("m" if ws == api.ws else "n") * 32,
                      status=OutboxStatus.DEAD.value, attempts=8, last_error="400 Bad Request: note too long",
                      last_status_code=400, next_attempt_at=now, finished_at=now)
        s.add(op)
        await s.flush()
        s.add(AuditLog(workspace_id=ws, op_id=op.id, connection_id=setup.connection_id, attempt=8,
                       action="add_note", outcome="dead", response_status=400, error="note too long"))
        s.add(SyncRun(workspace_id=ws, connection_id=setup.connection_id, kind="incremental", status="failed",
                      finished_at=now, error=f"PSA answered 503 to Authorization: Basic {CRED_SECRET}"))
        return op.id  # type: ignore[return-value]


async def op_row(api: Api, op_id: int) -> OutboxOp:
    async with api.container.db.read(Scope.system_wide()) as s:
        return (await s.exec(select(OutboxOp).where(OutboxOp.id == op_id))).one()


async def test_unauthenticated_goes_to_a_page_saying_how_to_get_a_link(api: Api):
    for path in ("/admin", "/admin/", "/admin/dead-letters", "/admin/dead-letters/1", "/admin/nope"):
        r = await api.client.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/admin/signin", path
    page = await api.client.get("/admin/signin")
    assert page.status_code == 200 and "deskbridge admin link" in page.text


async def test_link_works_once_sets_a_hardened_cookie_and_is_stored_hashed(api: Api):
    token, _ = await api.container.admin_links.create(api.ws)
    form = await api.client.get(f"/admin/login?token={token}")  # a GET (link preview) does not use it up
    assert form.status_code == 200 and 'action="/admin/login"' in form.text
    for csrf in ("", "forged"):  # the sign-in form's own CSRF check: refused, and the link is not used up
        forged = await api.client.post("/admin/login", data={"token": token, "csrf": csrf})
        assert forged.status_code == 403 and sessions.COOKIE not in forged.headers.get("set-cookie", "")
    first = await login(api.client, token)
    assert first.status_code == 303
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"{sessions.COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/admin" in cookie and "Secure" not in cookie  # the public URL is not https here
    overview = await api.client.get("/admin")
    assert overview.status_code == 200 and "<h1>Overview</h1>" in overview.text

    api.client.cookies.clear()
    again = await login(api.client, token)
    assert again.status_code == 401 and "set-cookie" not in again.headers
    assert "already used, has expired" in again.text
    async with api.container.db.read(Scope.system_wide()) as s:
        row = (await s.exec(select(AdminLoginLink))).one()
    assert row.token_hash == hash_token(token) and token not in row.token_hash and row.used_at is not None


async def test_expired_or_unknown_link_is_refused(api: Api):
    past = AdminLinkService(api.container.db, clock=lambda: utcnow() - timedelta(hours=1))
    old, _ = await past.create(api.ws, ttl=timedelta(minutes=15))
    assert "This link has no token" in (await api.client.get("/admin/login")).text
    for token in (old, "dbl_" + "x" * 43, "<script>"):
        r = await login(api.client, token)
        assert r.status_code == 401 and sessions.COOKIE + "=" not in r.headers.get("set-cookie", ""), token
        assert "<script>" not in r.text
    assert (await api.client.get("/admin")).status_code == 303


async def test_cookie_is_secure_behind_an_https_public_url(db_url: str, tmp_path: Path):
    made, _ = await make_api(db_url, tmp_path, public_url="https://desk.example.com")
    try:
        token, _ = await made.container.admin_links.create(made.ws)
        made.client.base_url = httpx.URL("https://deskbridge.test")  # Secure cookies go back over https only
        r = await login(made.client, token)
        assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]
    finally:
        await made.client.aclose()
        await made.container.aclose()


async def test_forged_tampered_or_expired_cookie_is_refused(api: Api):
    key = api.container.admin_session_key
    sid, _ = await api.container.admin_sessions.start(api.ws, "link")
    good = sessions.new_session(api.ws, sid)
    forged = sessions.sign(good, b"not-the-key" * 3)
    body, mac = sessions.sign(good, key).split(".")
    other = sessions.sign(sessions.AdminSession(api.other_ws, good.csrf, good.expires, sid), b"x")
    tampered = f"{sessions.sign(sessions.AdminSession(api.other_ws, good.csrf, good.expires, sid), key).split('.')[0]}.{mac}"
    expired = sessions.sign(sessions.new_session(api.ws, sid, now=time.time() - sessions.SESSION_SECONDS - 5), key)
    # Well signed, but naming no live server-side session: another workspace's, a made-up id.
    moved = sessions.sign(sessions.AdminSession(api.other_ws, good.csrf, good.expires, sid), key)
    made_up = sessions.sign(sessions.new_session(api.ws, "x" * 43), key)
    for value in (forged, tampered, other, expired, moved, made_up, "garbage", f"{body}.", body):
        api.client.cookies.set(sessions.COOKIE, value, path="/admin")
        r = await api.client.get("/admin")
        assert r.status_code == 303 and r.headers["location"] == "/admin/signin", value
    api.client.cookies.set(sessions.COOKIE, sessions.sign(good, key), path="/admin")
    assert (await api.client.get("/admin")).status_code == 200  # the same session, correctly signed


async def test_csrf_missing_or_wrong_is_403_and_changes_nothing(api: Api):
    op_id = await dead_op(api, api.ws)
    csrf = await sign_in(api)
    for data in ({}, {"csrf": ""}, {"csrf": "wrong"}, {"csrf": csrf[:-1]}):
        r = await api.client.post(f"/admin/dead-letters/{op_id}/redrive", data=data)
        assert r.status_code == 403, data
        d = await api.client.post(f"/admin/dead-letters/{op_id}/discard", data={**data, "reason": "dup"})
        assert d.status_code == 403, data
    row = await op_row(api, op_id)
    assert (row.status, row.attempts) == (OutboxStatus.DEAD.value, 8)
    out = await api.client.post("/admin/logout", data={"csrf": "wrong"})
    assert out.status_code == 403 and (await api.client.get("/admin")).status_code == 200


async def test_redrive_from_the_page_queues_the_op_again(api: Api):
    op_id = await dead_op(api, api.ws)
    csrf = await sign_in(api)
    listing = await api.client.get("/admin/dead-letters")
    assert f'href="/admin/dead-letters/{op_id}"' in listing.text and "note too long" in listing.text
    detail = await api.client.get(f"/admin/dead-letters/{op_id}")
    assert detail.status_code == 200 and "note too long" in detail.text and "HTTP 400" in detail.text
    assert "The PSA refused this write" in detail.text and 'id="attempts"' in detail.text
    r = await api.client.post(f"/admin/dead-letters/{op_id}/redrive", data={"csrf": csrf})
    assert r.status_code == 303 and r.headers["location"] == f"/admin/dead-letters/{op_id}?done=redriven"
    row = await op_row(api, op_id)
    assert (row.status, row.attempts, row.marker) == (OutboxStatus.PENDING.value, 0, "m" * 32)
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        audit = (await s.exec(select(AuditLog).where(AuditLog.op_id == op_id).order_by(AuditLog.id))).all()
    assert [(a.outcome, a.actor) for a in audit][-1] == ("redriven", "admin-page:link")
    again = await api.client.post(f"/admin/dead-letters/{op_id}/redrive", data={"csrf": csrf})
    assert again.status_code == 409 and "only dead writes can be retried" in again.text


async def test_discard_needs_a_reason_and_records_it(api: Api):
    op_id = await dead_op(api, api.ws)
    csrf = await sign_in(api)
    empty = await api.client.post(f"/admin/dead-letters/{op_id}/discard", data={"csrf": csrf, "reason": " "})
    assert empty.status_code == 400 and (await op_row(api, op_id)).status == OutboxStatus.DEAD.value
    r = await api.client.post(f"/admin/dead-letters/{op_id}/discard", data={"csrf": csrf, "reason": "duplicate"})
    assert r.status_code == 303
    row = await op_row(api, op_id)
    assert row.status == OutboxStatus.DISCARDED.value and row.last_error == "discarded by admin-page:link: duplicate"


async def test_another_workspaces_dead_letters_are_not_found(api: Api):
    theirs = await dead_op(api, api.other_ws)
    csrf = await sign_in(api)
    assert (await api.client.get(f"/admin/dead-letters/{theirs}")).status_code == 404
    assert (await api.client.post(f"/admin/dead-letters/{theirs}/redrive", data={"csrf": csrf})).status_code == 404
    assert f"/admin/dead-letters/{theirs}" not in (await api.client.get("/admin/dead-letters")).text
    assert (await op_row(api, theirs)).status == OutboxStatus.DEAD.value


async def test_overview_shows_connections_outbox_and_dead_letters(api: Api):
    await dead_op(api, api.ws)
    await sign_in(api)
    page = (await api.client.get("/admin")).text
    assert 'id="dead-count">1<' in page and 'id="sla-at-risk">0<' in page
    assert "sandbox-test" in page and "PSA answered 503" in page and "<td>dead</td><td>1</td>" in page
    assert CRED_SECRET not in page and "[redacted]" in page  # error text shown masked


async def test_security_headers_on_every_admin_response(api: Api):
    op_id = await dead_op(api, api.ws)
    responses = [await api.client.get(p) for p in ("/admin", "/admin/signin", "/admin/login?token=x",
                                                   "/admin/static/admin.css")]
    responses.append(await api.client.post("/admin/login", data={"token": "nope"}))  # no CSRF: 403
    responses.append(await login(api.client, "nope"))  # 401
    csrf = await sign_in(api)
    for p in ("/admin", "/admin/dead-letters", f"/admin/dead-letters/{op_id}", "/admin/dead-letters/abc",
              "/admin/dead-letters?cursor=zz", "/admin/nope"):
        responses.append(await api.client.get(p))
    responses.append(await api.client.post(f"/admin/dead-letters/{op_id}/redrive", data={"csrf": "x"}))
    responses.append(await api.client.post(f"/admin/dead-letters/{op_id}/redrive", data={"csrf": csrf}))
    assert {r.status_code for r in responses} >= {200, 303, 400, 401, 403, 404}
    for r in responses:
        csp = r.headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, r.url
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
    assert "content-security-policy" not in (await api.client.get("/healthz")).headers  # only /admin


async def test_no_secret_appears_in_any_page(api: Api):
    op_id = await dead_op(api, api.ws)
    await sign_in(api)
    secrets_ = [CRED_SECRET, PAYLOAD_SECRET, *api.keys.values(), api.container.settings.secret_key.get_secret_value()]
    pages = [await api.client.get(p) for p in ("/admin", "/admin/dead-letters", f"/admin/dead-letters/{op_id}")]
    assert all(p.status_code == 200 for p in pages)
    assert "hello" in pages[2].text  # the payload is shown, redacted
    for page in pages:
        for secret in secrets_:
            assert secret not in page.text


def test_cli_prints_a_link_that_signs_in(env, monkeypatch):
    monkeypatch.setenv("DESKBRIDGE_PUBLIC_URL", "https://desk.example.com/")
    result = CliRunner().invoke(cli, ["admin", "link", "--minutes", "5"])
    assert result.exit_code == 0, result.output
    link = re.search(r"https://desk\.example\.com/admin/login\?token=(dbl_[A-Za-z0-9_-]+)", result.stdout)
    assert link is not None and "works once" in result.stdout
    bad = CliRunner().invoke(cli, ["admin", "link", "--minutes", "0"])
    assert bad.exit_code != 0


def test_cli_link_redeems_once(env, tmp_path: Path):
    result = CliRunner().invoke(cli, ["admin", "link"])
    assert result.exit_code == 0, result.output
    token = re.search(r"token=(\S+)", result.stdout).group(1)  # type: ignore[union-attr]
    assert "No running `deskbridge serve`" in result.stdout and "DESKBRIDGE_PUBLIC_URL" in result.stdout

    async def redeem_twice() -> tuple[int, int]:
        made, _ = await make_api(env["DESKBRIDGE_DATABASE_URL"], tmp_path, secret_key=env["DESKBRIDGE_SECRET_KEY"])
        try:
            first = (await login(made.client, token)).status_code
            made.client.cookies.clear()
            return first, (await login(made.client, token)).status_code
        finally:
            await made.client.aclose()
            await made.container.aclose()

    assert asyncio.run(redeem_twice()) == (303, 401)


async def test_overview_counts_tickets_whose_sla_is_at_risk(api: Api):
    await sign_in(api)
    late = await api.ticket("Server down", priority="critical")
    await api.ticket("Printer jams", priority="low")
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        await s.execute(sa.update(Ticket).where(Ticket.id == late["id"]).values(
            created_at=utcnow() - timedelta(days=30), updated_at=utcnow() - timedelta(days=30)))
    await api.container.sla.refresh(api.ws, [late["id"]], now=utcnow())  # the monitor's minute pass
    assert 'id="sla-at-risk">1<' in (await api.client.get("/admin")).text


async def test_dead_letters_are_paginated(api: Api):
    first = await dead_op(api, api.ws)
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        model = (await s.exec(select(OutboxOp).where(OutboxOp.id == first))).one()
        for i in range(55):
            s.add(OutboxOp(workspace_id=api.ws, connection_id=model.connection_id, kind="add_note", payload={},
                           marker=f"{i:032d}", status=OutboxStatus.DEAD.value, next_attempt_at=utcnow()))
    await sign_in(api)
    page1 = (await api.client.get("/admin/dead-letters")).text
    older = re.search(r'href="(/admin/dead-letters\?cursor=\d+)"', page1)
    assert older is not None and page1.count('name="op" value=') == 50
    page2 = (await api.client.get(older.group(1))).text
    assert page2.count('name="op" value=') == 6 and "cursor=" not in page2
    assert f'href="/admin/dead-letters/{first}"' in page2


async def test_sign_out_ends_the_session_even_for_a_copied_cookie(api: Api):
    csrf = await sign_in(api)
    copied = api.client.cookies.get(sessions.COOKIE, path="/admin")
    assert copied
    r = await api.client.post("/admin/logout", data={"csrf": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/admin/signin"
    assert f'{sessions.COOKIE}=""' in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    assert (await api.client.get("/admin")).status_code == 303
    # Someone who copied the cookie before the sign-out: the server no longer knows the session.
    async with httpx.AsyncClient(transport=api.client._transport, base_url=api.client.base_url) as thief:
        thief.cookies.set(sessions.COOKIE, copied, path="/admin")
        assert (await thief.get("/admin")).status_code == 303
        assert (await thief.post("/admin/logout", data={"csrf": csrf})).status_code == 303  # no session: sign-in
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        row = (await s.exec(select(AdminSession))).one()
    assert row.revoked_at is not None and row.who == "link" and copied not in row.sid_hash


async def test_a_session_of_an_admin_who_is_no_longer_one_dies(api: Api):
    member = await api.container.directory.add_member(api.ws, name="Ana", email="ana@msp.example", is_admin=True)
    sid, _ = await api.container.admin_sessions.start(api.ws, "slack:U1 ana@msp.example", member.id)
    api.client.cookies.set(sessions.COOKIE, sessions.sign(sessions.new_session(api.ws, sid),
                                                          api.container.admin_session_key), path="/admin")
    assert (await api.client.get("/admin")).status_code == 200
    await api.container.directory.set_admin(api.ws, "ana@msp.example", False)
    assert (await api.client.get("/admin")).status_code == 303


async def test_redrive_the_ticked_ones_or_all_of_a_connection(api: Api):
    first = await dead_op(api, api.ws)
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        model = (await s.exec(select(OutboxOp).where(OutboxOp.id == first))).one()
        more = [OutboxOp(workspace_id=api.ws, connection_id=model.connection_id, kind="add_note", payload={},
                         marker=f"{i:032d}", status=OutboxStatus.DEAD.value, next_attempt_at=utcnow()) for i in range(3)]
        s.add_all(more)
        await s.flush()
        ids = [o.id for o in more]
    theirs = await dead_op(api, api.other_ws)
    csrf = await sign_in(api)
    none = await api.client.post("/admin/dead-letters/redrive", data={"csrf": csrf})
    assert none.status_code == 400 and "No write was ticked" in none.text
    r = await api.client.post("/admin/dead-letters/redrive",  # another workspace's write is not touched
                              data={"csrf": csrf, "op": [str(ids[0]), str(ids[1]), str(theirs)]})
    assert r.status_code == 303 and r.headers["location"].endswith("n=2")
    assert "2 write(s) queued again." in (await api.client.get(r.headers["location"])).text
    assert [(await op_row(api, i)).status for i in ids] == ["pending", "pending", "dead"]
    r = await api.client.post("/admin/dead-letters/redrive", data={"csrf": csrf, "all": "1",
                                                                   "connection": str(model.connection_id)})
    assert r.status_code == 303 and r.headers["location"].endswith("n=2")  # ids[2] and the first one
    assert (await op_row(api, first)).status == "pending" and (await op_row(api, theirs)).status == "dead"
    forged = await api.client.post("/admin/dead-letters/redrive", data={"csrf": "x", "all": "1"})
    assert forged.status_code == 403


async def test_dead_letters_filter_by_connection_kind_and_ticket_and_pages_keep_the_filters(api: Api):
    first = await dead_op(api, api.ws)  # add_note on connection A, no ticket
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        a = (await s.exec(select(OutboxOp).where(OutboxOp.id == first))).one().connection_id
        other = PsaConnection(workspace_id=api.ws, kind="sandbox", name="other-psa")
        ticket = Ticket(workspace_id=api.ws, number=4242, subject="Printer", priority="low", priority_rank=3,
                        stage="new", source="psa")
        s.add_all([other, ticket])
        await s.flush()

        def dead(kind: str, conn: int | None, ticket_id: int | None, i: int) -> OutboxOp:
            return OutboxOp(workspace_id=api.ws, connection_id=conn, ticket_id=ticket_id, kind=kind, payload={},
                            marker=f"f{i:031d}", status=OutboxStatus.DEAD.value, next_attempt_at=utcnow())

        s.add_all([dead("update_ticket", a, None, i) for i in range(53)])
        s.add_all([dead("add_note", a, ticket.id, 100 + i) for i in range(2)])
        s.add(dead("add_note", other.id, None, 200))
        s.add(OutboxOp(workspace_id=api.ws, connection_id=a, ticket_id=ticket.id, kind="add_note", payload={},
                       marker="p" * 32, status=OutboxStatus.PENDING.value, next_attempt_at=utcnow()))  # not dead
        other_id = other.id
    await sign_in(api)

    async def rows(query: str) -> tuple[int, str | None, str]:
        text = (await api.client.get("/admin/dead-letters" + query)).text
        nxt = re.search(r'rel="next" href="([^"]+)"', text)
        return text.count('name="op" value='), nxt.group(1).replace("&amp;", "&") if nxt else None, text

    n, nxt, _ = await rows("?kind=update_ticket")
    assert n == 50 and nxt is not None and "kind=update_ticket" in nxt and "cursor=" in nxt
    n, nxt, text = await rows(nxt[len("/admin/dead-letters"):])
    assert n == 3 and nxt is None and "add_note" not in text.split('id="dead-letters"')[1]
    assert (await rows("?ticket=4242"))[0] == 2 and (await rows("?ticket=%234242"))[0] == 2
    assert (await rows(f"?connection={other_id}"))[0] == 1
    assert (await rows(f"?kind=add_note&connection={a}"))[0] == 3
    n, _, text = await rows("?ticket=999")
    assert n == 0 and "No dead letter matches these filters." in text and 'value="999"' in text
    for query, words in (("?ticket=abc", "write a ticket number like 1042"), ("?connection=x", "Pick a connection"),
                         ("?kind=explode", "is not a kind of write")):
        r = await api.client.get("/admin/dead-letters" + query)
        assert r.status_code == 400 and words in r.text, query
