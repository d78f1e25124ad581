"""A PSA connection's page: health and sync lag, last errors, re-authenticate (credentials are written, never
shown back), register callbacks, and its status/priority mappings; and the form that adds a connection (the
kind's settings and credentials, checked against the PSA before anything is saved). Everything through
ConnectionService, connection_report, check_connection and SyncService, as the CLI does."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from bot.admin.web import Ctx, Pages, done, flash, render
from core import connection_report, rate_headroom
from core.connection_health import ConnectionHealth, check_connection
from core.errors import Conflict, DeskbridgeError, InvalidInput
from core.views import Priority, Stage

STAGES = [s.value for s in Stage]
PRIORITIES = [p.value for p in Priority]
CREDENTIAL_FIELD = "cred_"  # form fields of the re-authenticate and add forms: cred_<name>
SETTING_FIELD = "set_"  # the add form's settings: set_<name>; more in the "more" box, one name=value a line


def _prefixed(form: Mapping[str, object], prefix: str) -> dict[str, str]:
    """Fields named prefix<name> with a value (blank ones are left out: the PSA check names what is missing)."""
    return {k[len(prefix):]: str(v).strip() for k, v in form.items()
            if k.startswith(prefix) and len(k) > len(prefix) and str(v).strip()}


def _more_settings(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"Line {n} of the other settings, '{line.strip()[:60]}', is not name=value.",
                               hint="Write one setting a line, like default_board_id=12 (the README lists them "
                                    "per PSA); nothing was saved.", field="more")
        out[key.strip()] = value.strip()
    return out


def _lag_seconds(runs: tuple[connection_report.RunLine, ...], now: datetime) -> float | None:
    """Seconds since the newest sync run that brought changes (ok or partial), None when there was none."""
    good = [r.finished_at for r in runs if r.status in ("ok", "partial") and r.finished_at is not None
            and r.kind in ("incremental", "full", "webhook")]
    return (now - max(good)).total_seconds() if good else None


def register(router: APIRouter, pages: Pages) -> None:
    container = pages.container
    _register_add(router, pages)

    async def page(ctx: Ctx, connection_id: int, *, status: int = 200, **extra: object) -> Response:
        conn = await container.connections.get(ctx.ws, connection_id)
        report = await connection_report.describe(container.db, container.connections, ctx.ws, conn.name,
                                                  container.registry.admin_notes(conn.kind))
        statuses, priorities = await container.sync.mappings.list(ctx.ws, connection_id)
        health = extra.get("health")
        headroom = [] if conn.kind == "sandbox" else [  # the sandbox has no limits (as in `deskbridge doctor`)
            rate_headroom.hits_headroom(conn.kind, await rate_headroom.rate_limit_hits(
                container.db, ctx.ws, connection_id, datetime.now(UTC)))]
        if conn.kind == "autotask" and isinstance(health, ConnectionHealth):  # Autotask's own reading, when checked
            usage = rate_headroom.autotask_headroom(health.details, conn.settings or {})
            headroom += [usage] if usage is not None else []
        extra.setdefault("flash", None)
        extra.setdefault("health", None)
        extra.setdefault("problem", None)
        extra.setdefault("callback_url", None)
        return render("connection.html", status, session=ctx, r=report, conn=conn,
                      lag=_lag_seconds(report.runs, datetime.now(UTC)), statuses=statuses, priorities=priorities,
                      stages=STAGES, priority_values=PRIORITIES, headroom=headroom,
                      picklists=await connection_report.picklists(container.db, ctx.ws, connection_id), **extra)

    @router.get("/connections/{connection_id}")
    async def show(connection_id: int, done: str | None = None, ctx: Ctx = Depends(pages.signed_in)) -> Response:
        return await page(ctx, connection_id, flash=flash(done))

    @router.post("/connections/{connection_id}/check")
    async def check(connection_id: int, ctx: Ctx = Depends(pages.posted)) -> Response:
        conn = await container.connections.get(ctx.ws, connection_id)
        return await page(ctx, connection_id, health=await check_connection(container.connections, conn))

    @router.post("/connections/{connection_id}/reauth")
    async def reauth(connection_id: int, request: Request, ctx: Ctx = Depends(pages.posted)) -> Response:
        form = await request.form()
        creds = {k[len(CREDENTIAL_FIELD):]: str(v) for k, v in form.items()
                 if k.startswith(CREDENTIAL_FIELD) and len(k) > len(CREDENTIAL_FIELD)}
        empty = sorted(k for k, v in creds.items() if not v.strip())
        try:
            if not creds or empty:
                raise InvalidInput("Every credential is needed: " + (", ".join(empty) or "none was sent") + " is empty.",
                                   hint="Fill in every field of the form (values are never shown back) and save.")
            await container.connections.reauth(ctx.ws, connection_id, creds, actor=ctx.actor)
        except DeskbridgeError as exc:  # the form comes back empty: what was typed is never echoed
            return await page(ctx, connection_id, status=400 if isinstance(exc, InvalidInput) else 422,
                              problem=exc)
        return done(f"/admin/connections/{connection_id}", "reauthed")

    @router.post("/connections/{connection_id}/callbacks")
    async def callbacks(connection_id: int, ctx: Ctx = Depends(pages.posted)) -> Response:
        try:
            setup = await container.connections.install_callbacks(ctx.ws, connection_id,
                                                                  container.settings.public_url, actor=ctx.actor)
        except DeskbridgeError as exc:
            return await page(ctx, connection_id, status=400, problem=exc)
        if not setup.registered:  # the admin pastes it into the PSA: shown on this answer only
            return await page(ctx, connection_id, callback_url=setup.url)
        return done(f"/admin/connections/{connection_id}", "callbacks")

    @router.post("/connections/{connection_id}/map-status")
    async def map_status(connection_id: int, status: str = Form(""), stage: str = Form(""), board: str = Form(""),
                         ctx: Ctx = Depends(pages.posted)) -> Response:
        await container.connections.get(ctx.ws, connection_id)  # NotFound for another workspace's connection
        await container.sync.map_status(ctx.ws, connection_id, status, stage, board or None, actor=ctx.actor)
        return done(f"/admin/connections/{connection_id}", "mapped")

    @router.post("/connections/{connection_id}/map-priority")
    async def map_priority(connection_id: int, psa_priority: str = Form(""), priority: str = Form(""),
                           ctx: Ctx = Depends(pages.posted)) -> Response:
        await container.connections.get(ctx.ws, connection_id)
        await container.sync.map_priority(ctx.ws, connection_id, psa_priority, priority, actor=ctx.actor)
        return done(f"/admin/connections/{connection_id}", "mapped")


def _register_add(router: APIRouter, pages: Pages) -> None:
    """GET/POST /admin/connections/new (before /connections/{id}, so "new" is never read as an id)."""
    container = pages.container

    async def form_page(ctx: Ctx, kind: str, *, status: int = 200, problem: DeskbridgeError | None = None,
                        values: Mapping[str, object] | None = None) -> Response:
        kinds = sorted(container.registry.kinds())
        fields = container.registry.setup_fields(kind) if kind in kinds else None
        return render("connection_new.html", status, session=ctx, kinds=kinds, kind=kind, fields=fields,
                      problem=problem, values=values or {"default": True}, flash=None)

    @router.get("/connections/new")
    async def new(kind: str = "", ctx: Ctx = Depends(pages.signed_in)) -> Response:
        return await form_page(ctx, kind.strip())

    @router.post("/connections/new")
    async def add(request: Request, ctx: Ctx = Depends(pages.posted)) -> Response:
        form = await request.form()
        kind, name = str(form.get("kind") or "").strip(), str(form.get("name") or "").strip()
        settings, more = _prefixed(form, SETTING_FIELD), str(form.get("more") or "")
        default = form.get("default") == "on"
        try:
            settings = {**_more_settings(more), **settings}
            conn, _ = await container.connections.add(
                ctx.ws, kind=kind, name=name, settings=settings, credentials=_prefixed(form, CREDENTIAL_FIELD),
                make_default=default, actor=ctx.actor)
        except DeskbridgeError as exc:  # what was typed comes back, except the credentials (never echoed)
            kept = {"name": name, "more": more, "default": default, **{SETTING_FIELD + k: v for k, v in
                                                                          _prefixed(form, SETTING_FIELD).items()}}
            return await form_page(ctx, kind, status=400 if isinstance(exc, (InvalidInput, Conflict)) else 422,
                                   problem=exc, values=kept)
        return done(f"/admin/connections/{conn.id}", "added")
