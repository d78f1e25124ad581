"""`make run` with no PSA configured: bootstrap adds the sandbox connection, the app is ready, and the
sandbox keeps its writes across a restart (its state file)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from bot.api.app import create_app
from bot.main import bootstrap, build, settings_from_env
from connectors.base import TicketPatch
from connectors.sandbox.server import forget
from store.crypto import generate_key


async def test_bootstrap_falls_back_to_the_sandbox_and_keeps_its_writes(db_url: str, tmp_path: Path) -> None:
    settings = settings_from_env(database_url=db_url, sandbox="auto", secret_key=generate_key(),
                                 secret_key_file=tmp_path / "secret.key", run_scheduler=False,
                                 run_outbox_worker=False)
    container = build(settings)
    app = create_app(container, start_background=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert any("sandbox PSA" in line for line in container.banner)
    ws = container.default_workspace_id
    assert ws is not None
    (conn,) = await container.connections.list(ws)
    assert conn.kind == "sandbox" and conn.is_default
    state = Path(conn.settings["state_path"])
    assert state == tmp_path / "sandbox.db" and await asyncio.to_thread(state.exists)
    async with container.connections.open(conn) as psa:
        assert "Sandbox" in (await psa.check_credentials()).display_name
        ticket = (await psa.list_changed_tickets(None)).items[0]
        await psa.update_ticket(ticket.external_id, TicketPatch(summary="Written before the restart"))
    await container.aclose()

    forget(conn.settings)  # a new process
    again = build(settings)
    try:
        await bootstrap(again)
        conns = await again.connections.list(ws)
        assert [c.kind for c in conns] == ["sandbox"]
        async with again.connections.open(conns[0]) as psa:
            assert (await psa.get_ticket(ticket.external_id)).summary == "Written before the restart"
    finally:
        forget(conn.settings)
        await again.aclose()
