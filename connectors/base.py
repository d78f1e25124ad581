"""The PSA connector seam: the protocol, canonical models and capabilities shared by every PSA.

Designed against ConnectWise Manage, Datto Autotask and HaloPSA (reference/psa-apis.md). Vendor JSON
never crosses this line: connectors return these dataclasses, and `core/` sees nothing else.

Conventions:
- External ids are strings (Autotask and ConnectWise use ints, Halo action ids are per ticket).
- Datetimes are tz-aware UTC.
- Every write takes a `marker` (a short unique string from the outbox). What the PSA stores for a note,
  time entry or document is exactly what the technician wrote: the marker goes only into fields nobody
  outside the MSP sees (a ticket field such as `externalXRef`, a custom field, document metadata).
  After an ambiguous failure `find_write` gets a `WriteProbe` (the write as it was sent, when it was made,
  and the records already accounted for) and recognises the write either by such a field or by an
  invisible match: the same normalised text, visibility and author, created after the op was made, and
  not already someone else's record (`match_note`, `match_time_entry`, `match_attachment` below).
- A write changes nothing the user did not ask for. Where a PSA needs a ticket setting flipped for one
  write (ConnectWise e-mails a note's contact only while a ticket flag is set), the connector records
  what it changed in the op's `WriteJournal` before changing it, restores it after, and `recover`
  restores it on the next attempt if the process died in between.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
    SET_TYPE = "set_type"  # a ticket's type (category) can be changed after it was created (TicketPatch)
    # A two-level ticket category (Autotask issue type / sub-issue type): read, and settable on create and
    # update through NewTicket/TicketPatch `category_external_id`/`subcategory_external_id`.
    TICKET_CATEGORIES = "ticket_categories"
    # The board's type carries a subtype and an item, in the combinations the board allows (ConnectWise
    # type > subtype > item, `Picklists.associations`). The seam's category pair then holds the ticket's
    # subtype (category) and item (subcategory); TicketPatch `category_external_id` sets the subtype ("" clears
    # it) and `subcategory_external_id` the item (None: the item is left as it is).
    TYPE_SUBTYPES = "type_subtypes"


@dataclass(frozen=True, slots=True)
class SetupFields:
    """What an admin types to add a connection of a kind (the admin page's form; `--set`/`--secret` on the CLI).
    The connector's credential check still decides: these only lay out the form."""

    settings: tuple[str, ...] = ()  # required, not secret
    credentials: tuple[str, ...] = ()  # required, secret: encrypted at rest, never shown back
    optional_settings: tuple[str, ...] = ()
    optional_credentials: tuple[str, ...] = ()


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
    # A two-level category where the PSA has one beside its type (Autotask issue / sub-issue type); the
    # subcategory belongs to the category (Picklists.categories, `parent_external_id`).
    category: Ref | None = None
    subcategory: Ref | None = None
    # The PSA's own extra fields (Autotask UDFs) with a value: name -> value as text. Internal to the MSP.
    custom_fields: Mapping[str, str] = field(default_factory=dict)


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
    visibility: NoteVisibility | None = None  # public: the customer can see it (portal); None: not told


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
    api: bool = False  # an integration's API member, not a person: never listed as a technician


@dataclass(frozen=True, slots=True, kw_only=True)
class PsaBoard:
    external_id: str
    name: str
    active: bool = True
    # What a new ticket on this board must carry beyond Capabilities.create_requires (PSAs whose boards or
    # ticket types make fields mandatory, e.g. Halo): NewTicket field names, or "custom:<label>" for a field
    # the canonical ticket has no place for (core refuses such a create up front, naming the field).
    create_requires: frozenset[str] = frozenset()


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
class PsaCategory:
    """A ticket category (parent None) or subcategory (parent = its category's id). `selectable` False: a
    category the PSA lists only as the parent of its subcategories (a Halo "Software" when Halo lists only
    "Software>E-mail"); it is never offered or accepted on its own."""

    external_id: str
    name: str
    parent_external_id: str | None = None
    active: bool = True
    sort_order: int = 0
    selectable: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class PsaTypeAssociation:
    """One combination a board allows (Feature.TYPE_SUBTYPES): its type, a subtype, and an item or none."""

    board_external_id: str
    type_external_id: str
    subtype_external_id: str
    subtype_name: str
    item_external_id: str | None = None
    item_name: str | None = None
    active: bool = True  # False when the subtype is inactive in the PSA
    item_active: bool = True  # False when the item is


@dataclass(frozen=True, slots=True, kw_only=True)
class PsaCustomField:
    """A ticket field the PSA tenant defines itself (an Autotask UDF): what an admin may show on cards."""

    name: str
    label: str
    required: bool = False
    active: bool = True
    customer_visible: bool = False  # the PSA shows it in its customer portal
    read_only: bool = False  # the PSA computes it: never written


@dataclass(frozen=True, slots=True, kw_only=True)
class Picklists:
    """Every picklist the connector could read. One that failed (a board whose types 404, say) is named in
    `problems` with the reason, and the others are still returned: callers keep the last good value of
    what failed. `incomplete_boards` are the boards whose statuses or types are missing from this answer."""

    boards: Sequence[PsaBoard] = ()
    statuses: Sequence[PsaStatus] = ()
    priorities: Sequence[PsaPriority] = ()
    types: Sequence[PsaTicketType] = ()
    categories: Sequence[PsaCategory] = ()  # Feature.TICKET_CATEGORIES: categories and their subcategories
    associations: Sequence[PsaTypeAssociation] = ()  # Feature.TYPE_SUBTYPES: each board's type > subtype > item
    custom_fields: Sequence[PsaCustomField] = ()
    # The values the PSA lists for a board-required field a ticket has no place for (Halo's category_2..4), by
    # the field's name: offered on the create form and the only values a create may send ("field_value").
    field_choices: Mapping[str, Sequence[str]] = field(default_factory=dict)
    problems: Mapping[str, str] = field(default_factory=dict)  # what could not be read -> why
    incomplete_boards: frozenset[str] = frozenset()
    complete: frozenset[str] = frozenset({"board", "status", "priority", "type"})  # kinds read in full


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
class DeletedTicket:
    """A ticket the PSA's deletion log says was deleted (DeletionLog)."""

    external_id: str
    deleted_at: datetime


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
    category_external_id: str | None = None  # Feature.TICKET_CATEGORIES
    subcategory_external_id: str | None = None
    # Fields the board (e.g. a Halo ticket type, an Autotask UDF) makes mandatory that have no place above:
    # the PSA's field name -> the value the technician filled in on the create form.
    extra_fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketPatch:
    """Only the fields to change; None means unchanged. `unassign` clears the owner."""

    summary: str | None = None
    status_external_id: str | None = None
    priority_external_id: str | None = None
    board_external_id: str | None = None
    owner_external_id: str | None = None
    unassign: bool = False
    type_external_id: str | None = None  # only where Feature.SET_TYPE; a type valid on the ticket's board
    clear_type: bool = False  # only where Feature.SET_TYPE: the ticket has no type afterwards
    # Feature.TICKET_CATEGORIES: a category change always names the subcategory too ("" clears it).
    category_external_id: str | None = None
    subcategory_external_id: str | None = None
    # The PSA's own fields to change, by the names in Picklists.custom_fields ("" clears one).
    custom_fields: Mapping[str, str] | None = None

    def is_empty(self) -> bool:
        return not self.unassign and not self.clear_type and not self.custom_fields and all(
            v is None
            for v in (
                self.summary,
                self.status_external_id,
                self.priority_external_id,
                self.board_external_id,
                self.owner_external_id,
                self.type_external_id,
                self.category_external_id,
                self.subcategory_external_id,
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
    # A customer's own reply (from their chat channel): their contact, where the PSA records who wrote a note.
    author_contact_external_id: str | None = None


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
    # Who may see the file in the PSA (its customer portal): where it was shared decides. Never left to
    # the PSA's default, which is public on some.
    visibility: NoteVisibility = NoteVisibility.INTERNAL


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteProbe:
    """An earlier write whose outcome is unknown, described so the connector can recognise it in the PSA."""

    kind: WriteKind
    marker: str
    ticket_external_id: str | None = None
    since: datetime | None = None  # the op was made then: the write cannot be older (less clock skew)
    text: str = ""  # note text, time-entry notes: exactly as sent
    visibility: NoteVisibility | None = None
    author_external_id: str | None = None  # the member the note or time was written as
    minutes: int | None = None
    started_at: datetime | None = None
    filename: str | None = None
    size: int | None = None
    exclude: frozenset[str] = frozenset()  # records of that kind already known to be other writes


class WriteJournal(Protocol):
    """What a write changed on the way (saved durably before the change is made), kept per outbox op."""

    def get(self, key: str) -> Any:
        ...

    async def put(self, key: str, value: Any) -> None:
        ...


class MemoryJournal:
    """A WriteJournal in memory (tests, and calls made outside the outbox)."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = dict(data or {})

    def get(self, key: str) -> Any:
        return self.data.get(key)

    async def put(self, key: str, value: Any) -> None:
        self.data[key] = value


# ---------------------------------------------------------------- the protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionConfig:
    """Everything a connector needs to talk to one PSA tenant (credentials already decrypted)."""

    connection_id: int
    workspace_id: int
    kind: str
    settings: Mapping[str, Any]
    credentials: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigurationItem:
    """The device a ticket names through the PSA (Autotask configuration item, HaloPSA asset), as far as the PSA
    knows it: what it takes to find the same device in Intune (its Intune id, serial number, host name or name)."""

    external_id: str
    name: str = ""
    serial: str = ""
    hostname: str = ""
    intune_id: str = ""  # HaloPSA's Intune integration records the managed device's id on the asset


class ConfigurationItems(Protocol):
    """Optional beside PsaConnector: a connector that can read the device a ticket is about (core looks for the
    method; a connector without it leaves the device to names)."""

    async def ticket_device(self, ticket_external_id: str, device_ref: str | None) -> ConfigurationItem | None:
        """The ticket's device (from its `device_ref` or the PSA's own link), or None when it has none (PsaError
        when the PSA cannot answer)."""
        ...


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

    async def add_note(self, note: NewNote, journal: WriteJournal | None = None) -> PsaNote:
        """Post a note; any ticket setting it must flip for the note is recorded in `journal` first and
        restored before returning (see `recover`)."""
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

    async def find_write(self, probe: WriteProbe) -> FoundWrite | None:
        """Look for an earlier write (after an ambiguous failure) by its marker field or an invisible match."""
        ...

    async def recover(self, journal: WriteJournal) -> None:
        """Undo what an interrupted write changed on the way (e.g. restore a ticket flag); idempotent."""
        ...

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify (where the PSA signs) and parse a push; WebhookRejected when it cannot be trusted."""
        ...

    def ticket_url(self, external_id: str) -> str:
        """Deep link to the ticket in the PSA's own UI."""
        ...

    async def aclose(self) -> None:
        ...


@runtime_checkable
class CallbackRegistrar(Protocol):
    """A connector that can register the PSA's callbacks (webhooks) itself, with housekeeping: exactly one
    per type pointing at `url`, older ones pointing at our host removed."""

    async def ensure_callbacks(self, url: str) -> Mapping[str, Any]:
        """Make the PSA's callbacks pointing at our host exactly the wanted ones at `url`; what changed."""
        ...

    async def remove_callbacks(self, url: str) -> Sequence[Any]:
        """Delete every callback pointing at `url`'s host (the connection is going away)."""
        ...


@runtime_checkable
class ChildPrefetch(Protocol):
    """A connector that reads the children of many tickets together where its PSA allows (Autotask:
    `ticketID in [...]`, one query per kind), used when a sync reads the histories of many tickets."""

    def expect_children(self, external_ids: Sequence[str]) -> None:
        """The next list_notes / list_time_entries / list_attachments calls are for these tickets."""
        ...


@runtime_checkable
class TicketBatchRead(Protocol):
    """A connector that reads many tickets by id in one request where its PSA allows (ConnectWise:
    `conditions=id in (...)`), used when callbacks name several tickets at once (core/sync/callbacks.py)."""

    async def get_tickets(self, external_ids: Sequence[str]) -> Sequence[PsaTicket]:
        """The tickets of these ids that exist (one gone from the PSA is simply absent)."""
        ...


@runtime_checkable
class TimeEntryBatchRead(Protocol):
    """A connector that reads the time entries of many tickets in one query where its PSA allows (ConnectWise:
    `chargeToId in (...)`); stateless, so concurrent refreshes sharing the connector never mix their answers."""

    async def list_time_entries_of(self, external_ids: Sequence[str]) -> Mapping[str, Sequence[PsaTimeEntry]]:
        """Every time entry of these tickets, by ticket id (a ticket without entries may be absent)."""
        ...


@runtime_checkable
class DeletionLog(Protocol):
    """A connector whose PSA logs ticket deletions (Autotask `DeletedTicketLogs`): each sync reads the log
    since its own watermark, so a deleted ticket leaves the local copy within one sync; the id-listing
    reconcile (`list_ticket_ids`) stays as the periodic fallback."""

    async def list_deleted_tickets(self, since: datetime | None, cursor: str | None = None) -> Page[DeletedTicket]:
        """Tickets deleted at or after `since` (all the log holds when None), one page, oldest log entry first."""
        ...


ConnectorFactory = Callable[[ConnectionConfig], PsaConnector]
"""Builds a connector for a connection; handed to core/ by the composition root."""

CredentialChecker = Callable[[str, Mapping[str, Any], Mapping[str, Any]], Awaitable[AccountInfo]]
"""(kind, settings, credentials) -> AccountInfo, used before a connection is saved."""


def marker_tag(marker: str) -> str:
    """The tag earlier versions appended to note text (no longer written; still recognised when read)."""
    return f"[db:{marker}]"


def split_marker(text: str) -> tuple[str, str | None]:
    """Strip a trailing marker tag (written by earlier versions) from text; returns (text, marker or None)."""
    stripped = text.rstrip()
    if stripped.endswith("]"):
        start = stripped.rfind("[db:")
        if start != -1:
            marker = stripped[start + 4 : -1]
            if marker and " " not in marker and len(marker) <= 64:
                return stripped[:start].rstrip(), marker
    return text, None



# ---------------------------------------------------------------- invisible matching (find_write)

# How far a PSA's record times may lag our clock: skew, and servers that report local time without a zone
# (ConnectWise on-premises). The window only rules out old look-alikes; `exclude` does the real work.
CLOCK_SKEW = timedelta(hours=14)


def normalise_text(text: str) -> str:
    """Text as compared for dedupe: Unicode NFC, line endings and runs of spaces collapsed, trimmed (PSAs
    rewrap and re-encode what they store)."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return " ".join(text.split())


def _recent(created_at: datetime | None, probe: WriteProbe) -> bool:
    return probe.since is None or created_at is None or created_at >= probe.since - CLOCK_SKEW


def match_note(notes: Sequence[PsaNote], probe: WriteProbe) -> PsaNote | None:
    """The note this probe describes: same text, visibility and author, made after it, not someone else's."""
    want = normalise_text(probe.text)
    for n in notes:
        if n.external_id in probe.exclude or n.author_is_contact or not _recent(n.created_at, probe):
            continue
        if n.marker is not None:  # a note of an earlier version, carrying its tag
            if n.marker == probe.marker:
                return n
            continue
        if probe.visibility is not None and n.visibility != probe.visibility:
            continue
        if probe.author_external_id and n.author and n.author.id and n.author.id != probe.author_external_id:
            continue
        if normalise_text(n.text) == want:
            return n
    return None


def match_time_entry(entries: Sequence[PsaTimeEntry], probe: WriteProbe) -> PsaTimeEntry | None:
    """The time entry this probe describes: same minutes, start, member and notes, not someone else's."""
    want = normalise_text(probe.text)
    for e in entries:
        if e.external_id in probe.exclude:
            continue
        if e.marker is not None:
            if e.marker == probe.marker:
                return e
            continue
        if probe.minutes is not None and e.minutes != probe.minutes:
            continue
        if probe.started_at is not None and e.started_at is not None and \
                abs((e.started_at - probe.started_at).total_seconds()) >= 60:
            continue
        if probe.author_external_id and e.member and e.member.id and e.member.id != probe.author_external_id:
            continue
        if normalise_text(e.notes) == want:
            return e
    return None


def match_attachment(attachments: Sequence[PsaAttachment], probe: WriteProbe) -> PsaAttachment | None:
    """The document this probe describes: its marker where the PSA keeps one, else same name and size,
    uploaded after the op was made, not someone else's."""
    for a in attachments:
        if a.external_id in probe.exclude:
            continue
        if a.marker is not None:
            if a.marker == probe.marker:
                return a
            continue
        if a.filename != probe.filename or not _recent(a.created_at, probe):
            continue
        if probe.size is not None and a.size is not None and a.size != probe.size:
            continue
        return a
    return None
