"""Sandbox records -> canonical models (pure; `lookup` resolves ids to records for display names)."""

from __future__ import annotations

from collections.abc import Callable

from connectors.base import (
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
    split_marker,
)
from connectors.sandbox.dialect import Record, parse_ts

Lookup = Callable[[str, "int | None"], "Record | None"]


def _ref(lookup: Lookup, table: str, record_id: int | None, name_of: Callable[[Record], str]) -> Ref | None:
    if record_id is None:
        return None
    record = lookup(table, record_id)
    return Ref(str(record_id), name_of(record) if record else None)


def contact_name(c: Record) -> str:
    return f"{c['first_name']} {c['last_name']}"


def _name(r: Record) -> str:
    return str(r["name"])


def ticket(t: Record, lookup: Lookup) -> PsaTicket:
    status = lookup("statuses", t["status_id"])
    return PsaTicket(
        external_id=str(t["id"]), summary=t["summary"], description=t.get("description") or "",
        company=_ref(lookup, "companies", t.get("company_id"), _name),
        contact=_ref(lookup, "contacts", t.get("contact_id"), contact_name),
        board=_ref(lookup, "boards", t.get("board_id"), _name),
        status=_ref(lookup, "statuses", t.get("status_id"), _name),
        status_closed=bool(status["closed"]) if status else None,
        priority=_ref(lookup, "priorities", t.get("priority_id"), _name),
        type=_ref(lookup, "types", t.get("type_id"), _name),
        owner=_ref(lookup, "members", t.get("owner_id"), _name),
        source=t.get("source"),
        created_at=parse_ts(t["created_at"]), updated_at=parse_ts(t["updated_at"]),
        closed_at=parse_ts(t["closed_at"]) if t.get("closed_at") else None,
        responded_at=parse_ts(t["responded_at"]) if t.get("responded_at") else None,
        marker=t.get("marker"),
    )


def note(n: Record, lookup: Lookup) -> PsaNote:
    if n.get("contact_id") is not None:
        author, by_contact = _ref(lookup, "contacts", n["contact_id"], contact_name), True
    else:
        author, by_contact = _ref(lookup, "members", n.get("member_id"), _name), False
    # A contact's note (an e-mail reply) may quote ours, tag and all: it is never our write.
    text, marker = (n["text"], None) if by_contact else split_marker(n["text"])
    return PsaNote(external_id=str(n["id"]), ticket_external_id=str(n["ticket_id"]), text=text,
                   visibility=NoteVisibility(n["visibility"]), author=author, author_is_contact=by_contact,
                   created_at=parse_ts(n["created_at"]), marker=marker)


def time_entry(e: Record, lookup: Lookup) -> PsaTimeEntry:
    text, marker = split_marker(e.get("notes") or "")
    return PsaTimeEntry(external_id=str(e["id"]), ticket_external_id=str(e["ticket_id"]), minutes=e["minutes"],
                        started_at=parse_ts(e["started_at"]), member=_ref(lookup, "members", e.get("member_id"), _name),
                        notes=text, billable=bool(e.get("billable", True)), marker=marker)


def attachment(a: Record) -> PsaAttachment:
    return PsaAttachment(external_id=str(a["id"]), ticket_external_id=str(a["ticket_id"]), filename=a["filename"],
                         size=a.get("size"), content_type=a.get("content_type"),
                         created_at=parse_ts(a["created_at"]), marker=a.get("marker"),
                         visibility=NoteVisibility(a.get("visibility") or "public"))


def company(c: Record) -> PsaCompany:
    return PsaCompany(external_id=str(c["id"]), identifier=c["identifier"], name=c["name"],
                      active=bool(c.get("active", True)))


def contact(c: Record) -> PsaContact:
    return PsaContact(external_id=str(c["id"]), name=contact_name(c), company_external_id=str(c["company_id"]),
                      email=c.get("email"), phone=c.get("phone"), active=bool(c.get("active", True)))


def member(m: Record) -> PsaMember:
    return PsaMember(external_id=str(m["id"]), name=m["name"], identifier=m.get("identifier"), email=m.get("email"),
                     active=bool(m.get("active", True)))


def board(b: Record) -> PsaBoard:
    return PsaBoard(external_id=str(b["id"]), name=b["name"], active=bool(b.get("active", True)))


def status(s: Record) -> PsaStatus:
    return PsaStatus(external_id=str(s["id"]), name=s["name"], board_external_id=str(s["board_id"]),
                     closed=bool(s["closed"]), default=bool(s["default"]), active=bool(s.get("active", True)),
                     sort_order=int(s.get("sort", 0)))


def priority(p: Record) -> PsaPriority:
    return PsaPriority(external_id=str(p["id"]), name=p["name"], sort_order=int(p.get("sort", 0)),
                       default=bool(p.get("default", False)))


def ticket_type(t: Record) -> PsaTicketType:
    return PsaTicketType(external_id=str(t["id"]), name=t["name"], board_external_id=str(t["board_id"]))
