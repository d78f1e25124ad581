"""Block Kit for Microsoft 365 context beside a ticket (pure functions, no I/O): the context modal a technician
opens from a card's Context button, the installed-apps and change-user modals, and the one-time password modal.

Modals are seen only by the technician who opened them; the listener (bot/slack/listeners/tenant.py) refuses
them in customer channels before anything is fetched. Directory text is untrusted: it passes through `esc`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.slack.blocks import ACTION_PREFIX, MAX_VIEW_BLOCKS, _context, _cut, _md, _plain, esc
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

CHOOSE_CALLBACK = "db_ctx_choose"  # the change-user modal's callback_id
MAX_DEVICES = 10


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def meta(ticket_id: int, channel: str | None) -> str:
    """The modal's private_metadata: which ticket, opened from which channel (its audience is re-checked)."""
    return json.dumps({"t": ticket_id, "c": channel}, separators=(",", ":"))


def _value(ticket_id: int, device_id: str | None = None, *, again: bool = False) -> str:
    data: dict[str, Any] = {"t": ticket_id}
    if device_id:
        data["d"] = device_id
    if again:  # the technician confirmed a second reset of a user reset moments ago
        data["again"] = 1
    return json.dumps(data, separators=(",", ":"))


def _btn(action: str, label: str, value: str, *, style: str | None = None,
         confirm: str | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {"type": "button", "text": _plain(label), "action_id": ACTION_PREFIX + action,
                         "value": value}
    if style:
        b["style"] = style
    if confirm:  # Slack's own confirmation dialog: the action is sent only after "Yes"
        b["confirm"] = {"title": _plain(label, 100), "text": _md(confirm, 300), "confirm": _plain("Yes", 30),
                        "deny": _plain("Cancel", 30), **({"style": "danger"} if style == "danger" else {})}
    return b


def _user_blocks(view: UserQuickView) -> list[dict[str, Any]]:
    u = view.user
    if u is None:
        return [{"type": "section", "text": _md(":bust_in_silhouette: *No Microsoft 365 user shown*"
                                                + (f" for `{esc(view.email)}`" if view.email else ""))}]
    about = "chosen for this ticket" if view.chosen else "the ticket's contact"
    fields = [f"*Account*\n{'enabled' if u.enabled else ':no_entry: DISABLED'} · "
              f"{'synced from on-premises AD' if u.on_prem_synced else 'cloud-only'}"]
    if not any(n.startswith("Sign-in:") for n in view.notes):
        fields.append(f"*Last sign-in*\n{_when(view.last_sign_in)}")
    if view.mfa is not None:
        state = {True: "registered", False: ":warning: NOT registered", None: "methods"}[view.mfa.registered]
        fields.append(f"*MFA*\n{state}: {esc(', '.join(view.mfa.methods) or 'none')}")
    if view.licences is not None:
        fields.append("*Licences*\n" + esc(", ".join(x.name for x in view.licences) or "none"))
    return [{"type": "section", "text": _md(f":bust_in_silhouette: *{esc(u.display_name)}* `{esc(u.upn)}` "
                                            f"_({about})_")},
            {"type": "section", "fields": [_md(f, 2000) for f in fields]}]


def _device_blocks(view: UserQuickView, ticket_id: int, can_act: bool) -> list[dict[str, Any]]:
    if view.devices is None:
        return []
    if not view.devices:
        return [_context("Devices: none in Intune")]
    blocks: list[dict[str, Any]] = []
    for d in view.devices[:MAX_DEVICES]:
        enc = {True: "encrypted", False: ":warning: NOT encrypted", None: "encryption unknown"}[d.encrypted]
        comp = d.compliance if d.compliance == "compliant" else f":warning: {d.compliance}"
        pin = " :pushpin: _this ticket's device_" if d.id == view.device_id else ""
        blocks.append({"type": "section", "text": _md(
            f":computer: *{esc(d.name)}*{pin}\n{esc(d.os)} {esc(d.os_version)} · {esc(comp)} · {enc} · "
            f"last check-in {_when(d.last_sync)}"),
            "accessory": _btn("ctx_apps", "Installed apps", _value(ticket_id, d.id))})
        row = [] if d.id == view.device_id else [_btn("ctx_device", "Ticket is about this", _value(ticket_id, d.id))]
        if can_act:
            row.append(_btn("ctx_sync", LABELS["sync_device"], _value(ticket_id, d.id),
                            confirm=CONFIRM["sync_device"].format(device=esc(d.name))))
        if row:
            blocks.append({"type": "actions", "elements": row})
    if len(view.devices) > MAX_DEVICES:
        blocks.append(_context(f"{len(view.devices) - MAX_DEVICES} more device(s) not shown"))
    return blocks


def _activity_blocks(activity: ActivityView) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "divider"}]
    if activity.sign_ins is not None:
        lines = [f"{'✅' if s.ok else '❌'} {_when(s.at)} · {esc(s.app)} · {esc(s.ip)}"
                 + (f" · {esc(s.location)}" if s.location else "") + (f" · _{esc(s.failure)}_" if not s.ok else "")
                 for s in activity.sign_ins]
        blocks.append({"type": "section", "text": _md("*Recent sign-ins*\n" + ("\n".join(lines) or "none"))})
    if activity.audits is not None:
        lines = [f"{_when(a.at)} · {esc(a.activity)} · by {esc(a.by or 'unknown')} · {esc(a.result)}"
                 for a in activity.audits]
        blocks.append({"type": "section", "text": _md("*Directory audit events*\n" + ("\n".join(lines) or "none"))})
    if activity.device is not None:
        d = activity.device
        lines = [f"{'✅' if s.ok else '❌'} {_when(s.at)} · {esc(s.app)} · {esc(s.ip)}"
                 for s in activity.device_sign_ins or ()]
        seen = ("\n".join(lines) or f"none among the user's last {SIGN_IN_SCAN}") \
            if activity.device_sign_ins is not None else "not available"
        blocks.append({"type": "section", "text": _md(
            f":computer: *{esc(d.name)}* (this ticket's device) · last check-in {_when(d.last_sync)} · enrolled "
            f"{_when(d.enrolled)}\n*Sign-ins from it*\n{seen}")})
    if activity.notes:
        blocks.append(_context(*(esc(n) for n in activity.notes)))
    return blocks


def _similar_blocks(similar: tuple[AiSimilarView, ...]) -> list[dict[str, Any]]:
    if not similar:
        return []
    lines = [f"{esc(h.ref)} {esc(h.subject)} ({h.score:.2f}" + (f", closed {h.closed_at:%d %b %Y}" if h.closed_at
                                                                 else "") + ")" for h in similar]
    return [{"type": "section", "text": _md("*Similar closed tickets*\n" + "\n".join(lines))}]


def context_modal(view: UserQuickView, *, ticket_label: str, channel: str | None, can_act: bool,
                  activity: ActivityView | None = None, notice: str | None = None,
                  similar: tuple[AiSimilarView, ...] = ()) -> dict[str, Any]:
    """The ticket's Microsoft 365 context: user, devices, activity on request, and the quick actions."""
    assert view.ticket_id is not None
    t = view.ticket_id
    blocks: list[dict[str, Any]] = [_context(f"Ticket {esc(ticket_label)} · Microsoft 365 · only you see this")]
    if notice:
        blocks.append({"type": "section", "text": _md(esc(notice))})
    blocks += _user_blocks(view)
    blocks += _device_blocks(view, t, can_act and view.user is not None)
    notes = [esc(n) for n in view.notes if n]
    if notes:
        blocks.append(_context(*notes))
    blocks += _similar_blocks(similar)
    row = [_btn("ctx_change", "Change user", _value(t))]
    if view.user is not None:
        row.insert(0, _btn("ctx_activity", "Recent activity", _value(t)))
        if can_act:
            upn = esc(view.user.upn)
            if not view.user.on_prem_synced:
                row.append(_btn("ctx_reset", LABELS["reset_password"], _value(t), style="danger",
                                confirm=CONFIRM["reset_password"].format(user=upn)))
            row.append(_btn("ctx_revoke", LABELS["revoke_sessions"], _value(t), style="danger",
                            confirm=CONFIRM["revoke_sessions"].format(user=upn)))
    blocks.append({"type": "actions", "elements": row})
    if activity is not None:
        blocks += _activity_blocks(activity)
    return {"type": "modal", "title": _plain("Context", 24), "close": _plain("Close", 24),
            "private_metadata": meta(t, channel), "blocks": blocks[:MAX_VIEW_BLOCKS]}


def apps_modal(view: AppsView) -> dict[str, Any]:
    """Apps Intune detected on a device."""
    title = f"Installed apps on {view.device_name}" if view.device_name else "Installed apps"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _md(f"*{esc(title)}*")}]
    if view.apps is not None:
        lines = [f"{esc(a.name)} {esc(a.version)}" + (f" · {esc(a.publisher)}" if a.publisher else "")
                 for a in view.apps]
        text = "\n".join(lines) or "none detected"
        for i in range(0, min(len(text), 2900 * 40), 2900):  # sections of at most 2900 characters
            blocks.append({"type": "section", "text": _md(text[i:i + 2900])})
        blocks.append(_context(f"{len(view.apps)} app(s) detected by Intune"))
    if view.notes:
        blocks.append(_context(*(esc(n) for n in view.notes)))
    return {"type": "modal", "title": _plain("Installed apps", 24), "close": _plain("Back", 24),
            "blocks": blocks[:MAX_VIEW_BLOCKS]}


def choose_modal(ticket_id: int, channel: str | None, current: str | None) -> dict[str, Any]:
    """Which user the ticket is about: a sign-in name or e-mail, checked against the customer's tenant."""
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "max_length": 254,
                               "placeholder": _plain("jane@contoso.com")}
    if current:
        element["initial_value"] = current
    return {"type": "modal", "callback_id": CHOOSE_CALLBACK, "title": _plain("Change user", 24),
            "submit": _plain("Use this user", 24), "close": _plain("Cancel", 24),
            "private_metadata": meta(ticket_id, channel),
            "blocks": [{"type": "input", "block_id": "user", "label": _plain("Microsoft 365 user"),
                        "hint": _plain("Sign-in name (UPN) or e-mail, in this ticket's customer's tenant", 150),
                        "element": element}]}


def accepted_modal(done: QuickActionAccepted) -> dict[str, Any]:
    """What a quick action did; for a reset, the temporary password, shown this once to this technician."""
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _md(":white_check_mark: " + esc(done.confirmation))}]
    if done.temporary_password:
        blocks.append({"type": "section", "text": _md(f"*Temporary password:* `{esc(done.temporary_password)}`")})
        blocks.append(_context(SHOWN_ONCE))
    elif done.repeated:
        blocks.append(_context(NOT_SHOWN_AGAIN))
    return {"type": "modal", "title": _plain(_cut(LABELS[done.action], 24), 24), "close": _plain("Done", 24),
            "blocks": blocks}


def ask_again_modal(refusal: AskAgain, ticket_id: int, channel: str | None) -> dict[str, Any]:
    """The user was reset moments ago and nothing was done for this click: a second reset needs this button."""
    return {"type": "modal", "title": _plain(LABELS["reset_password"], 24), "close": _plain("Cancel", 24),
            "private_metadata": meta(ticket_id, channel),
            "blocks": [{"type": "section", "text": _md(":warning: " + esc(refusal.message))},
                       {"type": "section", "text": _md(esc(refusal.question))},
                       {"type": "actions", "elements": [
                           _btn("ctx_reset", RESET_AGAIN_LABEL, _value(ticket_id, again=True), style="danger")]}]}
