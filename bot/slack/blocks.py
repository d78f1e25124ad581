"""Block Kit rendering of the core views: pure functions, no I/O (limits: chat-platforms.md §2.5).

PSA text is untrusted: every piece of it passes through `esc` before it lands in mrkdwn, so a ticket
subject cannot contain `<!channel>` or a disguised link.

(Over 400 lines: one small pure renderer per core view, read together because they share the escaping and
cutting helpers; the ticket card's parts are the ones to split out next.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from bot.slack import text as t
from core.views import (
    AiDraftView,
    AlertChip,
    FormField,
    FormOption,
    FormView,
    MessageView,
    QueueView,
    RiskAlertView,
    SlaWarningView,
    TicketSummary,
    TicketView,
    ViewAction,
    ai_lines,
    human_duration,
    sla_text,
)

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION = 2900
MAX_BLOCKS = 50  # per message (chat-platforms.md 2.5; slack_sdk does not check it)
ACTION_PREFIX = "db_"
FORM_PREFIX = "db_form_"
SEARCH_PREFIX = "search_"  # external_select action_id: search_<source>, answered by the block_suggestion listener
PRIORITY_ICON = {"critical": ":red_circle:", "high": ":large_orange_circle:", "medium": ":large_yellow_circle:",
                 "low": ":white_circle:"}


def esc(value: Any) -> str:
    """Escape text for mrkdwn (&, <, >), the only characters Slack needs escaped."""
    return str(value or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(value: str, n: int) -> str:
    value = value or ""
    return value if len(value) <= n else value[: n - 1] + "…"


def _plain(value: str, n: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": _cut(value, n) or " ", "emoji": True}


def _md(value: str, n: int = MAX_SECTION) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _cut(value, n) or " "}


ALERT_ICON = {"critical": ":red_circle:", "error": ":large_orange_circle:", "warning": ":large_yellow_circle:"}


def alert_chip(a: AlertChip) -> str:
    """One linked RMM alert: icon, source, severity, state (and repeats), summary linked to the alert."""
    icon = ":white_check_mark:" if a.state == "resolved" else ALERT_ICON.get(a.severity, ":white_circle:")
    repeats = f" ×{a.triggers}" if a.triggers > 1 else ""
    summary = esc(_cut(a.summary, 120))
    return (f"{icon} {esc(a.source)} · {esc(a.severity)} · {esc(a.state)}{repeats} · "
            + (f"<{a.url}|{summary}>" if a.url else summary))


def _context(*parts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_md(p, 2000) for p in parts[:10] if p]}


def _button(a: ViewAction) -> dict[str, Any]:
    b: dict[str, Any] = {"type": "button", "text": _plain(a.label), "action_id": ACTION_PREFIX + a.action,
                         "value": _cut(a.value, 2000) or "-"}
    if a.url:
        b["url"] = a.url[:3000]
    if a.style in ("primary", "danger"):
        b["style"] = a.style
    return b


def _row_line(row: TicketSummary, view: QueueView) -> str:
    age = human_duration((view.now - row.created_at).total_seconds())
    sla = sla_text(row.sla_remaining_s)
    if sla:
        sla = (":rotating_light: " if (row.sla_remaining_s or 0) <= 0 else ":hourglass: ") + sla
    meta = " · ".join(p for p in (esc(row.customer_name or "no customer"),
                                  f"{PRIORITY_ICON.get(row.priority.value, '')} {row.priority.label}",
                                  esc(row.status_name), esc(row.assignee_name or "unassigned"), f"{age} old", sla)
                      if p)
    return f"*{row.display_number}* {esc(_cut(row.subject, 150))}\n{meta}"


def queue_blocks(view: QueueView, *, filters: str = "") -> list[dict[str, Any]]:
    """The queue as a message: one section per ticket with an Open button; pages with Next."""
    title = view.title + (f" ({view.total})" if view.total is not None else "")
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain(title, 150)}]
    ctx = [p for p in (f"Filters: `{esc(view.filters_text)}`" if view.filters_text else "",
                       esc(view.scope_note) if view.scope_note else "") if p]
    if ctx:
        blocks.append(_context(*ctx))
    if not view.rows:
        blocks.append({"type": "section", "text": _md(esc(view.empty_text))})
        return blocks
    for row in view.rows[: MAX_MESSAGE_BLOCKS - 4]:
        # the Open button as `_button(ViewAction(action="open", label="Open", value=row.ref))` makes it, written out
        # (a page makes one per row: the view object and the helper calls were a third of the page's blocks)
        blocks.append({"type": "section", "text": _md(_row_line(row, view)), "accessory": {
            "type": "button", "text": {"type": "plain_text", "text": "Open", "emoji": True},
            "action_id": ACTION_PREFIX + "open", "value": _cut(row.ref, 2000) or "-"}})
    if view.next_cursor:
        value = json.dumps({"f": filters or view.filters_text, "c": view.next_cursor}, separators=(",", ":"))
        if len(value) <= 2000:
            blocks.append({"type": "actions", "elements": [
                {"type": "button", "text": _plain("Next page"), "action_id": ACTION_PREFIX + "page", "value": value}]})
    return blocks


def ticket_blocks(view: TicketView, *, max_notes: int = 8) -> list[dict[str, Any]]:
    """The ticket card: fields, conversation (public vs internal marked), history, time, files, buttons."""
    s, d = view.summary, view.detail
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain(f"{s.display_number} {s.subject}", 150)}]
    fields = [f"*Customer*\n{esc(s.customer_name or '—')}", f"*Priority*\n{PRIORITY_ICON.get(s.priority.value, '')} "
              f"{s.priority.label}", f"*Status*\n{esc(s.status_name)}", f"*Assignee*\n{esc(s.assignee_name or '—')}"]
    if view.sla_remaining_s is not None:
        fields.append(f"*SLA*\n{sla_text(view.sla_remaining_s)}")
    if d.board_name:
        fields.append(f"*Board*\n{esc(d.board_name)}")
    if d.contact_name:
        fields.append(f"*Contact*\n{esc(d.contact_name)}")
    blocks.append({"type": "section", "fields": [_md(f, 2000) for f in fields[:10]]})
    if view.facts:  # technicians only (core builds none for a customer): Slack takes 10 fields a section
        blocks.append({"type": "section", "fields": [_md(f"*{esc(label)}*\n{esc(value)}", 2000)
                                                     for label, value in view.facts[:10]]})
    if d.description:
        blocks.append({"type": "section", "text": _md(esc(_cut(d.description, 1200)))})
    notes = view.conversation[-max_notes:]
    if notes:
        blocks.append({"type": "divider"})
        if len(view.conversation) > len(notes):
            blocks.append(_context(f"{len(view.conversation) - len(notes)} earlier note(s) not shown"))
        for n in notes:
            badge = t.VISIBILITY_BADGE.get(n.visibility, n.visibility)
            queued = " · :x: _not in the PSA (refused)_" if n.failed else " · _queued_" if n.queued else ""
            blocks.append({"type": "section", "text": _md(f"{badge} · {esc(n.author)}{queued}\n{esc(_cut(n.body, 1500))}")})
    extra = []
    if view.status_history:
        hist = " → ".join(esc((i.data.get("to") or {}).get("status", "?")) for i in view.status_history[-5:])
        extra.append(f"Status history: {hist}")
    if view.time_entries:
        count = len(view.time_entries)
        extra.append(f"Time: {view.total_minutes} min ({count} {'entry' if count == 1 else 'entries'})")
    if view.attachments:
        extra.append("Files: " + ", ".join(esc(a.body) for a in view.attachments[-5:]))
    for link in view.links:
        if link.kind != "psa":
            extra.append(f"{esc(link.label)}: " + (f"<{link.url}|{esc(link.ref or 'open')}>" if link.url
                                                     else esc(link.ref)))
    if extra:
        blocks.append(_context(*extra))
    if view.alerts:  # technicians only (core builds none for a customer)
        blocks.append(_context(*(alert_chip(a) for a in view.alerts[:10])))
    if view.ai is not None and not view.ai.empty:
        blocks.append({"type": "section", "text": _md(
            ":bulb: *AI suggestions*\n" + "\n".join(esc(_cut(line, 600)) for line in ai_lines(view.ai)))})
        blocks.append(_context(esc(view.ai.source)))
        if view.ai.actions:
            blocks.append({"type": "actions", "block_id": f"ai_{s.number or s.id}",
                           "elements": [_button(a) for a in view.ai.actions[:5]]})
    status = []
    if d.dead_writes:
        status.append(f":x: {d.dead_writes} write(s) could not be delivered to the PSA (`/deskbridge outbox`)")
    elif d.pending_writes:
        status.append(f":hourglass_flowing_sand: {d.pending_writes} write(s) {t.QUEUED_SUFFIX}")
    if view.notice:
        status.append(esc(view.notice))
    if status:
        blocks.append(_context(*status))
    if view.actions:
        blocks.append({"type": "actions", "block_id": f"ticket_{s.number or s.id}",
                       "elements": [_button(a) for a in view.actions[:25]]})
    return blocks[:MAX_MESSAGE_BLOCKS]


def ticket_modal(view: TicketView) -> dict[str, Any]:
    """A ticket card as a modal (opened from App Home, which has no channel to post into)."""
    return {"type": "modal", "title": _plain(f"Ticket {view.summary.display_number}", 24),
            "close": _plain("Close", 24), "blocks": ticket_blocks(view)[:MAX_VIEW_BLOCKS]}


def draft_blocks(view: AiDraftView) -> list[dict[str, Any]]:
    """A reply draft for the technician who asked: the exact text Approve sends, its label, the choices."""
    return [
        {"type": "section", "text": _md(":memo: *Reply draft* (only you can see this)\n" + esc(_cut(view.text, 2800)))},
        _context(esc(view.label)),
        {"type": "actions", "block_id": f"draft_{view.draft_id}", "elements": [_button(a) for a in view.actions]},
    ]


def draft_modal(view: AiDraftView) -> dict[str, Any]:
    """The draft where there is no message to answer in (App Home, a ticket modal)."""
    return {"type": "modal", "title": _plain("Reply draft", 24), "close": _plain("Close", 24),
            "blocks": draft_blocks(view)}


def ticket_fallback(view: TicketView) -> str:
    """The notification/accessibility text sent beside the blocks."""
    s = view.summary
    return esc(f"{s.display_number} {s.subject} ({s.status_name})")


def message_blocks(view: MessageView) -> list[dict[str, Any]]:
    icon = {"error": ":warning: ", "success": ":white_check_mark: "}.get(view.kind, "")
    about = f"<@{view.about_user}> " if view.about_user and re.fullmatch(r"[UW][A-Z0-9_]{1,30}", view.about_user) else ""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _md(icon + about + esc(view.text))}]
    if view.lines:
        blocks.append({"type": "section", "text": _md("\n".join(f"• {line}" for line in view.lines))})
    if view.suggestions:
        blocks.append(_context("Did you mean: " + ", ".join(f"`{esc(x)}`" for x in view.suggestions)))
    if view.hint:
        blocks.append(_context(esc(view.hint)))
    return blocks


def message_fallback(view: MessageView) -> str:
    return esc(view.text + (f" {view.hint}" if view.hint else ""))


# ---------------------------------------------------------------- modals


def _option(o: FormOption) -> dict[str, Any]:
    return {"text": _plain(o.label), "value": o.value[:150]}


def select_options(options: Sequence[FormOption]) -> list[dict[str, Any]]:
    """Option objects for a select, or for the answer to an external_select's block_suggestion (at most 100)."""
    return [_option(o) for o in options[:100]]


def _input(f: FormField) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "input", "block_id": f.name, "label": _plain(f.label, 2000),
                             "optional": not f.required}
    if f.hint:
        block["hint"] = _plain(f.hint, 2000)
    if f.kind == "search_select" and f.source:
        # Options come from the block_suggestion listener as the user types (any number of them); 0 means
        # the first ones show as soon as the menu opens.
        el: dict[str, Any] = {"type": "external_select", "action_id": SEARCH_PREFIX + f.source,
                              "min_query_length": 0}
        chosen = next((o for o in f.options if o.value == f.initial), None)
        if chosen:
            el["initial_option"] = _option(chosen)
    elif f.kind == "select" and f.options:
        options = select_options(f.options)
        el = {"type": "static_select", "action_id": "v", "options": options}
        chosen_opt = next((o for o in options if o["value"] == f.initial), None)
        if chosen_opt:
            el["initial_option"] = chosen_opt
    elif f.kind == "checkbox":
        opt = {"text": _plain(f.label), "value": "true"}
        el = {"type": "checkboxes", "action_id": "v", "options": [opt]}
        if f.initial in ("true", "1", "on"):
            el["initial_options"] = [opt]
    else:
        el = {"type": "plain_text_input", "action_id": "v", "multiline": f.kind == "textarea"}
        if f.max_length:
            el["max_length"] = min(f.max_length, 3000)
        if f.initial:
            el["initial_value"] = f.initial[:3000]
    block["element"] = el
    return block


def form_modal(form: FormView, metadata: dict[str, Any]) -> dict[str, Any]:
    """A modal for a form; `metadata` (ticket, channel, thread) rides in private_metadata."""
    ticket = form.ticket_ref or form.ticket_number
    meta = json.dumps({**metadata, "form": form.form, "ticket": ticket}, separators=(",", ":"))
    if len(meta) > 3000:
        meta = json.dumps({"form": form.form, "ticket": ticket})
    return {"type": "modal", "callback_id": FORM_PREFIX + form.form, "title": _plain(form.title, 24),
            "submit": _plain(form.submit_label, 24), "close": _plain("Cancel", 24), "private_metadata": meta,
            "blocks": [_input(f) for f in form.fields][:MAX_VIEW_BLOCKS]}


def loading_modal(title: str) -> dict[str, Any]:
    """Opened on the trigger while a slow form is being built; `views.update` replaces it."""
    return {"type": "modal", "title": _plain(title, 24), "close": _plain("Cancel", 24),
            "blocks": [{"type": "section", "text": _md(t.LOADING)}]}


def error_modal(title: str, message: str, hint: str | None) -> dict[str, Any]:
    """What a loading modal becomes when the form could not be built."""
    return {"type": "modal", "title": _plain(title, 24), "close": _plain("Close", 24),
            "blocks": [{"type": "section", "text": _md(esc(t.error_text(message, hint)))}]}


def _same_modal(view: dict[str, Any], blocks: list[dict[str, Any]], *, submit: bool) -> dict[str, Any]:
    out = {k: view[k] for k in ("type", "callback_id", "private_metadata", "title", "close") if view.get(k)}
    if submit and view.get("submit"):
        out["submit"] = view["submit"]
    out["blocks"] = blocks[:MAX_VIEW_BLOCKS]
    return out


def saving_modal(view: dict[str, Any]) -> dict[str, Any]:
    """A submitted form whose write is slow: the modal says so instead of timing out."""
    return _same_modal(view, [{"type": "section", "text": _md(t.SAVING)}], submit=False)


def submit_done_modal(view: dict[str, Any], confirmation: str) -> dict[str, Any]:
    return _same_modal(view, [{"type": "section", "text": _md(esc(t.confirm_thread(confirmation)))}], submit=False)


def submit_failed_modal(view: dict[str, Any], message: str, hint: str | None,
                        values: dict[str, str]) -> dict[str, Any]:
    """The form again, filled with what the user entered and the reason on top: fix and send, nothing lost."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _md(esc(t.error_text(message, hint)))}]
    for block in view.get("blocks") or []:
        block = json.loads(json.dumps(block))
        el = block.get("element") or {}
        value = values.get(str(block.get("block_id")))
        if value is not None and el.get("type") == "plain_text_input":
            el["initial_value"] = value[:3000]
        elif value is not None and el.get("type") == "static_select":
            chosen = next((o for o in el.get("options") or [] if o.get("value") == value), None)
            if chosen:
                el["initial_option"] = chosen
        blocks.append(block)
    return _same_modal(view, blocks, submit=True)


def form_values(state: dict[str, Any]) -> dict[str, str]:
    """view.state.values -> {field: value} (selects give the option value; checkboxes "true"/"false")."""
    out: dict[str, str] = {}
    for block_id, actions in (state or {}).items():
        actions = actions or {}
        el = actions.get("v") or next((e for a, e in actions.items() if str(a).startswith(SEARCH_PREFIX)), None) or {}
        kind = el.get("type")
        if kind in ("static_select", "external_select"):
            opt = el.get("selected_option")
            if opt:
                out[block_id] = str(opt.get("value", ""))
        elif kind == "checkboxes":
            out[block_id] = "true" if el.get("selected_options") else "false"
        elif el.get("value") is not None:
            out[block_id] = str(el["value"])
    return out


# ---------------------------------------------------------------- home, SLA, thread notes


def home_view(view: QueueView | None, *, unlinked: bool = False) -> dict[str, Any]:
    """App Home: the technician's own queue."""
    if unlinked or view is None:
        return {"type": "home", "blocks": [{"type": "section", "text": _md(t.HOME_UNLINKED)}]}
    blocks = queue_blocks(view)
    if not view.rows:
        blocks = blocks[:1] + [{"type": "section", "text": _md(t.HOME_EMPTY)}]
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}


def home_error_view(message: str, hint: str | None) -> dict[str, Any]:
    """App Home after a failed button (the tab has no response_url for an ephemeral reply)."""
    return {"type": "home", "blocks": [{"type": "section", "text": _md(esc(t.error_text(message, hint)))}]}


def sla_blocks(w: SlaWarningView) -> list[dict[str, Any]]:
    head = t.SLA_BREACHED if w.breached else f"{t.SLA_WARNING} ({w.used_text})"
    num = f"#{w.ticket_number}" if w.ticket_number is not None else "(new)"
    title = f"<{w.psa_url}|{num}>" if w.psa_url else num
    metric = w.metric.replace("_", " ")
    body = (f"{head} · {metric}\n{title} {esc(_cut(w.subject, 200))}\n"
            f"{esc(w.customer_name or 'no customer')} · {esc(w.priority.capitalize())} · {sla_text(w.remaining_s)}")
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _md(body)}]
    if w.ticket_number is not None:
        blocks.append({"type": "actions", "elements": [_button(ViewAction(action="open", label="Open ticket",
                                                                          value=str(w.ticket_number)))]})
    return blocks


def risk_blocks(r: RiskAlertView) -> list[dict[str, Any]]:
    """A ticket newly at risk of escalation, for a technicians' SLA/dispatch channel, with its top reasons."""
    num = f"#{r.ticket_number}" if r.ticket_number is not None else "(new)"
    title = f"<{r.psa_url}|{num}>" if r.psa_url else num
    body = (f":warning: *{esc(r.headline)}*\n{title} {esc(_cut(r.subject, 200))}\n"
            f"{esc(r.customer_name or 'no customer')} · {esc(r.priority.capitalize())}\n{esc(_cut(r.why, 400))}")
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _md(body)},
                                    _context(esc("Deskbridge AI: escalation model trained on this workspace's tickets"))]
    if r.ticket_number is not None:
        blocks.append({"type": "actions", "elements": [_button(ViewAction(action="open", label="Open ticket",
                                                                          value=str(r.ticket_number)))]})
    return blocks


def risk_fallback(r: RiskAlertView) -> str:
    return esc(f"At risk ({r.score:.0%}): #{r.ticket_number} {r.subject}")


def sla_fallback(w: SlaWarningView) -> str:
    return esc(f"SLA {'breached' if w.breached else 'warning'}: #{w.ticket_number} {w.subject}")


def psa_note_blocks(author: str | None, visibility: str, body: str, *,
                    prefix: str = t.THREAD_PSA_PREFIX) -> list[dict[str, Any]]:
    """A note posted into a ticket's thread: a heading line, then every word of the body (a note reaches 30,000
    characters; a section holds 3,000, a message 50 blocks), split at line ends where it can be."""
    badge = t.VISIBILITY_BADGE.get(visibility, visibility)
    head = f"{prefix} · {badge} · {esc(author or 'PSA')}\n"
    parts = _escaped_parts(body, MAX_SECTION, first=MAX_SECTION - len(head))
    if len(parts) > MAX_BLOCKS:  # only a body of nearly all & < > gets here: keep the start, say where the rest is
        parts = [*parts[:MAX_BLOCKS - 1], "… (the rest is longer than one Slack message: open the ticket for it)"]
    parts[0] = head + parts[0]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": part or " "}} for part in parts]


def _escaped_parts(text: str, size: int, *, first: int) -> list[str]:
    """`text` escaped for mrkdwn, in pieces of at most `size` characters (`first` for the first), never splitting
    an entity, cut after a line end (else a space) in the piece's last quarter when there is one."""
    parts: list[str] = []
    rest = text
    while rest:
        room = first if not parts else size
        take, used = 0, 0
        while take < len(rest) and used + len(esc(rest[take])) <= room:
            used += len(esc(rest[take]))
            take += 1
        if take < len(rest):
            floor = take * 3 // 4
            cut = rest.rfind("\n", floor, take)
            cut = cut if cut >= 0 else rest.rfind(" ", floor, take)
            take = cut + 1 if cut >= 0 else take
        parts.append(esc(rest[:take]))
        rest = rest[take:]
    return parts or [""]

