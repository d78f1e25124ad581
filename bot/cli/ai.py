"""`deskbridge ai train|status|settings|set|similar|train-risk|at-risk|kb|kb-import|kb-refresh`: the workspace's
AI assist from the terminal.

Training runs in a worker thread of this process (core/ai/service.py), so a server process doing the
same keeps answering requests meanwhile.
"""

from __future__ import annotations

import typer

from bot.cli.common import WORKSPACE, cli_actor, fail, run_in
from bot.main import Deskbridge
from core.ai import dense
from core.ai.service import ModelStatus, SimilarAnswer
from core.context import Actor

app = typer.Typer(help="AI assist: train the category model, model status, AI settings.", no_args_is_help=True)


def _print_status(status: ModelStatus | None) -> None:
    typer.echo(f"Similar tickets: {dense.status()}")
    if status is None:
        typer.echo("No category model yet. Run `deskbridge ai train` once closed tickets carry a category.")
        return
    m = status.metrics
    acc = m.get("holdout_accuracy")
    held = f"{acc:.1%} on {m.get('holdout_size')} held-out tickets" if acc is not None else "not measured (too few)"
    typer.echo(f"Category model v{status.version}: trained {status.created_at:%Y-%m-%d %H:%M} UTC on "
               f"{status.trained_on} tickets, {len(m.get('labels', []))} categories")
    typer.echo(f"  held-out accuracy: {held}")
    if m.get("cold"):
        typer.echo("  cold start: suggestions are shown as low confidence and never applied")
    if "seconds" in m:
        typer.echo(f"  training took {m['seconds']} s (scikit-learn {m.get('sklearn')})")


@app.command("train")
def train(workspace: str | None = WORKSPACE, seed: int = typer.Option(0, help="Random seed (split, model)")) -> None:
    """Train a new version of the workspace's category model from its closed tickets."""

    async def work(c: Deskbridge, ws: int) -> ModelStatus:
        return await c.ai.train(ws, seed=seed)

    _print_status(run_in(workspace, work))


@app.command("status")
def status(workspace: str | None = WORKSPACE) -> None:
    """The newest category model: when, on how many tickets, held-out accuracy."""

    async def work(c: Deskbridge, ws: int) -> ModelStatus | None:
        return await c.ai.status(ws)

    _print_status(run_in(workspace, work))


@app.command("settings")
def settings(workspace: str | None = WORKSPACE) -> None:
    """Every AI setting with its value."""

    async def work(c: Deskbridge, ws: int) -> dict:
        return await c.ai.settings(ws)

    for key, value in run_in(workspace, work).items():
        shown = ", ".join(value) or "(none)" if isinstance(value, list) else \
            ("on" if value else "off") if isinstance(value, bool) else value
        typer.echo(f"{key}: {shown}")


@app.command("set")
def set_(name: str = typer.Argument(..., help="Setting name (see `deskbridge ai settings`)"),
         value: str = typer.Argument(..., help="New value: on/off, a threshold like 0.8, or a list"),
         workspace: str | None = WORKSPACE) -> None:
    """Change one AI setting (as the workspace admin)."""

    async def work(c: Deskbridge, ws: int) -> dict:
        return await c.ai.set_setting(cli_actor(ws), name, value)

    result = run_in(workspace, work)
    key = name.strip().lower().replace("-", "_")
    typer.echo(f"{key} is now {result[key]}")


@app.command("similar")
def similar(text: str = typer.Argument(..., help="Words to search closed tickets for"),
            customer: str | None = typer.Option(None, help="Only this customer's tickets"),
            workspace: str | None = WORKSPACE) -> None:
    """Similar closed tickets for some text (all customers only where `cross_customer` is on)."""

    async def work(c: Deskbridge, ws: int) -> SimilarAnswer:
        actor = Actor.system(ws)
        if customer is not None:
            actor = actor.scoped_to_customer((await c.directory.find_customer(ws, customer)).id)
        return await c.ai.similar(actor, text=text)

    answer = run_in(workspace, work)
    if not answer.hits:
        raise fail("No similar closed ticket above the similarity floor.",
                   "Try other words, or lower it with `deskbridge ai set similar_floor 0.2`.", code=0)
    for h in answer.hits:
        ref = f"#{h.doc.number}" if h.doc.number is not None else f"id:{h.doc.ticket_id}"
        when = f"{h.doc.closed_at:%Y-%m-%d}" if h.doc.closed_at else "-"
        typer.echo(f"{ref}  {h.score:.2f}  {when}  {h.doc.text.splitlines()[0][:80]}")
    for r in answer.resolutions.items:
        typer.echo(f"Suggested resolution ({r.attribution}): {r.text}")
    if answer.resolutions.disagree:
        typer.echo("Note: these resolutions disagree; compare them before using one.")


@app.command("train-risk")
def train_risk(workspace: str | None = WORKSPACE) -> None:
    """Train the escalation-risk model from closed tickets with a known SLA outcome."""

    async def work(c: Deskbridge, ws: int) -> tuple[int, dict]:
        return await c.ai.risk.train(ws)

    version, metrics = run_in(workspace, work)
    typer.echo(f"Escalation model v{version}: trained on {metrics['trained_on']} closed tickets "
               f"(breach rate {metrics['base_rate']:.0%}), as they stood {metrics['snapshot_hours']:g} h after opening")


@app.command("at-risk")
def at_risk(workspace: str | None = WORKSPACE, limit: int = typer.Option(15, help="How many to list")) -> None:
    """Open tickets at or above the risk threshold, riskiest first, with what pushed each score up."""

    async def work(c: Deskbridge, ws: int) -> list:
        await c.ai.risk.score(ws)
        return await c.ai.risk.at_risk(Actor.system(ws), limit=limit)

    found = run_in(workspace, work)
    if not found:
        raise fail("No open ticket is at or above the risk threshold.",
                   "Train a model with `deskbridge ai train-risk`, or lower `ai set risk_threshold 0.5`.", code=0)
    for f in found:
        ref = f"#{f.number}" if f.number is not None else f"id:{f.ticket_id}"
        typer.echo(f"{ref}  {f.score:.0%}  {f.priority:<8}  {(f.customer or '-')[:20]:<20}  {f.subject[:60]}"
                   + (f"  ({', '.join(f.reasons)})" if f.reasons else ""))


@app.command("kb-import")
def kb_import(folder: str = typer.Argument(..., help="Folder of Markdown files, one article per file"),
              workspace: str | None = WORKSPACE) -> None:
    """Make the workspace's Markdown KB articles the .md files under FOLDER (replaces the last import)."""

    async def work(c: Deskbridge, ws: int) -> int:
        return await c.ai.kb.import_folder(Actor.system(ws), folder)

    typer.echo(f"Imported {run_in(workspace, work)} Markdown article(s); technicians' cards link them from now on.")


@app.command("kb-refresh")
def kb_refresh(workspace: str | None = WORKSPACE) -> None:
    """Re-read the KB articles of the connected documentation platforms now (the server does it hourly)."""

    async def work(c: Deskbridge, ws: int) -> tuple:
        report = await c.ai.kb.refresh(ws)
        return report, await c.ai.kb.count(ws)

    report, counts = run_in(workspace, work)
    for source, n in report.sources.items():
        typer.echo(f"{source}: {n} article(s)")
    for source, why in report.skipped.items():
        typer.echo(f"{source}: unchanged ({why})")
    if not counts:
        raise fail("No KB articles yet.", "Connect Hudu with `deskbridge customer docs-platform`, or import a folder "
                   "with `deskbridge ai kb-import FOLDER`.", code=0)
    typer.echo("In the KB now: " + ", ".join(f"{s} {n}" for s, n in sorted(counts.items())))


@app.command("kb")
def kb(text: str = typer.Argument(..., help="Ticket words to find KB articles for"),
       customer: str | None = typer.Option(None, help="Also this customer's own articles"),
       workspace: str | None = WORKSPACE) -> None:
    """The KB articles that match some text, with source, score and the matching paragraph."""

    async def work(c: Deskbridge, ws: int) -> tuple:
        cid = (await c.directory.find_customer(ws, customer)).id if customer else None
        threshold = (await c.ai.settings(ws))["kb_threshold"]
        return await c.ai.kb.search(ws, text, customer_id=cid, k=3, threshold=threshold)

    links = run_in(workspace, work)
    if not links:
        raise fail("No KB article matches above kb_threshold.",
                   "Try other words, or lower it with `deskbridge ai set kb_threshold 0.2`.", code=0)
    for link in links:
        where = f" > {link.heading}" if link.heading and link.heading != link.article.title else ""
        typer.echo(f"{link.score:.2f}  {link.article.title}{where}  ({link.article.url or link.article.source})")
        typer.echo(f"      {link.paragraph[:300]}")
