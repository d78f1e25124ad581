"""Settings pages: SLA policies and calendars (with `sla explain` as a page), AI settings, intake (alert sources,
customer mapping rules, the support mailbox). Each form goes through the service the CLI uses
(SlaConfigService, AiService, AlertSourceService, MailboxService); a refused value re-renders the page with
what was wrong and what to type instead. Secrets (an alert source's, the mailbox's) are shown once or never."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response

from bot.admin.web import PAGE, Ctx, Pages, done, flash, query, render
from core.ai import settings as ai_settings
from core.errors import DeskbridgeError, InvalidInput
from core.numbers import whole
from core.sla.config import holidays_in
from core.sla.explain import explain as explain_ticket

PRIORITIES = ("critical", "high", "medium", "low")
METRICS = ("first_response", "resolution")
SOURCE_KINDS = ("events_v2", "ninjaone", "datto")
SLA_HINT = "Durations look like 30m, 4h or 2d; thresholds like 75,90,100; hours like 'mon-fri 08:00-17:00'."


def register(router: APIRouter, pages: Pages) -> None:
    _sla(router, pages)
    _ai(router, pages)
    _intake(router, pages)
    _intake_rules_and_mail(router, pages)


def _sla(router: APIRouter, pages: Pages) -> None:
    container = pages.container

    async def page(ctx: Ctx, customer: str = "", *, status: int = 200, **extra: Any) -> Response:
        cid = (await container.directory.find_customer(ctx.ws, customer)).id if customer else None
        policy, own = await container.sla_config.policy(ctx.ws, cid)
        calendars = await container.sla_config.calendars(ctx.ws)
        # each calendar's own "this year": its zone's (a New York evening of 31 December is not UTC's next year)
        holidays = {c.name: (year, holidays_in(c, year))
                    for c in calendars for year in (container.sla_config.this_year(c),)}
        extra.setdefault("flash", None)
        extra.setdefault("problem", None)
        extra.setdefault("explained", None)
        return render("sla.html", status, session=ctx, policy=policy.to_dict(), own=own, customer=customer,
                      calendars=calendars, holidays=holidays, priorities=PRIORITIES, metrics=METRICS,
                      **extra)

    @router.get("/sla")
    async def show(customer: str = "", done: str | None = None, ctx: Ctx = Depends(pages.signed_in)) -> Response:
        return await page(ctx, customer, flash=flash(done))

    @router.get("/sla/explain")
    async def explain(ticket: str = "", ctx: Ctx = Depends(pages.signed_in)) -> Response:
        lines = (await explain_ticket(container.sla, ctx.actor, ticket)).lines if ticket.strip() else None
        return await page(ctx, explained=lines, ticket=ticket)

    @router.post("/sla/policy")
    async def set_policy(customer: str = Form(""), priority: str = Form(""), metric: str = Form(""),
                         duration: str = Form(""), mode: str = Form(""), calendar: str = Form(""),
                         thresholds: str = Form(""), ctx: Ctx = Depends(pages.posted)) -> Response:
        settings: dict[str, Any] = {}
        try:
            if duration.strip():
                settings["targets"] = {priority: {metric: duration.strip()}}
            if mode.strip():
                settings["mode"] = mode.strip()
            if calendar.strip():
                settings["calendar"] = calendar.strip()
            if thresholds.strip():
                try:
                    settings["thresholds"] = [int(x) for x in thresholds.split(",") if x.strip()]
                except ValueError:
                    raise InvalidInput(f"'{thresholds}' is not a list of percentages.",
                                       hint="Write e.g. 75,90,100.") from None
            if not settings:
                raise InvalidInput("Nothing to change.", hint="Fill in a target duration, or change the mode, "
                                                              "calendar or thresholds.")
            cid = (await container.directory.find_customer(ctx.ws, customer)).id if customer else None
            await container.sla_config.set_policy(ctx.ws, settings, customer_id=cid, actor=ctx.actor)
        except InvalidInput as exc:
            return await page(ctx, customer, status=400, problem=exc)
        return done("/admin/sla" + (f"?customer={customer}" if customer else ""), "policy")

    @router.post("/sla/calendar")
    async def set_calendar(name: str = Form(""), tz: str = Form(""), hours: str = Form(""),
                           country: str = Form(""), subdiv: str = Form(""), add_holiday: str = Form(""),
                           remove_holiday: str = Form(""), ctx: Ctx = Depends(pages.posted)) -> Response:
        try:
            await container.sla_config.set_calendar(
                ctx.ws, name, timezone=tz.strip() or None, windows=hours.strip() or None,
                country=country.strip() or None, subdiv=subdiv.strip() or None,
                add_holidays=[add_holiday] if add_holiday.strip() else [],
                remove_holidays=[remove_holiday] if remove_holiday.strip() else [], actor=ctx.actor)
        except InvalidInput as exc:
            return await page(ctx, status=400, problem=exc)
        return done("/admin/sla", "calendar")


def _ai(router: APIRouter, pages: Pages) -> None:
    container = pages.container

    async def page(ctx: Ctx, *, status: int = 200, **extra: Any) -> Response:
        extra.setdefault("flash", None)
        extra.setdefault("problem", None)
        return render("ai.html", status, session=ctx, values=await container.ai.settings(ctx.ws),
                      options=ai_settings.OPTIONS, model=await container.ai.status(ctx.ws), **extra)

    @router.get("/ai")
    async def show(done: str | None = None, ctx: Ctx = Depends(pages.signed_in)) -> Response:
        return await page(ctx, flash=flash(done))

    @router.post("/ai")
    async def set_option(name: str = Form(""), value: str = Form(""), ctx: Ctx = Depends(pages.posted)) -> Response:
        try:
            await container.ai.set_setting(ctx.actor, name, value)
        except InvalidInput as exc:
            return await page(ctx, status=400, problem=exc)
        return done("/admin/ai", "ai")


async def _intake_page(pages: Pages, ctx: Ctx, *, status: int = 200, at: dict[str, str] | None = None,
                       **extra: Any) -> Response:
    """Sources, rules and triage, each paged on its own (`at`: where each list starts; the others stay put)."""
    container = pages.container
    at = {k: v for k, v in (at or {}).items() if v}
    for key in ("rules", "triage"):
        if at.get(key) and whole(at[key]) is None:
            raise InvalidInput("This page link is broken.", hint="Start again from the first page.")
    extra.setdefault("flash", None)
    extra.setdefault("problem", None)
    extra.setdefault("secret", None)
    sources = await container.alert_sources.sources(ctx.ws, limit=PAGE + 1, after=at.get("sources"))
    rules = await container.alert_sources.mappings(ctx.ws, limit=PAGE + 1, after=int(at.get("rules", 0)))
    triage = await container.alert_sources.triage(ctx.ws, limit=PAGE + 1, after=int(at.get("triage", 0)))
    more = {"sources": sources[PAGE - 1].name if len(sources) > PAGE else None,
            "rules": str(rules[PAGE - 1].id) if len(rules) > PAGE else None,
            "triage": str(triage[PAGE - 1].alert_id) if len(triage) > PAGE else None}
    next_urls = {k: f"/admin/intake?{query(**{**at, k: v})}" if v else None for k, v in more.items()}
    return render("intake.html", status, session=ctx, sources=sources[:PAGE], rules=rules[:PAGE],
                  triage=triage[:PAGE], next_urls=next_urls, paged=bool(at),
                  mailbox=await container.mailboxes.describe(ctx.ws), kinds=SOURCE_KINDS, **extra)


def _intake(router: APIRouter, pages: Pages) -> None:
    """Alert sources (secrets shown once) and the page itself."""
    container = pages.container

    async def page(ctx: Ctx, *, status: int = 200, **extra: Any) -> Response:
        return await _intake_page(pages, ctx, status=status, **extra)

    @router.get("/intake")
    async def show(done: str | None = None, sources: str = "", rules: str = "", triage: str = "",
                   ctx: Ctx = Depends(pages.signed_in)) -> Response:
        return await _intake_page(pages, ctx, flash=flash(done),
                                  at={"sources": sources[:100], "rules": rules, "triage": triage})

    @router.post("/intake/sources")
    async def add_source(name: str = Form(""), kind: str = Form(""), ctx: Ctx = Depends(pages.posted)) -> Response:
        try:
            info, secret = await container.alert_sources.add(ctx.ws, name=name.strip(), kind=kind, actor=ctx.actor)
        except DeskbridgeError as exc:
            return await page(ctx, status=400, problem=exc)
        return await page(ctx, secret=(info.name, info.path, secret))  # shown on this answer only

    @router.post("/intake/sources/{name}/rotate")
    async def rotate(name: str, ctx: Ctx = Depends(pages.posted)) -> Response:
        secret = await container.alert_sources.rotate_secret(ctx.ws, name, actor=ctx.actor)
        info = next(s for s in await container.alert_sources.sources(ctx.ws) if s.name == name)
        return await page(ctx, secret=(info.name, info.path, secret))

    @router.post("/intake/sources/{name}/set")
    async def set_source(name: str, option: str = Form(""), value: str = Form(""),
                         ctx: Ctx = Depends(pages.posted)) -> Response:
        try:
            await container.alert_sources.set_option(ctx.ws, name, option.strip(), value.strip(), actor=ctx.actor)
        except InvalidInput as exc:
            return await page(ctx, status=400, problem=exc)
        return done("/admin/intake", "source")


def _intake_rules_and_mail(router: APIRouter, pages: Pages) -> None:
    """Customer mapping rules and the support mailbox."""
    container = pages.container

    async def page(ctx: Ctx, *, status: int = 200, **extra: Any) -> Response:
        return await _intake_page(pages, ctx, status=status, **extra)

    @router.post("/intake/rules")
    async def add_rule(scope: str = Form(""), by: str = Form(""), value: str = Form(""), customer: str = Form(""),
                       ctx: Ctx = Depends(pages.posted)) -> Response:
        try:
            await container.alert_sources.map(ctx.ws, scope=scope, by=by, value=value, customer=customer,
                                              actor=ctx.actor)
        except DeskbridgeError as exc:
            return await page(ctx, status=400, problem=exc)
        await container.alert_intake.retry_triage(ctx.ws)  # triaged alerts the rule places become tickets
        return done("/admin/intake", "rule")

    @router.post("/intake/rules/{rule_id}/delete")
    async def delete_rule(rule_id: int, ctx: Ctx = Depends(pages.posted)) -> Response:
        await container.alert_sources.unmap(ctx.ws, rule_id, actor=ctx.actor)
        return done("/admin/intake", "unmapped")

    @router.post("/intake/mailbox")
    async def mailbox(kind: str = Form(""), host: str = Form(""), port: str = Form("993"), username: str = Form(""),
                      mailbox: str = Form(""), tenant: str = Form(""), client_id: str = Form(""),
                      secret: str = Form(""), own: str = Form(""), ctx: Ctx = Depends(pages.posted)) -> Response:
        config: dict[str, object]
        try:
            if kind == "imap":
                if not whole(port, max_value=65535):
                    raise InvalidInput(f"'{port}' is not a port number.", hint="IMAP over TLS is usually 993.")
                config = {"host": host.strip(), "port": int(port), "username": username.strip(), "password": secret,
                          "tls": True}
            else:
                config = {"mailbox": mailbox.strip(), "tenant": tenant.strip(), "client_id": client_id.strip(),
                          "client_secret": secret}
            await container.mailboxes.configure(ctx.ws, kind, config,
                                                own_addresses=tuple(a for a in own.replace(",", " ").split() if a),
                                                actor=ctx.actor)
        except DeskbridgeError as exc:  # the password is never put back into the form
            return await page(ctx, status=400, problem=exc)
        return done("/admin/intake", "mailbox")

    @router.post("/intake/mailbox/psa-handles")
    async def psa_handles(value: str = Form(""), ctx: Ctx = Depends(pages.posted)) -> Response:
        if value not in ("on", "off"):
            return await page(ctx, status=400, problem=InvalidInput(f"'{value}' is not on or off.",
                                                                    hint="Choose on or off."))
        await container.mailboxes.set_psa_handles_mail(ctx.ws, value == "on", actor=ctx.actor)
        return done("/admin/intake", "mail_mode")
