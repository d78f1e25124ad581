"""The FastAPI app: health/readiness, the REST API (bot/api/portal), PSA webhooks, the admin pages (bot/admin) and
the Slack routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from bot import admin, gctune, jobs, looptrace
from bot.api import intake, portal, webhooks
from bot.idle import CountRequests, IdleWork
from bot.main import Deskbridge, bootstrap

log = logging.getLogger("deskbridge.api")


def create_app(container: Deskbridge, *, start_background: bool = True, settle_gc: bool = False) -> FastAPI:
    """Build the web app around a container from bot.main.build (bootstrapped in the lifespan)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await bootstrap(container)
        slack = container.slack
        if slack is not None:
            await slack.start()
        if container.teams is not None:
            await container.teams.start()
        if start_background:  # tickets named by callbacks answered before the last stop but never re-read
            await container.sync.webhooks.start()
        scheduler = None
        container.settle_gc = settle_gc  # sync jobs settle the collector again after their first run
        if start_background and container.settings.run_scheduler:
            scheduler = jobs.build_scheduler(container)
            scheduler.start()
        outbox_task = None
        worker = container.outbox_worker
        if start_background and container.settings.run_outbox_worker:
            outbox_task = asyncio.create_task(worker.run(), name="outbox-worker")
        if settle_gc:  # the server process only (not tests): start-up objects leave the GC's walks
            if container.settings.quiet_work:
                gctune.collect_when_quiet()  # older generations in the quiet moments (bot/idle.py)
                idle.start()
            gctune.settle()
            looptrace.start(container.settings.loop_trace_file)  # benches only (off unless set)
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            looptrace.stop()
            await idle.stop()
            await container.sync.webhooks.stop()  # running re-reads finish; the rest stays recorded
            if slack is not None:
                await slack.stop()
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            if outbox_task is not None:
                worker.stop()  # in-flight deliveries get the worker's grace period
                await asyncio.gather(outbox_task, return_exceptions=True)
            await container.aclose()

    # Swagger UI (/docs) and ReDoc (/redoc) from assets the fastapi-offline package ships: they work offline.
    idle = IdleWork(collect=settle_gc)
    container.chat_views.defer = idle.submit  # kept cards rebuilt ahead of time, in quiet moments
    app = FastAPIOffline(title="Deskbridge", version=_version(), lifespan=lifespan)
    app.add_middleware(CountRequests, idle=idle)  # requests in flight: what "quiet" means for IdleWork
    app.state.container = container
    app.state.ready = False
    # Chat surfaces first: routes are matched in order, and Slack's and Teams' requests are the busiest (a
    # Slack request walked ~30 REST and admin routes before its own, ~3% of a click's CPU; issue 20 item 4).
    if container.slack is not None:
        app.include_router(container.slack.router())  # /slack/events, /slack/install, /slack/oauth_redirect
    if container.teams is not None:
        app.include_router(container.teams.router())  # POST /api/messages (bot/teams/frontdoor.py)
    portal.install(app, container)  # REST API under /api/msp-portal (bot/api/portal)
    intake.install(app)  # alert intake: POST /webhooks/alerts/{key} (core/intake), before the PSA route
    webhooks.install(app)  # PSA webhook receivers: POST /webhooks/{connection_id}/{token} (core/sync)
    admin.install(app, container)  # admin pages under /admin (bot/admin): sign-in link, overview, dead letters

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        """The database answers and its schema is current."""
        checks = await container.readiness()
        ok = app.state.ready and all(checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deskbridge")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"
