"""Canonical writes -> HaloPSA request bodies (pure). Every body is one item of the JSON array Halo's
POST endpoints take; POST without `id` creates, with `id` updates (gotcha 31).

- Tickets carry our marker in `third_party_id_string` (`db:<marker>`), a field the end user never sees.
- Notes and time are Actions. Visibility is `hiddenfromuser` (true = agents only). `sendemail` is always
  sent explicitly: left out, Halo takes it (and `hiddenfromuser`) from the outcome's defaults, and an
  outcome such as "Email User" would mail an internal note. E-mailing the end user is per action
  (`sendemail` + `emailto`/`emailcc`/`emailsubject`); no ticket setting is touched.
- Attachments are base64 **data URIs** (`data:<type>;base64,…`, djpsa) with our marker in
  `third_party_id`; `showforusers` decides portal visibility (default: agents only).
- `team` is written as the team's *name* (gotcha 37); agent id 1 unassigns ([unverified]).
- No marker ever goes into note or file text. Optionally `marker_field_id` names an agent-only custom
  field (CustomField.onlyshowforagents) that receives the marker on tickets and actions.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from connectors.base import NewAttachment, NewNote, NewTicket, NewTimeEntry, NoteVisibility, TicketPatch
from connectors.errors import PsaValidationError
from connectors.halopsa.categories import CATEGORY_FIELD
from connectors.halopsa.mapping import UNASSIGNED_AGENT_ID, format_dt, hours, marker_value

CATEGORY_KEY = f"category_{CATEGORY_FIELD}"


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PsaValidationError(f"'{value}' is not a HaloPSA id.", fields={name: "not a Halo id"}) from None


def _outcome(outcome_id: int | None, outcome: str | None) -> dict[str, Any]:
    if outcome_id is not None:
        return {"outcome_id": int(outcome_id)}
    if outcome:
        return {"outcome": outcome}
    raise PsaValidationError("No Halo outcome (action type) is configured for this write.",
                             fields={"outcome_id": "required"})


def _marker_field(marker_field_id: int | None, marker: str) -> dict[str, Any]:
    if marker_field_id is None:
        return {}
    return {"customfields": [{"id": int(marker_field_id), "value": marker_value(marker)}]}


def ticket_type_id(board_external_id: str | None, type_external_id: str | None) -> int | None:
    """The Halo `tickettype_id` from the canonical board and type (the same thing in Halo; they must agree)."""
    if board_external_id and type_external_id and board_external_id != type_external_id:
        raise PsaValidationError("In HaloPSA the board is the ticket type: board and type must be the same.",
                                 fields={"type_external_id": "must equal board_external_id"})
    value = type_external_id or board_external_id
    return _int(value, "type_external_id") if value else None


def new_ticket_body(t: NewTicket, *, site_id: int | None = None, team_name: str | None = None,
                    sendack: bool | None = None, quiet: bool = False,
                    marker_field_id: int | None = None, category: str | None = None) -> dict[str, Any]:
    """POST /Tickets item creating a ticket; `quiet` sets `_dont_fire_automations` (echo suppression);
    `category` is the checked `category_1` text (categories.value_for)."""
    body: dict[str, Any] = {"summary": t.summary, "third_party_id_string": marker_value(t.marker)}
    if category:
        body[CATEGORY_KEY] = category
    if t.description:
        body["details"] = t.description
    tt = ticket_type_id(t.board_external_id, t.type_external_id)
    if tt is not None:
        body["tickettype_id"] = tt
    for key, value, name in (("client_id", t.company_external_id, "company_external_id"),
                             ("user_id", t.contact_external_id, "contact_external_id"),
                             ("status_id", t.status_external_id, "status_external_id"),
                             ("priority_id", t.priority_external_id, "priority_external_id"),
                             ("agent_id", t.owner_external_id, "owner_external_id")):
        if value:
            body[key] = _int(value, name)
    if site_id is not None:
        body["site_id"] = int(site_id)
    if team_name:
        body["team"] = team_name
    if sendack is not None:
        body["sendack"] = bool(sendack)
    if quiet:
        body["_dont_fire_automations"] = True
    body.update(_marker_field(marker_field_id, t.marker))
    for name, value in t.extra_fields.items():  # a ticket type's mandatory fields, by Halo's field name
        if name.upper().startswith("CF"):  # Halo's custom fields are named CF…
            body.setdefault("customfields", []).append({"name": name, "value": value})
        elif name not in body:
            body[name] = value
    return body


def ticket_update_body(external_id: str, p: TicketPatch, *, team_name: str | None = None,
                       quiet: bool = False, category: str | None = None) -> dict[str, Any]:
    """POST /Tickets item updating only the changed fields; always carries `id` (without it Halo creates).
    `category` is the checked `category_1` text ("" clears it; None leaves it)."""
    body: dict[str, Any] = {"id": _int(external_id, "external_id")}
    if category is not None:
        body[CATEGORY_KEY] = category
    if p.summary is not None:
        body["summary"] = p.summary
    if p.board_external_id is not None:
        body["tickettype_id"] = _int(p.board_external_id, "board_external_id")
    if p.status_external_id is not None:
        body["status_id"] = _int(p.status_external_id, "status_external_id")
    if p.priority_external_id is not None:
        body["priority_id"] = _int(p.priority_external_id, "priority_external_id")
    if p.unassign:
        body["agent_id"] = UNASSIGNED_AGENT_ID
    elif p.owner_external_id is not None:
        body["agent_id"] = _int(p.owner_external_id, "owner_external_id")
    if team_name:
        body["team"] = team_name
    if quiet:
        body["_dont_fire_automations"] = True
    return body


def note_body(n: NewNote, *, outcome_id: int | None = None, outcome: str | None = None,
              email_to: str | None = None, email_cc: str | None = None, email_subject: str | None = None,
              new_status_id: str | None = None, marker_field_id: int | None = None) -> dict[str, Any]:
    """POST /Actions item for a note. Internal: hidden, never e-mailed. Public/resolution: visible to the end
    user, e-mailed only when `n.email_contact` (to `email_to`, else the ticket's user as Halo decides)."""
    internal = n.visibility is NoteVisibility.INTERNAL
    send = bool(n.email_contact) and not internal
    body: dict[str, Any] = {"ticket_id": _int(n.ticket_external_id, "ticket_external_id"), "note": n.text,
                            **_outcome(outcome_id, outcome), "hiddenfromuser": internal, "sendemail": send}
    if send:
        if email_to:
            body["emailto"] = email_to
        if email_cc:
            body["emailcc"] = email_cc
        if email_subject:
            body["emailsubject"] = email_subject
    if n.author_member_external_id:
        body["who_agentid"] = _int(n.author_member_external_id, "author_member_external_id")
    if new_status_id is not None:
        body["new_status"] = _int(new_status_id, "status_external_id")
    body.update(_marker_field(marker_field_id, n.marker))
    return body


def time_entry_body(e: NewTimeEntry, *, outcome_id: int | None = None, outcome: str | None = None,
                    marker_field_id: int | None = None) -> dict[str, Any]:
    """POST /Actions item logging time: hidden from the end user, never e-mailed, start/end as arrival and
    completion dates, `timetaken` in decimal hours (`nonbilltime` all of it when not billable)."""
    taken = hours(e.minutes)
    body: dict[str, Any] = {
        "ticket_id": _int(e.ticket_external_id, "ticket_external_id"), "note": e.notes,
        **_outcome(outcome_id, outcome), "hiddenfromuser": True, "sendemail": False,
        "timetaken": taken, "nonbilltime": 0.0 if e.billable else taken, "actisbillable": bool(e.billable),
        "actionarrivaldate": format_dt(e.started_at),
        "actioncompletiondate": format_dt(e.started_at + timedelta(minutes=e.minutes)),
    }
    if e.member_external_id:
        body["who_agentid"] = _int(e.member_external_id, "member_external_id")
    body.update(_marker_field(marker_field_id, e.marker))
    return body


def data_uri(content: bytes, content_type: str) -> str:
    """The `data:<type>;base64,<…>` string Halo's `data_base64` expects (the prefix is required)."""
    return f"data:{content_type or 'application/octet-stream'};base64,{base64.b64encode(content).decode()}"


def attachment_body(a: NewAttachment, *, visible_to_user: bool = False,
                    action_id: int | None = None) -> dict[str, Any]:
    """POST /Attachment item: the file as a data URI, our marker in `third_party_id`."""
    body: dict[str, Any] = {"ticket_id": _int(a.ticket_external_id, "ticket_external_id"),
                            "filename": a.filename, "data_base64": data_uri(a.content, a.content_type),
                            "isimage": a.content_type.startswith("image/"), "showforusers": bool(visible_to_user),
                            "third_party_id": marker_value(a.marker)}
    if action_id is not None:
        body["action_id"] = int(action_id)
    return body
