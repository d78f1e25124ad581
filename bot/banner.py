"""The start banner: one short block saying what is running and where to reach it.

    facts = await gather(container, web=True)   # database, PSA connections and their first sync, Slack,
    log.info(render(facts), extra={"start": facts.as_dict()})   # Teams, the URLs, how to try it

`render` is pure (tested on its own); `gather` reads the container once. No secret is ever part of it:
the database URL loses its password, a PSA callback URL its token.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from bot.main import NO_SLACK_NOTE, SANDBOX_NOTE
from core.start_facts import chat_teams

if TYPE_CHECKING:
    from bot.main import Deskbridge

log = logging.getLogger("deskbridge")


@dataclass(frozen=True, slots=True)
class PsaFact:
    name: str
    kind: str
    enabled: bool
    synced_at: datetime | None  # the last successful sync (None: the first one has not finished)
    callbacks: bool  # the PSA calls us back (registered by `connection add` / `connection callbacks`)
    connection_id: int


@dataclass(frozen=True, slots=True)
class StartFacts:
    database: str
    psa: list[PsaFact]
    slack: str | None  # None: off; else "HTTP" or "Socket Mode"
    slack_teams: list[str]
    teams: bool
    local_url: str | None  # None: no web app in this process (`deskbridge background`)
    public_url: str | None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_database(url: str) -> str:
    """"SQLite ./deskbridge.db" or "PostgreSQL deskbridge on db.internal:5432" (never a password)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return f"SQLite {u.database or ':memory:'}"
    where = f"{u.host or 'localhost'}:{u.port or 5432}"
    return f"PostgreSQL {u.database or ''} on {where}".replace("  ", " ")


def _ago(when: datetime, now: datetime) -> str:
    seconds = max(0.0, (now - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f} {unit} ago"
    return "just now"


def render(f: StartFacts, now: datetime) -> str:
    """The banner text: a title line and one line per topic (continuations indented)."""
    base = f.public_url.rstrip("/") if f.public_url else None
    lines = ["Deskbridge is running" + (f" on {f.local_url}" if f.local_url else " (background work only)")]

    def row(label: str, *texts: str) -> None:
        lines.append(f"  {label:<9}{texts[0]}")
        lines.extend(f"  {'':<9}{t}" for t in texts[1:])

    row("Database", f.database)
    if not f.psa:
        row("PSA", "none: add one with `deskbridge connection add`")
    for p in f.psa:
        state = ("disabled" if not p.enabled else f"synced {_ago(p.synced_at, now)}" if p.synced_at
                 else "first sync running (`deskbridge sync status`)")
        kind = "built-in demo PSA; add yours: `deskbridge connection add`" if p.kind == "sandbox" else p.kind
        row("PSA" if p is f.psa[0] else "", f"{p.name} ({kind}): {state}")
    if f.slack is None:
        row("Slack", "off (set DESKBRIDGE_SLACK_BOT_TOKEN and DESKBRIDGE_SLACK_SIGNING_SECRET)")
    else:
        teams = ", ".join(f.slack_teams) or "no team installed yet"
        row("Slack", f"on, {f.slack}, workspace: {teams}")
    row("Teams", "on" if f.teams else "off")
    urls = []
    if f.local_url:
        urls.append(f"API docs        {f.local_url}/docs")
    if base:
        if f.slack == "HTTP":
            urls.append(f"Slack requests  {base}/slack/events")
        if f.teams:
            urls.append(f"Teams messages  {base}/api/messages")
        for p in f.psa:
            if p.kind != "sandbox":
                said = "registered" if p.callbacks else f"not registered: `deskbridge connection callbacks {p.name}`"
                urls.append(f"PSA callbacks   {base}/webhooks/{p.connection_id}/… ({p.name}, {said})")
    elif f.slack == "HTTP" or f.teams or any(p.kind != "sandbox" for p in f.psa):
        urls.append("no DESKBRIDGE_PUBLIC_URL: Slack, Teams and PSA callbacks cannot reach this instance")
    if urls:
        row("URLs", *urls)
    row("Try it", "`deskbridge console` in a second shell (or `make console`)")
    for note in f.notes:
        row("Note", note)
    return "\n".join(lines)


async def gather(container: Deskbridge, *, web: bool) -> StartFacts:
    """What this process runs, read from settings and the database (bootstrapped container)."""
    s = container.settings
    ws = container.default_workspace_id
    status = {st.connection_id: st for st in await container.sync.status(ws)}
    psa = []
    for conn in await container.connections.list(ws):
        assert conn.id is not None  # a stored row
        st = status.get(conn.id)
        psa.append(PsaFact(name=conn.name, kind=conn.kind, enabled=conn.enabled,
                           synced_at=st.last_ok_at if st else None, connection_id=conn.id,
                           callbacks=bool((conn.settings or {}).get("webhook_token"))))
    slack = None if not s.slack_enabled else ("Socket Mode" if s.slack_app_token is not None else "HTTP")
    teams = [t.name or t.team_id for t in await chat_teams(container.db, ws) if t.platform == "slack"]
    host = "127.0.0.1" if s.host in ("0.0.0.0", "::", "") else s.host
    return StartFacts(
        database=describe_database(s.database_url), psa=psa, slack=slack, slack_teams=teams,
        teams=s.teams_enabled,
        local_url=f"http://{host}:{s.port}" if web else None, public_url=s.public_url,
        notes=[n for n in container.banner if n not in (SANDBOX_NOTE, NO_SLACK_NOTE)])  # those have their own lines


async def announce(container: Deskbridge, *, web: bool, now: datetime) -> StartFacts:
    """Log the banner once (INFO, logger "deskbridge"); JSON logs also carry the facts as `start`."""
    facts = await gather(container, web=web)
    log.info(render(facts, now), extra={"start": facts.as_dict()})
    return facts


async def announce_first_syncs(container: Deskbridge, facts: StartFacts, *, poll: float = 2.0,
                               give_up_after: float = 600.0) -> None:
    """Say once when each connection that had never synced finishes its first sync (or why not yet)."""
    waiting = {p.connection_id: p.name for p in facts.psa if p.enabled and p.synced_at is None}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after
    while waiting and loop.time() < deadline:
        await asyncio.sleep(poll)
        for st in await container.sync.status(container.default_workspace_id):
            if st.connection_id in waiting and st.last_ok_at is not None:
                seen = next((r.counts.get("seen") for r in st.runs if r.status in ("ok", "partial")), None)
                log.info("%s: first sync finished%s; try `deskbridge console`", waiting.pop(st.connection_id),
                         f" ({seen} tickets)" if seen is not None else "")
    for name in waiting.values():
        log.warning("%s: the first sync has not finished after %.0f s; see `deskbridge sync status`", name,
                    give_up_after)
