"""`deskbridge customer connect-m365|show-m365`: which Microsoft 365 tenant a customer has.

The app's client id and secret come from settings (DESKBRIDGE_M365_CLIENT_ID / _SECRET); the secret is never
taken from the command line nor printed.
"""

from __future__ import annotations

import typer

from bot.cli.common import WORKSPACE, run_in
from bot.main import Deskbridge
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
