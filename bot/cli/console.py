"""`deskbridge console`: try Deskbridge in the terminal, no Slack needed (works against the sandbox PSA)."""

from __future__ import annotations

import asyncio

import typer

from bot.cli.common import run
from bot.main import Deskbridge

app = typer.Typer(help="Terminal surface: the Slack commands and views, as text.", invoke_without_command=True)


@app.callback()
def console(
    as_email: str | None = typer.Option(None, "--as", help="Act as the technician with this e-mail."),
    no_sync: bool = typer.Option(False, "--no-sync", help="Do not pull from the PSA before starting."),
    no_worker: bool = typer.Option(False, "--no-worker", help="Leave writes queued for `serve` or `outbox work`."),
) -> None:
    """Open an interactive console (type /deskbridge help inside)."""
    from bot.console.session import ConsoleNotifier, ConsoleSession, stdin_reader

    async def work(container: Deskbridge) -> None:
        container.notifier.add(ConsoleNotifier(typer.echo))
        if not no_sync:
            await _initial_sync(container)
        session = ConsoleSession(container, read=stdin_reader, write=typer.echo, as_email=as_email)
        worker = container.outbox_worker
        # Deliver this session's writes to the PSA while it runs, as `serve` does.
        task = None if no_worker else asyncio.create_task(worker.run(), name="console-outbox")
        try:
            await session.run()
        finally:
            if task is not None:
                worker.stop()
                await asyncio.gather(task, return_exceptions=True)

    run(work)


async def _initial_sync(container: Deskbridge) -> None:
    """Pull tickets, customers and technicians once from every connection of the workspace."""
    for conn in await container.connections.list(container.default_workspace_id):
        if not conn.enabled:
            continue
        assert conn.id is not None  # a stored row
        try:
            await container.sync.run(conn.id)
        except Exception as exc:  # noqa: BLE001 - the console still works on what is stored
            typer.echo(f"(sync of {conn.name} failed: {exc})")
