"""`deskbridge rmm set-webhook|show|clear-webhook|test-webhook`: the alert action webhook and the RMM/runbook
card links.

The webhook's secret is never taken from the command line (argv is visible to other users and kept in
shell history): it is read from stdin (`--secret-stdin`), from DESKBRIDGE_RMM_WEBHOOK_SECRET, or generated
and printed once.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from bot.cli.common import WORKSPACE, fail, run_in
from bot.main import Deskbridge
from core.alert_webhooks import WebhookInfo, generate_secret

app = typer.Typer(help="RMM: the alert action webhook (Acknowledge/Resolve buttons) and the card links.",
                  no_args_is_help=True)

SECRET_ENV = "DESKBRIDGE_RMM_WEBHOOK_SECRET"  # noqa: S105 - the variable's name


@app.command("set-webhook")
def set_webhook(
    url: str = typer.Option(..., help="HTTPS endpoint that receives signed alert actions (http only for localhost)"),
    secret_stdin: bool = typer.Option(False, "--secret-stdin", help="Read the signing secret from stdin "
                                      f"(else {SECRET_ENV}, else a new one is generated and shown once)"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Send Acknowledge/Resolve clicks to this endpoint, signed with HMAC-SHA256 (the secret is stored encrypted)."""
    generated = False
    if secret_stdin:
        secret = sys.stdin.readline().strip()
        if not secret:
            raise fail("No secret on stdin.", "Pipe it in, e.g. `printenv MY_SECRET | deskbridge rmm set-webhook "
                                              "--url ... --secret-stdin`, or leave the flag out to generate one.")
    elif os.environ.get(SECRET_ENV, "").strip():
        secret = os.environ[SECRET_ENV].strip()
    else:
        secret, generated = generate_secret(), True

    info = run_in(workspace, lambda c, ws: c.alert_webhooks.configure(ws, url=url, secret=secret))
    typer.echo(f"Alert actions now go to {info.display_url}. Ticket cards with an alert offer Acknowledge/Resolve.")
    if generated:
        typer.echo("Signing secret (shown once; configure it in your endpoint to verify X-Deskbridge-Signature):")
        typer.echo(secret)


@app.command("clear-webhook")
def clear_webhook(workspace: str | None = WORKSPACE) -> None:
    """Stop sending alert actions; cards show the alert as a reference or link only."""
    had = bool(run_in(workspace, lambda c, ws: c.alert_webhooks.clear(ws)))
    typer.echo("Alert action webhook removed." if had else "No alert action webhook was set.")


@app.command("show")
def show(workspace: str | None = WORKSPACE) -> None:
    """The alert action webhook (never its secret) and the RMM/runbook link templates."""

    async def work(c: Deskbridge, ws: int) -> tuple[WebhookInfo | None, dict[str, Any]]:
        return await c.alert_webhooks.get(ws), await c.workspaces.settings(ws)

    info, settings = run_in(workspace, work)
    typer.echo("alert webhook   " + (f"{info.display_url} (set {info.set_at})" if info else
                                     "(not set: cards offer no Acknowledge/Resolve buttons)"))
    for key in ("rmm_device_url", "rmm_alert_url", "runbook_url"):
        typer.echo(f"{key:<15} {settings.get(key) or '(not set)'}")
    typer.echo("Change a link with `deskbridge workspace set <name> <template|off>`.")


@app.command("test-webhook")
def test_webhook(workspace: str | None = WORKSPACE) -> None:
    """Send a signed `ping` to the alert action webhook and say what it answered (nothing is acted on)."""
    status = int(run_in(workspace, lambda c, ws: c.alert_webhooks.ping(ws)))
    typer.echo(f"The alert webhook answered {status}: signed requests reach it.")
