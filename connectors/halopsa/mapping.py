"""HaloPSA JSON -> canonical models (pure: no I/O, no clock). Vendor JSON never leaves this folder.

Choices (reference/psa-apis.md §4):
- The canonical *board* is the Halo **ticket type** (`tickettype_id`): it is what scopes statuses
  (`allowed_status`), required fields and the default SLA (hence priorities), as CW's board does. The
  ticket type is also the canonical `type`. Halo's `team` (a name) has no canonical field yet: read it
  with `ticket_team`.
- Agent id 1 is Halo's "Unassigned" agent and client id 1 its placeholder client (djpsa); both read as
  no owner / no company.
- Dates are UTC strings often without a zone; `1900-01-01`-style values mean empty (year ≤ 1980 -> None).
  `last_update` on GET is `lastupdate` on POST answers: both are read.
- Action ids are unique only within a ticket: a note's identity is (ticket_external_id, external_id).
- Our dedupe marker lives in fields the end user never sees, never in text: tickets'
  `third_party_id_string` and attachments' `third_party_id`, both as `db:<marker>` (see write bodies in
  mapping_writes.py). Actions have no such field: find them again by natural key (see NOTES for the
  connector author) or through an agent-only custom field.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import (
    ConfigurationItem,
    NoteVisibility,
    PsaAttachment,
    PsaBoard,
    PsaCompany,
    PsaContact,
    PsaMember,
    PsaNote,
    PsaPriority,
    PsaStatus,
    PsaTicket,
    PsaTicketType,
    PsaTimeEntry,
    Ref,
)
from connectors.halopsa import categories

J = Mapping[str, Any]
UNASSIGNED_AGENT_ID = 1
PLACEHOLDER_CLIENT_ID = 1
CLOSED_STATUS_ID = 9  # Halo's built-in "Closed" [unverified]; prefer closed_status_ids() from the tenant
TICKET_STATUS_TYPE = 0  # TStatus.type of ticket statuses (other types belong to opportunities etc.)
FIELD_MANDATORY = 2  # RequestTypeField.technew value for "mandatory on a new ticket" [unverified]
MARKER_PREFIX = "db:"
EMPTY_YEAR = 1980
_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<\s*(br|/p|/div|/li)\s*/?\s*>", re.I)


# ---------------------------------------------------------------- scalars


def parse_dt(value: Any) -> datetime | None:
    """A Halo date (`2025-01-06T09:00:00.1234567`, zone-less = UTC, `Z` or offset) as tz-aware UTC."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        m = re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", text)  # more than 6 fraction digits
        if not m:
            return None
        try:
            dt = datetime.fromisoformat(f"{m.group(1)}.{m.group(2)[:6]}{m.group(3)}")
        except ValueError:
            return None
    if dt.year <= EMPTY_YEAR:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def format_dt(value: datetime) -> str:
    """A datetime as Halo query parameters and bodies take it: UTC, microseconds, `Z` (djpsa's format)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _pos_int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def html_to_text(value: str) -> str:
    """Plain text of Halo's `*_html` fields (line breaks kept, tags dropped, entities decoded)."""
    text = _BREAK.sub("\n", value)
    text = html.unescape(_TAG.sub("", text))
    return "\n".join(line.rstrip() for line in text.splitlines()).strip()


def _body_text(data: J, plain: str, rich: str) -> str:
    if data.get(plain):
        return str(data[plain])
    if data.get(rich):
        return html_to_text(str(data[rich]))
    return ""


def marker_value(marker: str) -> str:
    """The value we stamp into a Halo id field to find a write again (`db:<marker>`)."""
    return f"{MARKER_PREFIX}{marker}"


def marker_of(value: Any) -> str | None:
    """Our marker from a stamped id field, None when the field is empty or someone else's."""
    text = _text(value)
    if text.startswith(MARKER_PREFIX) and len(text) > len(MARKER_PREFIX):
        return text[len(MARKER_PREFIX):]
    return None


def _ref(rid: Any, name: Any, *, skip: int | None = None) -> Ref | None:
    number = _pos_int(rid)
    if number is None or number == skip:
        return None
    return Ref(str(number), _text(name) or None)


# ---------------------------------------------------------------- tickets


def ticket(data: J, *, closed_status_ids: Iterable[str] | None = None) -> PsaTicket:
    """A Halo ticket (`Faults`, list row or full record) as a PsaTicket."""
    status = _ref(data.get("status_id"), data.get("status_name"))
    closed = None
    if closed_status_ids is not None and status is not None:
        closed = status.id in set(closed_status_ids)
    tt = _ref(data.get("tickettype_id"), data.get("tickettype_name"))
    category, subcategory = categories.refs(data)
    return PsaTicket(
        external_id=str(data["id"]),
        summary=_text(data.get("summary")),
        description=_body_text(data, "details", "details_html"),
        company=_ref(data.get("client_id"), data.get("client_name"), skip=PLACEHOLDER_CLIENT_ID),
        contact=_ref(data.get("user_id"), data.get("user_name")),
        board=tt,
        status=status,
        status_closed=closed,
        priority=_ref(data.get("priority_id"), data.get("priority_name")),
        type=tt,
        owner=_ref(data.get("agent_id"), data.get("agent_name"), skip=UNASSIGNED_AGENT_ID),
        created_at=parse_dt(data.get("dateoccurred")) or parse_dt(data.get("datecreated")),
        updated_at=parse_dt(data.get("last_update")) or parse_dt(data.get("lastupdate")),
        closed_at=parse_dt(data.get("dateclosed")),
        respond_by=parse_dt(data.get("respondbydate")),
        resolve_by=parse_dt(data.get("fixbydate")),
        responded_at=parse_dt(data.get("responsedate")),
        marker=marker_of(data.get("third_party_id_string")),
        category=category,
        subcategory=subcategory,
    )


def ticket_team(data: J) -> str | None:
    """The ticket's team: Halo carries (and takes on writes) the team's *name*, not its id."""
    return _text(data.get("team")) or None


# ---------------------------------------------------------------- actions: notes and time


def is_time_action(data: J) -> bool:
    """An action that logs time (`timetaken` > 0)."""
    try:
        return float(data.get("timetaken") or 0) > 0
    except (TypeError, ValueError):
        return False


def _author(data: J) -> tuple[Ref | None, bool]:
    agent = _pos_int(data.get("who_agentid")) or _pos_int(data.get("actionby_agent_id"))
    if agent is not None:
        return Ref(str(agent), _text(data.get("who")) or None), False
    user = _pos_int(data.get("actionby_user_id"))
    if user is not None:
        return Ref(str(user), _text(data.get("who")) or None), True
    return None, False


def note(data: J, ticket_id: str, *, resolution_outcomes: Iterable[str] = ()) -> PsaNote:
    """An action as a PsaNote: `hiddenfromuser` true is internal, false is public (or resolution, for
    actions whose outcome name is one of `resolution_outcomes`)."""
    if data.get("hiddenfromuser"):
        vis = NoteVisibility.INTERNAL
    elif _text(data.get("outcome")).lower() in {o.lower() for o in resolution_outcomes}:
        vis = NoteVisibility.RESOLUTION
    else:
        vis = NoteVisibility.PUBLIC
    author, by_user = _author(data)
    return PsaNote(external_id=str(data["id"]), ticket_external_id=str(data.get("ticket_id") or ticket_id),
                   text=_body_text(data, "note", "note_html"), visibility=vis, author=author,
                   author_is_contact=by_user, created_at=parse_dt(data.get("datetime"))
                   or parse_dt(data.get("actiondatecreated")))


def time_entry(data: J, ticket_id: str) -> PsaTimeEntry:
    """A time-logging action as a PsaTimeEntry (`timetaken` is decimal hours)."""
    hours = float(data.get("timetaken") or 0)
    nonbill = float(data.get("nonbilltime") or 0)
    billable = bool(data["actisbillable"]) if data.get("actisbillable") is not None else nonbill < hours
    author, _ = _author(data)
    return PsaTimeEntry(external_id=str(data["id"]), ticket_external_id=str(data.get("ticket_id") or ticket_id),
                        minutes=round(hours * 60), started_at=parse_dt(data.get("actionarrivaldate"))
                        or parse_dt(data.get("datetime")), member=author,
                        notes=_body_text(data, "note", "note_html"), billable=billable)


def action_matches(row: J, body: J, *, api_agent_id: str | None = None) -> bool:
    """Whether a listed action is the one a POST /Actions `body` (from mapping_writes) created: the natural
    key for finding a lost note or time write again without a marker in its text."""
    if str(row.get("ticket_id")) != str(body.get("ticket_id")):
        return False
    if _text(row.get("note")) != _text(body.get("note")) or bool(row.get("hiddenfromuser")) != bool(
            body.get("hiddenfromuser")):
        return False
    if "outcome_id" in body and _pos_int(row.get("outcome_id")) != _pos_int(body["outcome_id"]):
        return False
    author = body.get("who_agentid") or api_agent_id
    if author is not None and str(row.get("who_agentid")) != str(author):
        return False
    if abs(float(row.get("timetaken") or 0) - float(body.get("timetaken") or 0)) > 0.001:
        return False
    start = body.get("actionarrivaldate")
    return start is None or parse_dt(row.get("actionarrivaldate")) == parse_dt(start)


def attachment(data: J, ticket_id: str) -> PsaAttachment:
    """A Halo attachment's metadata as a PsaAttachment."""
    size = data.get("filesize")
    return PsaAttachment(external_id=str(data["id"]), ticket_external_id=str(data.get("ticket_id") or ticket_id),
                         filename=_text(data.get("filename")), size=int(size) if size is not None else None,
                         content_type=_text(data.get("content_type")) or None,
                         created_at=parse_dt(data.get("datecreated")), marker=marker_of(data.get("third_party_id")),
                         visibility=(None if data.get("showforusers") is None else NoteVisibility.PUBLIC
                                     if data.get("showforusers") else NoteVisibility.INTERNAL))


# ---------------------------------------------------------------- people and companies


def company(data: J) -> PsaCompany:
    """A Halo client (`Area`) as a PsaCompany (Halo has no short code: `ref` or the name stands in)."""
    name = _text(data.get("name"))
    return PsaCompany(external_id=str(data["id"]), identifier=_text(data.get("ref")) or name, name=name,
                      active=not data.get("inactive", False))


def is_placeholder_client(data: J) -> bool:
    """Halo's client id 1 stands for "no client"; keep it out of customer lists."""
    return _pos_int(data.get("id")) == PLACEHOLDER_CLIENT_ID


def contact(data: J) -> PsaContact:
    """A Halo end user (`Users`) as a PsaContact."""
    name = _text(data.get("name")) or " ".join(p for p in (_text(data.get("firstname")),
                                                          _text(data.get("surname"))) if p)
    client = _pos_int(data.get("client_id"))
    phone = _text(data.get("phonenumber_preferred")) or _text(data.get("phonenumber")) or None
    return PsaContact(external_id=str(data["id"]), name=name or str(data["id"]),
                      company_external_id=str(client) if client else None,
                      email=_text(data.get("emailaddress")) or None, phone=phone,
                      active=not data.get("inactive", False))


def member(data: J) -> PsaMember:
    """A Halo agent (`Uname`) as a PsaMember."""
    name = _text(data.get("name")) or " ".join(p for p in (_text(data.get("firstname")),
                                                          _text(data.get("surname"))) if p)
    return PsaMember(external_id=str(data["id"]), name=name or str(data["id"]),
                     identifier=_text(data.get("initials")) or None, email=_text(data.get("email")) or None,
                     active=not data.get("isdisabled", False))


def is_unassigned_agent(data: J) -> bool:
    """Halo's agent id 1 is "Unassigned", not a person."""
    return _pos_int(data.get("id")) == UNASSIGNED_AGENT_ID


# ---------------------------------------------------------------- picklists


# Halo field names of a ticket type's mandatory fields -> the NewTicket fields that fill them. The ticket's
# category field (category_1) is the canonical category: asked with the category select, checked against
# Halo's /Category (core/categories.py) before anything is queued, never as free text.
CANONICAL_FIELDS = {"user_id": "contact_external_id", "client_id": "company_external_id",
                    "agent_id": "owner_external_id", "priority_id": "priority_external_id",
                    "status_id": "status_external_id", "details": "description", "summary": "summary",
                    f"category_{categories.CATEGORY_FIELD}": "category_external_id"}


def board(data: J, required: Iterable[str] = ()) -> PsaBoard:
    """A Halo ticket type (`RequestType`) as the canonical board; `required` are its mandatory fields (Halo
    names, from `required_fields`), as NewTicket names or `custom:<name>` where the ticket has no place."""
    needs = frozenset(CANONICAL_FIELDS.get(f, f"custom:{f}") for f in required) - {"summary"}
    return PsaBoard(external_id=str(data["id"]), name=_text(data.get("name")),
                    active=data.get("active", True) is not False and not data.get("inactive", False),
                    create_requires=needs)


def ticket_type(data: J) -> PsaTicketType:
    """A Halo ticket type as the canonical type of its own board."""
    return PsaTicketType(external_id=str(data["id"]), name=_text(data.get("name")), board_external_id=str(data["id"]))


def team(data: J) -> Ref:
    """A Halo team (`SectionDetail`): id and the name that ticket writes must use."""
    return Ref(str(data["id"]), _text(data.get("name")) or None)


def ticket_statuses(rows: Iterable[J]) -> list[J]:
    """Only ticket statuses (`type` 0); Halo lists opportunity/project statuses too, and its `type` filter
    does not work (djpsa)."""
    return [r for r in rows if int(r.get("type") or 0) == TICKET_STATUS_TYPE]


def closed_status_ids(all_rows: Iterable[J], open_rows: Iterable[J]) -> frozenset[str]:
    """Closed statuses: those `GET /Status` lists but `GET /Status?excludeclosed=true` does not."""
    return frozenset({str(r["id"]) for r in all_rows} - {str(r["id"]) for r in open_rows})


def allowed_status_ids(ticket_type_detail: J, statuses: Iterable[J]) -> list[str]:
    """The status ids valid on a ticket type (`allowall_status`, else its `allowed_status` list)."""
    ticket_ids = [str(s["id"]) for s in ticket_statuses(statuses)]
    if ticket_type_detail.get("allowall_status", True) or ticket_type_detail.get("allowed_status") is None:
        return ticket_ids
    allowed = {str(a.get("status_id")) for a in ticket_type_detail.get("allowed_status") or []}
    return [s for s in ticket_ids if s in allowed]


def statuses_for_type(ticket_type_detail: J, statuses: Sequence[J], closed_ids: Iterable[str]) -> list[PsaStatus]:
    """The PsaStatuses of one ticket type (its board); the type's `initial_status` is the default."""
    by_id = {str(s["id"]): s for s in statuses}
    closed = set(closed_ids)
    initial = str(ticket_type_detail.get("initial_status") or "")
    board_id = str(ticket_type_detail["id"])
    out = []
    for sid in allowed_status_ids(ticket_type_detail, statuses):
        row = by_id[sid]
        out.append(PsaStatus(external_id=sid, name=_text(row.get("name")), board_external_id=board_id,
                             closed=sid in closed, default=sid == initial, active=True,
                             sort_order=int(row.get("sequence") or 0)))
    return out


def priorities(rows: Iterable[J], *, sla_id: int | str | None = None) -> list[PsaPriority]:
    """Priorities from `GET /Priority` (`Policy` rows: one per SLA and priority; `priorityid` is the id
    tickets use, `id` is not). Deduplicated by priorityid; hidden ones skipped; `sla_id` keeps one SLA's."""
    seen: dict[str, PsaPriority] = {}
    for row in rows:
        if row.get("ishidden") or (sla_id is not None and str(row.get("slaid")) != str(sla_id)):
            continue
        pid = _pos_int(row.get("priorityid"))
        if pid is None or str(pid) in seen:
            continue
        seen[str(pid)] = PsaPriority(external_id=str(pid), name=_text(row.get("name")), sort_order=pid)
    return sorted(seen.values(), key=lambda p: p.sort_order)


def required_fields(ticket_type_detail: J) -> frozenset[str]:
    """Field names a ticket type makes mandatory for agents on new tickets (`fields[].technew`)."""
    return frozenset(_text(f.get("fieldname")) for f in ticket_type_detail.get("fields") or []
                     if isinstance(f, Mapping) and _pos_int(f.get("technew")) == FIELD_MANDATORY
                     and _text(f.get("fieldname")))


def hours(minutes: int) -> float:
    """Minutes as the decimal hours Halo's `timetaken` takes."""
    return round(minutes / 60, 4)


def duration(minutes: int) -> timedelta:
    """Minutes as a timedelta (for start/end pairs)."""
    return timedelta(minutes=minutes)


def ticket_device(data: J) -> ConfigurationItem | None:
    """The first asset linked to a ticket (`Faults.assets`, a list of `Device_List`), as a device: its main field
    (`key_field`, usually the asset's name or tag) and the Intune id Halo's Intune integration records."""
    assets = [a for a in (data.get("assets") or []) if isinstance(a, dict) and a.get("id") is not None]
    if not assets:
        return None
    a = assets[0]
    return ConfigurationItem(external_id=str(a["id"]), name=_text(a.get("key_field") or a.get("inventory_number")),
                             intune_id=_text(a.get("intune_id")))
