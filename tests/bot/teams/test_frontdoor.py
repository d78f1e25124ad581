"""POST /api/messages: tokens checked by us against the stand-in's published keys; bad input refused, nothing
written; a good activity reaches the SDK's router and is answered after the ack; redeliveries run once."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from bot.settings import Settings
from store.db import Scope
from store.tables import ProcessedEvent
from tests.bot.teams.conftest import APP_ID, TENANT


async def _events(h) -> int:
    async with h.c.db.read(Scope.system_wide()) as s:
        return (await s.execute(sa.select(sa.func.count()).select_from(ProcessedEvent))).scalar_one()


async def test_signed_help_is_answered_after_the_ack(teams):
    resp = await teams.say("help")
    assert resp.status_code == 200
    assert "Deskbridge commands" in teams.last_text()
    # the reply went to the conversation the activity came from, with the bot's own token
    assert teams.fake.of("create")[-1].conversation_id == "19:tech@thread.tacv2"
    assert teams.fake.token_requests[-1]["client_id"] == APP_ID
    assert "client_secret" not in teams.fake.token_requests[-1]  # the fake never records secrets either


@pytest.mark.parametrize("case", ["missing", "not_bearer", "garbage", "other_key", "wrong_audience",
                                  "wrong_issuer", "expired", "not_yet", "service_url", "alg_none", "unknown_kid"])
async def test_bad_tokens_are_refused_and_nothing_runs(teams, case):
    body = teams.activity("help")
    f = teams.fake
    token = {
        "missing": None, "not_bearer": None, "garbage": "abc.def.ghi",
        "other_key": f.sign(body, key=f.other_key), "wrong_audience": f.sign(body, aud="someone-else"),
        "wrong_issuer": f.sign(body, iss="https://evil.example"), "expired": f.sign(body, exp_in=-400),
        "not_yet": f.sign(body, nbf_in=400), "service_url": f.sign(body, service_url="https://evil.example/"),
        "alg_none": f.sign(body, alg="none"), "unknown_kid": f.sign(body, key=f.other_key, kid="nope"),
    }[case]
    headers = {"Authorization": "Basic dXNlcjpwYXNz"} if case == "not_bearer" else None
    resp = await teams.http.post("/api/messages", content=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **(headers or {}),
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    await teams.settle()
    assert resp.status_code == 401
    assert teams.posted() == []
    assert await _events(teams) == 0


async def test_expiry_has_the_bot_frameworks_leeway(teams):
    body = teams.activity("help")
    resp = await teams.send(body, token=teams.fake.sign(body, exp_in=-120))
    assert resp.status_code == 200


async def test_unknown_tenant_is_refused(teams):
    body = teams.activity("help", tenant="22222222-2222-4222-8222-222222222222")
    resp = await teams.send(body)
    assert resp.status_code == 403
    assert "own organisation" in resp.json()["error"]
    assert teams.posted() == [] and await _events(teams) == 0


@pytest.mark.parametrize("raw, why", [
    (b"{not json", "not JSON"), (b"[1, 2]", "not a JSON object"),
    (json.dumps({"type": "message"}).encode(), "serviceUrl"),
])
async def test_malformed_bodies_with_a_good_token_get_400(teams, raw, why):
    token = teams.fake.sign(teams.activity("help"))
    resp = await teams.send(raw, token=token)
    assert resp.status_code == 400
    assert why in resp.json()["error"]
    assert await _events(teams) == 0


async def test_malformed_body_without_a_token_is_401_not_400(teams):
    resp = await teams.send(b"{not json")
    assert resp.status_code == 401


async def test_an_activity_the_sdk_cannot_read_is_400(teams):
    body = teams.activity("help")
    body["type"] = "bogus-type"
    resp = await teams.send(body)
    assert resp.status_code == 400
    assert "not a valid" in resp.json()["error"]
    assert teams.posted() == []


async def test_content_type_and_size(teams):
    body = teams.activity("help")
    token = teams.fake.sign(body)
    resp = await teams.send(body, token=token, headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415
    big = dict(body, text="x" * (1024 * 1024 + 10))
    resp = await teams.send(big, token=teams.fake.sign(big))
    assert resp.status_code == 413
    assert teams.posted() == []


async def test_a_redelivered_activity_runs_once(teams):
    body = teams.activity("help")
    first = await teams.send(body)
    again = await teams.send(body)
    assert first.status_code == again.status_code == 200
    assert len(teams.posted()) == 1


async def test_keys_are_fetched_once_not_per_request(teams):
    fetched = teams.fake.key_fetches
    for _ in range(3):
        assert (await teams.say("help")).status_code == 200
    assert teams.fake.key_fetches == fetched


def test_single_tenant_needs_its_tenant(tmp_path):
    s = Settings(teams_app_id=APP_ID, teams_app_secret="x", teams_single_tenant=True, secret_key_file=tmp_path / "k")
    assert any("DESKBRIDGE_TEAMS_TENANT_ID" in p for p in s.teams_problems())
    with pytest.raises(ValueError, match="not 'common'"):
        Settings(teams_tenant_id="common")
    assert not Settings(teams_app_id=APP_ID, teams_app_secret="x", teams_tenant_id=TENANT).teams_problems()


async def test_the_sdks_environment_variables_change_nothing(fake_bf, db, db_url, workspace_id, tmp_path,
                                                              monkeypatch):
    from bot.api.app import create_app
    from bot.main import build
    from tests.bot.teams.conftest import TeamsHarness, teams_settings

    monkeypatch.setenv("DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS", "true")
    monkeypatch.setenv("CLOUD", "China")
    monkeypatch.setenv("SERVICE_URL", "https://evil.example/teams")
    monkeypatch.setenv("CLIENT_ID", "someone-else")
    container = build(teams_settings(db_url, tmp_path, fake_bf))
    container.default_workspace_id = workspace_id
    try:
        surface = container.teams
        assert surface.sdk.id == APP_ID
        assert surface.cloud.token_issuer == "https://api.botframework.com"
        assert surface.sdk.api.service_url.startswith(fake_bf.base_url)
        await surface.start()
        h = TeamsHarness(create_app(container, start_background=False), container, fake_bf, workspace_id, None)
        body = h.activity("help")
        assert (await h.send(body, token="")).status_code == 401  # no token: refused, whatever the SDK's switch
        assert fake_bf.calls == []
        await h.http.aclose()
    finally:
        await container.aclose()
