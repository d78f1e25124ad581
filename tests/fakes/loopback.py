"""Serving a fake vendor's aiohttp app on 127.0.0.1 (real HTTP, no network): one place for the start/stop steps
every loopback fake shares."""

from __future__ import annotations

from aiohttp import web


async def serve(app: web.Application, port: int = 0, *, access_log: bool = False) -> tuple[web.AppRunner, int]:
    """Start `app` on 127.0.0.1:`port` (0: any free port); the runner (for `stop`) and the port it listens on."""
    runner = web.AppRunner(app, **({} if access_log else {"access_log": None}))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def stop(runner: web.AppRunner | None) -> None:
    """Stop a server `serve` started (None: nothing to stop)."""
    if runner is not None:
        await runner.cleanup()
