"""The PSA connector seam: the protocol, canonical models and capabilities shared by every PSA.

Designed against ConnectWise Manage, Datto Autotask and HaloPSA (reference/psa-apis.md). Vendor JSON
never crosses this line: connectors return these dataclasses, and `core/` sees nothing else.

Conventions:
- External ids are strings (Autotask and ConnectWise use ints, Halo action ids are per ticket).
- Datetimes are tz-aware UTC.
- Every write takes a `marker` (a short unique string from the outbox). The connector stamps it into
  the write where the PSA can carry it (a ticket field such as `externalXRef`, or a short tag in note
  text) and `find_write` looks for it again after an ambiguous failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


class Feature(StrEnum):
    """What a PSA can do; the UI hides what a connection lacks, and the outbox never attempts it."""

    RESOLUTION_NOTES = "resolution_notes"  # a third note visibility beside public/internal
    TIME_ENTRIES = "time_entries"
    ATTACHMENTS = "attachments"
    EMAIL_ON_PUBLIC_NOTE = "email_on_public_note"  # the PSA can e-mail the contact on a reply
    BOARD_SCOPED_STATUSES = "board_scoped_statuses"  # statuses belong to a board/queue/type
    TICKET_MARKER_FIELD = "ticket_marker_field"  # a ticket field holds our dedupe marker
    WEBHOOKS = "webhooks"
    WEBHOOK_SIGNATURES = "webhook_signatures"
    DELETE_DETECTION = "delete_detection"  # list_ticket_ids for full reconciliation
    ASSIGNMENT = "assignment"


@dataclass(frozen=True, slots=True)
class Capabilities:
    features: frozenset[Feature]
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_summary_chars: int = 100
    max_note_chars: int = 30_000
    page_size: int = 100
    # Fields the PSA requires on create beyond the summary (names from NewTicket).
    create_requires: frozenset[str] = frozenset()

    def has(self, feature: Feature) -> bool:
        return feature in self.features


class NoteVisibility(StrEnum):
    PUBLIC = "public"  # customer-facing (CW Discussion, Autotask publish=All, Halo visible to user)
    INTERNAL = "internal"
    RESOLUTION = "resolution"


class WriteKind(StrEnum):
    TICKET = "ticket"
    NOTE = "note"
    TIME_ENTRY = "time_entry"
    ATTACHMENT = "attachment"


# ---------------------------------------------------------------- read models


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to a PSA record: its id and, when the PSA sent it, its display name."""

    id: str
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PsaTicket:
    external_id: str
    summary: str
    description: str = ""
    company: Ref | None = None
    contact: Ref | None = None
    board: Ref | None = None
    status: Ref | None = None
    status_closed: bool | None = None  # the PSA says this status closes the ticket
    priority: Ref | None = None
    type: Ref | None = None
    owner: Ref | None = None  # assigned member
    source: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None  # the PSA's change time: the sync watermark
    closed_at: datetime | None = None
    respond_by: datetime | None = None  # the PSA's own SLA due dates, when it exposes them
    resolve_by: datetime | None = None
    responded_at: datetime | None = None
    marker: str | None = None  # our dedupe marker, when the ticket carries one
    alert_ref: str | None = None
    device_ref: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PsaNote:
    external_id: str
    ticket_external_id: str
    text: str  # without our marker tag
    visibility: NoteVisibility
    author: Ref | None = None
    author_is_contact: bool = False
    created_at: datetime | None = None
    marker: str | None = None  # found in the text and stripped, when the note is one of ours


@dataclass(frozen=True, slots=True, kw_only=True)
class PsaTimeEntry:
    external_id: str
    ticket_external_id: str
    minutes: int
    started_at: datetime | None = None
    member: Ref | None = None
    notes: str = ""
    billable: bool = True
    marker: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PsaAttachment:
    external_id: str
    ticket_external_id: str
    filename: str
    size: int | None = None
    content_type: str | None = None
    created_at: datetime | None = None
    marker: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PsaCompany:
    external_id: str
    identifier: str
    name: str
    active: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class PsaContact:
    external_id: str
    name: str
    company_external_id: str | None = None
    email: str | None = None
    phone: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class PsaMember:
    external_id: str
    name: str
    identifier: str | None = None
    email: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class PsaBoard:
    external_id: str
    name: str
    active: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class PsaStatus:
    external_id: str
    name: str
    board_external_id: str | None = None  # None where statuses are global
    closed: bool = False
    default: bool = False
    active: bool = True
    sort_order: int = 0
    time_entry_allowed: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class PsaPriority:
    external_id: str
    name: str
    sort_order: int = 0
    default: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PsaTicketType:
    external_id: str
    name: str
    board_external_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Picklists:
    boards: Sequence[PsaBoard] = ()
    statuses: Sequence[PsaStatus] = ()
    priorities: Sequence[PsaPriority] = ()
    types: Sequence[PsaTicketType] = ()


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results; `next_cursor` is opaque and None on the last page."""

    items: Sequence[T]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountInfo:
    """What check_credentials learned: shown to the admin when a connection is saved."""

    display_name: str
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookEvent:
    """A verified (or hint-only) push from the PSA; the sync engine re-reads what it names."""

    event_id: str
    entity: str  # "ticket", "note", "company", …
    action: str  # "added", "updated", "deleted"
    ticket_external_id: str | None
    verified: bool  # signature checked; False = treated only as a hint to re-fetch


@dataclass(frozen=True, slots=True, kw_only=True)
class FoundWrite:
    """A write found again by its marker."""

    kind: WriteKind
    external_id: str


# ---------------------------------------------------------------- write models


@dataclass(frozen=True, slots=True, kw_only=True)
class NewTicket:
    summary: str
    marker: str
    description: str = ""
    company_external_id: str | None = None
    contact_external_id: str | None = None
    board_external_id: str | None = None
    status_external_id: str | None = None
    priority_external_id: str | None = None
    type_external_id: str | None = None
    owner_external_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketPatch:
    """Only the fields to change; None means unchanged. `unassign` clears the owner."""

    summary: str | None = None
    status_external_id: str | None = None
    priority_external_id: str | None = None
    board_external_id: str | None = None
    owner_external_id: str | None = None
    unassign: bool = False

    def is_empty(self) -> bool:
        return not self.unassign and all(
            v is None
            for v in (
                self.summary,
                self.status_external_id,
                self.priority_external_id,
                self.board_external_id,
                self.owner_external_id,
            )
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NewNote:
    ticket_external_id: str
    text: str
    visibility: NoteVisibility
    marker: str
    author_member_external_id: str | None = None
    email_contact: bool = False  # public replies only; internal notes never e-mail anyone


@dataclass(frozen=True, slots=True, kw_only=True)
class NewTimeEntry:
    ticket_external_id: str
    minutes: int
    started_at: datetime
    marker: str
    member_external_id: str | None = None
    notes: str = ""
    billable: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAttachment:
    ticket_external_id: str
    filename: str
    content: bytes
    marker: str
    content_type: str = "application/octet-stream"


# ---------------------------------------------------------------- the protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionConfig:
    """Everything a connector needs to talk to one PSA tenant (credentials already decrypted)."""

    connection_id: int
    workspace_id: int
    kind: str
    settings: Mapping[str, Any]
    credentials: Mapping[str, Any]


@runtime_checkable
class PsaConnector(Protocol):
    """One PSA tenant. Every method raises only connectors.errors.PsaError subclasses."""

    kind: ClassVar[str]
    capabilities: Capabilities

    async def check_credentials(self) -> AccountInfo:
        """Prove the credentials work (PsaAuthError with the PSA's reason if not)."""
        ...

    async def list_changed_tickets(self, since: datetime | None, cursor: str | None = None) -> Page[PsaTicket]:
        """Tickets changed at or after `since` (all when None), oldest change first, one page."""
        ...

    async def list_ticket_ids(self, cursor: str | None = None) -> Page[str]:
        """Every live ticket id, for full reconciliation (deleted/merged detection)."""
        ...

    async def get_ticket(self, external_id: str) -> PsaTicket:
        ...

    async def list_notes(self, ticket_external_id: str) -> Sequence[PsaNote]:
        ...

    async def list_time_entries(self, ticket_external_id: str) -> Sequence[PsaTimeEntry]:
        ...

    async def list_attachments(self, ticket_external_id: str) -> Sequence[PsaAttachment]:
        ...

    async def create_ticket(self, ticket: NewTicket) -> PsaTicket:
        ...

    async def update_ticket(self, external_id: str, patch: TicketPatch) -> PsaTicket:
        ...

    async def add_note(self, note: NewNote) -> PsaNote:
        ...

    async def add_time_entry(self, entry: NewTimeEntry) -> PsaTimeEntry:
        ...

    async def upload_attachment(self, attachment: NewAttachment) -> PsaAttachment:
        """Checks the size cap before sending (PsaTooLarge)."""
        ...

    async def picklists(self) -> Picklists:
        """Boards, statuses (per board where scoped), priorities, types."""
        ...

    async def list_members(self) -> Sequence[PsaMember]:
        ...

    async def list_companies(self, cursor: str | None = None) -> Page[PsaCompany]:
        ...

    async def list_contacts(self, cursor: str | None = None) -> Page[PsaContact]:
        ...

    async def find_write(self, kind: WriteKind, marker: str, ticket_external_id: str | None) -> FoundWrite | None:
        """Look for an earlier write carrying `marker` (after an ambiguous failure)."""
        ...

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify (where the PSA signs) and parse a push; WebhookRejected when it cannot be trusted."""
        ...

    def ticket_url(self, external_id: str) -> str:
        """Deep link to the ticket in the PSA's own UI."""
        ...

    async def aclose(self) -> None:
        ...


ConnectorFactory = Callable[[ConnectionConfig], PsaConnector]
"""Builds a connector for a connection; handed to core/ by the composition root."""

CredentialChecker = Callable[[str, Mapping[str, Any], Mapping[str, Any]], Awaitable[AccountInfo]]
"""(kind, settings, credentials) -> AccountInfo, used before a connection is saved."""


def marker_tag(marker: str) -> str:
    """The short tag appended to note text where the PSA has no field for our marker."""
    return f"[db:{marker}]"


def split_marker(text: str) -> tuple[str, str | None]:
    """Strip a trailing marker tag from note text; returns (text, marker or None)."""
    stripped = text.rstrip()
    if stripped.endswith("]"):
        start = stripped.rfind("[db:")
        if start != -1:
            marker = stripped[start + 4 : -1]
            if marker and " " not in marker and len(marker) <= 64:
                return stripped[:start].rstrip(), marker
    return text, None

