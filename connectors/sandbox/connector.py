"""SandboxConnector: the PsaConnector for the built-in sandbox PSA (kind "sandbox").

Settings: {"seed": 42, "state_path": ".deskbridge/sandbox.db"} (both optional; without a
state_path the data lives in memory; "instance" separates in-memory sandboxes of the same seed;
"ui_url" is the base of ticket deep links; "webhook_secret" signs pushes). Credentials:
{"api_key": "sandbox"}: any other key is refused with PsaAuthError, so credential checks are real.

Deep links: `{ui_url}/tickets/{id}`, default ui_url "https://sandbox.deskbridge.invalid" (the reserved
`.invalid` TLD: a well-formed https link that chat clients render, served by nothing).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import httpx

from connectors import errors
from connectors.base import (
    AccountInfo,
    Capabilities,
    ConnectionConfig,
    Feature,
    FoundWrite,
    NewAttachment,
    NewNote,
    NewTicket,
    NewTimeEntry,
    Page,
    Picklists,
    PsaAttachment,
    PsaCompany,
    PsaContact,
    PsaMember,
    PsaNote,
    PsaTicket,
    PsaTimeEntry,
    SetupFields,
    TicketPatch,
    WebhookEvent,
    WriteJournal,
    WriteKind,
    WriteProbe,
    match_note,
    match_time_entry,
)
from connectors.sandbox import mapping, webhooks
from connectors.sandbox.dialect import SandboxApiError, parse_ts
from connectors.sandbox.rules import MAX_ATTACHMENT_BYTES, MAX_NOTE, MAX_SUMMARY
from connectors.sandbox.server import Clock, SandboxServer, server_for

T = TypeVar("T")
DEFAULT_UI_URL = "https://sandbox.deskbridge.invalid"
_TABLES = {WriteKind.TICKET: "tickets", WriteKind.NOTE: "notes", WriteKind.TIME_ENTRY: "time_entries",
           WriteKind.ATTACHMENT: "attachments"}


def _encode(cursor: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(cursor, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(value, dict):
            raise ValueError("not an object")
        return value
    except (ValueError, binascii.Error) as exc:
        raise errors.PsaValidationError("This paging cursor is not one the sandbox issued.",
                                        fields={"cursor": "invalid"}) from exc


def _id(external_id: str | None, what: str = "ticket") -> int:
    try:
        return int(external_id)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise errors.PsaNotFound(f"No {what} with id {external_id!r} in the sandbox.", status=404) from exc


def _optional_id(external_id: str | None, field: str) -> int | None:
    if external_id is None:
        return None
    try:
        return int(external_id)
    except ValueError as exc:
        raise errors.PsaValidationError(f"{field}: {external_id!r} is not a sandbox id",
                                        fields={field: "not a sandbox id"}) from exc


def _translate(exc: SandboxApiError) -> errors.PsaError:
    """The sandbox's error answers as PsaErrors (the one place this happens)."""
    kw: dict[str, Any] = {"status": exc.status, "code": exc.code}
    if exc.status == 401:
        return errors.PsaAuthError(exc.message, **kw)
    if exc.status == 404:
        return errors.PsaNotFound(exc.message, **kw)
    if exc.status == 413:
        return errors.PsaTooLarge(exc.message, **kw)
    if exc.status == 429:
        return errors.PsaRateLimited(exc.message, retry_after=exc.retry_after, **kw)
    if exc.status == 504:
        return errors.PsaTimeout(exc.message, **kw)
    if exc.status >= 500:
        return errors.PsaUnavailable(exc.message, **kw)
    return errors.PsaValidationError(exc.message, fields=exc.fields, **kw)


class SandboxConnector:
    """The built-in sandbox PSA as a PsaConnector (every feature, including webhooks and delete detection)."""
    SETUP: ClassVar[SetupFields] = SetupFields(credentials=("api_key",), optional_settings=("ui_url",))

    kind: ClassVar[str] = "sandbox"
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        features=frozenset(Feature) - {Feature.TICKET_CATEGORIES, Feature.TYPE_SUBTYPES}, max_attachment_bytes=MAX_ATTACHMENT_BYTES, max_summary_chars=MAX_SUMMARY,
        max_note_chars=MAX_NOTE, page_size=100,
        create_requires=frozenset({"company_external_id", "board_external_id"}))

    def __init__(self, config: ConnectionConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Clock | None = None, page_size: int | None = None, **options: Any) -> None:
        # `transport` is accepted for a uniform factory signature; the sandbox is in-process.
        self.config = config
        self.capabilities = (self.CAPABILITIES if page_size is None
                             else replace(self.CAPABILITIES, page_size=page_size))
        self.server: SandboxServer = server_for(config.settings, clock=clock)
        self._api_key = str(config.credentials.get("api_key", ""))
        self._ui_url = str(config.settings.get("ui_url") or DEFAULT_UI_URL).rstrip("/")
        self._secret = str(config.settings.get("webhook_secret") or "sandbox-webhook-secret")

    async def _call(self, fn: Callable[[], T], *, write: bool = False) -> T:
        """One API request; with a state file it runs in a worker thread (SQLite I/O never blocks the loop)."""
        try:
            if self.server.path is None:
                return self.server.call(self._api_key, fn, write=write)
            return await asyncio.to_thread(self.server.call, self._api_key, fn, write=write)
        except SandboxApiError as exc:
            raise _translate(exc) from None

    def _lookup(self, table: str, record_id: int | None) -> dict[str, Any] | None:
        return self.server.get(table, record_id)

    def _ticket(self, record: dict[str, Any]) -> PsaTicket:
        return mapping.ticket(record, self._lookup)

    # ------------------------------------------------------------ reads

    async def check_credentials(self) -> AccountInfo:
        data = await self._call(lambda: self.server.data)
        return AccountInfo(display_name=f"Sandbox PSA (seed {data['seed']})",
                           details={"tickets": str(sum(not t.get("deleted") for t in data["tickets"])),
                                    "companies": str(len(data["companies"]))})

    async def list_changed_tickets(self, since: datetime | None, cursor: str | None = None) -> Page[PsaTicket]:
        after = None
        if cursor is not None:
            state = _decode(cursor)
            since = parse_ts(state["s"]) if state.get("s") else None
            after = (parse_ts(state["u"]), int(state["i"]))
        size = self.capabilities.page_size
        since_utc = since.astimezone(UTC) if since is not None else None
        rows = await self._call(lambda: self.server.changed_tickets(since_utc, after, size + 1))
        items = [self._ticket(r) for r in rows[:size]]
        next_cursor = None
        if len(rows) > size:
            last = rows[size - 1]
            next_cursor = _encode({"s": since_utc.isoformat() if since_utc else None, "u": last["updated_at"],
                                   "i": last["id"]})
        return Page(items, next_cursor)

    async def list_ticket_ids(self, cursor: str | None = None) -> Page[str]:
        after = int(_decode(cursor).get("i", 0)) if cursor else 0
        size = self.capabilities.page_size
        ids = await self._call(lambda: self.server.ticket_ids_after(after, size + 1))
        more = len(ids) > size
        return Page([str(i) for i in ids[:size]], _encode({"i": ids[size - 1]}) if more else None)

    async def get_ticket(self, external_id: str) -> PsaTicket:
        tid = _id(external_id)
        return self._ticket(await self._call(lambda: self.server.ticket(tid)))

    async def list_notes(self, ticket_external_id: str) -> Sequence[PsaNote]:
        tid = _id(ticket_external_id)
        return [mapping.note(n, self._lookup) for n in await self._call(lambda: self.server.children("notes", tid))]

    async def list_time_entries(self, ticket_external_id: str) -> Sequence[PsaTimeEntry]:
        tid = _id(ticket_external_id)
        rows = await self._call(lambda: self.server.children("time_entries", tid))
        return [mapping.time_entry(e, self._lookup) for e in rows]

    async def list_attachments(self, ticket_external_id: str) -> Sequence[PsaAttachment]:
        tid = _id(ticket_external_id)
        return [mapping.attachment(a) for a in await self._call(lambda: self.server.children("attachments", tid))]

    async def picklists(self) -> Picklists:
        data = await self._call(lambda: self.server.data)
        return Picklists(boards=[mapping.board(b) for b in data["boards"]],
                         statuses=[mapping.status(s) for s in data["statuses"]],
                         priorities=[mapping.priority(p) for p in data["priorities"]],
                         types=[mapping.ticket_type(t) for t in data["types"]])

    async def list_members(self) -> Sequence[PsaMember]:
        return [mapping.member(m) for m in await self._call(lambda: list(self.server.data["members"]))]

    async def _paged(self, table: str, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        after = int(_decode(cursor).get("i", 0)) if cursor else 0
        size = self.capabilities.page_size
        rows = await self._call(lambda: self.server.page_after(table, after, size + 1))
        more = len(rows) > size
        return rows[:size], (_encode({"i": rows[size - 1]["id"]}) if more else None)

    async def list_companies(self, cursor: str | None = None) -> Page[PsaCompany]:
        rows, nxt = await self._paged("companies", cursor)
        return Page([mapping.company(c) for c in rows], nxt)

    async def list_contacts(self, cursor: str | None = None) -> Page[PsaContact]:
        rows, nxt = await self._paged("contacts", cursor)
        return Page([mapping.contact(c) for c in rows], nxt)

    async def find_write(self, probe: WriteProbe) -> FoundWrite | None:
        """Tickets and documents by their marker field (never shown to anyone); notes and time entries,
        which have none (as in ConnectWise), by an invisible match on what was sent."""
        kind = probe.kind
        if kind in (WriteKind.TICKET, WriteKind.ATTACHMENT):
            tid = None if probe.ticket_external_id is None else _id(probe.ticket_external_id)
            record = await self._call(lambda: self.server.find_marker(_TABLES[kind], probe.marker, tid))
            return None if record is None else FoundWrite(kind=kind, external_id=str(record["id"]))
        if probe.ticket_external_id is None:
            raise errors.PsaValidationError(f"Finding a {kind.value} again needs the ticket id.",
                                            fields={"ticket_external_id": "required"})
        found: PsaNote | PsaTimeEntry | None
        if kind is WriteKind.NOTE:
            found = match_note(await self.list_notes(probe.ticket_external_id), probe)
        else:
            found = match_time_entry(await self.list_time_entries(probe.ticket_external_id), probe)
        return None if found is None else FoundWrite(kind=kind, external_id=found.external_id)

    async def recover(self, journal: WriteJournal) -> None:
        """Nothing to undo: the sandbox e-mails a note's contact per note, no ticket setting is flipped."""
        return None

    # ------------------------------------------------------------ writes

    async def create_ticket(self, ticket: NewTicket) -> PsaTicket:
        fields = {"summary": ticket.summary, "description": ticket.description, "marker": ticket.marker,
                  "company_id": _optional_id(ticket.company_external_id, "company"),
                  "contact_id": _optional_id(ticket.contact_external_id, "contact"),
                  "board_id": _optional_id(ticket.board_external_id, "board"),
                  "status_id": _optional_id(ticket.status_external_id, "status"),
                  "priority_id": _optional_id(ticket.priority_external_id, "priority"),
                  "type_id": _optional_id(ticket.type_external_id, "type"),
                  "owner_id": _optional_id(ticket.owner_external_id, "owner")}
        return self._ticket(await self._call(lambda: self.server.create_ticket(fields), write=True))

    async def update_ticket(self, external_id: str, patch: TicketPatch) -> PsaTicket:
        tid = _id(external_id)
        changes: dict[str, Any] = {}
        if patch.summary is not None:
            changes["summary"] = patch.summary
        for attr, key in (("status_external_id", "status_id"), ("priority_external_id", "priority_id"),
                          ("board_external_id", "board_id"), ("owner_external_id", "owner_id"),
                          ("type_external_id", "type_id")):
            value = getattr(patch, attr)
            if value is not None:
                changes[key] = _optional_id(value, key.removesuffix("_id"))
        if patch.unassign:
            changes["owner_id"] = None
        if patch.clear_type:
            changes["type_id"] = None
        if not changes:
            return await self.get_ticket(external_id)
        return self._ticket(await self._call(lambda: self.server.update_ticket(tid, changes), write=True))

    async def add_note(self, note: NewNote, journal: WriteJournal | None = None) -> PsaNote:
        tid = _id(note.ticket_external_id)
        member = _optional_id(note.author_member_external_id, "member")
        text = note.text  # exactly what the technician wrote
        record = await self._call(lambda: self.server.add_note(tid, text, note.visibility.value, member_id=member,
                                                         email_contact=note.email_contact), write=True)
        return mapping.note(record, self._lookup)

    async def add_time_entry(self, entry: NewTimeEntry) -> PsaTimeEntry:
        tid = _id(entry.ticket_external_id)
        member = _optional_id(entry.member_external_id, "member")
        notes = entry.notes
        record = await self._call(lambda: self.server.add_time_entry(
            tid, minutes=entry.minutes, started_at=entry.started_at, member_id=member, notes=notes,
            billable=entry.billable), write=True)
        return mapping.time_entry(record, self._lookup)

    async def upload_attachment(self, attachment: NewAttachment) -> PsaAttachment:
        cap = self.capabilities.max_attachment_bytes
        if len(attachment.content) > cap:
            raise errors.PsaTooLarge(
                f"{attachment.filename} is {len(attachment.content)} bytes; the sandbox accepts at most {cap}.",
                fields={"content": f"larger than {cap} bytes"})
        tid = _id(attachment.ticket_external_id)
        record = await self._call(lambda: self.server.add_attachment(
            tid, filename=attachment.filename, content=attachment.content, content_type=attachment.content_type,
            marker=attachment.marker, visibility=attachment.visibility.value), write=True)
        return mapping.attachment(record)

    # ------------------------------------------------------------ push, links, lifecycle

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        return webhooks.verify(self._secret, self.server.now(), headers, body)

    def ticket_url(self, external_id: str) -> str:
        return f"{self._ui_url}/tickets/{external_id}"

    async def aclose(self) -> None:
        return None
