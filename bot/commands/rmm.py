"""`deskbridge rmm set-webhook|show|clear-webhook`: the alert action webhook and the RMM/runbook card links.

The webhook's secret is never taken from the command line (argv is visible to other users and kept in
shell history): it is read from stdin (`--secret-stdin`), from DESKBRIDGE_RMM_WEBHOOK_SECRET, or generated
and printed once.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

app = typer.Typer(help="RMM: the alert action webhook (Acknowledge/Resolve buttons) and the card links.",
                  no_args_is_help=True)

SECRET_ENV = "DESKBRIDGE_RMM_WEBHOOK_SECRET"  # noqa: S105 - the variable's name


def _cli() -> Any:
    from bot import cli  # late: bot.cli registers this module at its bottom

    return cli


@app.command("set-webhook")
def set_webhook(
    url: str = typer.Option(..., help="HTTPS endpoint that receives signed alert actions (http only for localhost)"),
    secret_stdin: bool = typer.Option(False, "--secret-stdin", help="Read the signing secret from stdin "
                                      f"(else {SECRET_ENV}, else a new one is generated and shown once)"),
    workspace: str | None = typer.Option(None, help="Workspace slug"),
) -> None:
    """Send Acknowledge/Resolve clicks to this endpoint, signed with HMAC-SHA256 (the secret is stored encrypted)."""
    cli = _cli()
    generated = False
    if secret_stdin:
        secret = sys.stdin.readline().strip()
        if not secret:
            raise cli.fail("No secret on stdin.", "Pipe it in, e.g. `printenv MY_SECRET | deskbridge rmm set-webhook "
                                                  "--url ... --secret-stdin`, or leave the flag out to generate one.")
    elif os.environ.get(SECRET_ENV, "").strip():
        secret = os.environ[SECRET_ENV].strip()
    else:
        from core.alert_webhooks import generate_secret

        secret, generated = generate_secret(), True

    async def work(c: Any) -> Any:
        return await c.alert_webhooks.configure(await cli.workspace_id(c, workspace), url=url, secret=secret)

    info = cli.run(work)
    typer.echo(f"Alert actions now go to {info.display_url}. Ticket cards with an alert offer Acknowledge/Resolve.")
    if generated:
        typer.echo("Signing secret (shown once; configure it in your endpoint to verify X-Deskbridge-Signature):")
        typer.echo(secret)


@app.command("clear-webhook")
def clear_webhook(workspace: str | None = typer.Option(None, help="Workspace slug")) -> None:
    """Stop sending alert actions; cards show the alert as a reference or link only."""
    cli = _cli()

    async def work(c: Any) -> bool:
        return bool(await c.alert_webhooks.clear(await cli.workspace_id(c, workspace)))

    had = cli.run(work)
    typer.echo("Alert action webhook removed." if had else "No alert action webhook was set.")


@app.command("show")
def show(workspace: str | None = typer.Option(None, help="Workspace slug")) -> None:
    """The alert action webhook (never its secret) and the RMM/runbook link templates."""
    cli = _cli()

    async def work(c: Any) -> Any:
        ws = await cli.workspace_id(c, workspace)
        return await c.alert_webhooks.get(ws), await c.workspaces.settings(ws)

    info, settings = cli.run(work)
    typer.echo("alert webhook   " + (f"{info.display_url} (set {info.set_at})" if info else
                                     "(not set: cards offer no Acknowledge/Resolve buttons)"))
    for key in ("rmm_device_url", "rmm_alert_url", "runbook_url"):
        typer.echo(f"{key:<15} {settings.get(key) or '(not set)'}")
    typer.echo("Change a link with `deskbridge workspace set <name> <template|off>`.")


@app.command("test-webhook")
def test_webhook(workspace: str | None = typer.Option(None, help="Workspace slug")) -> None:
    """Send a signed `ping` to the alert action webhook and say what it answered (nothing is acted on)."""
    cli = _cli()

    async def work(c: Any) -> int:
        return int(await c.alert_webhooks.ping(await cli.workspace_id(c, workspace)))

    status = cli.run(work)
    typer.echo(f"The alert webhook answered {status}: signed requests reach it.")
