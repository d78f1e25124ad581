"""The web app's health and readiness endpoints, and start-up behaviour."""

from __future__ import annotations

import httpx

from bot.api.app import create_app
from bot.main import build, settings_from_env
from store.crypto import generate_key


async def test_health_and_readiness(db_url: str, tmp_path):
    settings = settings_from_env(database_url=db_url, sandbox="off", secret_key=generate_key(),
                                 secret_key_file=tmp_path / "k", run_scheduler=False)
    container = build(settings)
    app = create_app(container, start_background=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            health = await client.get("/healthz")
            ready = await client.get("/readyz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": True, "migrations": True}
    assert container.default_workspace_id is not None
    assert any("Slack" in line for line in container.banner)


async def test_readiness_fails_before_start_and_key_file_is_private(db_url: str, tmp_path):
    key_file = tmp_path / "keys" / "secret.key"
    settings = settings_from_env(database_url=db_url, sandbox="off", secret_key_file=key_file,
                                 run_scheduler=False, auto_migrate=False)
    container = build(settings)
    assert key_file.exists() and (key_file.stat().st_mode & 0o777) == 0o600
    assert any("generated a local key" in line for line in container.banner)
    app = create_app(container, start_background=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        ready = await client.get("/readyz")  # lifespan not run: not ready
    assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
    await container.aclose()


async def test_server_settles_the_gc_after_start_up_and_tests_do_not(db_url: str, tmp_path, monkeypatch):
    from bot import gctune

    calls: list[bool] = []
    monkeypatch.setattr(gctune, "settle", lambda: calls.append(True) or 0)
    settings = settings_from_env(database_url=db_url, sandbox="off", secret_key=generate_key(),
                                 secret_key_file=tmp_path / "k", run_scheduler=False)
    for settle, expected in ((False, []), (True, [True])):
        calls.clear()
        container = build(settings)
        app = create_app(container, start_background=False, settle_gc=settle)
        async with app.router.lifespan_context(app):
            assert app.state.ready is True
        assert calls == expected


async def test_the_app_re_reads_callbacks_left_by_the_last_process_when_it_starts(db_url: str, tmp_path):
    """A callback answered but never re-read (the process stopped) is taken up by the next start: here one of a
    connection deleted since, which the start-up replay drops instead of re-reading forever."""
    import asyncio

    from sqlmodel import select

    from store.db import Scope
    from store.tables import PendingRefresh

    settings = settings_from_env(database_url=db_url, sandbox="off", secret_key=generate_key(),
                                 secret_key_file=tmp_path / "k", run_scheduler=False, run_outbox_worker=False)
    container = build(settings)
    app = create_app(container)
    async with app.router.lifespan_context(app):  # bootstraps (migrates) the database first
        async with container.db.write(Scope.system_wide()) as s:
            s.add(PendingRefresh(connection_id=424242, external_id="7"))
    container = build(settings)  # the next process
    app = create_app(container)
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(container.sync.webhooks.settled(), 10)
        async with container.db.read(Scope.system_wide()) as s:
            left = (await s.exec(select(PendingRefresh))).all()
    assert left == []
