"""ConnectWiseConnector: the PsaConnector for ConnectWise Manage (reference/psa-apis.md §2).

Settings (non-secret): `site` (login host, e.g. na.myconnectwise.net, or an on-prem host), `company_id`,
`client_id`; optional `codebase`, `api_base_url` (API root or full base URL), `api_version` (Accept pin),
`default_board_id`, `max_attachment_bytes` (default 10 MB), `webhook_mode` ("verify" | "hint"),
`naive_datetimes` (send `lastUpdated` conditions without `Z`). Credentials: `public_key`, `private_key`.

Changed-ticket paging is keyset paging on (`_info/lastUpdated`, `id`), `pageSize=1000`: each page asks for
`lastUpdated>=[since] and (lastUpdated>[t] or (lastUpdated=[t] and id>k))` ordered `_info/lastUpdated asc,
id asc`, where (t, k) is the last row of the previous page, carried in the opaque cursor together with
`since`. Unlike page numbers it cannot skip a ticket that moves to the end while we page. It assumes
lastUpdated compares at the whole seconds it is returned with ([unverified] on a live tenant).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import httpx

from connectors.base import (
    AccountInfo,
    Capabilities,
    ConfigurationItem,
    ConnectionConfig,
    Feature,
    FoundWrite,
    MemoryJournal,
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
    PsaPriority,
    PsaStatus,
    PsaTicket,
    PsaTicketType,
    PsaTimeEntry,
    PsaTypeAssociation,
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
from connectors.connectwise import kb
from connectors.connectwise import mapping as m
from connectors.connectwise import webhooks as wh
from connectors.connectwise.auth import ON_PREM_CODEBASE, basic_auth, tenant_from_settings
from connectors.connectwise.client import CwClient
from connectors.connectwise.conditions import and_, cond, in_, or_
from connectors.docs import DocArticle
from connectors.errors import (
    PsaAuthError,
    PsaError,
    PsaNotFound,
    PsaRateLimited,
    PsaTimeout,
    PsaTooLarge,
    PsaValidationError,
    WebhookRejected,
)

MAX_PAGE = 1000
EMAIL_FLAG = "cw_email_contact_flag"  # journal key: {"ticket": id, "restore": previous value}
TICKET_ORDER = "_info/lastUpdated asc, id asc"
BATCH_IDS = 100  # ids per `id in (...)` read: the URL stays well under the ~2,000 characters CW accepts


def _encode(state: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise PsaValidationError("The page cursor is not one this connector made.") from None
    if not isinstance(data, dict):
        raise PsaValidationError("The page cursor is not one this connector made.")
    return data


class ConnectWiseConnector:
    SETUP: ClassVar[SetupFields] = SetupFields(
        settings=("site", "company_id", "client_id"), credentials=("public_key", "private_key"),
        optional_settings=("codebase", "api_base_url", "api_version", "default_board_id"))  # README "A PSA"
    kind: ClassVar[str] = "connectwise"
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        features=frozenset(Feature) - {Feature.TICKET_CATEGORIES}, max_attachment_bytes=10 * 1024 * 1024, max_summary_chars=100,
        max_note_chars=30_000, page_size=MAX_PAGE, create_requires=frozenset({"company_external_id"}))

    def __init__(self, config: ConnectionConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                 page_size: int = MAX_PAGE, timeout: float | None = None, **options: Any) -> None:
        self.config = config
        settings = config.settings
        self.tenant = tenant_from_settings(settings)
        self.client = CwClient(self.tenant, basic_auth(self.tenant, config.credentials), transport=transport,
                               timeout=timeout)
        self.page_size = max(1, min(int(settings.get("page_size") or page_size), MAX_PAGE))
        self.naive = str(settings.get("naive_datetimes", "")).lower() in ("1", "true", "yes", "on")
        self.webhook_mode = str(settings.get("webhook_mode") or "verify").lower()
        if self.webhook_mode not in ("verify", "hint"):
            raise PsaValidationError("webhook_mode must be 'verify' or 'hint'.", fields={"webhook_mode": "invalid"})
        self.default_board = str(settings["default_board_id"]) if settings.get("default_board_id") else None
        cap = int(settings.get("max_attachment_bytes") or self.CAPABILITIES.max_attachment_bytes)
        self.capabilities = dataclasses.replace(self.CAPABILITIES, max_attachment_bytes=cap,
                                                page_size=self.page_size)
        self._signing_keys: dict[str, str] = {}

    async def aclose(self) -> None:
        await self.client.aclose()

    # ------------------------------------------------------------ account

    async def check_credentials(self) -> AccountInfo:
        """companyinfo (codebase), then an authenticated GET system/info."""
        await self.client.discover(force=True)
        info, _ = await self.client.json("GET", "system/info")
        company = self.client.company_info or {}
        name = str(company.get("CompanyName") or self.tenant.company_id)
        version = str((info or {}).get("version") or "")
        return AccountInfo(display_name=f"{name} (ConnectWise Manage {version})".replace(" )", ")"),
                           details={"company_id": self.tenant.company_id, "codebase": self.client.codebase or "",
                                    "api_host": self.tenant.api_host, "version": version})

    # ------------------------------------------------------------ tickets

    def _changed_params(self, since: datetime | None, after: tuple[str, int] | None, size: int) -> dict[str, Any]:
        since_cond = cond("lastUpdated", ">=", since, naive=self.naive) if since else None
        keyset = None
        if after is not None:
            at = m.parse_dt(after[0])
            assert at is not None
            keyset = or_(cond("lastUpdated", ">", at, naive=self.naive),
                         and_(cond("lastUpdated", "=", at, naive=self.naive), cond("id", ">", after[1])))
        params: dict[str, Any] = {"orderBy": TICKET_ORDER, "pageSize": size, "page": 1}
        conditions = and_(since_cond, keyset)
        if conditions:
            params["conditions"] = conditions
        return params

    async def list_changed_tickets(self, since: datetime | None, cursor: str | None = None) -> Page[PsaTicket]:
        state: dict[str, Any] = _decode(cursor) if cursor else {"s": m.format_dt(since) if since else None}
        since_value = m.parse_dt(state.get("s"))
        after = (str(state["t"]), int(state["k"])) if "t" in state else None
        rows, has_next = await self.client.get_list("service/tickets",
                                                    self._changed_params(since_value, after, self.page_size))
        items = [m.ticket(r) for r in rows]
        next_cursor = None
        if has_next and rows:
            last = rows[-1]
            next_cursor = _encode({"s": state.get("s"), "t": (last.get("_info") or {}).get("lastUpdated"),
                                   "k": int(last["id"])})
        return Page(items, next_cursor)

    async def list_ticket_ids(self, cursor: str | None = None) -> Page[str]:
        after = int(_decode(cursor)["k"]) if cursor else 0
        params: dict[str, Any] = {"fields": "id", "orderBy": "id asc", "pageSize": self.page_size, "page": 1}
        if after:
            params["conditions"] = cond("id", ">", after)
        rows, has_next = await self.client.get_list("service/tickets", params)
        ids = [str(r["id"]) for r in rows]
        return Page(ids, _encode({"k": int(ids[-1])}) if has_next and ids else None)

    async def get_ticket(self, external_id: str) -> PsaTicket:
        data, _ = await self.client.json("GET", f"service/tickets/{int(external_id)}")
        return m.ticket(data)

    async def get_tickets(self, external_ids: Sequence[str]) -> Sequence[PsaTicket]:
        """TicketBatchRead: `service/tickets?conditions=id in (...)`, up to BATCH_IDS ids a request; ids that are
        not numbers or not found are absent, as a deleted ticket is."""
        ids = sorted({int(x) for x in external_ids if str(x).isdigit() and len(str(x)) <= 18})
        out: list[PsaTicket] = []
        for i in range(0, len(ids), BATCH_IDS):
            part = ids[i : i + BATCH_IDS]
            rows = await self.client.get_all("service/tickets", {"conditions": in_("id", part), "orderBy": "id asc"},
                                             page_size=len(part) + 1)  # a short page: no second request
            out += [m.ticket(r) for r in rows]
        return out

    async def ticket_device(self, ticket_external_id: str, device_ref: str | None) -> ConfigurationItem | None:
        """The first configuration attached to the ticket (`/service/tickets/{id}/configurations`, in the order
        they were attached), read from `/company/configurations/{id}` for its name and serial number; None when
        the ticket has none or it was deleted since. `device_ref` is not needed: CW links devices itself."""
        refs, _ = await self.client.get_list(f"service/tickets/{int(ticket_external_id)}/configurations",
                                             {"pageSize": 1, "page": 1})
        if not refs or not isinstance(refs[0], dict) or refs[0].get("id") is None:
            return None
        try:
            row, _ = await self.client.json("GET", f"company/configurations/{int(refs[0]['id'])}",
                                            params={"fields": "id,name,serialNumber,deviceIdentifier"})
        except PsaNotFound:
            return None
        return m.configuration_item(row or {})

    async def create_ticket(self, ticket: NewTicket) -> PsaTicket:
        if not ticket.company_external_id:
            raise PsaValidationError("ConnectWise needs a company for a new ticket.", fields={"company": "required"})
        if not ticket.summary.strip() or len(ticket.summary) > self.capabilities.max_summary_chars:
            raise PsaValidationError("A ConnectWise summary must be 1 to 100 characters.",
                                     fields={"summary": "1 to 100 characters"})
        if len(ticket.marker) > 100:
            raise PsaValidationError("The dedupe marker is longer than externalXRef allows (100).",
                                     fields={"externalXRef": "max 100 characters"})
        body = m.new_ticket_body(ticket, default_board=self.default_board)
        data, _ = await self.client.json("POST", "service/tickets", json=body)
        return m.ticket(data)

    async def update_ticket(self, external_id: str, patch: TicketPatch) -> PsaTicket:
        ops = m.patch_ops(patch)
        if not ops:
            return await self.get_ticket(external_id)
        data, _ = await self.client.json("PATCH", f"service/tickets/{int(external_id)}", json=ops)
        return m.ticket(data)

    # ------------------------------------------------------------ notes, time, documents

    async def list_notes(self, ticket_external_id: str) -> Sequence[PsaNote]:
        rows = await self.client.get_all(f"service/tickets/{int(ticket_external_id)}/notes", {"orderBy": "id asc"})
        return [m.note(r, ticket_external_id) for r in rows]

    async def add_note(self, note: NewNote, journal: WriteJournal | None = None) -> PsaNote:
        """Post a note. To e-mail the contact ConnectWise needs the ticket's automaticEmailContactFlag set
        when the note is posted (WYRE-AI PR #84), and that flag also governs notes people write in the PSA
        later: so it is set for this note only, recorded in the journal first, and restored after."""
        journal = journal if journal is not None else MemoryJournal()
        tid = int(note.ticket_external_id)
        email = note.email_contact and note.visibility is not NoteVisibility.INTERNAL
        if email:
            await self.recover(journal)  # an earlier attempt that died before restoring
            current, _ = await self.client.json("GET", f"service/tickets/{tid}",
                                                params={"fields": "id,automaticEmailContactFlag"})
            if not (current or {}).get("automaticEmailContactFlag"):
                await journal.put(EMAIL_FLAG, {"ticket": tid, "restore": False})
                await self._set_email_flag(tid, True)
        body = m.note_body(dataclasses.replace(note, email_contact=email))
        try:
            data, _ = await self.client.json("POST", f"service/tickets/{tid}/notes", json=body)
        finally:
            if journal.get(EMAIL_FLAG):
                await self._restore_after(journal)
        return m.note(data, note.ticket_external_id)

    async def _restore_after(self, journal: WriteJournal) -> None:
        """Restore the flag after the note; if that fails, the note's outcome is reported as unknown so
        the op is retried: the retry restores first (`recover`) and then finds the note instead of
        posting it again."""
        try:
            await self.recover(journal)
        except PsaError as exc:
            raise PsaTimeout("The note was sent, but the ticket's e-mail setting could not be restored yet.",
                             status=exc.status, outcome_unknown=True) from exc

    async def recover(self, journal: WriteJournal) -> None:
        """Put back a ticket e-mail flag an earlier attempt set (only if it is still as we left it)."""
        pending = journal.get(EMAIL_FLAG)
        if not pending:
            return
        tid = int(pending["ticket"])
        current, _ = await self.client.json("GET", f"service/tickets/{tid}",
                                            params={"fields": "id,automaticEmailContactFlag"})
        if bool((current or {}).get("automaticEmailContactFlag")) != bool(pending["restore"]):
            await self._set_email_flag(tid, bool(pending["restore"]))
        await journal.put(EMAIL_FLAG, None)

    async def _set_email_flag(self, tid: int, value: bool) -> None:
        await self.client.json("PATCH", f"service/tickets/{tid}", json=[
            {"op": "replace", "path": "automaticEmailContactFlag", "value": value}])

    async def list_time_entries(self, ticket_external_id: str) -> Sequence[PsaTimeEntry]:
        conditions = and_(cond("chargeToId", "=", int(ticket_external_id)),
                          cond("chargeToType", "=", "ServiceTicket"))
        rows = await self.client.get_all("time/entries", {"conditions": conditions, "orderBy": "id asc"})
        return [m.time_entry(r) for r in rows]

    async def list_time_entries_of(self, external_ids: Sequence[str]) -> Mapping[str, Sequence[PsaTimeEntry]]:
        """TimeEntryBatchRead: the time entries of up to BATCH_IDS tickets a query (`chargeToId in (...)`)."""
        ids = sorted({int(x) for x in external_ids if str(x).isdigit() and len(str(x)) <= 18})
        out: dict[str, list[PsaTimeEntry]] = {}
        for i in range(0, len(ids), BATCH_IDS):
            conditions = and_(in_("chargeToId", ids[i : i + BATCH_IDS]), cond("chargeToType", "=", "ServiceTicket"))
            for row in await self.client.get_all("time/entries", {"conditions": conditions, "orderBy": "id asc"}):
                entry = m.time_entry(row)
                out.setdefault(entry.ticket_external_id, []).append(entry)
        return out

    async def add_time_entry(self, entry: NewTimeEntry) -> PsaTimeEntry:
        if entry.minutes <= 0:
            raise PsaValidationError("A time entry needs a positive duration.", fields={"minutes": "must be > 0"})
        data, _ = await self.client.json("POST", "time/entries", json=m.time_entry_body(entry))
        return m.time_entry(data)

    async def list_attachments(self, ticket_external_id: str) -> Sequence[PsaAttachment]:
        rows = await self.client.get_all("system/documents", {"recordType": "Ticket",
                                                              "recordId": int(ticket_external_id)})
        return [m.attachment(r, ticket_external_id) for r in rows]

    async def upload_attachment(self, attachment: NewAttachment) -> PsaAttachment:
        cap = self.capabilities.max_attachment_bytes
        if len(attachment.content) > cap:
            raise PsaTooLarge(f"'{attachment.filename}' is {len(attachment.content):,} bytes; this ConnectWise "
                              f"connection accepts at most {cap:,}.", fields={"file": f"max {cap} bytes"})
        files = {"file": (attachment.filename, attachment.content, attachment.content_type)}
        doc, _ = await self.client.json("POST", "system/documents", files=files, data=m.document_form(attachment))
        return m.attachment(doc, attachment.ticket_external_id)

    # ------------------------------------------------------------ picklists, directory

    async def picklists(self) -> Picklists:
        """Boards, then each board's statuses and types, and the priorities: each read on its own, so one
        that fails (a board whose types 404) is reported in `problems` and the rest still arrives.
        Credentials refused or a rate limit stop the refresh (retried as a whole later)."""
        boards = [m.board(b) for b in await self.client.get_all("service/boards", {"orderBy": "id asc"})]
        statuses: list[PsaStatus] = []
        types: list[PsaTicketType] = []
        associations: list[PsaTypeAssociation] = []
        partial_associations = False
        problems: dict[str, str] = {}
        incomplete: set[str] = set()
        for b in boards:
            path = f"service/boards/{int(b.external_id)}"
            try:
                # ordered here, by `sortOrder` or the older `sort`: asking the server to order by a field its
                # version lacks is a 400
                statuses += sorted((m.status(s, b.external_id) for s in await self.client.get_all(
                    f"{path}/statuses", {"orderBy": "id asc"})), key=lambda st: (st.sort_order, int(st.external_id)))
            except (PsaAuthError, PsaRateLimited):
                raise
            except PsaError as exc:
                problems[f"statuses of board {b.name} ({b.external_id})"] = str(exc)
                incomplete.add(b.external_id)
            try:
                types += [m.ticket_type(t, b.external_id) for t in await self.client.get_all(f"{path}/types",
                                                                                           {"orderBy": "id asc"})]
            except (PsaAuthError, PsaRateLimited):
                raise
            except PsaError as exc:
                problems[f"types of board {b.name} ({b.external_id})"] = str(exc)
                incomplete.add(b.external_id)
            try:
                associations += await self._associations(path, b.external_id)
            except (PsaAuthError, PsaRateLimited):
                raise
            except PsaError as exc:
                problems[f"subtypes and items of board {b.name} ({b.external_id})"] = str(exc)
                partial_associations = True
        complete = {"board", "status", "type"} | (set() if partial_associations else {"subtype", "item"})
        prios: list[PsaPriority] = []
        try:
            prios = sorted((m.priority(p) for p in await self.client.get_all("service/priorities",
                                                                               {"orderBy": "id asc"})),
                           key=lambda p: (p.sort_order, int(p.external_id)))
            complete.add("priority")
        except (PsaAuthError, PsaRateLimited):
            raise
        except PsaError as exc:
            problems["priorities"] = str(exc)
        return Picklists(boards=boards, statuses=statuses, priorities=prios, types=types, problems=problems,
                         associations=associations, incomplete_boards=frozenset(incomplete),
                         complete=frozenset(complete))

    async def _associations(self, path: str, board_id: str) -> list[PsaTypeAssociation]:
        """The board's type > subtype > item combinations (`typeSubTypeItemAssociations`), with the subtypes'
        and items' own `inactiveFlag` (`/subtypes`, `/items`): three paged reads."""
        order = {"orderBy": "id asc"}
        off_subtypes = m.inactive_ids(await self.client.get_all(f"{path}/subtypes", order))
        off_items = m.inactive_ids(await self.client.get_all(f"{path}/items", order))
        rows = await self.client.get_all(f"{path}/typeSubTypeItemAssociations", order)
        return m.associations(rows, board_id, off_subtypes, off_items)

    async def list_members(self) -> Sequence[PsaMember]:
        """Members, with the API members (`system/apiMembers`, whose keys integrations use) marked as such:
        they are not technicians. A tenant that will not list API members still gets its members."""
        members = [m.member(r) for r in await self.client.get_all("system/members", {"orderBy": "id asc"})]
        try:
            api = await self.client.get_all("system/apiMembers", {"orderBy": "id asc", "fields": "id,identifier"})
        except (PsaAuthError, PsaRateLimited):
            raise
        except PsaError:
            return members
        ids = {str(a.get("id")) for a in api} | {f"ident:{a.get('identifier')}" for a in api if a.get("identifier")}
        return [dataclasses.replace(x, api=True) if x.external_id in ids or f"ident:{x.identifier}" in ids else x
                for x in members]

    async def _keyset(self, path: str, cursor: str | None) -> tuple[list[Any], str | None]:
        after = int(_decode(cursor)["k"]) if cursor else 0
        params: dict[str, Any] = {"orderBy": "id asc", "pageSize": self.page_size, "page": 1}
        if after:
            params["conditions"] = cond("id", ">", after)
        rows, has_next = await self.client.get_list(path, params)
        return rows, (_encode({"k": int(rows[-1]["id"])}) if has_next and rows else None)

    async def list_companies(self, cursor: str | None = None) -> Page[PsaCompany]:
        rows, nxt = await self._keyset("company/companies", cursor)
        return Page([m.company(r) for r in rows], nxt)

    async def list_contacts(self, cursor: str | None = None) -> Page[PsaContact]:
        rows, nxt = await self._keyset("company/contacts", cursor)
        return Page([m.contact(r) for r in rows], nxt)

    # ------------------------------------------------------------ dedupe

    async def find_write(self, probe: WriteProbe) -> FoundWrite | None:
        """Tickets by `externalXRef` (our marker, invisible to the customer); notes, time entries and
        documents, which have no such field, by an invisible match on what was sent (connectors.base)."""
        kind = probe.kind
        if kind is WriteKind.TICKET:
            rows, _ = await self.client.get_list("service/tickets", {
                "conditions": cond("externalXRef", "=", probe.marker), "fields": "id,externalXRef",
                "orderBy": "id asc", "pageSize": 10, "page": 1})
            hit = next((r for r in rows if r.get("externalXRef") == probe.marker), None)
            return FoundWrite(kind=kind, external_id=str(hit["id"])) if hit else None
        tid = probe.ticket_external_id
        if tid is None:
            raise PsaValidationError(f"Finding a {kind.value} again needs the ticket id.",
                                     fields={"ticket_external_id": "required"})
        found: PsaNote | PsaTimeEntry | PsaAttachment | None
        if kind is WriteKind.NOTE:
            found = match_note(await self.list_notes(tid), probe)
        elif kind is WriteKind.TIME_ENTRY:
            found = match_time_entry(await self.list_time_entries(tid), probe)
        else:
            found = match_attachment(await self.list_attachments(tid), probe)
        return FoundWrite(kind=kind, external_id=found.external_id) if found else None

    # ------------------------------------------------------------ callbacks

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        cb = wh.parse_callback(body)
        if cb.company_id and cb.company_id.lower() != self.tenant.company_id.lower():
            raise WebhookRejected("The callback is for another ConnectWise company.")
        if self.webhook_mode == "hint":
            return wh.to_event(cb, body, verified=False)
        signature = wh.header(headers, wh.SIGNATURE_HEADER)
        if not signature:
            raise WebhookRejected("The callback carries no x-content-signature.")
        if not cb.key_url or not wh.key_url_allowed(cb.key_url, (self.tenant.api_root, self.tenant.site_root)):
            raise WebhookRejected("The callback's key_url is not on this tenant's ConnectWise host.")
        key = await self._signing_key(cb.key_url)
        if not wh.signature_matches(key, body, signature):
            self._signing_keys.pop(cb.key_url, None)  # a rotated key is fetched afresh next time
            raise WebhookRejected("The callback signature does not match.")
        return wh.to_event(cb, body, verified=True)

    async def _signing_key(self, key_url: str) -> str:
        if key_url in self._signing_keys:
            return self._signing_keys[key_url]
        try:
            resp = await self.client.public.get(key_url)
            data = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            data = None
        key = wh.signing_key_from(data)
        if key is None:
            raise WebhookRejected("Could not fetch the callback signing key from ConnectWise.")
        self._signing_keys[key_url] = key
        return key

    async def ensure_callbacks(self, url: str, types: tuple[str, ...] = wh.CALLBACK_TYPES) -> dict[str, list[int]]:
        """Make the tenant's callbacks pointing at our host exactly one per type at `url`."""
        host = httpx.URL(url).host
        existing = await self.client.get_all("system/callbacks", {"conditions": cond("url", "contains", host),
                                                                  "orderBy": "id asc"})
        add, keep, delete = wh.plan_callbacks(existing, url, types)
        added = []
        for entry in add:
            data, _ = await self.client.json("POST", "system/callbacks", json=entry)
            added.append(int(data["id"]))
        for cid in delete:
            await self.client.request("DELETE", f"system/callbacks/{cid}")
        return {"added": added, "kept": keep, "deleted": delete}

    async def remove_callbacks(self, url: str) -> list[int]:
        """Delete every callback pointing at `url`'s host (when a connection is removed)."""
        host = httpx.URL(url).host
        existing = await self.client.get_all("system/callbacks", {"conditions": cond("url", "contains", host),
                                                                  "orderBy": "id asc"})
        for cb in existing:
            await self.client.request("DELETE", f"system/callbacks/{int(cb['id'])}")
        return [int(cb["id"]) for cb in existing]

    async def kb_articles(self) -> tuple[DocArticle, ...]:
        """The knowledge base as KB-linking articles, all general (connectors/connectwise/kb.py)."""
        return await kb.articles(self.client)

    def ticket_url(self, external_id: str) -> str:
        codebase = self.client.codebase or ON_PREM_CODEBASE
        query = httpx.QueryParams({"service_recid": external_id, "companyName": self.tenant.company_id})
        return f"{self.tenant.site_root}/{codebase}services/system_io/Service/fv_sr100_request.rails?{query}"


__all__ = ["ConnectWiseConnector", "PsaError"]
