"""`deskbridge workspace create|list|set|timezone|admin|settings|allow-team`: workspaces (one per MSP)."""

from __future__ import annotations

import typer

from bot.cli.common import WORKSPACE, echo_json, run, run_in

app = typer.Typer(help="Workspaces (one per MSP).", no_args_is_help=True)


@app.command("create")
def ws_create(slug: str, name: str = typer.Option(..., help="Display name"),
              timezone: str = typer.Option("UTC", help="IANA time zone")) -> None:
    """Create a workspace."""
    ws = run(lambda c: c.workspaces.create(slug=slug, name=name, timezone=timezone))
    typer.echo(f"Created workspace '{ws.slug}' (id {ws.id}).")


@app.command("list")
def ws_list() -> None:
    """List workspaces."""
    for ws in run(lambda c: c.workspaces.list()):
        typer.echo(f"{ws.id:>4}  {ws.slug:<24} {ws.name}  ({ws.timezone})")


@app.command("set")
def ws_set(key: str, value: str, workspace: str | None = WORKSPACE) -> None:
    """Change a workspace setting, e.g. `first_reply_moves_to_in_progress on` or
    `rmm_device_url 'https://rmm.example.com/devices/{ref}'` (`off` clears a link)."""
    echo_json(run_in(workspace, lambda c, ws: c.workspaces.set_option(ws, key, value)))


@app.command("timezone")
def ws_timezone(zone: str | None = typer.Argument(None, help="IANA time zone, e.g. America/New_York"),
                workspace: str | None = WORKSPACE) -> None:
    """Show or change the workspace's time zone: the day technicians and admins mean by a date (time entries,
    the audit page, AI's "opened at"). SLA calendars keep their own zones (`deskbridge sla calendar set`)."""
    if zone is None:
        typer.echo(run_in(workspace, lambda c, ws_id: c.workspaces.timezone_of(ws_id)))
        return
    typer.echo(run_in(workspace, lambda c, ws_id: c.workspaces.set_timezone(ws_id, zone)))


@app.command("admin")
def ws_admin(email: str = typer.Argument(..., help="The technician's e-mail"),
             off: bool = typer.Option(False, "--off", help="Remove admin rights instead"),
             workspace: str | None = WORKSPACE) -> None:
    """Make a technician a Deskbridge admin (bind channels, redrive writes, change settings from chat).
    Until a workspace has one, the chat platform's own workspace admins act as Deskbridge admins."""
    m = run_in(workspace, lambda c, ws: c.directory.set_admin(ws, email, not off))
    echo_json({"member": m.name, "email": m.email, "is_admin": m.is_admin})


@app.command("settings")
def ws_settings(workspace: str | None = WORKSPACE) -> None:
    """Show every workspace setting (defaults included)."""
    for key, value in run_in(workspace, lambda c, ws: c.workspaces.settings(ws)).items():
        typer.echo(f"{key:<34} {'(not set)' if value is None else value}")


@app.command("allow-team")
def ws_allow_team(platform: str = typer.Argument(..., help="slack"), team_id: str = typer.Argument(..., help="e.g. T0123"),
                  workspace: str | None = WORKSPACE) -> None:
    """Reserve a Slack team for this workspace before it installs the app over OAuth.

    Without this, a team installing over OAuth gets a new, empty workspace of its own.
    """
    inst = run_in(workspace, lambda c, ws: c.chat.preauthorize(platform, team_id.strip(), ws))
    typer.echo(f"{platform} team {inst.team_id} will install into workspace {inst.workspace_id}.")
