"""Issue 7: the real bolt OAuth install through the FastAPI app, against the loopback fake Slack Web API.

/slack/install hands the browser Slack's authorize URL and a state cookie; /slack/oauth_redirect exchanges the
code with `oauth.v2.access` and stores the installation on our database (token encrypted); later requests
from that team are authorised with the stored token.
"""

from __future__ import annotations

import html
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.api.app import create_app
from bot.main import bootstrap, build
from bot.settings import Settings
from bot.slack.app import BOT_SCOPES
from store.crypto import generate_key
from store.db import Scope
from store.tables import ChatInstallation
from tests.bot.slack.conftest import SIGNING_SECRET, SlackHarness

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "test-client-secret"
PUBLIC_URL = "https://deskbridge.test"
REDIRECT = f"{PUBLIC_URL}/slack/oauth_redirect"
STATE_COOKIE = "slack-app-oauth-state"  # bolt's default state cookie name


@pytest.fixture
async def oauth(db_url, fake_slack, tmp_path):
    fake_slack.client_id, fake_slack.client_secret, fake_slack.redirect_uri = CLIENT_ID, CLIENT_SECRET, REDIRECT
    settings = Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                        secret_key_file=tmp_path / "k", workspace_slug="acme-msp", run_scheduler=False,
                        run_outbox_worker=False, slack_client_id=CLIENT_ID, slack_client_secret=CLIENT_SECRET,
                        slack_signing_secret=SIGNING_SECRET, slack_api_url=fake_slack.api_url, public_url=PUBLIC_URL)
    assert settings.slack_bot_token is None
    container = build(settings)
    await bootstrap(container)
    await container.slack.start()
    app = create_app(container, start_background=False)
    h = SlackHarness(app, container, fake_slack, container.default_workspace_id, None)
    fake_slack.clear()
    yield h
    await h.settle()
    await h.http.aclose()
    await container.aclose()


async def begin(h: SlackHarness) -> tuple[str, dict[str, list[str]]]:
    """GET /slack/install like a browser: the authorize URL's query and the state (also kept as a cookie)."""
    resp = await h.http.get("/slack/install")
    if resp.status_code in (302, 303, 307):
        url = resp.headers["location"]
    else:
        assert resp.status_code == 200, resp.text
        match = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', resp.text)
        assert match, resp.text
        url = html.unescape(match.group(1))
    parsed = urlparse(url)
    assert (parsed.scheme, parsed.netloc, parsed.path) == ("https", "slack.com", "/oauth/v2/authorize")
    query = parse_qs(parsed.query)
    assert STATE_COOKIE in resp.headers.get("set-cookie", "")
    return query["state"][0], query


async def finish(h: SlackHarness, *, code: str | None, state: str | None) -> httpx.Response:
    params = {k: v for k, v in (("code", code), ("state", state)) if v is not None}
    return await h.http.get("/slack/oauth_redirect", params=params)


async def install(h: SlackHarness, team: str, name: str, code: str) -> tuple[httpx.Response, str]:
    token = h.fake.grant(code, team_id=team, team_name=name, scope=",".join(BOT_SCOPES))
    state, _ = await begin(h)
    return await finish(h, code=code, state=state), token


async def raw_rows(h: SlackHarness) -> list[dict[str, Any]]:
    """Every chat_installation row as stored, column by column (what a database dump would show)."""
    async with h.c.db.read(Scope.system_wide()) as s:  # test inspection across workspaces
        result = await s.execute(sa.text("SELECT * FROM chat_installation"))
        return [dict(r._mapping) for r in result]


async def row_for(h: SlackHarness, team: str) -> ChatInstallation | None:
    async with h.c.db.read(Scope.system_wide()) as s:  # test inspection across workspaces
        return (await s.exec(select(ChatInstallation).where(ChatInstallation.external_team_id == team))).first()


async def test_install_page_points_at_slack_authorize_with_our_scopes_and_a_state(oauth):
    state, query = await begin(oauth)
    assert query["client_id"] == [CLIENT_ID]
    assert sorted(query["scope"][0].split(",")) == sorted(BOT_SCOPES)
    assert query["redirect_uri"] == [REDIRECT]
    assert "user_scope" not in query or query["user_scope"] == [""]
    assert len(state) > 20
    other, _ = await begin(oauth)
    assert other != state  # one state per install attempt


async def test_callback_exchanges_the_code_and_stores_the_token_encrypted(oauth):
    resp, token = await install(oauth, "T_NEW", "New Customer MSP", "code-new")
    assert resp.status_code == 200, resp.text
    calls = oauth.fake.of("oauth.v2.access")
    assert len(calls) == 1 and calls[0].args["code"] == "code-new"
    assert calls[0].args.get("redirect_uri") == REDIRECT
    assert [c.token for c in oauth.fake.of("auth.test")] == [token]  # bolt asks for the bot id with the new token

    rows = await raw_rows(oauth)
    assert [r["external_team_id"] for r in rows] == ["T_NEW"]
    assert all(token not in str(value) for value in rows[0].values())  # no plaintext token in any column
    assert rows[0]["bot_token_ciphertext"]

    oauth.c.chat.invalidate()
    inst = await oauth.c.chat.installation("slack", "T_NEW")
    assert inst is not None and inst.bot_token == token
    assert inst.bot_user_id == "UBOT" and inst.bot_id == "BBOT"
    assert inst.data["installer_user_id"] == "U_INSTALLER" and inst.data["app_id"] == "A0001"
    assert sorted(inst.data["bot_scopes"].split(",")) == sorted(BOT_SCOPES)


async def test_unknown_team_gets_a_new_workspace_and_a_reserved_team_the_default_one(oauth):
    default_ws = oauth.c.default_workspace_id
    await oauth.c.chat.preauthorize("slack", "T_MSP", default_ws)
    first, _ = await install(oauth, "T_MSP", "Acme MSP", "code-msp")
    second, _ = await install(oauth, "T_STRANGER", "Stranger Co", "code-stranger")
    assert first.status_code == 200 and second.status_code == 200

    msp = await row_for(oauth, "T_MSP")
    stranger = await row_for(oauth, "T_STRANGER")
    assert msp is not None and msp.workspace_id == default_ws and msp.bot_token_ciphertext
    assert stranger is not None and stranger.workspace_id != default_ws
    workspaces = {w.id: w.slug for w in await oauth.c.workspaces.list()}
    assert workspaces[stranger.workspace_id] == "slack-t-stranger"
    assert len(workspaces) == 2


async def test_replayed_forged_expired_or_cookieless_state_and_missing_code_are_refused(oauth):
    oauth.fake.grant("code-first", team_id="T_FIRST", team_name="First")
    used, _ = await begin(oauth)
    assert (await finish(oauth, code="code-first", state=used)).status_code == 200
    store = oauth.c.slack.app.oauth_flow.settings.state_store
    oauth.fake.grant("code-evil", team_id="T_EVIL", team_name="Evil")

    async def refused(state: str, *, code: str | None = "code-evil", cookie: bool = True) -> int:
        oauth.http.cookies.clear()
        if cookie:  # the cookie matches the state, so only the state store can refuse it
            oauth.http.cookies.set(STATE_COOKIE, state)
        return (await finish(oauth, code=code, state=state)).status_code

    # replay: the state of the completed install
    assert await refused(used) == 401
    # forged: well-formed but not signed by us
    assert await refused(f"{int(time.time())}.{'ab' * 12}.{'0' * 32}") == 401
    assert await refused("not-a-state") == 401
    # expired: correctly signed, but issued longer ago than the state lifetime
    payload = f"{int(time.time()) - store.expiration_seconds - 5}.{'cd' * 12}"
    assert await refused(f"{payload}.{store._sign(payload)}") == 401
    # a fresh state without the browser's cookie (the install was started in another browser)
    fresh, _ = await begin(oauth)
    assert await refused(fresh, cookie=False) == 400
    # a fresh state with its cookie, but no code
    fresh, _ = await begin(oauth)
    assert await refused(fresh, code=None) == 401
    # the installer cancelled on Slack's page
    fresh, _ = await begin(oauth)
    cancelled = await oauth.http.get("/slack/oauth_redirect", params={"error": "access_denied", "state": fresh})
    assert cancelled.status_code == 200 and "access_denied" in cancelled.text  # bolt's failure page

    assert [c.args.get("code") for c in oauth.fake.of("oauth.v2.access")] == ["code-first"]
    assert [r["external_team_id"] for r in await raw_rows(oauth)] == ["T_FIRST"]
    assert len(await oauth.c.workspaces.list()) == 2  # the default one and T_FIRST's new one


async def test_a_code_slack_refuses_writes_nothing(oauth):
    state, _ = await begin(oauth)
    resp = await finish(oauth, code="never-issued", state=state)
    assert resp.status_code == 401
    assert oauth.fake.of("oauth.v2.access")[0].args["code"] == "never-issued"
    assert await raw_rows(oauth) == []


async def test_slash_command_from_an_installed_team_runs_with_its_stored_token(oauth):
    unknown = await oauth.slash("/tickets", "mine", team="T_NEW", user="U_INSTALLER")
    assert unknown.status_code == 200
    assert "not connected to Deskbridge" in (oauth.fake.webhooks[-1]["text"] if oauth.fake.webhooks else unknown.text)
    assert oauth.fake.of("users.info") == []

    resp, token = await install(oauth, "T_NEW", "New Customer MSP", "code-new")
    assert resp.status_code == 200
    oauth.fake.add_user("U_INSTALLER", email="owner@new-customer.example", name="Owner", team_id="T_NEW")
    oauth.fake.clear()
    accepted = await oauth.slash("/tickets", "mine", team="T_NEW", user="U_INSTALLER")
    assert accepted.status_code == 200
    texts = [str(w.get("text", "")) for w in oauth.fake.webhooks] + [accepted.text]
    assert not any("not connected to Deskbridge" in x for x in texts)
    lookups = oauth.fake.of("users.info")
    assert lookups and {c.token for c in lookups} == {token}  # the stored token, decrypted, was used
