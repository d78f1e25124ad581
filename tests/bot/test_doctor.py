"""`deskbridge doctor` (issue 24): one ✓/✗ line per check with what to do next, exit 1 on ✗, --json; against
the sandbox, the ConnectWise fake with a wrong key, and a Slack fake whose token lacks a scope."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from bot.banner import describe_database
from bot.cli import app
from bot.doctor import FAIL, OK, WARN, Check, diagnose, render
from bot.main import bootstrap, build, settings_from_env
from bot.slack.app import BOT_SCOPES
from connectors.sandbox.server import forget
from store.crypto import generate_key
from tests.fakes.connectwise import FakeConnectWise
from tests.fakes.slack_api import FakeSlackApi


def _marks(checks: list[Check], area: str) -> list[tuple[str, str]]:
    return [(c.mark, c.text) for c in checks if c.area == area]


async def test_the_sandbox_install_is_healthy_and_says_so(db_url: str, tmp_path: Path) -> None:
    key = generate_key()
    settings = settings_from_env(database_url=db_url, sandbox="auto", secret_key=key,
                                 secret_key_file=tmp_path / "k", run_scheduler=False, run_outbox_worker=False)
    container = build(settings)
    await bootstrap(container)
    (conn,) = await container.connections.list(container.default_workspace_id)
    assert conn.id is not None
    await container.sync.run(conn.id)
    await container.aclose()
    try:
        env = {"DESKBRIDGE_DATABASE_URL": db_url, "DESKBRIDGE_SECRET_KEY": key,
               "DESKBRIDGE_SECRET_KEY_FILE": str(tmp_path / "k")}
        result = await asyncio.to_thread(CliRunner().invoke, app, ["doctor"], env=env)  # it runs its own loop
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0] == f"✓ database       {describe_database(db_url)} answers"  # SQLite or PostgreSQL
        assert "✓ migrations     schema is current" in lines
        assert "✓ secret key     set in DESKBRIDGE_SECRET_KEY" in lines
        assert any(line.startswith("✓ psa:sandbox    sandbox: credentials accepted") for line in lines)
        assert any(line.startswith("✓ psa:sandbox    last sync") for line in lines)
        assert "! slack          off: no Slack credentials" in lines and lines[-1] == "All good."
        assert key not in result.output

        as_json = await asyncio.to_thread(CliRunner().invoke, app, ["doctor", "--json"], env=env)
        data = json.loads(as_json.output)
        assert as_json.exit_code == 0 and data["ok"] is True
        assert {c["area"] for c in data["checks"]} >= {"database", "migrations", "secret key", "psa:sandbox",
                                                       "slack", "teams"}
    finally:
        forget()


async def test_a_wrong_connectwise_key_fails_with_the_reauth_command(db_url: str, tmp_path: Path) -> None:
    fake = FakeConnectWise()
    settings = settings_from_env(database_url=db_url, sandbox="off", secret_key=generate_key(),
                                 secret_key_file=tmp_path / "k", run_scheduler=False, run_outbox_worker=False,
                                 public_url="https://desk.example.com")
    with fake.serve() as root:
        container = build(settings)
        await bootstrap(container)
        ws = container.default_workspace_id
        await container.connections.add(ws, kind="connectwise", name="cw", settings=fake.settings(root),
                                        credentials=fake.credentials())  # checked, so right at first
        fake.private_key = "rotated-by-someone-else"  # the MSP rotated the API member's keys in the PSA
        try:
            checks = await diagnose(container)
        finally:
            await container.aclose()
    cw = [c for c in checks if c.area == "psa:cw"]
    assert [c.mark for c in cw] == [FAIL]
    assert "refused these credentials" in cw[0].text
    assert cw[0].fix == ("Enter working credentials on the connection's admin page (Re-authenticate) or with "
                         "`deskbridge connection reauth cw`.")
    text = render(checks)
    assert "rotated-by-someone-else" not in text and fake.public_key not in text
    assert text.splitlines()[-1] == "1 problem to fix before going live."


async def test_a_slack_token_missing_a_scope_is_named(db_url: str, tmp_path: Path) -> None:
    slack = await FakeSlackApi().start()
    slack.scopes = set(BOT_SCOPES) - {"files:read"}
    settings = settings_from_env(database_url=db_url, sandbox="off", secret_key=generate_key(),
                                 secret_key_file=tmp_path / "k", run_scheduler=False, run_outbox_worker=False,
                                 slack_bot_token="xoxb-test-token", slack_signing_secret="s" * 32,
                                 slack_api_url=slack.api_url)
    container = build(settings)
    try:
        await bootstrap(container)
        checks = await diagnose(container)
        slack.scopes = set(BOT_SCOPES)
        fixed = await diagnose(container)
    finally:
        await container.aclose()
        await slack.stop()
    got = _marks(checks, "slack")
    assert got[0] == (OK, "bot token valid for workspace Fake MSP (T0001)")
    assert (FAIL, "missing scopes: files:read") in got
    assert (FAIL, "no DESKBRIDGE_PUBLIC_URL: Slack cannot deliver requests") in got
    assert (OK, "scopes match manifests/slack/manifest.yaml") in _marks(fixed, "slack")
    assert (WARN, "no PSA connection (the sandbox stands in when `serve` starts)") in _marks(checks, "psa")
    missing = next(c for c in checks if c.text == "missing scopes: files:read")
    assert missing.fix == "Update the app from manifests/slack/manifest.yaml and reinstall it to the workspace."
    assert "xoxb-test-token" not in render(checks)


def test_teams_lines_name_the_messaging_endpoint_or_what_is_missing(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from bot.doctor import _teams

    def run(**kw: object) -> list[tuple[str, str]]:
        settings = settings_from_env(secret_key_file=tmp_path / "k", **kw)
        return [(c.mark, c.text) for c in _teams(SimpleNamespace(settings=settings))]  # type: ignore[arg-type]

    assert run() == [(WARN, "off: no DESKBRIDGE_TEAMS_APP_ID")]
    assert run(teams_app_id="app-1") == [(FAIL, "app app-1 has no credential")]
    assert run(teams_app_id="app-1", teams_app_secret="s3cret-value", teams_tenant_id="t1") == [
        (FAIL, "app app-1: no DESKBRIDGE_PUBLIC_URL for the messaging endpoint")]
    live = run(teams_app_id="app-1", teams_app_secret="s3cret-value", teams_tenant_id="t1",
               public_url="https://desk.example.com/")
    assert live == [(OK, "app app-1; messaging endpoint https://desk.example.com/api/messages")]
