"""One op -> the connector calls that deliver it (the PSA write itself; no database here).

Dedupe (reliability-sla.md §2.3): every write carries the op's marker, which the connector keeps only in
fields the customer never sees. When an earlier attempt's outcome is unknown, the attempt first looks for
the write in the PSA (`find_write` with a `WriteProbe`: the write as sent, when the op was made, and the
records already accounted for) and writes only if it is not there; if a sync has already linked the
op's timeline entry to a PSA record, the write landed and nothing is asked. Ticket updates are
idempotent in effect and are simply re-applied. An attempt first undoes what an interrupted earlier one
left changed (`recover` with the op's journal). Every connector call goes through `gate` (the
connection's rate budget and concurrency slot).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.base import (
    MemoryJournal,
    NewAttachment,
    NewNote,
    NewTicket,
    NewTimeEntry,
    NoteVisibility,
    PsaConnector,
    TicketPatch,
    WriteJournal,
    WriteKind,
    WriteProbe,
)
from connectors.errors import PsaUnsupported, PsaValidationError
from core.outbox.ops import (
    AddNote,
    AddTimeEntry,
    AlertAction,
    CreateTicket,
    OpKind,
    TenantAction,
    UpdateTicket,
    UploadAttachment,
    parse_payload,
)

Gate = Callable[[], AbstractAsyncContextManager[Any]]
# Records (fenced) that a PSA write is about to start; raises if the attempt no longer owns the op.
Mark = Callable[[], Awaitable[None]]


async def _no_mark() -> None:
    return None
# Sends an alert action to the workspace's alert webhook (core/alert_webhooks.py), bound to the op's workspace:
# (payload, idempotency key) -> HTTP status; raises PsaError.
AlertSend = Callable[[AlertAction, str], Awaitable[int]]
# Runs a Microsoft 365 quick action (core/tenant_actions.py), bound to the op's workspace: (payload, marker) ->
# what was done, for the audit row; raises PsaError (Graph's refusals translated, explained).
TenantSend = Callable[[TenantAction, str], Awaitable[str]]

_WRITE_KIND = {
    OpKind.CREATE_TICKET: WriteKind.TICKET,
    OpKind.ADD_NOTE: WriteKind.NOTE,
    OpKind.ADD_TIME_ENTRY: WriteKind.TIME_ENTRY,
    OpKind.UPLOAD_ATTACHMENT: WriteKind.ATTACHMENT,
}


class NotReady(Exception):
    """The op cannot be sent (its ticket has no PSA id although every earlier op of the ticket is finished,
    e.g. the create was discarded). Nothing was sent; the op goes dead so an operator sees it."""


@dataclass(frozen=True, slots=True)
class DeliveryInput:
    """What the worker read from the database just before delivery."""

    ticket_external_id: str | None
    blob: bytes | None = None
    made_at: datetime | None = None  # when the op was made: its write cannot be older
    # Read only when an earlier attempt's outcome is unknown:
    entry_external_id: str | None = None  # the op's timeline entry, already linked to a PSA record by a sync
    known_external_ids: frozenset[str] = frozenset()  # the ticket's records of that kind already accounted for


@dataclass(frozen=True, slots=True)
class Delivered:
    action: str  # the call that settled it: create_ticket, add_note, find_write, …
    external_id: str | None = None
    reconciled: bool = False  # found by marker: an earlier attempt had landed
    url: str | None = None


@dataclass(slots=True)
class AttemptLog:
    """What an attempt did, for the audit row and for deciding whether its outcome is now unknown."""

    calls: list[str] = field(default_factory=list)
    wrote: bool = False  # a write call was started (its outcome is unknown if it did not return)
    reconcile_checked: bool = False  # the marker was looked for and was not there


def request_summary(kind: str, payload: dict[str, Any], marker: str, inp: DeliveryInput | None) -> dict[str, Any]:
    """The request as recorded in the audit log (redacted later by audit_row)."""
    out: dict[str, Any] = {"kind": kind, "marker": marker, "payload": dict(payload)}
    if inp is not None:
        out["ticket_external_id"] = inp.ticket_external_id
        if inp.blob is not None:
            out["content"] = f"[{len(inp.blob)} bytes]"
    return out


def reconcilable(kind: str) -> bool:
    """Whether an op of this kind must look for its marker after an ambiguous attempt."""
    return kind in _WRITE_KIND


async def deliver(connector: PsaConnector | None, kind: str, payload_data: dict[str, Any], marker: str,
                  inp: DeliveryInput, *, reconcile: bool, gate: Gate, log: AttemptLog,
                  alerts: AlertSend | None = None, journal: WriteJournal | None = None,
                  mark: Mark = _no_mark, tenant: TenantSend | None = None) -> Delivered:
    """Deliver one op; raises connectors.errors.PsaError (or NotReady) when it did not land."""
    payload = parse_payload(payload_data)
    if isinstance(payload, AlertAction):
        return await _alert(payload, marker, alerts, log)
    if isinstance(payload, TenantAction):
        return await _tenant(payload, marker, tenant, log)
    assert connector is not None, "a PSA write needs its connection's connector"
    journal = journal if journal is not None else MemoryJournal()
    if any(v for v in getattr(journal, "data", {}).values()):
        log.calls.append("recover")  # an earlier attempt died with something to undo
        async with gate():
            await mark()
            await connector.recover(journal)
    write_kind = _WRITE_KIND.get(OpKind(kind))
    if reconcile and write_kind is not None:
        if inp.entry_external_id is not None:  # a sync already found it in the PSA and linked it
            return Delivered("linked", inp.entry_external_id, reconciled=True)
        log.calls.append("find_write")
        async with gate():
            found = await connector.find_write(probe(write_kind, payload, marker, inp))
        if found is not None:
            return Delivered("find_write", found.external_id, reconciled=True, url=_url(connector, kind, found.external_id, inp))
        log.reconcile_checked = True
    return await _write(connector, payload, marker, inp, _marking(gate, mark), log, journal)


def probe(kind: WriteKind, payload: object, marker: str, inp: DeliveryInput) -> WriteProbe:
    """The write as it was sent, for `find_write` to recognise it without any tag in what it stored."""
    common: dict[str, Any] = {"kind": kind, "marker": marker, "since": inp.made_at,
                              "exclude": inp.known_external_ids}
    if kind is WriteKind.TICKET:
        return WriteProbe(**common)
    ticket = _ticket(inp)
    if isinstance(payload, AddNote):
        return WriteProbe(**common, ticket_external_id=ticket, text=payload.text,
                          visibility=NoteVisibility(payload.visibility),
                          author_external_id=payload.author_member_external_id)
    if isinstance(payload, AddTimeEntry):
        return WriteProbe(**common, ticket_external_id=ticket, text=payload.notes, minutes=payload.minutes,
                          started_at=payload.started_at, author_external_id=payload.member_external_id)
    if isinstance(payload, UploadAttachment):
        return WriteProbe(**common, ticket_external_id=ticket, filename=payload.filename, size=payload.size)
    return WriteProbe(**common, ticket_external_id=ticket)


async def _write(connector: PsaConnector, payload: object, marker: str, inp: DeliveryInput, gate: Gate,
                 log: AttemptLog, journal: WriteJournal) -> Delivered:
    if isinstance(payload, CreateTicket):
        new = NewTicket(marker=marker, **payload.model_dump(exclude={"kind"}))
        ticket = await _call(lambda: connector.create_ticket(new), "create_ticket", gate, log)
        return Delivered("create_ticket", ticket.external_id, url=connector.ticket_url(ticket.external_id))
    if isinstance(payload, UpdateTicket):
        patch = TicketPatch(**payload.model_dump(exclude={"kind"}))
        ext = _ticket(inp)
        if patch.is_empty():
            return Delivered("update_ticket", ext)
        await _call(lambda: connector.update_ticket(ext, patch), "update_ticket", gate, log)
        return Delivered("update_ticket", ext)
    if isinstance(payload, AddNote):
        note = NewNote(ticket_external_id=_ticket(inp), text=payload.text, visibility=NoteVisibility(payload.visibility),
                       marker=marker, author_member_external_id=payload.author_member_external_id,
                       email_contact=payload.email_contact,
                       author_contact_external_id=payload.author_contact_external_id)
        made = await _call(lambda: connector.add_note(note, journal), "add_note", gate, log)
        return Delivered("add_note", made.external_id)
    if isinstance(payload, AddTimeEntry):
        entry = NewTimeEntry(ticket_external_id=_ticket(inp), minutes=payload.minutes, started_at=payload.started_at,
                             marker=marker, member_external_id=payload.member_external_id, notes=payload.notes,
                             billable=payload.billable)
        made_t = await _call(lambda: connector.add_time_entry(entry), "add_time_entry", gate, log)
        return Delivered("add_time_entry", made_t.external_id)
    if isinstance(payload, UploadAttachment):
        if inp.blob is None:
            raise PsaValidationError("The file's bytes are no longer stored, so it cannot be uploaded.",
                                     code="BlobMissing")
        att = NewAttachment(ticket_external_id=_ticket(inp), filename=payload.filename, content=inp.blob,
                            marker=marker, content_type=payload.content_type,
                            visibility=NoteVisibility(payload.visibility))
        made_a = await _call(lambda: connector.upload_attachment(att), "upload_attachment", gate, log)
        return Delivered("upload_attachment", made_a.external_id)
    raise PsaUnsupported(f"Unknown outbox op kind {type(payload).__name__}.")  # pragma: no cover


async def _alert(payload: AlertAction, marker: str, alerts: AlertSend | None, log: AttemptLog) -> Delivered:
    """To the workspace's alert webhook, not the PSA (no PSA gate). The op's marker is the idempotency key,
    the same on every retry, so the receiver acts once however often it is asked."""
    if alerts is None:
        raise PsaUnsupported("Alert actions cannot be sent by this process (no alert webhook sender is wired in).",
                             code="NoAlertWebhook")
    log.calls.append("alert_webhook")
    log.wrote = True
    status = await alerts(payload, marker)
    log.calls[-1] = f"alert_webhook {status}"
    return Delivered("alert_webhook")


async def _tenant(payload: TenantAction, marker: str, send: TenantSend | None, log: AttemptLog) -> Delivered:
    """To Microsoft Graph, not the PSA (no PSA gate). Each action is idempotent in effect, so a retry after an
    unknown outcome simply asks again."""
    if send is None:
        raise PsaUnsupported("Microsoft 365 quick actions cannot be sent by this process (Microsoft 365 is not "
                             "configured here).", code="NoM365")
    log.calls.append(f"graph {payload.action}")
    log.wrote = True
    return Delivered(await send(payload, marker))


def _marking(gate: Gate, mark: Mark) -> Gate:
    """The gate for write calls: the budget first, then the fenced record that a write is starting."""
    @asynccontextmanager
    async def gated() -> AsyncIterator[None]:
        async with gate():
            await mark()
            yield

    return gated


async def _call(call: Callable[[], Awaitable[Any]], name: str, gate: Gate, log: AttemptLog) -> Any:
    log.calls.append(name)
    async with gate():
        log.wrote = True
        return await call()


def _ticket(inp: DeliveryInput) -> str:
    if not inp.ticket_external_id:
        raise NotReady("the ticket has no PSA id yet (its create has not been delivered)")
    return inp.ticket_external_id


def _url(connector: PsaConnector, kind: str, external_id: str, inp: DeliveryInput) -> str | None:
    if kind == OpKind.CREATE_TICKET:
        return connector.ticket_url(external_id)
    return None
