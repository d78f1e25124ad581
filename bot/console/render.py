"""Console rendering: the same views as Slack, as plain text with numbered buttons (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

from core.notify import DomainEvent, NoteAdded, SlaWarningEvent, WriteDead, WriteDelivered
from core.views import (
    AiDraftView,
    FormField,
    FormOption,
    FormView,
    MessageView,
    QueueView,
    TicketSummary,
    TicketView,
    ViewAction,
    ai_lines,
    human_duration,
    sla_text,
)

WIDTHS = {"number": 8, "subject": 34, "customer": 14, "priority": 8, "status": 18, "assignee": 12, "created": 8,
          "sla": 16}
VIS_TAG = {"public": "PUBLIC", "internal": "internal", "resolution": "RESOLUTION"}


def _cut(text: str, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell(row: TicketSummary, key: str, view: QueueView) -> str:
    if key == "number":
        return row.display_number
    if key == "subject":
        return row.subject
    if key == "customer":
        return row.customer_name or "-"
    if key == "priority":
        return row.priority.label
    if key == "status":
        return row.status_name
    if key == "assignee":
        return row.assignee_name or "unassigned"
    if key == "created":
        return human_duration((view.now - row.created_at).total_seconds())
    if key == "sla":
        return sla_text(row.sla_remaining_s) or "-"
    return ""


def render_queue(view: QueueView) -> tuple[str, list[ViewAction]]:
    """A table of tickets; each row is a numbered button that opens the ticket."""
    head = view.title + (f" ({view.total})" if view.total is not None else "")
    if view.filters_text:
        head += f" · {view.filters_text}"
    lines = [head]
    if view.scope_note:
        lines.append(view.scope_note)
    if not view.rows:
        lines.append(view.empty_text)
        return "\n".join(lines), []
    cols = [k for k, _ in view.columns]
    labels = dict(view.columns)
    lines.append("     " + "  ".join(labels[k].ljust(WIDTHS[k]) for k in cols))
    buttons: list[ViewAction] = []
    for i, row in enumerate(view.rows, 1):
        cells = "  ".join(_cut(_cell(row, k, view), WIDTHS[k]).ljust(WIDTHS[k]) for k in cols)
        lines.append(f"[{i:>2}] {cells}".rstrip())
        buttons.append(ViewAction(action="open", label=f"open {row.display_number}",
                                  value=row.ref))
    if view.next_cursor:
        buttons.append(ViewAction(action="page", label="next page", value=view.next_cursor))
        lines.append(f"[{len(buttons):>2}] next page")
    return "\n".join(lines), buttons


def render_ticket(view: TicketView) -> tuple[str, list[ViewAction]]:
    """The ticket card as text: header, fields, conversation (public/internal marked), history, actions."""
    s = view.summary
    d = view.detail
    lines = [f"{s.display_number}  {s.subject}",
             f"  {s.customer_name or 'no customer'} · {s.priority.label} · {s.status_name} · "
             f"{s.assignee_name or 'unassigned'}" + (f" · board {d.board_name}" if d.board_name else "")]
    if view.sla_remaining_s is not None:
        lines.append(f"  SLA: {sla_text(view.sla_remaining_s)}")
    if d.contact_name:
        lines.append(f"  Contact: {d.contact_name}")
    lines += [f"  {label}: {value}" for label, value in view.facts]
    if d.description:
        lines.append("  " + _cut(d.description, 300))
    if d.dead_writes:
        lines.append(f"  !! {d.dead_writes} write(s) could not be delivered to the PSA (see /deskbridge outbox)")
    elif d.pending_writes:
        lines.append(f"  … {d.pending_writes} write(s) queued for the PSA")
    if view.conversation:
        lines.append("  Conversation:")
        for item in view.conversation[-10:]:
            tag = VIS_TAG.get(item.visibility, item.visibility)
            queued = " (FAILED: not in the PSA)" if item.failed else " (queued)" if item.queued else ""
            lines.append(f"   [{tag}] {item.author}{queued}: {_cut(item.body, 200)}")
    if view.status_history:
        hist = [f"{(i.data.get('to') or {}).get('status', '?')}" for i in view.status_history[-5:]]
        lines.append("  Status history: " + " → ".join(hist))
    if view.time_entries:
        lines.append(f"  Time: {view.total_minutes} min in {len(view.time_entries)} entr"
                     f"{'y' if len(view.time_entries) == 1 else 'ies'}")
    if view.attachments:
        lines.append("  Files: " + ", ".join(a.body for a in view.attachments[-5:]))
    for link in view.links:
        lines.append(f"  {link.label}: {link.url or link.ref}")
    if view.ai is not None and not view.ai.empty:
        lines.append(f"  AI suggestions ({view.ai.source}):")
        lines += [f"   {_cut(line, 300)}" for line in ai_lines(view.ai)]
    if view.notice:
        lines.append(f"  ✓ {view.notice}")
    buttons = list(view.actions) + list(view.ai.actions if view.ai is not None else ())
    if buttons:
        lines.append("  " + "  ".join(f"[{i}] {a.label}" for i, a in enumerate(buttons, 1)))
        lines.append("  (type a number, or write a message: an internal note; start with !public to reply)")
    return "\n".join(lines), buttons


def render_draft(view: AiDraftView) -> tuple[str, list[ViewAction]]:
    """A reply draft: its exact text (what Approve sends), its label, and the choices as numbered buttons."""
    lines = ["Reply draft (only you see this):", *(f"  | {line}" for line in view.text.splitlines()),
             f"  ({view.label})", "  " + "  ".join(f"[{i}] {a.label}" for i, a in enumerate(view.actions, 1))]
    return "\n".join(lines), list(view.actions)


def render_message(view: MessageView) -> str:
    prefix = {"error": "Error: ", "success": "✓ "}.get(view.kind, "")
    lines = [prefix + view.text]
    lines += [f"  {line}" for line in view.lines]
    if view.suggestions:
        lines.append("  Did you mean: " + ", ".join(view.suggestions))
    if view.hint:
        lines.append(f"  {view.hint}")
    return "\n".join(lines)


def render_field_prompt(f: FormField) -> str:
    """The prompt for one form field (selects list numbered options)."""
    label = f.label.removesuffix(" (optional)")  # a label that says it already: said once, here
    req = "" if f.required else " (optional, Enter to skip)"
    head = f"{label}{req}"
    if f.initial and f.kind != "select":
        head += f" [{f.initial}]"
    if f.kind == "select":
        opts = [f"   {i}) {o.label}" + ("  <- default" if o.value == f.initial else "")
                for i, o in enumerate(f.options, 1)]
        return head + "\n" + "\n".join(opts) + "\n> "
    if f.kind == "checkbox":
        return head + " (y/n) > "
    if f.kind == "search_select":
        return head + " — " + (f.hint or "type some of it to search") + " > "
    return head + (f" — {f.hint}" if f.hint else "") + " > "


def render_matches(f: FormField, query: str, matches: Sequence[FormOption], *, more: bool) -> str:
    """Numbered matches for a searched field (`more`: others match too; typing more narrows them)."""
    if not matches:
        return f"No {f.label.lower()} matches '{_cut(query, 60)}'. Type another part of the name or identifier."
    lines = [f"   {i}) {o.label}" for i, o in enumerate(matches, 1)]
    if more:
        lines.append("   … more match: type more of the name to narrow the list")
    return "\n".join(lines)


def render_pick_prompt(f: FormField, count: int) -> str:
    return f"{f.label}: pick 1-{count}, or type to search again > "


def render_form_intro(form: FormView) -> str:
    return f"{form.title} — answer each question (type 'cancel' to stop)"


def render_event(event: DomainEvent) -> str | None:
    """One line for a domain event arriving while the console runs (PSA notes, deliveries, SLA)."""
    num = f"#{event.ticket_number}" if event.ticket_number is not None else "(new ticket)"
    if isinstance(event, NoteAdded):
        if event.origin == "console":
            return None
        tag = VIS_TAG.get(event.visibility, event.visibility)
        return f"← {num} [{tag}] {event.author_name or 'PSA'}: {_cut(event.body, 200)}"
    if isinstance(event, WriteDelivered):
        return f"✓ {num} {event.kind.replace('_', ' ')} delivered to the PSA"
    if isinstance(event, WriteDead):
        return (f"!! {num} {event.kind.replace('_', ' ')} could not be delivered: {event.error} "
                f"(what to do: `deskbridge outbox show {event.op_id}`)")
    if isinstance(event, SlaWarningEvent):
        used = event.threshold if event.used_pct is None else max(event.threshold, int(event.used_pct))
        state = "BREACHED" if event.threshold >= 100 else f"{used}% used"
        return f"⏰ {num} {event.metric.replace('_', ' ')} SLA {state}: {sla_text(event.remaining_s)}"
    return None
