"""`deskbridge customer connect-m365|show-m365`: which Microsoft 365 tenant a customer has;
`m365-grant|m365-revoke EMAIL`: which technicians may run Microsoft 365 quick actions;
`docs-platform hudu|itglue --url URL`: the workspace's documentation platform (its API key from
DESKBRIDGE_DOCS_API_KEY or a hidden prompt, tested before it is saved, stored encrypted).

The app's client id and secret come from settings (DESKBRIDGE_M365_CLIENT_ID / _SECRET); the secret is never
taken from the command line nor printed.
"""

from __future__ import annotations

import os

import typer

from bot.cli.common import WORKSPACE, cli_actor, fail, run_in
from bot.main import Deskbridge
from core.context import Actor
from core.m365_tenants import M365Link

app = typer.Typer(help="Customers: their Microsoft 365 tenant (tenant context beside tickets).", no_args_is_help=True)


@app.command("connect-m365")
def connect_m365(
    customer: str = typer.Argument(..., help="Customer identifier or exact name, e.g. ACME"),
    tenant: str = typer.Option(..., "--tenant", help="Tenant GUID or <name>.onmicrosoft.com"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Record the customer's M365 tenant and print the admin-consent link for its Global Admin."""

    async def work(c: Deskbridge, ws: int) -> M365Link:
        found = await c.directory.find_customer(ws, customer)
        return await c.m365.connect(ws, found, tenant)

    link = run_in(workspace, work)
    typer.echo(f"{link.customer} now uses Microsoft 365 tenant {link.tenant_id}.")
    if link.consent_url:
        typer.echo("Have the customer's Global Admin (or your GDAP admin) open this link and accept:")
        typer.echo(link.consent_url)
    else:
        typer.echo("No Microsoft 365 app is configured: set DESKBRIDGE_M365_CLIENT_ID and "
                   "DESKBRIDGE_M365_CLIENT_SECRET, then run this again for the consent link.")


@app.command("show-m365")
def show_m365(customer: str = typer.Argument(..., help="Customer identifier or exact name"),
              workspace: str | None = WORKSPACE) -> None:
    """The customer's M365 tenant, if any."""

    async def work(c: Deskbridge, ws: int) -> tuple[str, str | None]:
        found = await c.directory.find_customer(ws, customer)
        assert found.id is not None
        return found.identifier, await c.m365.tenant_of(ws, found.id)

    ident, tenant_id = run_in(workspace, work)
    typer.echo(f"{ident}: {tenant_id}" if tenant_id else f"{ident} has no Microsoft 365 tenant.")


def _grant(email: str, workspace: str | None, allow: bool) -> str:
    async def work(c: Deskbridge, ws: int) -> str:
        member = await c.directory.member_by_email(ws, email)
        if member is None or member.id is None:
            raise fail(f"No technician with e-mail {email}.", "Technicians come from the PSA sync (or `deskbridge console` for the sandbox); check the address.")
        await c.quick_actions.grant(cli_actor(ws), member.id, allow=allow)
        return member.name

    return run_in(workspace, work)


@app.command("m365-grant")
def m365_grant(email: str = typer.Argument(..., help="The technician's e-mail"),
               workspace: str | None = WORKSPACE) -> None:
    """Let a technician run Microsoft 365 quick actions (reset password, revoke sessions, sync device)."""
    typer.echo(f"{_grant(email, workspace, True)} may now run Microsoft 365 quick actions.")


@app.command("m365-revoke")
def m365_revoke(email: str = typer.Argument(..., help="The technician's e-mail"),
                workspace: str | None = WORKSPACE) -> None:
    """Take the Microsoft 365 quick-action role back."""
    typer.echo(f"{_grant(email, workspace, False)} may no longer run Microsoft 365 quick actions.")


@app.command("docs-platform")
def docs_platform(kind: str = typer.Argument(..., help="hudu or itglue"),
                  url: str = typer.Option(..., "--url", help="e.g. https://acme.huducloud.com or "
                                                             "https://api.itglue.com"),
                  workspace: str | None = WORKSPACE) -> None:
    """Connect Hudu or IT Glue: ticket cards then link the customer's and device's documentation."""
    key = os.environ.get("DESKBRIDGE_DOCS_API_KEY") or typer.prompt("API key", hide_input=True)

    async def work(c: Deskbridge, ws: int) -> None:
        await c.docs.configure(Actor.system(ws), kind, url, key)

    run_in(workspace, work)
    typer.echo(f"{kind} connected: technicians' ticket cards now link its documentation.")
