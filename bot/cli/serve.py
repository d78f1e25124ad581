"""`deskbridge serve|background|secret-key`: run Deskbridge (all in one process, or the background work alone)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import typer

from bot import banner
from bot import logging as dlog
from bot.cli.common import app
from bot.main import Deskbridge, bootstrap, build, generate_key, settings_from_env
from core.admin_links import ADDRESS_BEAT, served_base_url

log = logging.getLogger(__name__)
Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def with_start_banner(lifespan: Lifespan, container: Deskbridge, base_url: str | None = None) -> Lifespan:
    """The app's lifespan, then the start banner once everything is up, and a line when each first sync ends.
    `base_url` (what the app serves) is recorded for `deskbridge admin link` while the app runs."""

    @asynccontextmanager
    async def run(app: Any) -> AsyncIterator[Any]:
        async with lifespan(app) as state:
            instance = container.settings.instance_id
            beat: asyncio.Task[None] | None = None
            if base_url:
                await container.admin_links.record_address(instance, base_url)
                beat = asyncio.create_task(_beat_address(container, instance, base_url), name="web-address-beat")
            facts = await banner.announce(container, web=True, now=datetime.now(UTC))
            watch = asyncio.create_task(banner.announce_first_syncs(container, facts), name="first-sync-banner")
            try:
                yield state
            finally:
                watch.cancel()
                if beat is not None:
                    beat.cancel()
                await asyncio.gather(watch, *([beat] if beat else []), return_exceptions=True)
                if base_url:
                    await container.admin_links.forget_address(instance)

    return run


async def _beat_address(container: Deskbridge, instance: str, base_url: str) -> None:
    """Tell the database this app still serves `base_url`, every ADDRESS_BEAT (a missed beat is tried again)."""
    while True:
        await asyncio.sleep(ADDRESS_BEAT.total_seconds())
        try:
            await container.admin_links.beat_address(instance, base_url)
        except Exception:  # noqa: BLE001 - a busy or restarting database: the next beat tries again
            log.warning("could not record this app's address heartbeat", exc_info=True)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Listen address (default from DESKBRIDGE_HOST)."),
    port: int | None = typer.Option(None, help="Port (default from DESKBRIDGE_PORT)."),
) -> None:
    """Run the web app, the scheduler and the outbox worker in one process."""
    import uvicorn

    from bot.api.app import create_app

    settings = settings_from_env(host=host, port=port)
    dlog.configure(settings.log_level, settings.log_format, levels=settings.log_levels)
    # Bound before anything starts, so the banner and the address recorded for `deskbridge admin link` are the
    # ones that answer (port 0: the one the system picked).
    sock = socket.create_server((settings.host, settings.port), family=_family(settings.host))
    settings = settings.model_copy(update={"port": sock.getsockname()[1]})
    container = build(settings)
    web = create_app(container, settle_gc=True)
    web.router.lifespan_context = with_start_banner(web.router.lifespan_context, container,
                                                    served_base_url(settings.public_url, settings.host, settings.port))
    config = uvicorn.Config(web, log_config=None, access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@app.command()
def background() -> None:
    """Run the scheduler (sync, SLA monitor, housekeeping) and the outbox worker, without the web app.

    For a split deployment: `serve` with DESKBRIDGE_RUN_SCHEDULER=false and DESKBRIDGE_RUN_OUTBOX_WORKER=false
    answers requests only (Slack acks never wait behind a sync), and this process does the work.
    """
    import signal

    from bot import gctune, jobs

    settings = settings_from_env()
    dlog.configure(settings.log_level, settings.log_format, levels=settings.log_levels)

    async def main() -> None:
        container = build(settings)
        await bootstrap(container)
        container.settle_gc = True  # long-running: the same collector settings as `serve` (bot/gctune.py)
        scheduler = jobs.build_scheduler(container)
        scheduler.start()
        gctune.settle()
        worker = container.outbox_worker
        task = asyncio.create_task(worker.run(), name="outbox-worker")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        typer.echo("Deskbridge background work running (scheduler and outbox worker); Ctrl-C to stop.", err=True)
        facts = await banner.announce(container, web=False, now=datetime.now(UTC))
        watch = asyncio.create_task(banner.announce_first_syncs(container, facts), name="first-sync-banner")
        try:
            await stop.wait()
        finally:
            watch.cancel()
            scheduler.shutdown(wait=False)
            worker.stop()
            await asyncio.gather(task, return_exceptions=True)
            await container.aclose()

    asyncio.run(main())


@app.command("secret-key")
def secret_key() -> None:
    """Print a new key for DESKBRIDGE_SECRET_KEY."""
    typer.echo(generate_key())
