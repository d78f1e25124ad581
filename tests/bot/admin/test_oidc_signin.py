"""Sign in with Slack and with Microsoft: the real code flow (state, nonce, PKCE, client secret) against loopback
fake providers with local RSA keys; the ID token's signature, audience, issuer, expiry and nonce are checked;
only a Deskbridge admin of the workspace installed in that team/tenant gets a session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlmodel import select

from bot.admin import session as sessions
from bot.admin.oidc import FLOW_COOKIE
from store.db import Scope
from store.tables import AdminSession
from tests.bot.api.conftest import Api, make_api
from tests.fakes.oidc_provider import FakeOidcProvider

TEAM, TENANT = "T0SLACK1", "11111111-2222-3333-4444-555555555555"


@dataclass
class Env:
    api: Api
    slack: FakeOidcProvider
    ms: FakeOidcProvider
    ana_id: int  # admin, linked in Slack (U_ANA) and Teams (oid-ana)
    bob_id: int  # technician, not an admin (U_BOB)


@pytest.fixture
def providers() -> Iterator[tuple[FakeOidcProvider, FakeOidcProvider, str, str]]:
    slack, ms = FakeOidcProvider("slack"), FakeOidcProvider("microsoft", tenant="organizations")
    with slack.serve() as slack_url, ms.serve() as ms_url:
        yield slack, ms, slack_url, ms_url


@pytest.fixture
async def env(db_url: str, tmp_path: Path, providers: tuple[FakeOidcProvider, FakeOidcProvider, str, str]
              ) -> AsyncIterator[Env]:
    slack, ms, slack_url, ms_url = providers
    api, _ = await make_api(db_url, tmp_path, public_url="http://deskbridge.test",
                            admin_slack_client_id=slack.client_id, admin_slack_client_secret=slack.client_secret,
                            slack_oidc_url=slack_url, admin_microsoft_client_id=ms.client_id,
                            admin_microsoft_client_secret=ms.client_secret, m365_login_url=ms_url)
    c = api.container
    try:
        await c.chat.installations.save_installation(platform="slack", team_id=TEAM, bot_token=None,
                                                     workspace_id=api.ws)
        await c.chat.installations.save_installation(platform="teams", team_id=TENANT, bot_token=None,
                                                     workspace_id=api.ws)
        ana = await c.directory.add_member(api.ws, name="Ana", email="ana@msp.example", is_admin=True)
        bob = await c.directory.add_member(api.ws, name="Bob", email="bob@msp.example")
        for member, slack_user, oid in ((ana, "U_ANA", "oid-ana"), (bob, "U_BOB", "oid-bob")):
            await c.directory.link_chat_user(api.ws, member.id, platform="slack", team_id=TEAM, user_id=slack_user)  # type: ignore[arg-type]
            await c.directory.link_chat_user(api.ws, member.id, platform="teams", team_id=TENANT, user_id=oid)  # type: ignore[arg-type]
        yield Env(api, slack, ms, ana.id, bob.id)  # type: ignore[arg-type]
    finally:
        await api.client.aclose()
        await c.aclose()


def slack_claims(user: str = "U_ANA", team: str = TEAM, **extra: Any) -> dict[str, Any]:
    return {"sub": user, "https://slack.com/user_id": user, "https://slack.com/team_id": team,
            "email": f"{user.lower()}@msp.example", "email_verified": True, "name": user, **extra}


def ms_claims(oid: str = "oid-ana", tid: str = TENANT, **extra: Any) -> dict[str, Any]:
    return {"sub": "pairwise-" + oid, "oid": oid, "tid": tid, "preferred_username": "ana@msp.example", **extra}


async def sign_in_with(api: Api, provider: FakeOidcProvider, name: str, claims: dict[str, Any]) -> httpx.Response:
    start = await api.client.get(f"/admin/oidc/{name}/start")
    assert start.status_code == 303 and FLOW_COOKIE in start.headers["set-cookie"]
    back = provider.approve(start.headers["location"], claims)
    assert back.startswith(f"http://deskbridge.test/admin/oidc/{name}/callback?")
    return await api.client.get(back)


async def test_slack_admin_signs_in_with_every_check_made(env: Env):
    page = await env.api.client.get("/admin/signin")
    assert 'href="/admin/oidc/slack/start"' in page.text and 'href="/admin/oidc/microsoft/start"' in page.text
    r = await sign_in_with(env.api, env.slack, "slack", slack_claims())
    assert r.status_code == 303 and r.headers["location"] == "/admin", r.text
    assert (await env.api.client.get("/admin")).status_code == 200
    sent = env.slack.token_requests[-1]
    assert sent["client_secret"] == env.slack.client_secret and len(sent["code_verifier"]) >= 43
    assert sent["redirect_uri"] == "http://deskbridge.test/admin/oidc/slack/callback"
    async with env.api.container.db.read(Scope.workspace(env.api.ws)) as s:
        row = (await s.exec(select(AdminSession))).one()
    assert row.member_id == env.ana_id and row.who.startswith("slack:U_ANA")


async def test_microsoft_admin_signs_in_by_the_linked_teams_account(env: Env):
    r = await sign_in_with(env.api, env.ms, "microsoft", ms_claims())
    assert r.status_code == 303 and r.headers["location"] == "/admin", r.text
    async with env.api.container.db.read(Scope.workspace(env.api.ws)) as s:
        row = (await s.exec(select(AdminSession))).one()
    assert row.member_id == env.ana_id and row.who.startswith("microsoft:oid-ana")


async def test_a_technician_who_is_not_an_admin_gets_403_and_no_session(env: Env):
    for provider, name, claims in ((env.slack, "slack", slack_claims("U_BOB")),
                                   (env.ms, "microsoft", ms_claims("oid-bob"))):
        r = await sign_in_with(env.api, provider, name, claims)
        assert r.status_code == 403 and "not a Deskbridge admin" in r.text, name
        assert f"{sessions.COOKIE}=" not in r.headers.get("set-cookie", "")
        assert (await env.api.client.get("/admin")).status_code == 303


async def test_another_org_gets_nothing(env: Env):
    # A Slack team Deskbridge is not installed in, even with an admin's e-mail; an Entra tenant likewise.
    r = await sign_in_with(env.api, env.slack, "slack", slack_claims("U_ANA", team="T0OTHER", email="ana@msp.example"))
    assert r.status_code == 403 and "not installed" in r.text
    r = await sign_in_with(env.api, env.ms, "microsoft", ms_claims("oid-ana", tid="99999999-0000-0000-0000-000000000000"))
    assert r.status_code == 403
    # An unlinked Microsoft account whose token carries an admin's e-mail: Entra e-mails are not trusted.
    r = await sign_in_with(env.api, env.ms, "microsoft", ms_claims("oid-stranger", email="ana@msp.example"))
    assert r.status_code == 403


async def test_slack_verified_email_of_an_admin_is_enough_without_a_link(env: Env):
    carol = await env.api.container.directory.add_member(env.api.ws, name="Carol", email="carol@msp.example",
                                                         is_admin=True)
    r = await sign_in_with(env.api, env.slack, "slack", slack_claims("U_CAROL", email="Carol@msp.example"))
    assert r.status_code == 303, r.text
    unverified = await sign_in_with(env.api, env.slack, "slack",
                                    slack_claims("U_CAROL2", email="carol@msp.example", email_verified=False))
    assert unverified.status_code == 403
    assert carol.id is not None


@pytest.mark.parametrize("switch", ["sign_with_rogue", "audience", "issuer", "nonce", "expired"])
async def test_an_id_token_that_fails_a_check_is_refused(env: Env, switch: str):
    setattr(env.slack, switch, True if switch in ("sign_with_rogue", "expired") else "someone-else")
    r = await sign_in_with(env.api, env.slack, "slack", slack_claims())
    assert r.status_code == 400 and 'id="refused"' in r.text and "Start again" in r.text
    assert (await env.api.client.get("/admin")).status_code == 303


async def test_state_must_match_and_the_flow_cookie_must_be_there(env: Env):
    start = await env.api.client.get("/admin/oidc/slack/start")
    back = env.slack.approve(start.headers["location"], slack_claims())
    q = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    forged = await env.api.client.get("/admin/oidc/slack/callback", params={"code": q["code"], "state": "attacker"})
    assert forged.status_code == 400 and not env.slack.token_requests  # the code was never even exchanged
    env.api.client.cookies.clear()  # another browser (an attacker's link): no flow cookie
    assert (await env.api.client.get(back)).status_code == 400 and not env.slack.token_requests


async def test_a_code_is_used_once_and_the_pkce_verifier_is_checked(env: Env):
    start = await env.api.client.get("/admin/oidc/slack/start")
    back = env.slack.approve(start.headers["location"], slack_claims())
    flow_cookie = env.api.client.cookies.get(FLOW_COOKIE, path="/admin/oidc")
    assert (await env.api.client.get(back)).status_code == 303
    env.api.client.cookies.set(FLOW_COOKIE, flow_cookie, path="/admin/oidc")  # replay the same callback
    replay = await env.api.client.get(back)
    assert replay.status_code == 400 and "used already" in replay.text
    # A code obtained with another flow's challenge fails PKCE even with the right state cookie.
    first = await env.api.client.get("/admin/oidc/slack/start")
    other = FakeOidcProvider("slack")  # stands in for an attacker's own authorization request
    stolen = env.slack.approve(first.headers["location"], slack_claims())
    code = parse_qs(urlsplit(stolen).query)["code"][0]
    env.slack.grants[code].challenge = other.client_id  # a challenge this browser's verifier cannot meet
    assert (await env.api.client.get(stolen)).status_code == 400


async def test_unconfigured_provider_is_not_offered(db_url: str, tmp_path: Path):
    api, _ = await make_api(db_url, tmp_path)
    try:
        assert "/admin/oidc/" not in (await api.client.get("/admin/signin")).text
        assert (await api.client.get("/admin/oidc/slack/start")).status_code == 404
    finally:
        await api.client.aclose()
        await api.container.aclose()
