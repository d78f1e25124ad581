"""Mail triage: e-mail the intake could not place (unknown sender, over a sender's hourly limit, refused when
taken), paged and filtered; one mail read safely (its text only: never its HTML, never a remote image); and the
actions of `deskbridge intake mail triage|replay`, plus assign and discard, through the same core services
(MailboxService.replay, MailTriage). A refused action shows the mail again with what was wrong and what to do."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import RedirectResponse, Response

from bot.admin.web import PAGE, Ctx, Pages, flash, query, render, status_of
from core.errors import DeskbridgeError, InvalidInput
from core.intake.mail_triage import WHY
from core.numbers import whole

# What the mail's page says after an action (the outcome decides which): FLASH keys in bot/admin/web.py.
AFTER_REPLAY = {"created": "mail_created", "replied": "mail_replied", "triage": "mail_still", "ignored": "mail_noise"}


def age(since: datetime, now: datetime) -> str:
    """How long ago, in words: "7 minutes", "3 hours", "2 days"."""
    if since.tzinfo is None and now.tzinfo is not None:
        now = now.replace(tzinfo=None)
    minutes = max(0, int((now - since).total_seconds() // 60))
    for size, unit in ((1440, "day"), (60, "hour"), (1, "minute")):
        if minutes >= size or unit == "minute":
            n = minutes // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return ""  # pragma: no cover


def register(router: APIRouter, pages: Pages) -> None:
    container = pages.container

    async def mail_page(ctx: Ctx, receipt_id: int, *, status: int = 200, **extra: Any) -> Response:
        extra.setdefault("flash", None)
        extra.setdefault("problem", None)
        mail = await container.mailboxes.triage.get(ctx.ws, receipt_id)
        return render("mail.html", status, session=ctx, mail=mail, why=WHY,
                      age=age(mail.received_at, container.mailboxes.intake.now()), **extra)

    def after(receipt_id: int, key: str) -> Response:
        return RedirectResponse(f"/admin/mail/{receipt_id}?done={key}", status_code=303)

    @router.get("/mail")
    async def triage(why: str = "", q: str = "", after: str = "", done: str | None = None,
                     ctx: Ctx = Depends(pages.signed_in)) -> Response:
        """Newest first; `why` and `q` narrow the list and the next page keeps them."""
        if after and whole(after) is None:
            raise InvalidInput("This page link is broken.", hint="Start again from the first page.")
        why, q = why.strip(), q.strip()[:200]
        try:
            rows, more = await container.mailboxes.triage.page(ctx.ws, why=why, text=q, limit=PAGE,
                                                               after=whole(after) if after else None)
        except InvalidInput as exc:
            return render("mail_triage.html", 400, session=ctx, rows=[], why=WHY, filters={"why": "", "q": q},
                          next_url=None, problem=exc, flash=None, paged=False)
        next_url = f"/admin/mail?{query(why=why, q=q, after=more)}" if more else None
        now = container.mailboxes.intake.now()
        return render("mail_triage.html", session=ctx, rows=rows, why=WHY, filters={"why": why, "q": q},
                      ages={m.id: age(m.received_at, now) for m in rows},
                      next_url=next_url, problem=None, flash=flash(done), paged=bool(after))

    @router.get("/mail/{receipt_id}")
    async def mail(receipt_id: int, done: str | None = None, ctx: Ctx = Depends(pages.signed_in)) -> Response:
        return await mail_page(ctx, receipt_id, flash=flash(done))

    @router.post("/mail/{receipt_id}/replay")
    async def replay(receipt_id: int, ctx: Ctx = Depends(pages.posted)) -> Response:
        try:
            out = await container.mailboxes.replay(ctx.ws, receipt_id, actor=ctx.actor)
        except DeskbridgeError as exc:
            return await mail_page(ctx, receipt_id, status=status_of(exc), problem=exc)
        return after(receipt_id, AFTER_REPLAY.get(out.outcome, "mail_taken"))

    @router.post("/mail/{receipt_id}/take-anyway")
    async def take_anyway(receipt_id: int, ctx: Ctx = Depends(pages.posted)) -> Response:
        """An automatic (ignored) mail a person wrote after all: taken as if it were theirs."""
        try:
            out = await container.mailboxes.replay(ctx.ws, receipt_id, actor=ctx.actor, anyway=True)
        except DeskbridgeError as exc:
            return await mail_page(ctx, receipt_id, status=status_of(exc), problem=exc)
        return after(receipt_id, AFTER_REPLAY.get(out.outcome, "mail_taken"))

    @router.post("/mail/{receipt_id}/assign")
    async def assign(receipt_id: int, customer: str = Form(""), ticket: str = Form(""),
                     ctx: Ctx = Depends(pages.posted)) -> Response:
        customer, ticket = customer.strip()[:200], ticket.strip()[:40]
        try:
            if customer and ticket:
                raise InvalidInput("Give a customer or a ticket, not both.",
                                   hint="A customer opens a new ticket; a ticket number adds the e-mail to it.")
            cid = (await container.directory.find_customer(ctx.ws, customer)).id if customer else None
            await container.mailboxes.triage.assign(ctx.actor, receipt_id, customer=cid, ticket=ticket or None)
        except DeskbridgeError as exc:
            return await mail_page(ctx, receipt_id, status=status_of(exc), problem=exc, customer=customer,
                                   ticket=ticket)
        return after(receipt_id, "mail_to_ticket" if ticket else "mail_to_customer")

    @router.post("/mail/{receipt_id}/discard")
    async def discard(receipt_id: int, reason: str = Form(""), ctx: Ctx = Depends(pages.posted)) -> Response:
        try:
            await container.mailboxes.triage.discard(ctx.actor, receipt_id, reason)
        except DeskbridgeError as exc:
            return await mail_page(ctx, receipt_id, status=status_of(exc), problem=exc)
        return after(receipt_id, "mail_discarded")
