"""AutotaskConnector: the PsaConnector for Datto Autotask (reference/psa-apis.md §3, gotchas 16-29).

Settings (non-secret): `username` (the API-only user's e-mail), optional `zone_lookup_url` (tests) or
`zone_url` (a fixed zone), `impersonation_resource_id`; `default_board_id` (a queue id); `marker_udf` (a
ticket UDF for our marker; `externalID` otherwise); `source_id` (the ticket source of creates); `ui_url` (deep
links; the zone's web address by default); `page_size` (≤ 500); `max_attachment_bytes` (≤ 6 MB, the API's
cap); `hourly_request_budget` (3,000 of the database's 10,000), `read_stop_share`, `write_stop_share`
(connectors/autotask/limits.py). Credentials: `secret`, `integration_code`, optional `webhook_secret`.

Choices: board = queue; statuses and priorities are global picklists (Complete = system status 5); every
picklist value is read from `entityInformation/fields`, never hard-coded, and note visibility follows the
`publish` labels (an unknown label is internal). Tickets carry our marker in `externalID` (or the UDF);
notes, time entries and attachments have no hidden field and are found again by an invisible match (text,
visibility, author = the impersonated resource or the API user, made after the op, not already someone
else's). The REST API cannot send Autotask's notification e-mails: a public note reaches the contact only
through a workflow rule the MSP configures (`EMAIL_NOTE`, shown by `deskbridge connection show`). No write
changes a ticket setting on the way, so `recover` has nothing to undo. Deletions are read from
`DeletedTicketLogs` by every sync (DeletionLog); issue type / sub-issue type are the seam's category pair
and ticket UDFs with a value its custom fields.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import httpx

from connectors.autotask import mapping as m
from connectors.autotask import query as aq
from connectors.autotask import webhooks as wh
from connectors.autotask.auth import DISCOVERY_URL, credentials_from, known_zone
from connectors.autotask.client import AtClient
from connectors.autotask.limits import Throttles, policy_from, process_throttles, write_priority
from connectors.autotask.picklists import publish_visibility
from connectors.autotask.reads import TICKET_FIELDS, ChildBatch, TicketScan, decode, encode
from connectors.autotask.tenant import RESOURCE_FIELDS, TenantData, is_api_member
from connectors.base import (
    CLOCK_SKEW,
    AccountInfo,
    Capabilities,
    ConfigurationItem,
    ConnectionConfig,
    DeletedTicket,
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
    Ref,
    SetupFields,
    TicketPatch,
    WebhookEvent,
    WriteJournal,
    WriteKind,
    WriteProbe,
    match_attachment,
    match_note,
    match_time_entry,
)
from connectors.errors import PsaNotFound, PsaRateLimited, PsaTooLarge, PsaValidationError

MAX_PAGE = 500
_GONE = re.compile(r"does not reference an existing entity for (ticketID|parentID)", re.I)
READ_LAG_TRIES = (0.2, 0.5, 1.0)  # seconds between GETs of a record just created (replication lag)
UPLOAD_WINDOW, UPLOAD_BYTES = 300.0, 10_000_000  # the API's attachment budget: bytes per 5 minutes
EMAIL_NOTE = ("Autotask's API cannot send its notification e-mails: to e-mail contacts about replies written in "
              "chat, add a workflow rule (Admin > Workflow Rules) on 'Ticket Note Added' with publish = All "
              "Autotask Users and created by the API user, that notifies the ticket contact.")
EMAIL_SHORT = ("Autotask's API sends no e-mails: to e-mail contacts about chat replies add a workflow rule, see "
               "README 'Connecting Autotask'")
DELETED_FIELDS = ["id", "ticketID", "deletedDateTime"]
COMPANY_FIELDS = ["id", "companyName", "companyNumber", "isActive"]
CONTACT_FIELDS = ["id", "firstName", "lastName", "companyID", "emailAddress", "phone", "mobilePhone", "isActive"]


def _tid(value: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise PsaNotFound(f"Autotask has no ticket {value!r}.") from None
    if number <= 0:
        raise PsaNotFound(f"Autotask has no ticket {value!r}.")
    return number


def _after(cursor: str | None) -> int | None:
    """The last id a keyset cursor saw (PsaValidationError for a cursor this connector did not make)."""
    if not cursor:
        return None
    key = str(decode(cursor).get("k", ""))
    if not key.isdigit():
        raise PsaValidationError("The page cursor is not one this connector made.", fields={"cursor": "invalid"})
    return int(key)


class AutotaskConnector:
    SETUP: ClassVar[SetupFields] = SetupFields(
        settings=("username",), credentials=("integration_code", "secret"),
        optional_settings=("default_board_id", "impersonation_resource_id", "ui_url"),
        optional_credentials=("webhook_secret",))
    kind: ClassVar[str] = "autotask"
    ADMIN_NOTES: ClassVar[tuple[str, ...]] = (EMAIL_NOTE,)  # shown by `deskbridge connection show`
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        features=frozenset(Feature) - {Feature.BOARD_SCOPED_STATUSES, Feature.EMAIL_ON_PUBLIC_NOTE,
                                        Feature.RESOLUTION_NOTES, Feature.SET_TYPE, Feature.TYPE_SUBTYPES},
        max_attachment_bytes=m.API_ATTACHMENT_CAP, max_summary_chars=m.TITLE_MAX, max_note_chars=32_000,
        page_size=MAX_PAGE, create_requires=frozenset({"company_external_id"}))

    def __init__(self, config: ConnectionConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float | None = None, throttles: Throttles | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, page_size: int = MAX_PAGE,
                 **options: Any) -> None:
        self.config = config
        s = config.settings
        self.creds = credentials_from(s, config.credentials)
        self.policy = policy_from(s)
        lookup = str(s.get("zone_url") or s.get("zone_lookup_url") or DISCOVERY_URL)
        key = f"{self.creds.username.lower()}:{self.creds.integration_code}:{lookup}"  # one database
        self.throttle = (throttles or process_throttles(transport)).get(key, self.policy)
        self.client = AtClient(self.creds, transport=transport, timeout=timeout,
                               discovery_url=str(s.get("zone_lookup_url") or DISCOVERY_URL),
                               zone_url=str(s["zone_url"]) if s.get("zone_url") else None, throttle=self.throttle)
        self.clock, self.sleep = clock, sleep
        self.data = TenantData(self.client, self.creds.username, clock=clock)
        self.page_size = max(1, min(int(s.get("page_size") or page_size), MAX_PAGE))
        cap = min(int(s.get("max_attachment_bytes") or m.API_ATTACHMENT_CAP), m.API_ATTACHMENT_CAP)
        self.capabilities = dataclasses.replace(self.CAPABILITIES, max_attachment_bytes=cap, page_size=self.page_size)
        self.default_board = str(s["default_board_id"]) if s.get("default_board_id") else None
        self.marker_udf = str(s["marker_udf"]) if s.get("marker_udf") else None
        self.source_id = str(s["source_id"]) if s.get("source_id") else None
        self.ui_url = str(s.get("ui_url") or "").rstrip("/") or None
        self._webhook_secret = str(config.credentials.get("webhook_secret") or "") or None
        include = [*TICKET_FIELDS, "userDefinedFields"]  # UDFs: the marker's, and those admins show on cards
        self.scan = TicketScan(self.client, include)
        self.children = ChildBatch(self.client, clock=clock)
        self._uploads: list[tuple[float, int]] = []

    async def aclose(self) -> None:
        await self.client.aclose()

    # ------------------------------------------------------------ account

    async def check_credentials(self) -> AccountInfo:
        """Find the zone, read the API user's resource and the tenant's usage (a clear error if not)."""
        zone = await self.client.zones.zone()
        threshold = await self.client.threshold()  # first: a refused user is asked once, and this is the reading
        self.throttle.record_reading(threshold.limit or 10_000, threshold.used)
        resource = await self.data.api_resource()
        name = " ".join(str(resource.get(k) or "") for k in ("firstName", "lastName")).strip() or self.creds.username
        # the admin sees this line at `connection add|check|reauth`: the one thing the API cannot do is said there
        return AccountInfo(display_name=f"{zone.name or zone.url} (Autotask, acting as {name}; {EMAIL_SHORT})", details={
            "zone": zone.url, "web_url": zone.web_url, "api_resource_id": str(resource["id"]),
            "threshold": f"{threshold.used:,} of {threshold.limit:,} requests this hour",
            "requests_used": str(threshold.used), "requests_limit": str(threshold.limit),  # `doctor`'s headroom
            "email_to_contacts": EMAIL_NOTE})

    # ------------------------------------------------------------ tickets

    async def _ticket(self, row: Mapping[str, Any]) -> PsaTicket:
        return m.ticket(row, await self.data.picks(), marker_udf=self.marker_udf)

    async def list_changed_tickets(self, since: datetime | None, cursor: str | None = None) -> Page[PsaTicket]:
        rows, nxt = await self.scan.page(since, cursor, self.page_size)
        picks = await self.data.picks()
        tickets = [m.ticket(r, picks, marker_udf=self.marker_udf) for r in rows]
        self.children.reset([t.external_id for t in tickets])
        return Page(tickets, nxt)

    def expect_children(self, external_ids: Sequence[str]) -> None:
        """ChildPrefetch: the next child reads are these tickets' (one query per kind per 500 tickets)."""
        self.children.reset(list(external_ids))

    async def list_ticket_ids(self, cursor: str | None = None) -> Page[str]:
        """Every live ticket id, 500 a call by `id >` (ids only)."""
        page = await self.client.query_page("Tickets", after_id=_after(cursor), include_fields=["id"])
        ids = [str(r["id"]) for r in page.items]
        return Page(ids, None if page.done or page.last_id is None else encode({"k": page.last_id}))

    async def list_deleted_tickets(self, since: datetime | None, cursor: str | None = None) -> Page[DeletedTicket]:
        """`DeletedTicketLogs` with `deletedDateTime >= since`, 500 a call by `id >` (DeletionLog)."""
        filters = [aq.gte("deletedDateTime", since)] if since is not None else []
        page = await self.client.query_page("DeletedTicketLogs", filters, after_id=_after(cursor),
                                            page_size=self.page_size, include_fields=DELETED_FIELDS)
        items = []
        for row in page.items:
            when = m.parse_dt(row.get("deletedDateTime"))
            if row.get("ticketID") is not None and when is not None:
                items.append(DeletedTicket(external_id=str(row["ticketID"]), deleted_at=when))
        return Page(items, None if page.done or page.last_id is None else encode({"k": page.last_id}))

    async def get_ticket(self, external_id: str) -> PsaTicket:
        return await self._ticket(await self.client.get_item(f"Tickets/{_tid(external_id)}"))

    async def ticket_device(self, ticket_external_id: str, device_ref: str | None) -> ConfigurationItem | None:
        """The ticket's configurationItemID (synced as its device_ref) as a device: referenceTitle (its name),
        serialNumber, and the RMM audit's host name (Datto RMM fills it)."""
        if not device_ref:
            return None
        try:
            row = await self.client.get_item(f"ConfigurationItems/{_tid(device_ref)}")
        except PsaNotFound:
            return None
        return ConfigurationItem(external_id=str(row.get("id") or device_ref),
                                 name=str(row.get("referenceTitle") or ""), serial=str(row.get("serialNumber") or ""),
                                 hostname=str(row.get("rmmDeviceAuditHostname") or ""))

    async def _read_back(self, path: str) -> dict[str, Any] | None:
        """A record just written, tolerating Autotask's read lag (None when it never showed: never re-create)."""
        for wait in (0.0, *READ_LAG_TRIES):
            if wait:
                await self.sleep(wait)
            try:
                return await self.client.get_item(path)
            except PsaNotFound:
                continue
        return None

    @write_priority
    async def create_ticket(self, ticket: NewTicket) -> PsaTicket:
        if not ticket.summary.strip() or len(ticket.summary) > m.TITLE_MAX:
            raise PsaValidationError(f"An Autotask title must be 1 to {m.TITLE_MAX} characters.",
                                     fields={"summary": "length"})
        if not ticket.marker:
            raise PsaValidationError("A ticket create needs our dedupe marker.", fields={"marker": "required"})
        if not ticket.board_external_id and self.default_board:
            ticket = dataclasses.replace(ticket, board_external_id=self.default_board)
        picks = await self.data.picks()
        role = await self.data.default_role(ticket.owner_external_id) if ticket.owner_external_id else None
        body = m.new_ticket_body(ticket, picks, marker_udf=self.marker_udf, owner_role_id=role, source=self.source_id)
        tid = await self.client.create("Tickets", body)
        row = await self._read_back(f"Tickets/{tid}")
        if row is None:  # created; only the read lags: what we sent is what Autotask has
            row = {**body, "id": tid, "createDate": aq.format_dt(self.client.server_time) if self.client.server_time
                   else None}
        return m.ticket(row, picks, marker_udf=self.marker_udf)

    @write_priority
    async def update_ticket(self, external_id: str, patch: TicketPatch) -> PsaTicket:
        tid = _tid(external_id)
        if patch.is_empty():
            return await self.get_ticket(external_id)
        role = await self.data.default_role(patch.owner_external_id) if patch.owner_external_id else None
        picks = await self.data.picks() if patch.category_external_id is not None or \
            patch.subcategory_external_id is not None else None
        await self.client.update("Tickets", m.ticket_patch_body(str(tid), patch, owner_role_id=role, picks=picks))
        return await self.get_ticket(external_id)

    async def _child_write(self, tid: int, write: Awaitable[int]) -> int:
        """A note, time entry or file write; Autotask refuses one on a deleted ticket as a bad reference
        (HTTP 500), which is told as what it is: the ticket is gone (PsaNotFound), once a GET confirms it."""
        try:
            return await write
        except PsaValidationError as exc:
            if not _GONE.search(exc.message):
                raise
            try:
                await self.client.get_item(f"Tickets/{tid}")
            except PsaNotFound:
                raise PsaNotFound(f"Autotask ticket {tid} was deleted in Autotask.", code="TicketDeleted") from exc
            raise

    # ------------------------------------------------------------ notes and time

    async def list_notes(self, ticket_external_id: str) -> Sequence[PsaNote]:
        _tid(ticket_external_id)
        rows = await self.children.rows("notes", ticket_external_id)
        picks = await self.data.picks()
        return await self.data.named([m.note(r, picks) for r in rows])

    @write_priority
    async def add_note(self, note: NewNote, journal: WriteJournal | None = None) -> PsaNote:
        """POST the note with the publish value whose label means its visibility; `email_contact` is the
        MSP's workflow rule's job (EMAIL_NOTE): no ticket setting is changed for it."""
        tid = _tid(note.ticket_external_id)
        if not note.text.strip():
            raise PsaValidationError("A note needs some text.", fields={"text": "required"})
        picks = await self.data.picks()
        body = m.note_body(note, picks)
        self.children.forget(note.ticket_external_id)
        author = note.author_member_external_id
        nid = await self._child_write(tid, self.client.create(f"Tickets/{tid}/Notes", body, impersonate=author))
        return PsaNote(external_id=str(nid), ticket_external_id=note.ticket_external_id, text=note.text,
                       visibility=m.note_visibility(body, picks), author=Ref(author or await self.data.api_resource_id()),
                       created_at=self.client.server_time)

    async def list_time_entries(self, ticket_external_id: str) -> Sequence[PsaTimeEntry]:
        _tid(ticket_external_id)
        return [m.time_entry(r) for r in await self.children.rows("time", ticket_external_id)]

    @write_priority
    async def add_time_entry(self, entry: NewTimeEntry) -> PsaTimeEntry:
        _tid(entry.ticket_external_id)
        resource = entry.member_external_id or await self.data.api_resource_id()
        body = m.time_entry_body(entry, resource_id=resource, role_id=await self.data.default_role(resource))
        self.children.forget(entry.ticket_external_id)
        eid = await self._child_write(int(entry.ticket_external_id), self.client.create("TimeEntries", body))
        return dataclasses.replace(m.time_entry({**body, "id": eid}), member=Ref(resource))

    # ------------------------------------------------------------ attachments

    async def list_attachments(self, ticket_external_id: str) -> Sequence[PsaAttachment]:
        _tid(ticket_external_id)
        rows = await self.children.rows("attachments", ticket_external_id)
        picks = await self.data.picks()
        return [dataclasses.replace(m.attachment(r), visibility=publish_visibility(
            picks.attachment.label("publish", r.get("publish")))) for r in rows]

    def _reserve_upload(self, size: int) -> None:
        now = self.clock()
        self._uploads = [(t, n) for t, n in self._uploads if now - t < UPLOAD_WINDOW]
        if sum(n for _, n in self._uploads) + size > UPLOAD_BYTES:
            wait = self._uploads[0][0] + UPLOAD_WINDOW - now
            raise PsaRateLimited("Autotask accepts 10,000,000 bytes of attachments per 5 minutes; this file waits.",
                                 retry_after=max(1.0, wait), code="UploadBudget")
        self._uploads.append((now, size))

    @write_priority
    async def upload_attachment(self, attachment: NewAttachment) -> PsaAttachment:
        """Base64 JSON upload; the 6 MB cap and the 5-minute byte budget are checked before sending."""
        size, cap = len(attachment.content), self.capabilities.max_attachment_bytes
        if size > cap:
            raise PsaTooLarge(f"'{attachment.filename}' is {size:,} bytes; Autotask's API accepts at most {cap:,}.",
                              fields={"file": f"max {cap} bytes"})
        tid = _tid(attachment.ticket_external_id)
        picks = await self.data.picks()
        body = m.attachment_body(attachment, picks, visibility=attachment.visibility)
        self._reserve_upload(size)
        self.children.forget(attachment.ticket_external_id)
        aid = await self._child_write(tid, self.client.create(f"Tickets/{tid}/Attachments", body))
        return PsaAttachment(external_id=str(aid), ticket_external_id=attachment.ticket_external_id,
                             filename=attachment.filename, size=size, content_type=attachment.content_type,
                             created_at=self.client.server_time,
                             visibility=publish_visibility(picks.attachment.label("publish", body["publish"])))

    async def download_attachment(self, ticket_external_id: str, attachment_external_id: str) -> bytes:
        """A file's content (Autotask answers in the query shape)."""
        _, content = await self.client.download_attachment(_tid(ticket_external_id), int(attachment_external_id))
        return content

    # ------------------------------------------------------------ picklists, directory

    async def picklists(self) -> Picklists:
        return await self.data.canonical()

    async def list_members(self) -> Sequence[PsaMember]:
        rows = await self.client.query_all("Resources", include_fields=RESOURCE_FIELDS)
        return [dataclasses.replace(m.member(r), api=is_api_member(r, self.creds.username)) for r in rows]

    async def _paged(self, entity: str, include: list[str], cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        page = await self.client.query_page(entity, after_id=_after(cursor), page_size=self.page_size, include_fields=include)
        return page.items, (None if page.done or page.last_id is None else encode({"k": page.last_id}))

    async def list_companies(self, cursor: str | None = None) -> Page[PsaCompany]:
        rows, nxt = await self._paged("Companies", COMPANY_FIELDS, cursor)
        return Page([m.company(r) for r in rows], nxt)

    async def list_contacts(self, cursor: str | None = None) -> Page[PsaContact]:
        rows, nxt = await self._paged("Contacts", CONTACT_FIELDS, cursor)
        return Page([m.contact(r) for r in rows], nxt)

    # ------------------------------------------------------------ dedupe

    @write_priority
    async def find_write(self, probe: WriteProbe) -> FoundWrite | None:
        """Tickets by `externalID` (or the marker UDF); notes, time and files by an invisible match among the
        ticket's records made since the op, written as the member named or else as the API user."""
        kind = probe.kind
        if kind is WriteKind.TICKET:
            cond = aq.eq(self.marker_udf, probe.marker, udf=True) if self.marker_udf else aq.eq("externalID", probe.marker)
            page = await self.client.query_page("Tickets", [cond], page_size=5, include_fields=["id"])
            return FoundWrite(kind=kind, external_id=str(page.items[0]["id"])) if page.items else None
        if probe.ticket_external_id is None:
            raise PsaValidationError(f"Finding a {kind.value} again needs the ticket id.",
                                     fields={"ticket_external_id": "required"})
        tid = _tid(probe.ticket_external_id)
        if not probe.author_external_id and kind is not WriteKind.ATTACHMENT:
            probe = dataclasses.replace(probe, author_external_id=await self.data.api_resource_id())
        found: PsaNote | PsaTimeEntry | PsaAttachment | None
        if kind is WriteKind.NOTE:
            since = [aq.gte("createDateTime", probe.since - CLOCK_SKEW)] if probe.since else []
            rows = await self.client.query_all("TicketNotes", [aq.eq("ticketID", tid), *since])
            picks = await self.data.picks()
            found = match_note([m.note(r, picks) for r in rows], probe)
        elif kind is WriteKind.TIME_ENTRY:
            rows = await self.client.query_all("TimeEntries", [aq.eq("ticketID", tid)])
            found = match_time_entry([m.time_entry(r) for r in rows], probe)
        else:
            rows = await self.client.query_all("TicketAttachments", [aq.eq("parentID", tid)],
                                               include_fields=["id", "parentID", "fullPath", "title", "fileSize",
                                                               "attachDate"])
            found = match_attachment([m.attachment(r) for r in rows], probe)
        return FoundWrite(kind=kind, external_id=found.external_id) if found else None

    async def recover(self, journal: WriteJournal) -> None:
        """Nothing to undo: no write changes a ticket setting on the way."""
        return None

    # ------------------------------------------------------------ webhooks and links

    def webhook_secret(self) -> str:
        return self._webhook_secret or wh.derived_secret(self.creds.secret, self.creds.integration_code)

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        return wh.parse(body, headers, secret=self.webhook_secret())

    async def ensure_callbacks(self, url: str) -> dict[str, Any]:
        """TicketWebhooks and TicketNoteWebhooks at `url`, exactly one each, excluding our API resource (so our
        own writes do not call back), signed with the webhook secret (CallbackRegistrar)."""
        return await wh.ensure(self.client, url, secret=self.webhook_secret(),
                               exclude_resource=await self.data.api_resource_id())

    async def remove_callbacks(self, url: str) -> list[str]:
        return await wh.remove(self.client, url)

    def ticket_url(self, external_id: str) -> str:
        """The ticket in Autotask's UI (`ExecuteCommand.aspx?Code=OpenTicketDetail`)."""
        zone = self.client.zones.cached or known_zone(self.creds.username)
        root = self.ui_url or (zone.web_url.rstrip("/") if zone and zone.web_url else "https://ww1.autotask.net")
        query = httpx.QueryParams({"Code": "OpenTicketDetail", "TicketID": external_id})
        return f"{root}/Autotask/AutotaskExtend/ExecuteCommand.aspx?{query}"
