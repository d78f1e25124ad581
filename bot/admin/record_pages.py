"""Audit search, API keys (a new key is shown once, on the answer to its form) and channel bindings: through
AuditSearch, ApiKeyService and the chat Bindings, like the CLI and chat commands."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response

from bot.admin.web import PAGE, Ctx, Pages, done, flash, query, render
from core.audit_search import OUTCOMES
from core.errors import DeskbridgeError, InvalidInput
from core.numbers import whole

SCOPES = ("read", "write", "admin")


def register(router: APIRouter, pages: Pages) -> None:
    container = pages.container

    @router.get("/audit")
    async def audit(ticket: str = "", actor: str = "", outcome: str = "", since: str = "", until: str = "",
                    cursor: str | None = None, ctx: Ctx = Depends(pages.signed_in)) -> Response:
        filters: dict[str, Any] = {"ticket": ticket, "actor": actor, "outcome": outcome, "since": since,
                                   "until": until}
        try:
            page = await container.audit.search(ctx.ws, cursor=cursor, limit=PAGE, **filters)
        except InvalidInput as exc:
            return render("audit.html", 400, session=ctx, page=None, problem=exc, outcomes=OUTCOMES, next_url=None,
                          **filters)
        next_url = f"/admin/audit?{query(**filters, cursor=page.next_cursor)}" if page.next_cursor else None
        return render("audit.html", session=ctx, page=page, problem=None, outcomes=OUTCOMES, next_url=next_url,
                      **filters)

    async def keys_page(ctx: Ctx, *, status: int = 200, after: str = "", **extra: Any) -> Response:
        """Keys by name, a page at a time (`after`: the last name of the page before)."""
        extra.setdefault("flash", None)
        extra.setdefault("problem", None)
        extra.setdefault("created", None)
        keys = await container.apikeys.list(ctx.ws, limit=PAGE + 1, after=after or None)
        next_url = f"/admin/api-keys?{query(after=keys[PAGE - 1].name)}" if len(keys) > PAGE else None
        return render("api_keys.html", status, session=ctx, keys=keys[:PAGE], scopes=SCOPES, next_url=next_url,
                      **extra)

    @router.get("/api-keys")
    async def keys(done: str | None = None, after: str = "", ctx: Ctx = Depends(pages.signed_in)) -> Response:
        return await keys_page(ctx, flash=flash(done), after=after[:200])

    @router.post("/api-keys")
    async def create_key(name: str = Form(""), scope: str = Form("read"), ctx: Ctx = Depends(pages.posted)) -> Response:
        try:
            if not name.strip():
                raise InvalidInput("A key needs a name.", hint="Name it after what uses it, e.g. the billing sync.")
            info, token = await container.apikeys.create(ctx.ws, name=name.strip(), scopes=[scope],
                                                         created_by=ctx.actor.display, actor=ctx.actor)
        except DeskbridgeError as exc:
            return await keys_page(ctx, status=400, problem=exc)
        return await keys_page(ctx, created=(info, token))  # the only time the key is shown

    @router.post("/api-keys/{key_id}/revoke")
    async def revoke_key(key_id: str, ctx: Ctx = Depends(pages.posted)) -> Response:
        await container.apikeys.revoke(ctx.ws, key_id, actor=ctx.actor)
        return done("/admin/api-keys", "revoked")

    @router.get("/bindings")
    async def bindings(after: str = "", done: str | None = None, ctx: Ctx = Depends(pages.signed_in)) -> Response:
        if after and whole(after) is None:
            raise InvalidInput("This page link is broken.", hint="Start again from the first page.")
        rows, more = await container.chat.bindings.page(ctx.ws, limit=PAGE, after=whole(after) if after else None)
        return render("bindings.html", session=ctx, rows=rows, flash=flash(done),
                      next_url=f"/admin/bindings?after={more}" if more else None)

    @router.post("/bindings/{binding_id}/delete")
    async def unbind(binding_id: int, ctx: Ctx = Depends(pages.posted)) -> Response:
        await container.chat.bindings.remove(ctx.actor, binding_id)
        return done("/admin/bindings", "unbound")
