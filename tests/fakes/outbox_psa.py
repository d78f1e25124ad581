"""An in-process PSA for outbox tests: records every write with its marker, with switchable faults.

Faults behave like the vendor's failures as the connector reports them (connectors/errors.py):
429 with Retry-After, 500 before applying, a timeout before applying, a write applied whose response is
lost (PsaTimeout, outcome unknown), credentials revoked (401), a validation error (400).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from connectors.base import (
    Capabilities,
    ConnectionConfig,
    Feature,
    FoundWrite,
    NewAttachment,
    NewNote,
    NewTicket,
    NewTimeEntry,
    PsaAttachment,
    PsaNote,
    PsaTicket,
    PsaTimeEntry,
    TicketPatch,
    WriteJournal,
    WriteKind,
    WriteProbe,
)
from connectors.errors import (
    PsaAuthError,
    PsaRateLimited,
    PsaTimeout,
    PsaUnavailable,
    PsaUnsupported,
    PsaValidationError,
)


class Fault(StrEnum):
    RATE_LIMITED = "429"  # refused, Retry-After given
    SERVER_ERROR = "500"  # refused before applying
    TIMEOUT = "timeout"  # no answer, not applied (the client cannot know)
    APPLY_LOSE = "apply_lose"  # applied, response lost (the client cannot know)
    AUTH = "auth"  # 401
    VALIDATION = "validation"  # 400 with a field error


@dataclass
class Write:
    kind: WriteKind
    external_id: str
    ticket_external_id: str | None
    marker: str
    data: dict[str, Any]
    seq: int


@dataclass
class FakePsa:
    """The PSA's state, shared by every connector built for it."""

    retry_after: float = 3.0
    writes: list[Write] = field(default_factory=list)
    updates: list[tuple[str, TicketPatch]] = field(default_factory=list)
    probes: list[WriteProbe] = field(default_factory=list)  # what find_write was asked
    calls: list[str] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=lambda: defaultdict(list))
    revoked: bool = False
    _ids: Any = field(default_factory=lambda: itertools.count(5001))

    def script(self, method: str, *faults: Fault) -> None:
        """The next calls of `method` fail with these faults, in order."""
        self.faults[method].extend(faults)

    def of(self, kind: WriteKind) -> list[Write]:
        return [w for w in self.writes if w.kind == kind]

    def markers(self) -> list[str]:
        return [w.marker for w in self.writes]

    def _before(self, method: str) -> Fault | None:
        self.calls.append(method)
        if self.revoked:
            raise PsaAuthError("The API member's keys were revoked.", status=401, code="Unauthorized")
        fault = self.faults[method].pop(0) if self.faults.get(method) else None
        if fault == Fault.RATE_LIMITED:
            raise PsaRateLimited("Too many requests", status=429, retry_after=self.retry_after)
        if fault == Fault.SERVER_ERROR:
            raise PsaUnavailable("Internal server error", status=500)
        if fault == Fault.TIMEOUT:
            raise PsaTimeout("The PSA did not answer in time")
        if fault == Fault.AUTH:
            self.revoked = True
            raise PsaAuthError("The API member's keys were revoked.", status=401, code="Unauthorized")
        if fault == Fault.VALIDATION:
            raise PsaValidationError("The object is invalid", status=400, code="InvalidObject",
                                     fields={"summary": "Summary may not exceed 100 characters"})
        return fault

    def _apply(self, method: str, kind: WriteKind, ticket: str | None, marker: str, data: dict[str, Any]) -> Write:
        fault = self._before(method)
        w = Write(kind, str(next(self._ids)), ticket, marker, data, len(self.writes))
        self.writes.append(w)
        if fault == Fault.APPLY_LOSE:
            raise PsaTimeout("The PSA did not answer in time")
        return w


class FakeConnector:
    kind: ClassVar[str] = "fake"
    capabilities = Capabilities(features=frozenset(Feature) - {Feature.TICKET_CATEGORIES, Feature.TYPE_SUBTYPES})

    def __init__(self, psa: FakePsa, config: ConnectionConfig | None = None) -> None:
        self.psa = psa
        self.config = config
        self.closed = False

    async def create_ticket(self, ticket: NewTicket) -> PsaTicket:
        w = self.psa._apply("create_ticket", WriteKind.TICKET, None, ticket.marker, {"summary": ticket.summary})
        return PsaTicket(external_id=w.external_id, summary=ticket.summary, marker=ticket.marker)

    async def update_ticket(self, external_id: str, patch: TicketPatch) -> PsaTicket:
        self.psa._before("update_ticket")
        self.psa.updates.append((external_id, patch))
        return PsaTicket(external_id=external_id, summary="")

    async def add_note(self, note: NewNote, journal: WriteJournal | None = None) -> PsaNote:
        w = self.psa._apply("add_note", WriteKind.NOTE, note.ticket_external_id, note.marker, {"text": note.text})
        return PsaNote(external_id=w.external_id, ticket_external_id=note.ticket_external_id, text=note.text,
                       visibility=note.visibility, marker=note.marker)

    async def add_time_entry(self, entry: NewTimeEntry) -> PsaTimeEntry:
        w = self.psa._apply("add_time_entry", WriteKind.TIME_ENTRY, entry.ticket_external_id, entry.marker,
                            {"minutes": entry.minutes})
        return PsaTimeEntry(external_id=w.external_id, ticket_external_id=entry.ticket_external_id,
                            minutes=entry.minutes, marker=entry.marker)

    async def upload_attachment(self, attachment: NewAttachment) -> PsaAttachment:
        w = self.psa._apply("upload_attachment", WriteKind.ATTACHMENT, attachment.ticket_external_id,
                            attachment.marker, {"filename": attachment.filename, "size": len(attachment.content)})
        return PsaAttachment(external_id=w.external_id, ticket_external_id=attachment.ticket_external_id,
                             filename=attachment.filename, marker=attachment.marker)

    async def find_write(self, probe: WriteProbe) -> FoundWrite | None:
        """This fake recognises a write by the op's marker, kept beside the record where nobody reads it
        (how a real connector recognises one is its own business: the contract suite tests that)."""
        self.psa._before("find_write")
        self.psa.probes.append(probe)
        for w in self.psa.writes:
            if w.kind == probe.kind and w.marker == probe.marker and \
                    probe.ticket_external_id in (None, w.ticket_external_id):
                return FoundWrite(kind=probe.kind, external_id=w.external_id)
        return None

    async def recover(self, journal: WriteJournal) -> None:
        self.psa._before("recover")

    def ticket_url(self, external_id: str) -> str:
        return f"https://psa.example/tickets/{external_id}"

    async def aclose(self) -> None:
        self.closed = True

    def __getattr__(self, name: str) -> Any:  # the read side is not used by the outbox
        async def unsupported(*_a: Any, **_k: Any) -> Any:
            raise PsaUnsupported(f"{name} is not part of the outbox fake")

        return unsupported


@dataclass
class FakeClock:
    """Wall clock for tests: moves only when told to."""

    # Ahead of real time by LEAD: rows written with real-now defaults (an op's next_attempt_at) are due at once,
    # for as long as the test runs. The lead was 5 s and ran out on a loaded machine (ops enqueued later than 5 s
    # after the clock was made were not due yet, and the test waited for a delivery that never came).
    now: datetime = field(default_factory=lambda: datetime.now(UTC) + FakeClock.LEAD)
    LEAD: ClassVar[timedelta] = timedelta(minutes=30)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
