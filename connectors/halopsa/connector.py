"""HaloPsaConnector: the PsaConnector for HaloPSA (reference/psa-apis.md §4, gotchas 30-40).

Settings (non-secret): `url` (acme.halopsa.com or a self-hosted host), optional `tenant`, `auth_url`,
`scope`; `default_board_id` (a ticket type id); outcome ids `public_outcome_id`, `internal_outcome_id`,
`time_outcome_id`, `resolution_outcome_id` (looked up by stock name when unset); `time_mode` ("action": time
on an action's `timetaken`, or "timesheet": POST TimesheetEvent); `marker_field_id` (an agent-only custom
field that also receives our marker); `webhook_mode` ("hmac" | "basic" | "hint"), `webhook_header`;
`max_attachment_bytes` (25 MB), `page_size` (≤ 100), `rate_limit_requests` / `rate_limit_window_seconds`
(300 per 300 s), `ui_url` (deep links; the tenant's address by default). Credentials: `client_id`,
`client_secret`, optional `webhook_secret`.

Choices: the canonical board is the Halo ticket type (it scopes statuses, required fields and the SLA whose
priorities apply); notes and time are Actions (ids unique per ticket); tickets carry our marker in
`third_party_id_string`, attachments in `third_party_id`; actions have no such field and are found again
by an invisible match (text, visibility, author = the API agent or the member named, after the op was made,
not already accounted for). E-mailing the end user is per action (`sendemail` + `emailto`), so no ticket
setting is touched and `recover` has nothing to undo.

Echoes: ticket updates carry `_dont_fire_automations` (Halo's rules and webhooks do not fire on our own
changes); actions do not carry `dont_do_rules`, because whether it also stops the `sendemail` of a reply is
[unverified], and a reply must reach the end user: their webhook echo is only a hint that re-reads the ticket
and the sync links the action to our write.

Changed tickets are read by keyset on (`last_update`, `id`): each page asks `lastupdatefromdate` = the last
row's change time (page 1, ordered `last_update` then `id`) and drops rows already returned, so a ticket that
changes mid-scan moves to the end instead of shifting another one off a page. Pages of equal stamps move on
by `page_no`, guarded against Halo's repeat-the-last-page answer (HaloClient.get_page).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx

from connectors.base import (
    AccountInfo,
    Capabilities,
    ConfigurationItem,
    ConnectionConfig,
    Feature,
    FoundWrite,
    NewAttachment,
    NewNote,
    NewTicket,
    NewTimeEntry,
    NoteVisibility,
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
from connectors.docs import DocArticle
from connectors.errors import PsaError, PsaNotFound, PsaTooLarge, PsaValidationError
from connectors.halopsa import categories as cats
from connectors.halopsa import kb, queries
from connectors.halopsa import mapping as m
from connectors.halopsa import mapping_writes as w
from connectors.halopsa import webhooks as wh
from connectors.halopsa.auth import HaloAuth, cache_key, client_credentials, tenant_from_settings
from connectors.halopsa.budget import RequestBudgets, budget_settings
from connectors.halopsa.client import (
    ACTIONS,
    AGENT,
    ATTACHMENT,
    CLIENT,
    TICKETS,
    TIMESHEET_EVENT,
    USERS,
    HaloClient,
    PageScan,
)
from connectors.halopsa.tenant import TenantData, TypeInfo
from connectors.tokens import InMemoryTokenCache, TokenCache

MAX_PAGE = 100
MAX_ATTACHMENT = 25 * 1024 * 1024
ACTIONS_TTL = 5.0  # seconds one GET Actions serves both list_notes and list_time_entries of a ticket
REMEMBERED_COUNTS = 5_000  # attachment counts kept from ticket pages (skip GET Attachment when 0)
FIND_WINDOW = timedelta(hours=1)  # how far before the op a lost ticket create is looked for (clock skew)
NO_ACCESS = "do not have access to this action"


def _encode(state: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise PsaValidationError("The page cursor is not one this connector made.", fields={"cursor": "invalid"})
    return data


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def _tid(value: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PsaNotFound(f"HaloPSA has no ticket {value!r}.") from None


class HaloPsaConnector:
    SETUP: ClassVar[SetupFields] = SetupFields(
        settings=("url",), credentials=("client_id", "client_secret"),
        optional_settings=("tenant", "auth_url", "scope", "default_board_id"), optional_credentials=("webhook_secret",))
    kind: ClassVar[str] = "halopsa"
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        features=frozenset(Feature) - {Feature.RESOLUTION_NOTES, Feature.SET_TYPE, Feature.TYPE_SUBTYPES},
        max_attachment_bytes=MAX_ATTACHMENT,
        max_summary_chars=250, max_note_chars=100_000, page_size=MAX_PAGE,
        create_requires=frozenset({"company_external_id", "board_external_id"}))

    def __init__(self, config: ConnectionConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float | None = None, token_cache: TokenCache | None = None,
                 budgets: RequestBudgets | None = None, clock: Callable[[], float] = time.time,
                 page_size: int = MAX_PAGE, **options: Any) -> None:
        self.config = config
        s = config.settings
        self.tenant = tenant_from_settings(s)
        client_id, secret = client_credentials(config.credentials)
        try:
            limit, window = budget_settings(s)
        except (TypeError, ValueError):
            raise PsaValidationError("rate_limit_requests and rate_limit_window_seconds must be positive numbers.",
                                     fields={"rate_limit_requests": "invalid"}) from None
        key = cache_key(self.tenant, client_id, secret)
        self.budget = (budgets or RequestBudgets()).get(key.rsplit(":", 1)[0], limit, window)
        self.auth = HaloAuth(self.tenant, client_id, secret, token_cache or InMemoryTokenCache(clock=clock),
                             transport=transport, timeout=timeout, clock=clock, budget=self.budget)
        self.client = HaloClient(self.tenant, self.auth, transport=transport, timeout=timeout, budget=self.budget)
        self.clock = clock
        self.data = TenantData(self.client, s, clock=clock)
        self.page_size = max(1, min(int(s.get("page_size") or page_size), MAX_PAGE))
        cap = int(s.get("max_attachment_bytes") or MAX_ATTACHMENT)
        self.capabilities = dataclasses.replace(self.CAPABILITIES, max_attachment_bytes=cap, page_size=self.page_size)
        self.default_board = str(s["default_board_id"]) if s.get("default_board_id") else None
        self.time_mode = str(s.get("time_mode") or "action").lower()
        self.webhook_mode = str(s.get("webhook_mode") or "hmac").lower()
        for name, value, allowed in (("time_mode", self.time_mode, ("action", "timesheet")),
                                     ("webhook_mode", self.webhook_mode, wh.MODES)):
            if value not in allowed:
                raise PsaValidationError(f"{name} must be one of {', '.join(allowed)}.", fields={name: "invalid"})
        self.webhook_header = str(s.get("webhook_header") or "Token")
        self.marker_field = int(s["marker_field_id"]) if s.get("marker_field_id") else None
        self._webhook_secret = str(config.credentials.get("webhook_secret") or "") or None
        self.ui_root = str(s.get("ui_url") or self.tenant.root).rstrip("/")
        self._actions: dict[str, tuple[float, asyncio.Task[list[dict[str, Any]]]]] = {}
        self._attachment_counts: OrderedDict[str, int] = OrderedDict()
        self.types: dict[str, TypeInfo] = {}

    async def aclose(self) -> None:
        await self.client.aclose()

    # ------------------------------------------------------------ account

    async def check_credentials(self) -> AccountInfo:
        """Mint a token, read the API agent, and resolve the outcomes writes will use (a clear error if not)."""
        await self.auth.check()
        agent = await self.data.api_agent()
        outcomes = await self.data.outcomes()
        name = str(agent.get("name") or agent.get("id"))
        return AccountInfo(display_name=f"{self.tenant.host} (HaloPSA, acting as {name})",
                           details={"host": self.tenant.host, "api_agent": name, "api_agent_id": str(agent.get("id")),
                                    **{f"{k}_outcome_id": str(v) for k, v in outcomes.items()}})

    # ------------------------------------------------------------ tickets

    def _ticket(self, row: Mapping[str, Any], closed: frozenset[str]) -> PsaTicket:
        ticket = m.ticket(row, closed_status_ids=closed)
        count = row.get("attachment_count")
        if isinstance(count, int):
            self._attachment_counts[ticket.external_id] = count
            self._attachment_counts.move_to_end(ticket.external_id)
            while len(self._attachment_counts) > REMEMBERED_COUNTS:
                self._attachment_counts.popitem(last=False)
        return ticket

    async def _scan(self, since: datetime | None, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the (last_update, id) keyset scan; the rows not returned before, and the next cursor."""
        state = _decode(cursor) if cursor else {"t": m.format_dt(since) if since else None, "k": None, "p": 1}
        after = m.parse_dt(state.get("t"))
        params = {**queries.tickets(updated_since=after, order="last_update"), "order2": "id", "orderdesc2": "false"}
        scan = PageScan(page_no=int(state.get("p") or 1), previous_first_id=_opt(state.get("f")))
        page = await self.client.get_page(TICKETS, "tickets", params, scan, page_size=self.page_size)
        last_id = state.get("k")
        fresh = [r for r in page.rows
                 if last_id is None or (m.parse_dt(r.get("last_update")), int(r["id"])) > (after, int(last_id))]
        if page.last:
            return fresh, None
        if fresh:
            tail = fresh[-1]
            stamp = m.parse_dt(tail.get("last_update")) or after
            # still inside one instant's changes: the next page of this query, else page 1 from the new stamp
            same = after is not None and stamp == after
            return fresh, _encode({"t": m.format_dt(stamp) if stamp else None, "k": int(tail["id"]),
                                   "p": scan.page_no if same else 1, **({"f": page.first_id} if same else {})})
        # a full page of rows already returned (many changes share one stamp): the next page of that stamp
        return fresh, _encode({**state, "p": scan.page_no, "f": page.first_id})

    async def list_changed_tickets(self, since: datetime | None, cursor: str | None = None) -> Page[PsaTicket]:
        rows, nxt = await self._scan(since, cursor)
        closed = await self.data.closed_ids()
        return Page([self._ticket(r, closed) for r in rows], nxt)

    async def list_ticket_ids(self, cursor: str | None = None) -> Page[str]:
        """Every live ticket id by the same keyset scan (a delete or a change mid-scan never hides a live id)."""
        rows, nxt = await self._scan(None, cursor)
        return Page([str(r["id"]) for r in rows], nxt)

    async def get_ticket(self, external_id: str) -> PsaTicket:
        row = await self.client.get_record(TICKETS, _tid(external_id), queries.ticket())
        if row.get("deleted") is True:
            raise PsaNotFound(f"HaloPSA ticket {external_id} was deleted.")
        return self._ticket(row, await self.data.closed_ids())

    async def ticket_device(self, ticket_external_id: str, device_ref: str | None) -> ConfigurationItem | None:
        """The ticket's first linked asset (`assets` of the full record), with the Intune id Halo keeps for it."""
        row = await self.client.get_record(TICKETS, _tid(ticket_external_id), queries.ticket(details=True))
        return None if row.get("deleted") is True else m.ticket_device(row)

    async def create_ticket(self, ticket: NewTicket) -> PsaTicket:
        if not ticket.summary.strip() or len(ticket.summary) > self.capabilities.max_summary_chars:
            raise PsaValidationError(f"A HaloPSA summary must be 1 to {self.capabilities.max_summary_chars} "
                                     "characters.", fields={"summary": "length"})
        if not ticket.marker:
            raise PsaValidationError("A ticket create needs our dedupe marker.", fields={"marker": "required"})
        if not ticket.board_external_id and not ticket.type_external_id and self.default_board:
            ticket = dataclasses.replace(ticket, board_external_id=self.default_board)
        category = await self._category(ticket.category_external_id, ticket.subcategory_external_id)
        body = w.new_ticket_body(ticket, marker_field_id=self.marker_field, category=category)
        saved = await self.client.post_one(TICKETS, body)
        return self._ticket(saved, await self.data.closed_ids())

    async def update_ticket(self, external_id: str, patch: TicketPatch) -> PsaTicket:
        if patch.is_empty():
            return await self.get_ticket(external_id)
        category = await self._category(patch.category_external_id, patch.subcategory_external_id)
        saved = await self.client.post_one(TICKETS, w.ticket_update_body(external_id, patch, quiet=True,
                                                                         category=category))
        return self._ticket(saved, await self.data.closed_ids())

    async def _category(self, category: str | None, subcategory: str | None) -> str | None:
        """The `category_1` text for a seam pair (None: not asked to change), checked against the tenant's
        categories: a value Halo does not list is refused before anything is sent."""
        if category is None and subcategory is None:
            return None
        if not category and not subcategory:
            return ""
        known = await self.data.category_values()
        try:
            return cats.value_for(category, subcategory, known)
        except PsaValidationError:
            return cats.value_for(category, subcategory, await self.data.category_values(fresh=True))

    # ------------------------------------------------------------ actions: notes and time

    async def _fetch_actions(self, tid: str) -> list[dict[str, Any]]:
        rows = await self.client.get_list(ACTIONS, queries.actions(tid), key="actions")
        return sorted(rows, key=lambda r: int(r.get("id") or 0))

    async def _actions_of(self, tid: str, *, fresh: bool = False) -> list[dict[str, Any]]:
        """A ticket's actions; one GET serves the notes and the time entries read together (sync)."""
        _tid(tid)
        cached = self._actions.get(tid)
        if fresh or cached is None or self.clock() - cached[0] > ACTIONS_TTL or (
                cached[1].done() and cached[1].exception() is not None):
            cached = (self.clock(), asyncio.ensure_future(self._fetch_actions(tid)))
            self._actions[tid] = cached
            if len(self._actions) > 256:
                for old in [k for k, (at, task) in self._actions.items() if task.done() and k != tid][:128]:
                    del self._actions[old]
        return await asyncio.shield(cached[1])

    async def list_notes(self, ticket_external_id: str) -> Sequence[PsaNote]:
        rows = await self._actions_of(ticket_external_id)
        return [m.note(r, ticket_external_id) for r in rows if not m.is_time_action(r)]

    async def list_time_entries(self, ticket_external_id: str) -> Sequence[PsaTimeEntry]:
        rows = await self._actions_of(ticket_external_id)
        return [m.time_entry(r, ticket_external_id) for r in rows if m.is_time_action(r)]

    async def _post_action(self, body: dict[str, Any], setting: str) -> dict[str, Any]:
        self._actions.pop(str(body["ticket_id"]), None)
        try:
            return await self.client.post_one(ACTIONS, body)
        except PsaValidationError as exc:
            if NO_ACCESS in exc.message.lower():
                raise PsaValidationError(
                    f"HaloPSA's API agent may not use outcome {body.get('outcome_id')} ({setting}): {exc.message}. "
                    f"Allow it for the API agent in Halo, or set {setting} to one it may use.",
                    status=exc.status, code="outcome_not_allowed", fields={setting: "not allowed for the API agent"},
                ) from exc
            raise

    async def add_note(self, note: NewNote, journal: WriteJournal | None = None) -> PsaNote:
        """One action: hidden from the end user for internal notes (never e-mailed); public ones e-mail the
        ticket's end user only when asked, on this action alone (`sendemail` + `emailto`)."""
        use = {NoteVisibility.INTERNAL: "internal", NoteVisibility.PUBLIC: "public"}.get(note.visibility, "resolution")
        outcome, setting = await self.data.outcome(use)
        email_to = None
        if note.email_contact and note.visibility is not NoteVisibility.INTERNAL:
            row = await self.client.get_record(TICKETS, _tid(note.ticket_external_id), queries.ticket(details=False))
            email_to = str(row.get("user_email") or "").strip() or None
        body = w.note_body(note, outcome_id=outcome, email_to=email_to, marker_field_id=self.marker_field)
        saved = await self._post_action(body, setting)
        return m.note(saved, note.ticket_external_id)

    async def add_time_entry(self, entry: NewTimeEntry) -> PsaTimeEntry:
        if entry.minutes <= 0:
            raise PsaValidationError("A time entry needs a positive duration.", fields={"minutes": "must be > 0"})
        if self.time_mode == "timesheet":
            return await self._timesheet_event(entry)
        outcome, setting = await self.data.outcome("time")
        body = w.time_entry_body(entry, outcome_id=outcome, marker_field_id=self.marker_field)
        return m.time_entry(await self._post_action(body, setting), entry.ticket_external_id)

    async def _timesheet_event(self, entry: NewTimeEntry) -> PsaTimeEntry:
        """Time as a TimesheetEvent on the ticket (Halo logs the matching time action, `action_number`)."""
        self._actions.pop(entry.ticket_external_id, None)
        body: dict[str, Any] = {"ticket_id": _tid(entry.ticket_external_id), "note": entry.notes,
                                "start_date": m.format_dt(entry.started_at),
                                "end_date": m.format_dt(entry.started_at + m.duration(entry.minutes))}
        if entry.member_external_id:
            body["agent_id"] = int(entry.member_external_id)
        event = await self.client.post_one(TIMESHEET_EVENT, body)
        agent = str(event.get("agent_id") or entry.member_external_id or "") or None
        return PsaTimeEntry(external_id=str(event.get("action_number") or event["id"]),
                            ticket_external_id=entry.ticket_external_id, minutes=entry.minutes,
                            started_at=entry.started_at, member=Ref(agent) if agent else None, notes=entry.notes,
                            billable=entry.billable)

    # ------------------------------------------------------------ attachments

    async def list_attachments(self, ticket_external_id: str) -> Sequence[PsaAttachment]:
        if self._attachment_counts.pop(ticket_external_id, None) == 0:
            return []  # the ticket's list row said it has none: no request
        rows = await self.client.get_list(ATTACHMENT, queries.attachments(ticket_external_id), key="attachments")
        return [m.attachment(r, ticket_external_id) for r in rows]

    async def upload_attachment(self, attachment: NewAttachment) -> PsaAttachment:
        cap = self.capabilities.max_attachment_bytes
        if len(attachment.content) > cap:
            raise PsaTooLarge(f"'{attachment.filename}' is {len(attachment.content):,} bytes; this HaloPSA connection "
                              f"accepts at most {cap:,}.", fields={"file": f"max {cap} bytes"})
        self._attachment_counts.pop(attachment.ticket_external_id, None)
        body = w.attachment_body(attachment, visible_to_user=attachment.visibility is not NoteVisibility.INTERNAL)
        return m.attachment(await self.client.post_one(ATTACHMENT, body), attachment.ticket_external_id)

    # ------------------------------------------------------------ picklists, directory

    async def picklists(self) -> Picklists:
        picks, self.types = await self.data.picklists()
        return picks

    async def list_members(self) -> Sequence[PsaMember]:
        rows = await self.client.get_list(AGENT, queries.agents())
        return [m.member(r) for r in rows if not m.is_unassigned_agent(r)]

    async def _paged(self, path: str, key: str, params: Mapping[str, Any], cursor: str | None
                     ) -> tuple[list[dict[str, Any]], str | None]:
        state = _decode(cursor) if cursor else {"p": 1}
        scan = PageScan(page_no=int(state.get("p") or 1), previous_first_id=_opt(state.get("f")))
        page = await self.client.get_page(path, key, params, scan, page_size=self.page_size)
        return page.rows, (None if page.last else _encode({"p": scan.page_no, "f": page.first_id}))

    async def list_companies(self, cursor: str | None = None) -> Page[PsaCompany]:
        rows, nxt = await self._paged(CLIENT, "clients", queries.clients(include_inactive=True), cursor)
        return Page([m.company(r) for r in rows if not m.is_placeholder_client(r)], nxt)

    async def list_contacts(self, cursor: str | None = None) -> Page[PsaContact]:
        rows, nxt = await self._paged(USERS, "users", queries.users(include_inactive=True), cursor)
        return Page([m.contact(r) for r in rows], nxt)

    # ------------------------------------------------------------ dedupe

    async def find_write(self, probe: WriteProbe) -> FoundWrite | None:
        """Tickets by `third_party_id_string` among those opened since the op (less skew); attachments by
        `third_party_id`; notes and time, which have no such field, by an invisible match on what was sent,
        written as the member named or else as the API agent."""
        kind = probe.kind
        if kind is WriteKind.TICKET:
            found_id = await self._find_ticket(probe)
            return FoundWrite(kind=kind, external_id=found_id) if found_id else None
        tid = probe.ticket_external_id
        if tid is None:
            raise PsaValidationError(f"Finding a {kind.value} again needs the ticket id.",
                                     fields={"ticket_external_id": "required"})
        if kind is WriteKind.ATTACHMENT:
            self._attachment_counts.pop(tid, None)
            hit = match_attachment(await self.list_attachments(tid), probe)
            return FoundWrite(kind=kind, external_id=hit.external_id) if hit else None
        if not probe.author_external_id:
            probe = dataclasses.replace(probe, author_external_id=await self.data.api_agent_id())
        rows = await self._actions_of(tid, fresh=True)
        found: PsaNote | PsaTimeEntry | None
        if kind is WriteKind.NOTE:
            found = match_note([m.note(r, tid) for r in rows if not m.is_time_action(r)], probe)
        else:
            found = match_time_entry([m.time_entry(r, tid) for r in rows if m.is_time_action(r)], probe)
        return FoundWrite(kind=kind, external_id=found.external_id) if found else None

    async def _find_ticket(self, probe: WriteProbe) -> str | None:
        start = (probe.since - FIND_WINDOW) if probe.since else None
        params = queries.tickets(date_field="dateoccured", start=start, order="id", descending=True) if start else \
            queries.tickets(order="id", descending=True)
        want = m.marker_value(probe.marker)
        async for page in self.client.iter_pages(TICKETS, "tickets", params, page_size=MAX_PAGE, max_pages=20):
            for row in page.rows:
                if "third_party_id_string" not in row:  # list rows without the field: read the record
                    row = await self.client.get_record(TICKETS, int(row["id"]), queries.ticket())
                if str(row.get("third_party_id_string") or "") == want:
                    return str(row["id"])
        return None

    async def recover(self, journal: WriteJournal) -> None:
        """Nothing to undo: e-mailing the end user is a property of the one action, no ticket flag changes."""
        return None

    # ------------------------------------------------------------ webhooks and links

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        return wh.parse(body, headers, mode=self.webhook_mode, secret=self._webhook_secret,
                        header_name=self.webhook_header)

    async def ensure_callbacks(self, url: str) -> dict[str, Any]:
        """Our webhook at `url` exactly once (created or updated, duplicates deleted), subscribed to ticket events
        (connectors.base.CallbackRegistrar: `deskbridge connection callbacks NAME`)."""
        return await wh.ensure(self.client, url, mode=self.webhook_mode, secret=self._webhook_secret,
                               header_name=self.webhook_header)

    async def remove_callbacks(self, url: str) -> list[str]:
        """Delete our webhooks for `url`'s host (when the connection is removed)."""
        return await wh.remove(self.client, url)

    async def kb_articles(self) -> tuple[DocArticle, ...]:
        """The tenant's knowledge base as KB-linking articles (connectors/halopsa/kb.py)."""
        return await kb.articles(self.client, self.ui_root)

    def ticket_url(self, external_id: str) -> str:
        """The agent view of a ticket ([unverified] path, `/ticket?id=`)."""
        return f"{self.ui_root}/ticket?{httpx.QueryParams({'id': external_id})}"


__all__ = ["HaloPsaConnector", "PsaError"]
