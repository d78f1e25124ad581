"""`sla explain`: how a ticket's remaining time was computed (policy, calendar windows, holidays, pauses)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from core.context import Actor
from core.sla.calendars import CalendarSpec, format_windows, holiday_dates, to_local
from core.sla.clock import IntervalTable
from core.sla.config import WorkspaceSla
from core.sla.policies import format_duration
from core.sla.service import ClockResult, SlaService
from core.ticket_lookup import load_ticket
from core.views import SlaExplanation

MAX_WINDOW_LINES = 12
_EVENT_TEXT = {"started": "clock started", "paused": "paused", "resumed": "resumed", "stopped": "stopped",
               "reopened": "reopened", "breached": "BREACHED", "target": "target changed"}


def _when(spec: CalendarSpec | None, ts: float | None) -> str:
    if ts is None or ts != ts:
        return "-"
    if spec is None:
        return datetime.fromtimestamp(ts, UTC).strftime("%a %d %b %Y %H:%M %Z")
    return to_local(spec, ts).strftime("%a %d %b %Y %H:%M %Z")


def _calendar_line(spec: CalendarSpec | None) -> str:
    if spec is None:
        return "Counting calendar time (24x7, no holidays)."
    hols = spec.holiday_country + (f"-{spec.holiday_subdiv}" if spec.holiday_subdiv else "") \
        if spec.holiday_country else "none"
    custom = f" + {len(spec.custom_holidays)} custom date(s)" if spec.custom_holidays else ""
    return (f"Counting business hours on calendar '{spec.name}': {spec.tz}, {format_windows(spec.windows)}; "
            f"holidays: {hols}{custom}.")


def run_spans(log: Sequence[dict], end: float) -> list[tuple[float, float]]:
    """The spans in which the clock was running, from its transition log (the current cycle only)."""
    spans: list[tuple[float, float]] = []
    cur: float | None = None
    for item in log:
        ev, at = item.get("event"), float(item.get("at", 0.0))
        if ev == "reopened" and item.get("mode") == "new_cycle":
            spans, cur = [], None
        if ev in ("started", "resumed", "reopened") and cur is None:
            cur = at
        elif ev in ("paused", "stopped") and cur is not None:
            spans.append((cur, at))
            cur = None
    if cur is not None:
        spans.append((cur, end))
    return [(a, b) for a, b in spans if b > a]


def _windows(spec: CalendarSpec, table: IntervalTable, spans: list[tuple[float, float]]) -> list[str]:
    """The open windows that counted while the clock ran, in local time."""
    out: list[str] = []
    pairs: list[tuple[float, float]] = []
    for start, end in spans:
        mask = (table.e > start) & (table.s < end)
        pairs += [(max(float(s), start), min(float(e), end)) for s, e in zip(table.s[mask], table.e[mask], strict=True)]
    for a, b in pairs[:MAX_WINDOW_LINES]:
        la, lb = to_local(spec, a), to_local(spec, b)
        out.append(f"    {la:%a %d %b %H:%M}-{lb:%H:%M %Z}  {format_duration(b - a)}")
    if len(pairs) > MAX_WINDOW_LINES:
        out.append(f"    ... {len(pairs) - MAX_WINDOW_LINES} more window(s)")
    return out


def explain_lines(cfg: WorkspaceSla, results: Sequence[ClockResult], tables: dict[int | None, IntervalTable],
                  now: float, psa_tolerance_s: float) -> list[str]:
    """Plain lines for one ticket's metrics (pure: everything is passed in)."""
    lines: list[str] = []
    for r in results:
        st, fig = r.state, r.figures
        spec = cfg.calendar_by_id(st.calendar_id) if st.calendar_id is not None else None
        table = tables[st.calendar_id]
        lines.append("")
        lines.append(f"{r.metric.label.capitalize()} (cycle {st.cycle}, {st.state.value}): target "
                     f"{format_duration(st.target_s)} for {st.priority}")
        lines.append("  " + _calendar_line(spec))
        lines.append(f"  started {_when(spec, st.start)}; counting from {_when(spec, table.next_open(st.start))}")
        end = st.stopped_at if st.stopped_at is not None else now
        if spec is not None:
            lines.append("  windows counted (open hours while the clock ran):")
            lines.extend(_windows(spec, table, run_spans(st.log, end)) or ["    (none)"])
            hol = holiday_dates(spec, to_local(spec, st.start).date(), to_local(spec, max(end, st.start)).date())
            if hol:
                lines.append("  holidays skipped: " + ", ".join(f"{d.isoformat()} {n}" for d, n in sorted(hol.items())))
        for item in st.log:
            extra = ""
            if item.get("event") == "target":
                extra = f" {format_duration(item.get('old_s', 0))} -> {format_duration(item.get('new_s', 0))}"
            elif item.get("reason"):
                extra = f" ({item['reason']})"
            lines.append(f"  {_when(spec, item.get('at'))}  {_EVENT_TEXT.get(item.get('event', ''), item.get('event'))}"
                         f"{extra}")
        pause_now = f" + {format_duration(float(table.elapsed(st.paused_since, now)))} in the current pause" \
            if st.paused_since is not None else ""
        lines.append(f"  paused: {format_duration(st.paused_acc_s)} of business time{pause_now}")
        if st.stopped_at is not None:
            verdict = (f"met with {format_duration(fig.remaining)} to spare" if fig.remaining > 0
                       else f"missed by {format_duration(-fig.remaining)}")
            lines.append(f"  used {format_duration(fig.used)} -> {verdict}")
        else:
            left = (f"{format_duration(fig.remaining)} left" if fig.remaining > 0
                    else f"exceeded by {format_duration(-fig.remaining)}")
            lines.append(f"  used {format_duration(fig.used)} -> {left}; due {_when(spec, fig.due)}")
        if st.breached_at is not None:
            lines.append(f"  breached at {_when(spec, st.breached_at)} (stays recorded)")
        psa_due = r.ticket.psa_respond_by if r.metric.value == "first_response" else r.ticket.psa_resolve_by
        if psa_due is not None:
            verdict = "agrees"
            if fig.due == fig.due and abs(fig.due - psa_due.timestamp()) > psa_tolerance_s:
                verdict = f"DIFFERS by {format_duration(fig.due - psa_due.timestamp())} (ours minus the PSA's)"
            lines.append(f"  the PSA says due {_when(spec, psa_due.timestamp())}: {verdict}")
    return lines


async def explain(sla: SlaService, actor: Actor, ref: int | str) -> SlaExplanation:
    """Explain the SLA figures of the ticket numbered `ref` (within the actor's scope)."""
    async with sla.db.read(actor.scope) as session:
        ticket = await load_ticket(session, actor, ref)
    now = sla.now()
    cfg, results = await sla.derive(actor.workspace_id, [ticket.id], now)  # type: ignore[list-item]
    tables = {r.state.calendar_id: sla.tables.get(cfg.calendar_by_id(r.state.calendar_id)
                                                  if r.state.calendar_id is not None else None, now)
              for r in results}
    policy = results[0].policy if results else cfg.policy_for(ticket.customer_id)
    level = "customer override" if ticket.customer_id in cfg.customer_overrides else "workspace policy"
    head = [f"Ticket #{ticket.number}: {ticket.subject}",
            f"Priority {ticket.priority}, stage {ticket.stage}; {level}; thresholds "
            f"{', '.join(f'{t}%' for t in policy.thresholds)}; reopen: {policy.reopen.value}",
            f"As of {now.isoformat(timespec='seconds')}"]
    body = explain_lines(cfg, results, tables, now.timestamp(), sla.psa_tolerance_s)
    return SlaExplanation(ticket_number=ticket.number, view=sla.view_of(cfg, results), lines=tuple(head + body))
