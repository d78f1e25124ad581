"""`deskbridge sla policy|calendar|explain|breaching|sweep`: SLA policies, business calendars, and why a
ticket's SLA shows what it shows."""

from __future__ import annotations

from typing import Any

import typer

from bot.cli.common import WORKSPACE, cli_actor, fail, run, run_in
from bot.main import Deskbridge
from core.context import Actor
from core.sla.config import CalendarInfo
from core.sla.explain import explain as explain_ticket
from core.sla.policies import Policy
from core.views import SlaView, sla_text

app = typer.Typer(help="SLA policies, business-hours calendars, explanations.", no_args_is_help=True)
policy_app = typer.Typer(help="SLA targets and clock rules (workspace default, per-customer overrides).",
                         no_args_is_help=True)
calendar_app = typer.Typer(help="Business-hours calendars: time zone, weekly hours, holidays.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(calendar_app, name="calendar")

CUSTOMER = typer.Option(None, "--customer", help="Customer identifier or name (default: the workspace policy)")


async def _customer_id(c: Deskbridge, ws: int, customer: str | None) -> int | None:
    if customer is None:
        return None
    return (await c.directory.find_customer(ws, customer)).id


def _pairs(values: list[str], what: str, example: str) -> list[tuple[list[str], str]]:
    out: list[tuple[list[str], str]] = []
    for item in values:
        key, sep, value = item.partition("=")
        parts = [p.strip() for p in key.split(".")]
        if not sep or len(parts) != 2 or not all(parts) or not value.strip():
            raise fail(f"--{what} '{item}' is not like {example}.")
        out.append((parts, value.strip()))
    return out


def _print_policy(policy: Policy, own: dict[str, Any], level: str) -> None:
    data = policy.to_dict()
    typer.echo(f"Effective SLA policy ({level}):")
    typer.echo(f"  mode: {data['mode']}" + (f" (calendar '{data['calendar']}')" if data["calendar"] else ""))
    typer.echo(f"  {'priority':<10} {'first response':>15} {'resolution':>12}")
    for prio, t in data["targets"].items():
        typer.echo(f"  {prio:<10} {t['first_response']:>15} {t['resolution']:>12}")
    typer.echo(f"  thresholds: {', '.join(f'{x}%' for x in data['thresholds'])}; reopen: {data['reopen']}")
    for metric, stages in data["states"].items():
        typer.echo(f"  {metric}: " + ", ".join(f"{s}={v}" for s, v in stages.items()))
    for name, metrics in data["status_names"].items():
        typer.echo(f"  status '{name}': " + ", ".join(f"{m}={v}" for m, v in metrics.items()))
    typer.echo("Overrides stored at this level: " + (str(own) if own else "(none)"))


@policy_app.command("show")
def policy_show(customer: str | None = CUSTOMER, workspace: str | None = WORKSPACE) -> None:
    """Show the effective policy (defaults, workspace overrides, customer overrides merged)."""

    async def work(c: Deskbridge, ws: int) -> tuple[Policy, dict[str, Any]]:
        return await c.sla_config.policy(ws, await _customer_id(c, ws, customer))

    policy, own = run_in(workspace, work)
    _print_policy(policy, own, f"customer {customer}" if customer else "workspace")


@policy_app.command("set")
def policy_set(
    target: list[str] = typer.Option([], "--target", help="PRIORITY.METRIC=DURATION, e.g. critical.resolution=4h "
                                     "(metrics: first_response, resolution)"),
    mode: str | None = typer.Option(None, help="business (calendar hours) or calendar (24x7)"),
    calendar: str | None = typer.Option(None, help="Calendar name used in business mode"),
    thresholds: str | None = typer.Option(None, help="Warning thresholds in percent, e.g. 75,90,100"),
    state: list[str] = typer.Option([], "--state", help="METRIC.STAGE=running|paused|stopped, e.g. "
                                    "resolution.waiting=paused (stages: new, in_progress, waiting, resolved, closed)"),
    status_name: list[str] = typer.Option([], "--status-name", help="'PSA STATUS NAME.METRIC=STATE' overriding "
                                          "its stage, e.g. 'Waiting on Vendor.resolution=running'"),
    reopen: str | None = typer.Option(None, help="resume or new_cycle (resolution clock of a reopened ticket)"),
    replace: bool = typer.Option(False, help="Replace this level's overrides instead of merging"),
    customer: str | None = CUSTOMER,
    workspace: str | None = WORKSPACE,
) -> None:
    """Change the workspace policy, or override it for one customer."""
    settings: dict[str, Any] = {}
    for (prio, metric), value in _pairs(target, "target", "critical.resolution=4h"):
        settings.setdefault("targets", {}).setdefault(prio, {})[metric] = value
    for (metric, stage), value in _pairs(state, "state", "resolution.waiting=paused"):
        settings.setdefault("states", {}).setdefault(metric, {})[stage] = value
    for item in status_name:
        key, _, value = item.partition("=")
        name, _, metric = key.rpartition(".")
        if not name.strip() or not metric.strip() or not value.strip():
            raise fail(f"--status-name '{item}' is not like 'Waiting on Vendor.resolution=running'.")
        settings.setdefault("status_names", {}).setdefault(name.strip(), {})[metric.strip()] = value.strip()
    if mode is not None:
        settings["mode"] = mode
    if calendar is not None:
        settings["calendar"] = calendar
    if thresholds is not None:
        try:
            settings["thresholds"] = [int(x) for x in thresholds.split(",") if x.strip()]
        except ValueError:
            raise fail(f"'{thresholds}' is not a list of percentages.", "Write e.g. --thresholds 75,90,100.") from None
    if reopen is not None:
        settings["reopen"] = reopen
    if not settings and not replace:
        raise fail("Nothing to change.", "Pass --target, --mode, --calendar, --thresholds, --state or --reopen.")

    async def work(c: Deskbridge, ws: int) -> tuple[Policy, dict[str, Any]]:
        cid = await _customer_id(c, ws, customer)
        await c.sla_config.set_policy(ws, settings, customer_id=cid, replace=replace, actor=cli_actor(ws))
        return await c.sla_config.policy(ws, cid)

    policy, own = run_in(workspace, work)
    _print_policy(policy, own, f"customer {customer}" if customer else "workspace")


def _print_calendar(info: CalendarInfo) -> None:
    hol = info.holiday_country + (f"-{info.holiday_subdiv}" if info.holiday_subdiv else "") \
        if info.holiday_country else "none"
    typer.echo(f"{info.name}  (version {info.version})")
    typer.echo(f"  time zone: {info.timezone}")
    typer.echo(f"  hours:     {info.windows}")
    typer.echo(f"  holidays:  {hol}")
    if info.custom_holidays:
        typer.echo("  custom:    " + ", ".join(d.isoformat() for d in info.custom_holidays))


@calendar_app.command("show")
def calendar_show(name: str | None = typer.Argument(None, help="Calendar name (default: all)"),
                  workspace: str | None = WORKSPACE) -> None:
    """Show one calendar or all of them."""

    async def work(c: Deskbridge, ws: int) -> list[CalendarInfo]:
        return [await c.sla_config.calendar(ws, name)] if name else await c.sla_config.calendars(ws)

    for info in run_in(workspace, work):
        _print_calendar(info)


@calendar_app.command("set")
def calendar_set(
    name: str = typer.Argument(..., help="Calendar name, e.g. default or acme-west"),
    tz: str | None = typer.Option(None, "--tz", help="IANA time zone, e.g. America/New_York"),
    hours: str | None = typer.Option(None, help="Weekly hours, e.g. 'mon-fri 08:00-17:00; sat 09:00-12:00' "
                                     "(overnight: 'mon-fri 22:00-06:00'; or 24x7)"),
    country: str | None = typer.Option(None, help="Holiday country (ISO code, e.g. US, GB, CA)"),
    subdiv: str | None = typer.Option(None, help="Holiday subdivision, e.g. CA (California), QC, SCT"),
    no_country: bool = typer.Option(False, "--no-country", help="Stop observing a country's holidays"),
    holiday: list[str] = typer.Option([], "--holiday", help="Add a custom holiday (YYYY-MM-DD), repeatable"),
    remove_holiday: list[str] = typer.Option([], "--remove-holiday", help="Remove a custom holiday"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Create or change a calendar (use it for a customer with `sla policy set --customer X --calendar NAME`)."""

    _print_calendar(run_in(workspace, lambda c, ws: c.sla_config.set_calendar(
        ws, name, timezone=tz, windows=hours, country=country, subdiv=subdiv, add_holidays=holiday,
        remove_holidays=remove_holiday, clear_country=no_country, actor=cli_actor(ws))))


@calendar_app.command("holidays")
def calendar_holidays(name: str = typer.Argument("default", help="Calendar name"),
                      year: int | None = typer.Option(None, help="Year (default: this year)"),
                      workspace: str | None = WORKSPACE) -> None:
    """List the holidays a calendar observes in a year (default: the year it is now in the calendar's zone)."""
    the_year, days = run_in(workspace, lambda c, ws: c.sla_config.holidays(ws, name, year))
    if not days:
        typer.echo(f"No holidays in {the_year}. Add some with --country or --holiday.")
    for d, label in days:
        typer.echo(f"{d.isoformat()}  {d:%a}  {label}")


@app.command("explain")
def explain(ticket: str = typer.Argument(..., help="Ticket number"), workspace: str | None = WORKSPACE) -> None:
    """How the ticket's remaining SLA time was computed: policy, windows, holidays, pauses, the PSA's dates."""
    for line in run_in(workspace, lambda c, ws: explain_ticket(c.sla, Actor.system(ws), ticket)).lines:
        typer.echo(line)


@app.command("breaching")
def breaching(within: float = typer.Option(0.0, help="Also list tickets within this percent of their target"),
              workspace: str | None = WORKSPACE) -> None:
    """List open tickets that breached an SLA (or are within --within percent of it)."""

    async def work(c: Deskbridge, ws: int) -> dict[int, SlaView]:
        ids = await c.sla.breaching_ids(ws, c.sla.now(), within_pct=within)
        return await c.sla.views(ws, ids)

    views = run_in(workspace, work)
    if not views:
        typer.echo("No tickets breaching.")
    for view in views.values():
        parts = [f"{m.metric} {sla_text(m.remaining_s)}" for m in view.metrics if m.state != "stopped"]
        typer.echo(f"#{view.ticket_number}  " + "; ".join(parts))


@app.command("sweep")
def sweep() -> None:
    """Run one SLA monitor pass now (update clocks, post due warnings)."""
    report = run(lambda c: c.sla_monitor.sweep())
    typer.echo(f"Evaluated {report.clocks} clocks in {report.workspaces} workspace(s) in {report.seconds:.2f} s; "
               f"posted {report.warnings_posted} warning(s).")
