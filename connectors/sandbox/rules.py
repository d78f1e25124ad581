"""The sandbox PSA's queries and business rules (mixed into SandboxServer, which owns the state).

Rules a real PSA enforces, so code written against the sandbox meets them early: required fields on
create, statuses valid only on their own board, a summary length cap, note visibilities, a 10 MB
attachment cap, and `updated_at` advancing on every change (notes, time and attachments included).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from connectors.sandbox.dialect import Record, SandboxApiError, iso, parse_ts

MAX_SUMMARY = 100
MAX_NOTE = 30_000
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
VISIBILITIES = ("public", "internal", "resolution")
TICKET_FIELDS = ("summary", "status_id", "priority_id", "board_id", "owner_id", "type_id", "description")


def _invalid(field: str, reason: str) -> SandboxApiError:
    return SandboxApiError(400, "InvalidObject", f"{field}: {reason}", fields={field: reason})


class RulesMixin:
    """Queries and mutations over `self.data` / `self.by_id`; the server wraps them in `call`/`apply`."""

    data: dict[str, Any]
    by_id: dict[str, dict[int, Record]]

    def now(self) -> datetime:  # provided by SandboxServer
        raise NotImplementedError

    def stamp(self, ticket: Record, action: str = "updated", *, at: datetime | None = None) -> None:
        raise NotImplementedError

    def new_id(self) -> int:
        raise NotImplementedError

    # ------------------------------------------------------------ lookups

    def get(self, table: str, record_id: int | None) -> Record | None:
        """A record by id (None when absent)."""
        return None if record_id is None else self.by_id[table].get(record_id)

    def ticket(self, ticket_id: int) -> Record:
        """A live ticket, or a 404."""
        ticket = self.by_id["tickets"].get(ticket_id)
        if ticket is None or ticket.get("deleted"):
            raise SandboxApiError(404, "NotFound", f"Ticket {ticket_id} was not found.")
        return ticket

    def _require(self, table: str, record_id: int | None, field: str) -> Record:
        record = self.get(table, record_id)
        if record is None:
            raise _invalid(field, f"{record_id} does not exist")
        return record

    def board_status(self, board_id: int, status_id: int, field: str = "status") -> Record:
        """A status of this board, or a validation error naming the field."""
        status = self.get("statuses", status_id)
        if status is None or status["board_id"] != board_id or not status.get("active", True):
            board = self.get("boards", board_id) or {"name": board_id}
            raise _invalid(field, f"status {status_id} is not a valid status on board '{board['name']}'")
        return status

    def default_status(self, board_id: int) -> Record:
        statuses = [s for s in self.data["statuses"] if s["board_id"] == board_id]
        return next((s for s in statuses if s["default"]), statuses[0])

    # ------------------------------------------------------------ ticket queries

    def changed_tickets(self, since: datetime | None, after: tuple[datetime, int] | None, limit: int) -> list[Record]:
        """Live tickets with updated_at >= since, ordered by (updated_at, id), after the keyset `after`."""
        rows = []
        for t in self.data["tickets"]:
            if t.get("deleted"):
                continue
            key = (parse_ts(t["updated_at"]), t["id"])
            if (since is None or key[0] >= since) and (after is None or key > after):
                rows.append((key, t))
        rows.sort(key=lambda r: r[0])
        return [t for _, t in rows[:limit]]

    def ticket_ids_after(self, after_id: int, limit: int) -> list[int]:
        """Ids of live tickets above `after_id`, ascending."""
        ids = sorted(t["id"] for t in self.data["tickets"] if not t.get("deleted") and t["id"] > after_id)
        return ids[:limit]

    def page_after(self, table: str, after_id: int, limit: int) -> list[Record]:
        """Records of a table above `after_id`, ascending by id."""
        return sorted((r for r in self.data[table] if r["id"] > after_id), key=lambda r: r["id"])[:limit]

    def children(self, table: str, ticket_id: int) -> list[Record]:
        """Notes / time entries / attachments of a live ticket, oldest first."""
        self.ticket(ticket_id)
        return sorted((r for r in self.data[table] if r["ticket_id"] == ticket_id), key=lambda r: r["id"])

    def find_marker(self, table: str, marker: str, ticket_id: int | None) -> Record | None:
        """The ticket or document carrying our marker in its (never displayed) marker field."""
        for r in self.data[table]:
            if ticket_id is not None and table != "tickets" and r["ticket_id"] != ticket_id:
                continue
            if r.get("marker") == marker and not r.get("deleted"):
                return r
        return None

    def count_marker(self, marker: str) -> int:
        """How many tickets and documents carry `marker` in their marker field (test control)."""
        return (sum(t.get("marker") == marker for t in self.data["tickets"])
                + sum(a.get("marker") == marker for a in self.data["attachments"]))

    # ------------------------------------------------------------ mutations

    def create_ticket(self, fields: dict[str, Any], *, at: datetime | None = None) -> Record:
        """A new ticket; company and board are required, the rest defaults like a PSA would."""
        summary = str(fields.get("summary") or "").strip()
        if not summary:
            raise _invalid("summary", "is required")
        if len(summary) > MAX_SUMMARY:
            raise _invalid("summary", f"is longer than {MAX_SUMMARY} characters")
        if fields.get("company_id") is None:
            raise _invalid("company", "is required")
        if fields.get("board_id") is None:
            raise _invalid("board", "is required")
        company = self._require("companies", fields["company_id"], "company")
        board = self._require("boards", fields["board_id"], "board")
        status = (self.board_status(board["id"], fields["status_id"]) if fields.get("status_id") is not None
                  else self.default_status(board["id"]))
        priority = (self._require("priorities", fields["priority_id"], "priority")
                    if fields.get("priority_id") is not None
                    else next(p for p in self.data["priorities"] if p["default"]))
        type_id = fields.get("type_id")
        if type_id is not None and (self.get("types", type_id) or {}).get("board_id") != board["id"]:
            raise _invalid("type", f"type {type_id} is not valid on board '{board['name']}'")
        contact_id = fields.get("contact_id")
        if contact_id is not None:
            contact = self._require("contacts", contact_id, "contact")
            if contact["company_id"] != company["id"]:
                raise _invalid("contact", f"contact {contact_id} does not belong to company '{company['name']}'")
        owner_id = fields.get("owner_id")
        if owner_id is not None:
            self._require("members", owner_id, "owner")
        now = iso(at or self.now())
        ticket = {"id": self.new_id(), "summary": summary, "description": str(fields.get("description") or ""),
                  "company_id": company["id"], "contact_id": contact_id, "board_id": board["id"],
                  "status_id": status["id"], "priority_id": priority["id"], "type_id": type_id, "owner_id": owner_id,
                  "source": fields.get("source") or "api", "created_at": now, "updated_at": None,
                  "closed_at": now if status["closed"] else None, "marker": fields.get("marker"), "deleted": False}
        self.data["tickets"].append(ticket)
        self.by_id["tickets"][ticket["id"]] = ticket
        self.stamp(ticket, "added", at=at)
        return ticket

    def update_ticket(self, ticket_id: int, changes: dict[str, Any]) -> Record:
        """Apply only the given fields; `owner_id: None` unassigns. Statuses must belong to the board."""
        ticket = self.ticket(ticket_id)
        unknown = set(changes) - set(TICKET_FIELDS)
        if unknown:
            raise _invalid(sorted(unknown)[0], "cannot be changed")
        board_id = ticket["board_id"]
        if "board_id" in changes:
            board_id = self._require("boards", changes["board_id"], "board")["id"]
        status_id = changes.get("status_id")
        if status_id is not None:
            status = self.board_status(board_id, status_id)
        elif board_id != ticket["board_id"]:
            status = self.default_status(board_id)  # moving boards resets the status, as PSAs do
        else:
            status = self.by_id["statuses"][ticket["status_id"]]
        type_id = changes.get("type_id")
        if type_id is not None and (self.get("types", type_id) or {}).get("board_id") != board_id:
            raise _invalid("type", f"type {type_id} is not valid on board '{self.by_id['boards'][board_id]['name']}'")
        if "summary" in changes:
            summary = str(changes["summary"] or "").strip()
            if not summary or len(summary) > MAX_SUMMARY:
                raise _invalid("summary", f"must be 1 to {MAX_SUMMARY} characters")
            ticket["summary"] = summary
        if "description" in changes:
            ticket["description"] = str(changes["description"] or "")
        if changes.get("priority_id") is not None:
            ticket["priority_id"] = self._require("priorities", changes["priority_id"], "priority")["id"]
        if "owner_id" in changes:
            ticket["owner_id"] = (None if changes["owner_id"] is None
                                  else self._require("members", changes["owner_id"], "owner")["id"])
        if "type_id" in changes:
            ticket["type_id"] = changes["type_id"]
        was_closed = self.by_id["statuses"][ticket["status_id"]]["closed"]
        ticket["board_id"], ticket["status_id"] = board_id, status["id"]
        if status["closed"] and not was_closed:
            ticket["closed_at"] = iso(self.now())
        elif not status["closed"]:
            ticket["closed_at"] = None
        self.stamp(ticket)
        return ticket

    def add_note(self, ticket_id: int, text: str, visibility: str, *, member_id: int | None = None,
                 contact_id: int | None = None, email_contact: bool = False) -> Record:
        """A note on a ticket; only public notes may e-mail the contact."""
        ticket = self.ticket(ticket_id)
        if visibility not in VISIBILITIES:
            raise _invalid("visibility", f"must be one of {', '.join(VISIBILITIES)}")
        if not text.strip():
            raise _invalid("text", "is required")
        if len(text) > MAX_NOTE:
            raise _invalid("text", f"is longer than {MAX_NOTE} characters")
        if member_id is not None:
            self._require("members", member_id, "member")
        note = {"id": self.new_id(), "ticket_id": ticket_id, "text": text, "visibility": visibility,
                "member_id": member_id, "contact_id": contact_id, "created_at": iso(self.now()),
                "emailed_contact": bool(email_contact and visibility == "public" and ticket["contact_id"])}
        self.data["notes"].append(note)
        self.stamp(ticket)
        return note

    def add_time_entry(self, ticket_id: int, *, minutes: int, started_at: datetime, member_id: int | None,
                       notes: str, billable: bool) -> Record:
        """Time worked on a ticket (1 minute to 24 hours)."""
        ticket = self.ticket(ticket_id)
        if not 0 < minutes <= 24 * 60:
            raise _invalid("minutes", "must be between 1 and 1440")
        if member_id is not None:
            self._require("members", member_id, "member")
        entry = {"id": self.new_id(), "ticket_id": ticket_id, "member_id": member_id, "minutes": minutes,
                 "started_at": iso(started_at), "notes": notes, "billable": billable}
        self.data["time_entries"].append(entry)
        self.stamp(ticket)
        return entry

    def add_attachment(self, ticket_id: int, *, filename: str, content: bytes, content_type: str,
                       marker: str | None, visibility: str = "public") -> Record:
        """A document on a ticket; the server refuses more than 10 MB (413), as the connector checks first."""
        ticket = self.ticket(ticket_id)
        if len(content) > MAX_ATTACHMENT_BYTES:
            raise SandboxApiError(413, "PayloadTooLarge", f"Attachments are limited to {MAX_ATTACHMENT_BYTES} bytes.")
        if not filename.strip():
            raise _invalid("filename", "is required")
        attachment = {"id": self.new_id(), "ticket_id": ticket_id, "filename": filename, "content_type": content_type,
                      "size": len(content), "sha256": hashlib.sha256(content).hexdigest(), "marker": marker,
                      "visibility": visibility, "created_at": iso(self.now())}
        self.data["attachments"].append(attachment)
        self.stamp(ticket)
        return attachment

    def delete_ticket(self, ticket_id: int) -> None:
        """Delete a ticket (it disappears from every listing; list_ticket_ids shows it is gone)."""
        ticket = self.ticket(ticket_id)
        ticket["deleted"] = True
        self.stamp(ticket, "deleted")

    def seed_ticket(self, summary: str, *, at: datetime, **fields: Any) -> Record:
        """A ticket created at `at` on the first board for the first company (test and demo control)."""
        return self.create_ticket({"summary": summary, "company_id": self.data["companies"][0]["id"],
                                   "board_id": self.data["boards"][0]["id"], "source": "seed", **fields}, at=at)

    def touch_ticket(self, ticket_id: int, *, at: datetime) -> Record:
        """Mark a ticket changed at exactly `at` (test control)."""
        ticket = self.ticket(ticket_id)
        ticket["description"] = (ticket["description"] + "\n(edited)").lstrip()
        self.stamp(ticket, at=at)
        return ticket
