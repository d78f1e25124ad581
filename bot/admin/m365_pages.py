"""Microsoft 365 quick actions in the admin pages (/admin/m365): which technicians may reset passwords, revoke
sessions and sync devices. The same QuickActions service as `deskbridge customer m365-grant` and `/deskbridge m365
grant` decides (admins only) and records every change in the audit log. Kept in its own module (the
admin pages' owner works on the others)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response

from bot.admin.web import FLASH, Ctx, Pages, done, flash, render
from core.errors import InvalidInput

FLASH.update({"m365_granted": "Quick actions granted.", "m365_revoked": "Quick actions taken back."})


def register(router: APIRouter, pages: Pages) -> None:
    container = pages.container

    async def page(ctx: Ctx, *, status: int = 200, **extra: Any) -> Response:
        extra.setdefault("flash", None)
        extra.setdefault("problem", None)
        extra.setdefault("email", "")
        return render("m365.html", status, session=ctx, grants=await container.quick_actions.grants(ctx.actor),
                      **extra)

    @router.get("/m365")
    async def show(done: str | None = None, ctx: Ctx = Depends(pages.signed_in)) -> Response:
        return await page(ctx, flash=flash(done))

    @router.post("/m365/grant")
    async def grant(email: str = Form(""), ctx: Ctx = Depends(pages.posted)) -> Response:
        member = await container.directory.member_by_email(ctx.ws, email) if "@" in email else None
        if member is None or member.id is None:
            return await page(ctx, status=400, email=email, problem=InvalidInput(
                f"No technician with the e-mail '{email.strip()[:80]}' in this workspace.",
                hint="Use the e-mail of their technician account (as the PSA sync brought it in)."))
        await container.quick_actions.grant(ctx.actor, member.id)
        return done("/admin/m365", "m365_granted")

    @router.post("/m365/revoke")
    async def revoke(member: int = Form(...), ctx: Ctx = Depends(pages.posted)) -> Response:
        await container.quick_actions.grant(ctx.actor, member, allow=False)
        return done("/admin/m365", "m365_revoked")
