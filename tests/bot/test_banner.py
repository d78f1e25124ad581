"""The start banner (issue 24): one short block saying what runs and where to reach it; never a secret."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot import banner
from bot.api.app import create_app
from bot.banner import PsaFact, StartFacts, describe_database, render
from bot.cli.serve import with_start_banner
from bot.logging import JsonFormatter, RedactingFilter
from bot.main import build, settings_from_env
from connectors.sandbox.server import forget
from store.crypto import generate_key

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _facts(**kw: object) -> StartFacts:
    base: dict[str, object] = dict(
        database="SQLite ./deskbridge.db", slack=None, slack_teams=[], teams=False,
        local_url="http://127.0.0.1:8080", public_url=None, notes=[],
        psa=[PsaFact(name="sandbox", kind="sandbox", enabled=True, synced_at=None, callbacks=False, connection_id=1)])
    return StartFacts(**{**base, **kw})  # type: ignore[arg-type]


def test_a_first_start_says_what_runs_and_how_to_try_it() -> None:
    text = render(_facts(), NOW)
    lines = text.splitlines()
    assert lines[0] == "Deskbridge is running on http://127.0.0.1:8080"
    assert "  Database SQLite ./deskbridge.db" in lines
    assert "  PSA      sandbox (built-in demo PSA; add yours: `deskbridge connection add`): first sync running " \
           "(`deskbridge sync status`)" in lines
    assert any(line.startswith("  Slack    off (set DESKBRIDGE_SLACK_BOT_TOKEN") for line in lines)
    assert "  Teams    off" in lines
    assert "  URLs     API docs        http://127.0.0.1:8080/docs" in lines
    assert any("`deskbridge console`" in line for line in lines)
    assert "webhooks" not in text and "slack/events" not in text  # nothing can reach us: no such URLs
    assert len(lines) <= 10


def test_a_live_setup_lists_every_url_to_configure_without_tokens() -> None:
    cw = PsaFact(name="cw", kind="connectwise", enabled=True, synced_at=NOW - timedelta(minutes=3), callbacks=True,
                 connection_id=5)
    halo = PsaFact(name="halo", kind="halopsa", enabled=True, synced_at=None, callbacks=False, connection_id=6)
    text = render(_facts(psa=[cw, halo], slack="HTTP", slack_teams=["Acme IT"], teams=True,
                         public_url="https://desk.example.com/"), NOW)
    assert "cw (connectwise): synced 3 min ago" in text
    assert "halo (halopsa): first sync running" in text
    assert "Slack    on, HTTP, workspace: Acme IT" in text
    assert "Teams    on" in text
    assert "Slack requests  https://desk.example.com/slack/events" in text
    assert "Teams messages  https://desk.example.com/api/messages" in text
    assert "PSA callbacks   https://desk.example.com/webhooks/5/… (cw, registered)" in text
    assert "https://desk.example.com/webhooks/6/… (halo, not registered: `deskbridge connection callbacks halo`)" in text


def test_without_a_public_url_it_says_what_cannot_reach_us() -> None:
    text = render(_facts(slack="HTTP", slack_teams=[]), NOW)
    assert "no DESKBRIDGE_PUBLIC_URL: Slack, Teams and PSA callbacks cannot reach this instance" in text
    assert "workspace: no team installed yet" in text
    socket = render(_facts(slack="Socket Mode", slack_teams=["T0ABC"]), NOW)
    assert "slack/events" not in socket and "PUBLIC_URL" not in socket  # Socket Mode needs no request URL


def test_the_database_is_described_without_its_password() -> None:
    assert describe_database("sqlite:///./deskbridge.db") == "SQLite ./deskbridge.db"
    pg = describe_database("postgresql+psycopg://desk:hunter2@db.internal:5433/deskbridge")
    assert pg == "PostgreSQL deskbridge on db.internal:5433" and "hunter2" not in pg


async def test_serve_logs_the_banner_once_everything_is_up(db_url: str, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_from_env(database_url=db_url, sandbox="auto", secret_key=generate_key(),
                                 secret_key_file=tmp_path / "secret.key", run_scheduler=False,
                                 run_outbox_worker=False, public_url="https://desk.example.com")
    container = build(settings)
    app = create_app(container, start_background=False)
    app.router.lifespan_context = with_start_banner(app.router.lifespan_context, container)
    caplog.set_level(logging.INFO, logger="deskbridge")
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                assert (await client.get("/docs")).status_code == 200  # the URL the banner names
        records = [r for r in caplog.records if r.getMessage().startswith("Deskbridge is running")]
        assert len(records) == 1
        text = records[0].getMessage()
        assert describe_database(db_url) in text and "sandbox (built-in demo PSA" in text and "first sync running" in text
        assert "Slack    off" in text and "/docs" in text
        # JSON logs carry the same facts, structured, under "start".
        handler_out = io.StringIO()
        handler = logging.StreamHandler(handler_out)
        handler.addFilter(RedactingFilter())
        handler.setFormatter(JsonFormatter())
        handler.handle(records[0])
        line = json.loads(handler_out.getvalue())
        assert line["start"]["psa"][0]["name"] == "sandbox" and line["start"]["slack"] is None
        assert line["start"]["database"] == describe_database(db_url)

        # After the first sync the banner says when it synced, and the watcher says it once.
        container = build(settings)
        app = create_app(container, start_background=False)
        async with app.router.lifespan_context(app):
            ws = container.default_workspace_id
            (conn,) = await container.connections.list(ws)
            assert conn.id is not None
            facts = await banner.gather(container, web=True)
            caplog.clear()
            await container.sync.run(conn.id)
            await banner.announce_first_syncs(container, facts, poll=0.01, give_up_after=5)
            assert [r.getMessage() for r in caplog.records if "first sync" in r.getMessage()] == [
                "sandbox: first sync finished (300 tickets); try `deskbridge console`"]
            again = await banner.gather(container, web=True)
            assert again.psa[0].synced_at is not None
            assert "sandbox (built-in demo PSA; add yours: `deskbridge connection add`): synced just now" \
                in render(again, datetime.now(UTC))
    finally:
        forget()
