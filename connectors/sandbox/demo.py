"""Things that happen "inside" the sandbox PSA, for demos and scenario tests.

Each helper changes the PSA the way a person using the PSA's own UI would (no API key, no faults), so
the next sync (or a webhook from `server.drain_webhooks()`) brings the change into Deskbridge:

    server = sandbox_server({"seed": 42, "state_path": ".deskbridge/sandbox.db"})
    customer_replies(server, "1234", "Still broken after the reboot")
    technician_changes_status(server, "1234", "Waiting Customer Response", technician="bob")
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.base import PsaNote, PsaTicket
from connectors.sandbox import mapping
from connectors.sandbox.dialect import Record, SandboxApiError
from connectors.sandbox.server import SandboxServer, server_for

__all__ = ["sandbox_server", "customer_replies", "technician_replies", "technician_changes_status",
           "customer_opens_ticket"]


def sandbox_server(settings: Mapping[str, Any]) -> SandboxServer:
    """The shared sandbox server of a connection's settings (the same one its connectors use)."""
    return server_for(settings)


def _ticket_id(external_id: str | int) -> int:
    return int(external_id)


def _member(server: SandboxServer, technician: str | None) -> Record:
    members = server.data["members"]
    if technician is None:
        return members[0]
    for m in members:
        if technician in (m["identifier"], m["email"], m["name"], str(m["id"])):
            return m
    raise ValueError(f"No sandbox technician {technician!r}; try one of "
                     + ", ".join(m["identifier"] for m in members))


def _wrap(server: SandboxServer, fn: Any) -> Any:
    try:
        return server.apply(fn)
    except SandboxApiError as exc:
        raise ValueError(exc.message) from None


def customer_replies(server: SandboxServer, ticket_external_id: str | int, text: str) -> PsaNote:
    """The ticket's contact answers (a public note authored by the contact, as from the customer portal)."""
    tid = _ticket_id(ticket_external_id)

    def run() -> Record:
        ticket = server.ticket(tid)
        contact = ticket["contact_id"] or next(
            c["id"] for c in server.data["contacts"] if c["company_id"] == ticket["company_id"])
        return server.add_note(tid, text, "public", contact_id=contact)

    return mapping.note(_wrap(server, run), server.get)


def technician_replies(server: SandboxServer, ticket_external_id: str | int, text: str, *,
                       technician: str | None = None, internal: bool = False) -> PsaNote:
    """A technician writes a note in the PSA's own UI (public by default)."""
    tid, member = _ticket_id(ticket_external_id), _member(server, technician)
    record = _wrap(server, lambda: server.add_note(tid, text, "internal" if internal else "public",
                                                   member_id=member["id"]))
    return mapping.note(record, server.get)


def technician_changes_status(server: SandboxServer, ticket_external_id: str | int, status: str, *,
                              technician: str | None = None) -> PsaTicket:
    """A technician sets a status (by name or id, on the ticket's board) and takes the ticket."""
    tid, member = _ticket_id(ticket_external_id), _member(server, technician)

    def run() -> Record:
        ticket = server.ticket(tid)
        candidates = [s for s in server.data["statuses"] if s["board_id"] == ticket["board_id"]]
        match = next((s for s in candidates if status in (s["name"], str(s["id"]))), None)
        if match is None:
            raise SandboxApiError(400, "InvalidObject", f"No status {status!r} on this ticket's board; try "
                                  + ", ".join(s["name"] for s in candidates))
        return server.update_ticket(tid, {"status_id": match["id"], "owner_id": member["id"]})

    return mapping.ticket(_wrap(server, run), server.get)


def customer_opens_ticket(server: SandboxServer, company_identifier: str, summary: str, *,
                          description: str = "", at: datetime | None = None) -> PsaTicket:
    """A customer e-mails the help desk: a new ticket on the first board for that company's first contact."""

    def run() -> Record:
        company = next((c for c in server.data["companies"]
                        if c["identifier"].lower() == company_identifier.lower()), None)
        if company is None:
            raise SandboxApiError(400, "InvalidObject", f"No sandbox company {company_identifier!r}")
        contact = next(c for c in server.data["contacts"] if c["company_id"] == company["id"])
        return server.create_ticket({"summary": summary, "description": description, "company_id": company["id"],
                                     "contact_id": contact["id"], "board_id": server.data["boards"][0]["id"],
                                     "source": "email"}, at=at)

    return mapping.ticket(_wrap(server, run), server.get)
