"""`deskbridge intake ...`: alert sources (URL and secret, shown once), their settings, customer mapping
rules, the triage list, and the Datto RMM body templates.

A secret is printed only by `add-source` and `rotate-secret`; nothing else shows it again.
"""

from __future__ import annotations

import os
import sys

import typer

from bot.cli.common import WORKSPACE, cli_actor, fail, run, run_in
from bot.main import Deskbridge
from core.context import Actor
from core.intake.mail import MailOutcome

app = typer.Typer(help="Ticket intake: RMM alert sources, customer mapping rules and triage.", no_args_is_help=True)


@app.command("add-source")
def add_source(
    name: str = typer.Argument(..., help="A name for the sender, e.g. ninja-main"),
    kind: str = typer.Option("events_v2", help="Body format: events_v2 (PagerDuty-shaped), ninjaone or datto"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Add an alert source: prints its URL path and its secret (shown once, stored encrypted)."""
    info, secret = run_in(workspace, lambda c, ws: c.alert_sources.add(ws, name=name, kind=kind,
                                                                             actor=cli_actor(ws)))
    typer.echo(f"Alert source '{info.name}' ({info.kind}) receives POSTs at {info.path}")
    typer.echo("Secret (shown once; send it in the X-Deskbridge-Secret header or as 'Authorization: Bearer …'):")
    typer.echo(secret)
    if kind == "datto":
        typer.echo("Paste the bodies from `deskbridge intake template datto-trigger` and `... datto-resolve`.")


@app.command("rotate-secret")
def rotate_secret(name: str, workspace: str | None = WORKSPACE) -> None:
    """A new secret for the source (shown once); the old one stops working at once."""
    secret = run_in(workspace, lambda c, ws: c.alert_sources.rotate_secret(ws, name, actor=cli_actor(ws)))
    typer.echo(f"New secret for '{name}' (shown once; update the sender now):")
    typer.echo(secret)


@app.command("sources")
def sources(workspace: str | None = WORKSPACE) -> None:
    """The alert sources: name, format, URL path, state and settings (never a secret)."""
    rows = run_in(workspace, lambda c, ws: c.alert_sources.sources(ws))
    if not rows:
        typer.echo("No alert sources. Add one with `deskbridge intake add-source <name> --kind ninjaone`.")
    for s in rows:
        state = "enabled" if s.enabled else "disabled"
        extra = " ".join(f"{k}={v}" for k, v in sorted(s.settings.items()))
        typer.echo(f"{s.name:<20} {s.kind:<10} {s.path:<40} {state} {extra}".rstrip())


@app.command("set")
def set_option(name: str, option: str, value: str, workspace: str | None = WORKSPACE) -> None:
    """Change a source setting: on_resolve note|resolve, group_window_minutes N, storm_threshold N,
    severity.<critical|error|warning|info> <priority>, enabled on|off."""
    run_in(workspace, lambda c, ws: c.alert_sources.set_option(ws, name, option, value, actor=cli_actor(ws)))
    typer.echo(f"{name}: {option} = {value}")


@app.command("map")
def map_rule(
    scope: str = typer.Argument(..., help="device, site or org"),
    by: str = typer.Argument(..., help="id (the RMM's id) or name"),
    value: str = typer.Argument(..., help="The RMM id or name to match"),
    customer: str = typer.Argument(..., help="Customer id, identifier or exact name"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Alerts whose device/site/org has this id or name belong to the customer; triaged alerts are retried."""

    async def work(c: Deskbridge, ws: int) -> tuple[object, int]:
        rule = await c.alert_sources.map(ws, scope=scope, by=by, value=value, customer=customer,
                                         actor=cli_actor(ws))
        return rule, await c.alert_intake.retry_triage(ws)

    rule, retried = run_in(workspace, work)
    typer.echo(f"Mapped {scope} {by} '{rule.value}' to {rule.customer}.")  # type: ignore[attr-defined]
    if retried:
        typer.echo(f"{retried} triaged alert event(s) applied again.")


@app.command("unmap")
def unmap(mapping_id: int, workspace: str | None = WORKSPACE) -> None:
    """Remove a mapping rule (by the id `deskbridge intake mappings` shows)."""
    run_in(workspace, lambda c, ws: c.alert_sources.unmap(ws, mapping_id, actor=cli_actor(ws)))
    typer.echo(f"Mapping {mapping_id} removed.")


@app.command("mappings")
def mappings(workspace: str | None = WORKSPACE) -> None:
    """The customer mapping rules (RMM ids are tried before names; customer names last)."""
    rows = run_in(workspace, lambda c, ws: c.alert_sources.mappings(ws))
    if not rows:
        typer.echo("No mapping rules: alerts map by customer name only. Add one with `deskbridge intake map`.")
    for m in rows:
        typer.echo(f"{m.id:>5}  {m.scope:<6} {m.by:<4} {m.value:<40} -> {m.customer}")


@app.command("triage")
def triage(workspace: str | None = WORKSPACE) -> None:
    """Alerts no rule placed with a customer (kept until a mapping places them)."""
    rows = run_in(workspace, lambda c, ws: c.alert_sources.triage(ws))
    if not rows:
        typer.echo("Triage is empty.")
    for t in rows:
        typer.echo(f"{t.alert_id:>6}  {t.source:<16} {t.device or '-':<20} {t.status:<16} {t.summary}")


@app.command("create-ticket")
def create_ticket(alert_id: int, customer: str | None = typer.Option(
        None, help="The customer (id, identifier or name); required for an alert in triage"),
        workspace: str | None = WORKSPACE) -> None:
    """Create a ticket from an alert (one in triage, or one without an open ticket), prefilled and linked."""

    async def work(c: Deskbridge, ws: int) -> tuple[int, int | None]:
        cust = (await c.directory.find_customer(ws, customer)).id if customer else None
        return await c.alert_intake.create_ticket(Actor.system(ws), alert_id, cust)

    ticket_id, number = run_in(workspace, work)
    typer.echo(f"Ticket {f'#{number}' if number else f'id:{ticket_id} (queued for the PSA)'} created from alert "
               f"{alert_id}.")


@app.command("held")
def held(workspace: str | None = WORKSPACE) -> None:
    """End users' chat messages kept for a technician (past their hourly limit, with no open ticket)."""
    rows = run_in(workspace, lambda c, ws: c.end_user_requests.held(ws))
    if not rows:
        typer.echo("Nothing is held.")
    for h in rows:
        typer.echo(f"{h.id:>6}  {h.created_at:%Y-%m-%d %H:%M}  customer {h.customer_id or '-'}  {h.user_key}\n"
                   f"        {h.text}")


@app.command("template")
def template(name: str = typer.Argument(..., help="datto-trigger or datto-resolve")) -> None:
    """Print a webhook body template to paste into the RMM."""
    templates = run(lambda c: _templates(c))
    if name not in templates:
        raise fail(f"No template named '{name}'.", "Use one of: " + ", ".join(sorted(templates)) + ".")
    typer.echo(templates[name])


async def _templates(c: Deskbridge) -> dict[str, str]:
    return dict(c.alert_templates)


# ---------------------------------------------------------------- mail

MAIL_SECRET_ENV = "DESKBRIDGE_MAIL_SECRET"  # noqa: S105 - the variable's name


def _mail_secret(from_stdin: bool) -> str:
    """The mailbox password or client secret: stdin or the environment, never the command line."""
    value = sys.stdin.readline().strip() if from_stdin else os.environ.get(MAIL_SECRET_ENV, "").strip()
    if not value:
        raise fail("No password or client secret given.",
                   f"Pipe it in with --secret-stdin, or set {MAIL_SECRET_ENV}.")
    return value


@app.command("mail-set")
def mail_set(
    kind: str = typer.Argument(..., help="imap or graph"),
    host: str = typer.Option("", help="IMAP host"),
    port: int = typer.Option(993, help="IMAP port"),
    username: str = typer.Option("", help="IMAP user name"),
    no_tls: bool = typer.Option(False, "--no-tls", help="Plain IMAP (only for a local test server)"),
    mailbox: str = typer.Option("", help="Graph: the mailbox address (e.g. help@msp.example)"),
    tenant: str = typer.Option("", help="Graph: the Entra tenant id"),
    client_id: str = typer.Option("", help="Graph: the app's client id"),
    graph_url: str = typer.Option("", help="Graph: API base (default Microsoft's)"),
    login_url: str = typer.Option("", help="Graph: login base (default Microsoft's)"),
    own: list[str] = typer.Option([], help="Our own sender addresses (never ingested); repeatable"),
    secret_stdin: bool = typer.Option(False, "--secret-stdin", help=f"Read the password/secret from stdin "
                                      f"(else {MAIL_SECRET_ENV})"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Set the support mailbox; it is read once to check it before anything is saved (secret encrypted)."""
    secret = _mail_secret(secret_stdin)
    if kind == "imap":
        config: dict[str, object] = {"host": host, "port": port, "username": username, "password": secret,
                                     "tls": not no_tls}
    else:
        config = {"mailbox": mailbox, "tenant": tenant, "client_id": client_id, "client_secret": secret}
        config.update({k: v for k, v in (("graph_url", graph_url), ("login_url", login_url)) if v})
    display = run_in(workspace, lambda c, ws: c.mailboxes.configure(
        ws, kind, config, own_addresses=tuple(own), actor=cli_actor(ws)))
    typer.echo(f"Mailbox {display} ({kind}) is read each minute; new mail becomes tickets.")


@app.command("mail-test")
def mail_test(workspace: str | None = WORKSPACE) -> None:
    """Read the configured mailbox once (nothing is taken) and say whether it works."""
    display = run_in(workspace, lambda c, ws: c.mailboxes.test(ws))
    typer.echo(f"Mailbox {display} can be read.")


@app.command("mail-poll")
def mail_poll(workspace: str | None = WORKSPACE) -> None:
    """Take new mail now (what the scheduler does each minute)."""
    result = run_in(workspace, lambda c, ws: c.mailboxes.poll(ws))
    counts = ", ".join(f"{v} {k}" for k, v in sorted(result.outcomes.items())) or "no new mail"
    typer.echo(f"{result.taken} message(s): {counts}.")


@app.command("mail-psa-handles")
def mail_psa_handles(value: str = typer.Argument(..., help="on: the PSA's own mail connector takes the mail "
                                                 "(Deskbridge stops polling); off: Deskbridge polls"),
                     workspace: str | None = WORKSPACE) -> None:
    """Say whether the PSA is the mail system of record, so mail is never ingested twice."""
    if value not in ("on", "off"):
        raise fail(f"'{value}' is not on or off.", "Use on or off.")
    run_in(workspace, lambda c, ws: c.mailboxes.set_psa_handles_mail(ws, value == "on", actor=cli_actor(ws)))
    typer.echo("Deskbridge no longer polls the mailbox." if value == "on" else "Deskbridge polls the mailbox again.")


# `deskbridge intake mail test|set|poll|psa-handles`: the same commands as `mail-test` …, grouped (the issue's
# and the admin page's wording); both spellings stay.
mail_app = typer.Typer(help="The support mailbox: set it (checked first), test it, poll it, or leave mail to the PSA.",
                       no_args_is_help=True)
mail_app.command("set")(mail_set)
mail_app.command("test")(mail_test)
mail_app.command("poll")(mail_poll)
mail_app.command("psa-handles")(mail_psa_handles)


@mail_app.command("triage")
def mail_triage(why: str = typer.Option("", help="only mail waiting for this reason: unknown, limit or refused; or stuck (mid-processing) or automatic (ignored)"),
                find: str = typer.Option("", "--find", help="only mail whose sender or subject holds these words"),
                workspace: str | None = WORKSPACE) -> None:
    """E-mail waiting in triage (unknown sender, over a sender's limit, refused), newest first."""
    rows, more = run_in(workspace, lambda c, ws: c.mailboxes.triage.page(ws, why=why, text=find, limit=100))
    if not rows:
        typer.echo("No e-mail waits in triage." if not (why or find) else "No e-mail in triage matches.")
    for r in rows:
        typer.echo(f"{r.id}\t{r.received_at:%Y-%m-%d %H:%M}\t{r.sender}\t{r.subject}\t({r.reason or 'no reason'})")
    if more:
        typer.echo("(the 100 newest; narrow with --why or --find, or page on the admin page Mail triage)")


AFTER_ANYWAY = {"created": "a new ticket", "replied": "added to its ticket as the sender's reply",
                "triage": "now waits in triage like any mail"}


@mail_app.command("replay")
def mail_replay(receipt_id: int = typer.Argument(..., help="the e-mail's id from `intake mail triage`"),
                anyway: bool = typer.Option(False, "--anyway", help="an automatic message the intake ignored (listed "
                                            "by `intake mail triage --why automatic`) that a person wrote: take it "
                                            "as theirs"),
                workspace: str | None = WORKSPACE) -> None:
    """Take an e-mail in triage again from its kept raw message (after adding its sender as a contact, say);
    with --anyway, an automatic message a person wrote (audited as taken anyway)."""
    out = run_in(workspace, lambda c, ws: c.mailboxes.replay(ws, receipt_id, actor=cli_actor(ws), anyway=anyway))
    where = f" (ticket id {out.ticket_id})" if out.ticket_id else ""
    if anyway:
        typer.echo(f"E-mail {receipt_id} taken anyway: {AFTER_ANYWAY.get(out.outcome, out.outcome)}{where}"
                   + (f" ({out.reason})" if out.reason else "") + ".")
        return
    typer.echo(f"E-mail {receipt_id}: {out.outcome}{where}" + (f": {out.reason}" if out.reason else "") + ".")


@mail_app.command("assign")
def mail_assign(receipt_id: int = typer.Argument(..., help="the e-mail's id from `intake mail triage`"),
                customer: str = typer.Option("", help="open a new ticket for this customer (identifier or name)"),
                ticket: str = typer.Option("", help="add the e-mail to this ticket (its number)"),
                workspace: str | None = WORKSPACE) -> None:
    """Place an e-mail in triage yourself: a new ticket for a customer, or added to a ticket."""
    async def work(c: Deskbridge, ws: int) -> MailOutcome:
        cid = (await c.directory.find_customer(ws, customer)).id if customer.strip() else None
        return await c.mailboxes.triage.assign(cli_actor(ws), receipt_id, customer=cid, ticket=ticket.strip() or None)

    out = run_in(workspace, work)
    typer.echo(f"E-mail {receipt_id}: {'a new ticket' if out.outcome == 'created' else 'added to the ticket'} "
               f"(ticket id {out.ticket_id}).")


@mail_app.command("discard")
def mail_discard(receipt_id: int = typer.Argument(..., help="the e-mail's id from `intake mail triage`"),
                 reason: str = typer.Option("", help="why (spam, wrong address); kept with the mail"),
                 workspace: str | None = WORKSPACE) -> None:
    """Do nothing with an e-mail in triage: no ticket, nothing sent; its message stays kept."""
    run_in(workspace, lambda c, ws: c.mailboxes.triage.discard(cli_actor(ws), receipt_id, reason))
    typer.echo(f"E-mail {receipt_id} discarded.")
app.add_typer(mail_app, name="mail")
