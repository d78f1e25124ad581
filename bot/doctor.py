"""`deskbridge doctor`: check a configuration before going live, one line per check with what to do next.

    checks = await diagnose(container)   # never changes anything (no migration, no sandbox, no sync)

Marks: ✓ fine, ✗ broken (the command exits 1), ! works but needs attention (e.g. a key only on disk).
Checks: the database and its migrations; the secret key; per PSA connection its credentials and
reachability, rate-limit headroom (429s of the last 24 h; Autotask's hourly usage), picklists, last sync and
callbacks; e-mail intake (the mailbox can be read, mail in triage) and alert intake (each source's secret,
last event, events not applied, alerts in triage) when configured; Slack (token, scopes against the
manifest, request URL reachable from outside when a public URL is set); Teams; the alert action webhook
when set. No secret is ever printed; nothing is taken from the mailbox.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.banner import describe_database
from bot.main import Deskbridge
from core.connection_health import ConnectionHealth, check_connection
from core.errors import NotFound
from core.intake.health import IntakeHealth, intake_health
from core.rate_headroom import autotask_headroom, hits_headroom, rate_limit_hits

OK, FAIL, WARN = "✓", "✗", "!"
MARK = {"ok": OK, "warn": WARN, "fail": FAIL}


@dataclass(frozen=True, slots=True)
class Check:
    area: str  # "database", "secret key", "psa:cw", "mail intake", "alert intake", "slack", "teams", "alerts"
    mark: str  # OK, FAIL or WARN
    text: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.mark != FAIL}


async def _database(c: Deskbridge) -> list[Check]:
    url = c.settings.database_url
    ready = await c.readiness()
    if not ready["database"]:
        return [Check("database", FAIL, f"{describe_database(url)} does not answer",
                      "Check DESKBRIDGE_DATABASE_URL and that the database server is running.")]
    out = [Check("database", OK, f"{describe_database(url)} answers")]
    if ready["migrations"]:
        out.append(Check("migrations", OK, "schema is current"))
    else:
        out.append(Check("migrations", FAIL, "schema is behind this version",
                         "Run `deskbridge db upgrade` (or start with DESKBRIDGE_AUTO_MIGRATE=true)."))
    return out


def _secret_key(c: Deskbridge) -> Check:
    s = c.settings
    if s.secret_key is not None:
        old = f" (+{len(s.secret_keys_old)} old for rotation)" if s.secret_keys_old else ""
        return Check("secret key", OK, f"set in DESKBRIDGE_SECRET_KEY{old}")
    return Check("secret key", WARN, f"only in the file {s.secret_key_file}: losing it loses every PSA credential",
                 "Back the file up, or put its content in DESKBRIDGE_SECRET_KEY from your secret store.")


async def _psa(c: Deskbridge, ws: int) -> list[Check]:
    conns = await c.connections.list(ws)
    if not conns:
        return [Check("psa", WARN, "no PSA connection (the sandbox stands in when `serve` starts)",
                      "Add yours with `deskbridge connection add connectwise|halopsa|autotask ...`.")]
    status = {st.connection_id: st for st in await c.sync.status(ws)}
    public = c.settings.public_url
    out: list[Check] = []
    for conn in conns:
        area = f"psa:{conn.name}"
        if not conn.enabled:
            out.append(Check(area, WARN, f"{conn.kind} connection is disabled"))
            continue
        health = await check_connection(c.connections, conn)
        if not health.ok:
            out.append(Check(area, FAIL, health.problem or "the check failed", health.fix))
            continue
        out.append(Check(area, OK, f"{conn.kind}: credentials accepted ({health.display_name})"))
        out += await _headroom(c, ws, conn, health)
        st = status.get(conn.id or 0)
        picklists = next((r for r in (st.runs if st else []) if r.kind == "picklists"), None)
        if picklists is not None and picklists.status not in ("ok", "running"):
            out.append(Check(area, FAIL if picklists.status == "failed" else WARN,
                             f"picklists {picklists.status}: {(picklists.error or '')[:160]}",
                             f"`deskbridge sync picklists {conn.name}`; `deskbridge sync status` shows what failed."))
        if st is None or st.last_ok_at is None:
            out.append(Check(area, WARN, "never synced", f"Run `deskbridge sync run {conn.name}` (or start `serve`)."))
        else:
            ago = (datetime.now(UTC) - st.last_ok_at).total_seconds() / 60
            out.append(Check(area, OK, f"last sync {ago:.0f} min ago"))
        if conn.kind == "sandbox" or not health.registers_callbacks:
            continue
        if (conn.settings or {}).get("webhook_token") and public:
            out.append(Check(area, OK, f"callbacks registered to {public.rstrip('/')}/webhooks/{conn.id}/…"))
        elif public:
            out.append(Check(area, FAIL, "callbacks not registered: changes arrive only with each sync",
                             f"Run `deskbridge connection callbacks {conn.name}`."))
        else:
            out.append(Check(area, WARN, "no callbacks without DESKBRIDGE_PUBLIC_URL: changes arrive with each sync",
                             "Set DESKBRIDGE_PUBLIC_URL, then run `deskbridge connection callbacks "
                             f"{conn.name}`."))
    return out


async def _headroom(c: Deskbridge, ws: int, conn: Any, health: ConnectionHealth) -> list[Check]:
    """How close this connection runs to the PSA's request limits (nothing for the sandbox: it has none)."""
    if conn.kind == "sandbox":
        return []
    area, out = f"psa:{conn.name}", []
    if conn.kind == "autotask":
        usage = autotask_headroom(health.details, conn.settings or {})
        if usage is not None:
            out.append(Check(area, MARK[usage.level], usage.text, usage.fix))
    hits = hits_headroom(conn.kind, await rate_limit_hits(c.db, ws, conn.id, datetime.now(UTC)))
    out.append(Check(area, MARK[hits.level], hits.text, hits.fix))
    return out


async def _reachable(url: str) -> str | None:
    """None when `url` answers 200, else what went wrong."""
    try:
        async with httpx.AsyncClient(timeout=5, follow_redirects=False) as client:
            r = await client.get(url)
        return None if r.status_code == 200 else f"answered HTTP {r.status_code}"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:160]


async def _slack(c: Deskbridge) -> list[Check]:
    s = c.settings
    if not s.slack_enabled:
        return [Check("slack", WARN, "off: no Slack credentials",
                      "Set DESKBRIDGE_SLACK_BOT_TOKEN and DESKBRIDGE_SLACK_SIGNING_SECRET (see README, Slack).")]
    from slack_sdk.errors import SlackApiError

    from bot.slack.app import BOT_SCOPES
    from bot.slack.poster import make_client

    out: list[Check] = []
    if s.slack_bot_token is not None:
        try:
            auth = await make_client(s.slack_api_url, s.slack_bot_token.get_secret_value()).auth_test()
        except SlackApiError as exc:
            return [Check("slack", FAIL, f"the bot token was refused: {exc.response.get('error')}",
                          "Copy the Bot User OAuth Token (xoxb-…) of the installed app into DESKBRIDGE_SLACK_BOT_TOKEN.")]
        except Exception as exc:  # noqa: BLE001 - any transport failure is a line, not a traceback
            return [Check("slack", FAIL, f"Slack did not answer: {type(exc).__name__}",
                          "Check this machine's outbound HTTPS to slack.com.")]
        out.append(Check("slack", OK, f"bot token valid for workspace {auth.get('team')} ({auth.get('team_id')})"))
        granted = {x.strip() for x in str(auth.headers.get("x-oauth-scopes", "")).split(",") if x.strip()}
        missing = sorted(set(BOT_SCOPES) - granted)
        if not granted:
            out.append(Check("slack", WARN, "Slack did not list the token's scopes; cannot compare with the manifest"))
        elif missing:
            out.append(Check("slack", FAIL, "missing scopes: " + ", ".join(missing),
                             "Update the app from manifests/slack/manifest.yaml and reinstall it to the workspace."))
        else:
            out.append(Check("slack", OK, "scopes match manifests/slack/manifest.yaml"))
    else:
        out.append(Check("slack", OK, "OAuth install mode (each workspace installs through /slack/install)"))
    if s.slack_app_token is not None:
        out.append(Check("slack", OK, "Socket Mode: no public request URL needed"))
    elif s.public_url:
        url = f"{s.public_url.rstrip('/')}/slack/events"
        problem = await _reachable(f"{s.public_url.rstrip('/')}/healthz")
        out.append(Check("slack", OK, f"request URL {url} reachable") if problem is None else
                   Check("slack", FAIL, f"{s.public_url} is not reachable ({problem})",
                         "Check DNS, TLS and the proxy in front of Deskbridge; Slack needs this URL."))
    else:
        out.append(Check("slack", FAIL, "no DESKBRIDGE_PUBLIC_URL: Slack cannot deliver requests",
                         "Set DESKBRIDGE_PUBLIC_URL to this instance's https URL, or use Socket Mode "
                         "(DESKBRIDGE_SLACK_APP_TOKEN)."))
    return out


def _teams(c: Deskbridge) -> list[Check]:
    s = c.settings
    if not s.teams_app_id:
        return [Check("teams", WARN, "off: no DESKBRIDGE_TEAMS_APP_ID")]
    if not s.teams_enabled:
        return [Check("teams", FAIL, f"app {s.teams_app_id} has no credential",
                      "Set DESKBRIDGE_TEAMS_APP_SECRET (or DESKBRIDGE_TEAMS_CERTIFICATE_FILE).")]
    out = [Check("teams", FAIL, problem, "Fix it in the environment and restart.") for problem in s.teams_problems()]
    if not s.public_url:
        out.append(Check("teams", FAIL, f"app {s.teams_app_id}: no DESKBRIDGE_PUBLIC_URL for the messaging endpoint",
                         "Set DESKBRIDGE_PUBLIC_URL; the bot's messaging endpoint is {public url}/api/messages."))
    elif not out:
        out.append(Check("teams", OK, f"app {s.teams_app_id}; messaging endpoint {s.public_url.rstrip('/')}/api/messages"))
    return out


async def _alerts(c: Deskbridge, ws: int) -> list[Check]:
    info = await c.alert_webhooks.get(ws)
    if info is None:
        return []
    try:
        status = await c.alert_webhooks.ping(ws)
    except Exception as exc:  # noqa: BLE001 - PsaError (what the endpoint answered) or DeskbridgeError: one line
        return [Check("alerts", FAIL, f"alert webhook {info.display_url}: {getattr(exc, 'message', exc)}",
                      "Fix the endpoint or set it again with `deskbridge rmm set-webhook`.")]
    return [Check("alerts", OK, f"alert webhook {info.display_url} answered the signed ping ({status})")]


def _mail(h: IntakeHealth) -> list[Check]:
    m = h.mailbox
    if m is None:
        return []
    name = f"mailbox {m.display} ({m.kind})"
    if m.psa_handles_mail:
        out = [Check("mail intake", OK, f"{name}: the PSA's own mail connector takes the mail; Deskbridge does not poll")]
    elif m.problem:
        out = [Check("mail intake", FAIL, f"{name} cannot be read: {m.problem}",
                     (f"{m.hint} " if m.hint else "") + "Set it again with `deskbridge intake mail-set`, then "
                     "`deskbridge intake mail-test`.")]
    else:
        out = [Check("mail intake", OK, f"{name} can be read; new mail becomes tickets each minute")]
    if m.triage:
        out.append(Check("mail intake", WARN, f"{m.triage} e-mail(s) of the last 30 days wait in triage "
                                              "(unknown sender, or refused)",
                         "Each is kept with its raw message; add the senders as contacts in the PSA so their next "
                         "mail becomes a ticket."))
    return out


def _alert_sources(c: Deskbridge, h: IntakeHealth) -> list[Check]:
    out: list[Check] = []
    public = (c.settings.public_url or "").rstrip("/")
    for src in h.sources:
        name = f"source {src.name} ({src.kind})"
        if src.secret_problem:
            out.append(Check("alert intake", FAIL, f"{name}: {src.secret_problem}",
                             f"Give it a new secret with `deskbridge intake rotate-secret {src.name}` and paste it "
                             "into the sender's webhook."))
            continue
        if not src.enabled:
            out.append(Check("alert intake", WARN, f"{name} is disabled: its alerts are refused",
                             f"`deskbridge intake set {src.name} enabled on` when it should take alerts again."))
            continue
        last = (f"last event {_ago(src.last_event_at)}" if src.last_event_at else "no event received yet")
        out.append(Check("alert intake", OK, f"{name}: secret set; posts to {public or '{public url}'}{src.path}; {last}"))
        if src.stuck:
            out.append(Check("alert intake", WARN, f"{name}: {src.stuck} event(s) received over 10 min ago not applied",
                             "The scheduler applies them each minute: check that `deskbridge serve` runs, and its log."))
    if h.sources and not public:
        out.append(Check("alert intake", FAIL, "no DESKBRIDGE_PUBLIC_URL: senders cannot reach /webhooks/alerts/…",
                         "Set DESKBRIDGE_PUBLIC_URL to this instance's https URL."))
    if h.alert_triage:
        out.append(Check("alert intake", WARN, f"{h.alert_triage} alert(s) wait in triage: no rule placed them with "
                                               "a customer",
                         "`deskbridge intake triage` lists them; `deskbridge intake map …` adds a rule and applies "
                         "them at once."))
    return out


def _ago(when: datetime) -> str:
    minutes = max(0, int((datetime.now(UTC) - when).total_seconds() // 60))
    return f"{minutes} min ago" if minutes < 120 else f"{minutes // 60} h ago"


async def _intake(c: Deskbridge, ws: int) -> list[Check]:
    h = await intake_health(c.db, c.mailboxes, c.alert_sources, ws, datetime.now(UTC))
    return _mail(h) + _alert_sources(c, h)


async def diagnose(c: Deskbridge) -> list[Check]:
    """Every check, in the order a newcomer fixes things; nothing is changed."""
    checks = await _database(c)
    checks.append(_secret_key(c))
    if checks[0].mark == FAIL:
        return checks
    try:
        ws = (await c.workspaces.by_slug(c.settings.workspace_slug)).id
    except NotFound:
        ws = None
    if ws is None:
        checks.append(Check("workspace", FAIL, f"no workspace '{c.settings.workspace_slug}' yet",
                            "Start Deskbridge once (`make run` / `deskbridge serve`) or check DESKBRIDGE_WORKSPACE_SLUG."))
    else:
        checks += await _psa(c, ws)
        checks += await _intake(c, ws)
        checks += await _alerts(c, ws)
    checks += await _slack(c)
    checks += _teams(c)
    return checks


def render(checks: list[Check]) -> str:
    """One line per check (and its fix, indented), then a summary line."""
    lines = []
    for ch in checks:
        lines.append(f"{ch.mark} {ch.area:<14} {ch.text}")
        if ch.fix and ch.mark != OK:
            lines.append(f"  {'':<14} → {ch.fix}")
    failed = sum(ch.mark == FAIL for ch in checks)
    lines.append("All good." if not failed else f"{failed} problem{'s' if failed > 1 else ''} to fix before going live.")
    return "\n".join(lines)
