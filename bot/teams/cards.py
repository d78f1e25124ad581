"""Adaptive Card 1.5 rendering of the core views: pure functions, no I/O.

Buttons are `Action.Execute` (verb `deskbridge`, data `{action, ref}`), answered in place by the
`adaptiveCard/action` handler; forms are inline inputs whose submit button carries `submit: true`. At most
6 actions per set (Teams' host config), a ticket card's first 3 as buttons and the rest in its "…" menu
(`mode: secondary`); links out are `Action.OpenUrl`. scripts/card_previews.py draws every kind and checks it.
"""

from __future__ import annotations

from typing import Any

from core.views import (
    AiDraftView,
    AiSuggestionsView,
    AlertOfferView,
    FormField,
    FormView,
    MessageView,
    QueueView,
    RiskAlertView,
    SlaWarningView,
    TicketView,
    ai_lines,
    sla_text,
)

CARD = "application/vnd.microsoft.card.adaptive"
VERSION = "1.5"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERB = "deskbridge"
MAX_ACTIONS = 6
PRIMARY_ACTIONS = 3  # buttons shown on a ticket card; the rest are in its overflow menu (docs/cards/ticket.png)
URL_ACTIONS = ("open_psa", "open_rmm", "open_runbook", "open_docs")
CARD_ACTIONS = ("reply", "note", "status", "assign_me", "time", "alert_ack", "alert_resolve", "open", "context")


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    card: dict[str, Any] = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "body": body}
    if actions:
        card["actions"] = actions[:MAX_ACTIONS]
    return card


def _text(text: str, **kw: Any) -> dict[str, Any]:
    """Our own words: a TextBlock (Teams reads its text as Markdown, so only for text we wrote)."""
    return {"type": "TextBlock", "text": text or " ", "wrap": True, **kw}


_BLOCK_KEYS = frozenset({"spacing", "separator", "horizontalAlignment", "id", "isVisible"})
NOTE_CHARS, DESCRIPTION_CHARS = 1500, 1200  # per card, with a line saying how much more there is


def _plain(text: str, **kw: Any) -> dict[str, Any]:
    """What someone else wrote (a subject, a note, a name), shown exactly: a RichTextBlock of TextRuns, which the
    Adaptive Card schema says are not read as Markdown, so `*`, `_`, `[x](y)`, `1.` and HTML stay as typed. A run
    is also cut between the two braces of every `{{`, so `{{DATE(…)}}` is not turned into a date by the host."""
    block = {k: v for k, v in kw.items() if k in _BLOCK_KEYS}
    style = {k: v for k, v in kw.items() if k not in _BLOCK_KEYS}
    pieces = (text or " ").split("{{")
    runs = [pieces[0]] + ["{" + p for p in pieces[1:]]
    for i in range(len(runs) - 1):
        runs[i] += "{"
    inlines = [{"type": "TextRun", "text": r, **style} for r in runs if r]
    return {"type": "RichTextBlock", "inlines": inlines, **block}


def _plain_cut(text: str, limit: int, *, customer: bool = False, **kw: Any) -> list[dict[str, Any]]:
    """`_plain`, and when the text is longer than a card holds, a line saying how much is not shown (never a silent
    cut of someone's words) and where the rest is: for a customer, who has no PSA, in this ticket's replies."""
    if len(text) <= limit:
        return [_plain(text, **kw)]
    cut = text.rfind("\n", limit // 2, limit)
    cut = cut if cut > 0 else limit
    rest = len(text[cut:].strip())
    where = "ask us in this ticket's replies for the whole text" if customer else "the whole text is in the PSA"
    return [_plain(text[:cut].rstrip() + " …", **kw),
            _text(f"{rest:,} more characters are not shown on this card; {where}.",
                  isSubtle=True, size="Small", spacing="None")]


def _fact(title: str, value: str) -> dict[str, Any]:
    """A label and a value from the PSA (a FactSet would read the value as Markdown)."""
    return {"type": "RichTextBlock", "spacing": "None", "inlines": [
        {"type": "TextRun", "text": f"{title}: ", "weight": "Bolder"},
        *_plain(value)["inlines"]]}


def execute(title: str, action: str, ref: str = "", **data: Any) -> dict[str, Any]:
    return {"type": "Action.Execute", "title": title, "verb": VERB, "data": {"action": action, "ref": ref, **data}}


def message_card(view: MessageView) -> dict[str, Any]:
    color = {"error": "Attention", "success": "Good"}.get(view.kind, "Default")
    body = [_text(view.text, weight="Bolder", color=color)]
    body += [_text(line, spacing="Small") for line in view.lines]
    if view.hint:
        body.append(_text(view.hint, isSubtle=True, spacing="Small"))
    if view.suggestions:
        body.append(_text("Try: " + " · ".join(view.suggestions), isSubtle=True, spacing="Small"))
    return _card(body)


def ticket_card(view: TicketView, *, max_notes: int = 6) -> dict[str, Any]:
    s, d = view.summary, view.detail
    facts = [{"title": "Customer", "value": s.customer_name or "—"},
             {"title": "Priority", "value": s.priority.label},
             {"title": "Status", "value": s.status_name},
             {"title": "Assignee", "value": s.assignee_name or "—"}]
    if view.sla_remaining_s is not None:
        facts.append({"title": "SLA", "value": sla_text(view.sla_remaining_s)})
    if d.board_name:
        facts.append({"title": "Board", "value": d.board_name})
    facts += [{"title": label, "value": value} for label, value in view.facts]
    body: list[dict[str, Any]] = [_plain(f"{s.display_number} {s.subject}", size="Medium", weight="Bolder"),
                                  *(_fact(f["title"], f["value"]) for f in facts)]
    customer = view.audience == "customer"
    if d.description:
        body += _plain_cut(d.description, DESCRIPTION_CHARS, customer=customer)
    for n in view.conversation[-max_notes:]:
        state = " · not in the PSA (refused)" if n.failed else " · queued" if n.queued else ""
        body.append({"type": "Container", "separator": True, "items": [
            _plain(f"{n.visibility.capitalize()} · {n.author}{state}", isSubtle=True, size="Small"),
            *_plain_cut(n.body, NOTE_CHARS, customer=customer, spacing="None")]})
    status = []
    if d.dead_writes:
        status.append(f"{d.dead_writes} write(s) could not be delivered to the PSA (`outbox`).")
    elif d.pending_writes:
        status.append(f"{d.pending_writes} write(s) queued for the PSA.")
    if view.notice:
        status.append(view.notice)
    body += [_text(line, isSubtle=True, size="Small") for line in status]
    for a in view.alerts[:10]:  # linked RMM alerts, technicians only (core builds none for a customer)
        repeats = f" ×{a.triggers}" if a.triggers > 1 else ""
        line = f"Alert · {a.source} · {a.severity} · {a.state}{repeats} · {a.summary[:120]}"
        alert = _plain(line, isSubtle=True, size="Small")
        if a.url:  # the link is ours (the RMM's page), on the whole line; the summary's own text stays text
            for run in alert["inlines"]:
                run["selectAction"] = {"type": "Action.OpenUrl", "url": a.url}
        body.append(alert)
    if view.ai is not None and not view.ai.empty:
        body.append(_ai_container(view.ai))
    links = [{"type": "Action.OpenUrl", "title": a.label, "url": a.url} for a in view.actions if a.url]
    if links:  # links out get their own row: the card's own row holds the (at most 6) buttons
        body.append({"type": "ActionSet", "actions": links[:MAX_ACTIONS]})
    actions = [execute(a.label, a.action, a.value or s.ref) for a in view.actions
               if not a.url and a.action in CARD_ACTIONS]
    for extra in actions[PRIMARY_ACTIONS:]:  # in Teams' "…" menu: a row of six buttons cuts every title short
        extra["mode"] = "secondary"
    card = _card(body, actions)
    card["refresh"] = {"action": execute("Refresh", "open", s.ref)}  # Teams redraws it per user on open
    return card


def saving_card(what: str, ref: str | None = None) -> dict[str, Any]:
    """A write click's answer when its write was not accepted within the hold budget (bot/teams/hold.py): the
    clicked card says it is saving until the outcome replaces it (the technician has nothing to do meanwhile).
    A ticket's card keeps its refresh, so whoever looks at it later sees the ticket as it is then."""
    on = f" on #{ref}" if ref and ref.isdigit() else ""
    body = [_text(f"Saving your {what}{on}…", weight="Bolder"),
            _text("Deskbridge is busy: this card shows the result in a moment.", isSubtle=True, spacing="Small")]
    card = _card(body)
    if ref:
        card["refresh"] = {"action": execute("Refresh", "open", ref)}
    return card


def alert_offer_card(view: AlertOfferView) -> dict[str, Any]:
    """An alert that made no ticket: what it is, a customer choice and "Create ticket" (core/intake/offers.py)."""
    body = [_plain(view.title[:300], weight="Bolder")]
    body += [_plain(line, isSubtle=True, spacing="Small") for line in view.lines]
    if view.hint:
        body.append(_text(view.hint, isSubtle=True, spacing="Small"))
    if view.customers:
        body.append({"type": "Input.ChoiceSet", "id": "customer", "label": "Customer", "placeholder": "Customer",
                     "choices": [{"title": o.label[:120], "value": o.value} for o in view.customers[:100]]})
    return _card(body, [execute("Create ticket", "alert_create", alert=str(view.alert_id))])


def _ai_container(ai: AiSuggestionsView) -> dict[str, Any]:
    """AI assist on a technician's card: each suggestion with its confidence, the source, its own buttons."""
    items: list[dict[str, Any]] = [_text("AI suggestions", weight="Bolder", size="Small")]
    items += [_plain(line[:600], size="Small", spacing="None") for line in ai_lines(ai)]
    items.append(_text(ai.source, isSubtle=True, size="Small"))
    if ai.actions:
        items.append({"type": "ActionSet", "actions": [execute(a.label, a.action, a.value)
                                                       for a in ai.actions[:MAX_ACTIONS]]})
    return {"type": "Container", "separator": True, "items": items}


def draft_card(view: AiDraftView) -> dict[str, Any]:
    """A reply draft for the technician who asked (their 1:1 chat): the exact text Approve sends, its label."""
    body = [_text("Reply draft", size="Medium", weight="Bolder"), _plain(view.text),
            _text(view.label, isSubtle=True, size="Small")]
    return _card(body, [execute(a.label, a.action, a.value) for a in view.actions])


def queue_card(view: QueueView) -> dict[str, Any]:
    """A page of a queue; each row opens its ticket. The technician's own queue (`my queue`, kind my_queue) pages
    and refreshes as itself, and its rows open the ticket as a new message below it (the queue stays, as Slack's
    App Home stays behind its ticket modal)."""
    mine = view.kind == "my_queue"
    body: list[dict[str, Any]] = [_text(view.title + (f" ({view.total})" if view.total is not None else ""),
                                        weight="Bolder", size="Medium")]
    if view.scope_note:
        body.append(_text(view.scope_note, isSubtle=True, spacing="Small"))
    if view.filters_text and not mine:
        body.append(_text(f"Filters: {view.filters_text}", isSubtle=True, spacing="Small"))
    if not view.rows:
        body.append(_text(view.empty_text))
    show_sla = any(key == "sla" for key, _ in view.columns)
    opened = {"from": "my_queue"} if mine else {}
    for t in view.rows:
        extra = f" · SLA {sla_text(t.sla_remaining_s)}" if show_sla and t.sla_remaining_s is not None else ""
        body.append({"type": "Container", "separator": True, "selectAction": execute("Open", "open", t.ref, **opened),
                     "items": [_plain(f"{t.display_number} {t.subject}", weight="Bolder"),
                               _plain(f"{t.customer_name or '—'} · {t.priority.label} · {t.status_name} · "
                                     f"{t.assignee_name or 'unassigned'}{extra}", isSubtle=True, spacing="None")]})
    actions = []
    if view.next_cursor:
        if mine:
            actions.append(execute("Next page", "my_queue", cursor=view.next_cursor))
        else:
            actions.append(execute("Next page", "page", filters=view.filters_text, cursor=view.next_cursor))
    if mine:
        actions.append(execute("Refresh", "my_queue"))
    card = _card(body, actions)
    if mine:  # Teams asks again whenever the technician looks at it: the queue shown is the queue now
        card["refresh"] = {"action": execute("Refresh", "my_queue")}
    return card


def form_card(view: FormView, *, values: dict[str, Any] | None = None, error: str | None = None,
              error_field: str | None = None) -> dict[str, Any]:
    """A form as inline inputs. Given back after a refused write: filled in with what was sent, the reason under
    the field it concerns (or at the top)."""
    body: list[dict[str, Any]] = [_text(view.title, weight="Bolder", size="Medium")]
    names = {f.name for f in view.fields}
    if error and error_field not in names:
        body.append(_text(error, color="Attention"))
    for f in view.fields:
        label = f.label + ("" if f.required or "(optional)" in f.label else " (optional)")  # core may say so
        if f.kind == "search_select" and f.source:
            el: dict[str, Any] = search_choice_set(f, label)
        elif f.kind in ("select", "search_select") and f.options:
            el = {"type": "Input.ChoiceSet", "id": f.name, "label": label, "style": "compact",
                                  "choices": [{"title": o.label[:75], "value": o.value} for o in f.options[:100]]}
        elif f.kind == "checkbox":
            el = {"type": "Input.Toggle", "id": f.name, "title": f.label, "valueOn": "true", "valueOff": "false"}
        else:
            el = {"type": "Input.Text", "id": f.name, "label": label, "isMultiline": f.kind == "textarea"}
            if f.max_length:
                el["maxLength"] = f.max_length
        sent = (values or {}).get(f.name)
        if sent is not None:
            el["value"] = str(sent)
        elif f.initial is not None:
            el["value"] = f.initial
        if f.required:
            el["isRequired"] = True
            el["errorMessage"] = f"{f.label} is required."
        body.append(el)
        if error and error_field == f.name:
            body.append(_text(error, color="Attention", size="Small", spacing="None"))
        if f.hint:
            body.append(_text(f.hint, isSubtle=True, size="Small", spacing="None"))
    submit = execute(view.submit_label, view.form, view.ticket_ref or "", submit=True)
    return _card(body, [submit])


def search_choice_set(f: FormField, label: str) -> dict[str, Any]:
    """A choice set that asks us as the user types (Teams' dynamic typeahead: `choices.data` is a `Data.Query`
    on the field's source, answered by the `application/search` invoke). Its static choices are the initial
    one only; a client without dynamic typeahead shows those (the hint says to type the name)."""
    return {"type": "Input.ChoiceSet", "id": f.name, "label": label, "style": "filtered",
            "choices": [{"title": o.label[:75], "value": o.value} for o in f.options[:1]],
            "choices.data": {"type": "Data.Query", "dataset": f.source},
            "placeholder": "Type part of the name or identifier"}


def sla_card(w: SlaWarningView) -> dict[str, Any]:
    """An SLA warning for a technicians' channel (never sent where the customer reads)."""
    head = "SLA breached" if w.breached else f"SLA warning ({w.used_text})"
    num = f"#{w.ticket_number}" if w.ticket_number is not None else "(new)"
    body = [_text(f"{head} · {w.metric.replace('_', ' ')}", weight="Bolder",
                  color="Attention" if w.breached else "Warning"),
            _plain(f"{num} {w.subject[:200]}"),
            _plain(f"{w.customer_name or 'no customer'} · {w.priority.capitalize()} · {sla_text(w.remaining_s)}",
                  isSubtle=True, spacing="Small")]
    actions = []
    if w.ticket_number is not None:
        actions.append(execute("Open ticket", "open", str(w.ticket_number)))
    if w.psa_url:
        actions.append({"type": "Action.OpenUrl", "title": "Open in PSA", "url": w.psa_url})
    return _card(body, actions)


def risk_card(r: RiskAlertView) -> dict[str, Any]:
    """A ticket newly at risk of escalation, for a technicians' SLA/dispatch channel, with its top reasons."""
    num = f"#{r.ticket_number}" if r.ticket_number is not None else "(new)"
    body = [_text(r.headline, weight="Bolder", color="Warning"), _plain(f"{num} {r.subject[:200]}"),
            _plain(f"{r.customer_name or 'no customer'} · {r.priority.capitalize()}", isSubtle=True, spacing="Small"),
            _plain(r.why[:400], size="Small"),
            _text("Deskbridge AI: escalation model trained on this workspace's tickets", isSubtle=True, size="Small")]
    actions = []
    if r.ticket_number is not None:
        actions.append(execute("Open ticket", "open", str(r.ticket_number)))
    if r.psa_url:
        actions.append({"type": "Action.OpenUrl", "title": "Open in PSA", "url": r.psa_url})
    return _card(body, actions)


def any_card(view: Any) -> dict[str, Any]:
    if isinstance(view, TicketView):
        return ticket_card(view)
    if isinstance(view, QueueView):
        return queue_card(view)
    if isinstance(view, FormView):
        return form_card(view)
    if isinstance(view, AiDraftView):
        return draft_card(view)
    return message_card(view)


def fallback(view: Any) -> str:
    """The notification text sent beside a card."""
    if isinstance(view, TicketView):
        return f"{view.summary.display_number} {view.summary.subject}"
    if isinstance(view, QueueView):
        return view.title
    if isinstance(view, FormView):
        return view.title
    if isinstance(view, AiDraftView):
        return "Reply draft"
    return str(getattr(view, "text", ""))
