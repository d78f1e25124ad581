"""Adaptive Cards for Microsoft 365 context beside a ticket in Teams (pure functions, no I/O).

The card's Context button (`context`) answers the clicking technician's invoke with the context card; its buttons
(`ctx_*`) answer with the next card in place. Adaptive Cards have no confirmation dialog, so a quick action first
answers with a confirmation card whose Yes carries a fresh intent id: the action is queued once for that id, however
often Teams redelivers the invoke. Directory text is data, never markup: TextBlocks are plain (no Markdown links).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from bot.teams.cards import SCHEMA, VERSION, execute
from core.tenant_actions import (
    CONFIRM,
    LABELS,
    NOT_SHOWN_AGAIN,
    RESET_AGAIN_LABEL,
    SHOWN_ONCE,
    AskAgain,
    QuickActionAccepted,
)
from core.tenant_context import SIGN_IN_SCAN, ActivityView, AppsView, UserQuickView
from core.views import AiSimilarView

MAX_DEVICES = 10
ACTION_OF = {"ctx_reset": "reset_password", "ctx_revoke": "revoke_sessions", "ctx_sync": "sync_device"}  # card verb -> action


CONTEXT_PRIMARY = 2  # buttons shown on the context card; quick actions go in its "…" menu


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _t(text: str, **kw: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": (text or " ").replace("[", "(").replace("]", ")"), "wrap": True, **kw}


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    card: dict[str, Any] = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "body": body}
    if actions:
        card["actions"] = actions[:6]
    return card


def _user(view: UserQuickView) -> list[dict[str, Any]]:
    u = view.user
    if u is None:
        return [_t("No Microsoft 365 user shown" + (f" for {view.email}" if view.email else ""), weight="Bolder")]
    facts = [("Account", f"{'enabled' if u.enabled else 'DISABLED'} · "
                         f"{'synced from on-premises AD' if u.on_prem_synced else 'cloud-only'}")]
    if not any(n.startswith("Sign-in:") for n in view.notes):
        facts.append(("Last sign-in", _when(view.last_sign_in)))
    if view.mfa is not None:
        state = {True: "registered", False: "NOT registered", None: "methods"}[view.mfa.registered]
        facts.append(("MFA", f"{state}: {', '.join(view.mfa.methods) or 'none'}"))
    if view.licences is not None:
        facts.append(("Licences", ", ".join(x.name for x in view.licences) or "none"))
    about = "chosen for this ticket" if view.chosen else "the ticket's contact"
    return [_t(f"{u.display_name} · {u.upn} ({about})", weight="Bolder"),
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts]}]


def _devices(view: UserQuickView, t: int, can_act: bool) -> list[dict[str, Any]]:
    if view.devices is None:
        return []
    if not view.devices:
        return [_t("Devices: none in Intune", isSubtle=True)]
    out: list[dict[str, Any]] = []
    for d in view.devices[:MAX_DEVICES]:
        enc = {True: "encrypted", False: "NOT encrypted", None: "encryption unknown"}[d.encrypted]
        pin = " (this ticket's device)" if d.id == view.device_id else ""
        acts = [execute("Installed apps", "ctx_apps", f"id:{t}", device=d.id)]
        if can_act:
            acts.append(execute(LABELS["sync_device"], "ctx_sync", f"id:{t}", device=d.id))
        out.append({"type": "Container", "separator": True, "items": [
            _t(f"{d.name}{pin}", weight="Bolder"),
            _t(f"{d.os} {d.os_version} · {d.compliance} · {enc} · last check-in {_when(d.last_sync)}", isSubtle=True),
            {"type": "ActionSet", "actions": acts}]})
    return out


def _activity(activity: ActivityView) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if activity.sign_ins is not None:
        lines = [f"{'ok' if s.ok else 'FAILED'} · {_when(s.at)} · {s.app} · {s.ip}"
                 + (f" · {s.location}" if s.location else "") + (f" · {s.failure}" if not s.ok else "")
                 for s in activity.sign_ins]
        out += [_t("Recent sign-ins", weight="Bolder", separator=True), _t("\n\n".join(lines) or "none")]
    if activity.audits is not None:
        lines = [f"{_when(a.at)} · {a.activity} · by {a.by or 'unknown'} · {a.result}" for a in activity.audits]
        out += [_t("Directory audit events", weight="Bolder", separator=True), _t("\n\n".join(lines) or "none")]
    if activity.device is not None:
        d = activity.device
        lines = [f"{'ok' if s.ok else 'FAILED'} · {_when(s.at)} · {s.app} · {s.ip}" for s in activity.device_sign_ins or ()]
        seen = ("\n\n".join(lines) or f"none among the user's last {SIGN_IN_SCAN}") \
            if activity.device_sign_ins is not None else "not available"
        out += [_t(f"{d.name} (this ticket's device)", weight="Bolder", separator=True),
                _t(f"Last check-in {_when(d.last_sync)} · enrolled {_when(d.enrolled)}", isSubtle=True),
                _t("Sign-ins from it:\n\n" + seen)]
    out += [_t(n, isSubtle=True) for n in activity.notes if n]
    return out


def context_card(view: UserQuickView, *, ticket_label: str, can_act: bool, activity: ActivityView | None = None,
                 notice: str | None = None, similar: tuple[AiSimilarView, ...] = ()) -> dict[str, Any]:
    """The ticket's Microsoft 365 context for the technician who asked."""
    assert view.ticket_id is not None
    t = view.ticket_id
    body = [_t(f"Ticket {ticket_label} · Microsoft 365", isSubtle=True, size="Small")]
    if notice:
        body.append(_t(notice, color="Good"))
    body += _user(view) + _devices(view, t, can_act and view.user is not None)
    body += [_t(n, isSubtle=True) for n in view.notes if n]
    if similar:
        body += [_t("Similar closed tickets", weight="Bolder", separator=True),
                 _t("\n\n".join(f"{h.ref} {h.subject} ({h.score:.2f}"
                                  + (f", closed {h.closed_at:%d %b %Y}" if h.closed_at else "") + ")"
                                  for h in similar))]
    body.append({"type": "Input.Text", "id": "user", "placeholder": "Another user: jane@contoso.com",
                 "maxLength": 254})
    actions = [execute("Use this user", "ctx_choose", f"id:{t}")]
    if view.user is not None:
        actions.insert(0, execute("Recent activity", "ctx_activity", f"id:{t}"))
        if can_act and not view.user.on_prem_synced:
            actions.append(execute(LABELS["reset_password"], "ctx_reset", f"id:{t}"))
        if can_act:
            actions.append(execute(LABELS["revoke_sessions"], "ctx_revoke", f"id:{t}"))
    for extra in actions[CONTEXT_PRIMARY:]:  # in the card's "…" menu: four buttons in a row cut every title short
        extra["mode"] = "secondary"  # (docs/cards/m365-context.png, scripts/card_previews.py)
    if activity is not None:
        body += _activity(activity)
    return _card(body, actions)


def confirm_card(name: str, ticket_id: int, *, user: str, device: str | None = None,
                 device_id: str | None = None) -> dict[str, Any]:
    """The confirmation step: Yes carries a fresh intent id (one op however often Teams redelivers it)."""
    text = CONFIRM[ACTION_OF[name]].format(user=user, device=device or device_id or "the device")
    yes = execute("Yes", name, f"id:{ticket_id}", confirm=True, intent=uuid.uuid4().hex,
                  **({"device": device_id} if device_id else {}))
    return _card([_t(text, weight="Bolder")], [yes, execute("Cancel", "context", f"id:{ticket_id}")])


def ask_again_card(refusal: AskAgain, ticket_id: int) -> dict[str, Any]:
    """The user was reset moments ago and nothing was done: a second reset needs this Yes (its own intent id)."""
    yes = execute(RESET_AGAIN_LABEL, "ctx_reset", f"id:{ticket_id}", confirm=True, again=True, intent=uuid.uuid4().hex)
    return _card([_t(refusal.message, color="Warning", weight="Bolder"), _t(refusal.question)],
                 [yes, execute("Cancel", "context", f"id:{ticket_id}")])


def accepted_card(done: QuickActionAccepted, ticket_id: int) -> dict[str, Any]:
    body = [_t(done.confirmation, color="Good", weight="Bolder")]
    if done.temporary_password:
        body += [_t(f"Temporary password: {done.temporary_password}", fontType="Monospace", size="Large"),
                 _t(SHOWN_ONCE, isSubtle=True)]
    elif done.repeated:
        body.append(_t(NOT_SHOWN_AGAIN, isSubtle=True))
    return _card(body, [execute("Back to context", "context", f"id:{ticket_id}")])


def apps_card(view: AppsView, ticket_id: int) -> dict[str, Any]:
    body = [_t(f"Installed apps on {view.device_name}" if view.device_name else "Installed apps", weight="Bolder")]
    if view.apps is not None:
        body.append(_t("\n\n".join(f"{a.name} {a.version}" + (f" · {a.publisher}" if a.publisher else "")
                                   for a in view.apps) or "none detected"))
        body.append(_t(f"{len(view.apps)} app(s) detected by Intune", isSubtle=True))
    body += [_t(n, isSubtle=True) for n in view.notes if n]
    return _card(body, [execute("Back to context", "context", f"id:{ticket_id}")])

