"""A faithful fake ConnectWise Manage server (reference/psa-apis.md §2), in memory, for tests and benchmarks.

Reach it two ways, with the same state:

    fake = FakeConnectWise()                      # seeded: 3 companies, contacts, members, 2 boards, …
    connector = ConnectWiseConnector(fake.config(), transport=fake.transport())   # in-process httpx transport
    with fake.serve() as root:                    # real HTTP on 127.0.0.1 (benchmarks, multi-process tests)
        connector = ConnectWiseConnector(fake.config(root=root))

Connector settings: `fake.settings(root=None)` / `fake.credentials()` / `fake.config(root=None)`.
In-process the fake answers for any host (the connector talks to api-na.myconnectwise.net); on loopback the
settings point `site` at the loopback root (an "on-prem" host: API on the same host).

Endpoints (all under `/{codebase}apis/3.0/` unless noted; Basic auth `company+public:private` and a
`clientId` header required, else 401 in ConnectWise's error shape `{code, message, errors:[…]}`):

    GET  /login/companyinfo/{companyId}   (no auth; body `null` for an unknown company)
    GET  system/info
    GET  service/tickets[/count]  POST service/tickets  GET|PATCH|DELETE service/tickets/{id}
    GET|POST service/tickets/{id}/notes
    GET|POST time/entries   GET time/entries/{id}
    GET|POST system/documents (multipart only, else 415)   GET system/documents/{id}/download
    GET  service/boards, service/boards/{id}/statuses, service/boards/{id}/types, service/priorities
    GET  service/boards/{id}/subtypes, /items, /typeSubTypeItemAssociations  (the board's service catalogue:
         subtypes {id, name, inactiveFlag, typeAssociationIds, board}, items {id, name, inactiveFlag, board},
         associations {id, type, subType, item|absent, board}; a ticket's `subType`/`item` must form an
         association with its `type` on its board, else 400 InvalidObject naming the field)
    GET  system/members, company/companies, company/contacts
    GET  service/knowledgeBaseArticles  (id, title, issue, resolution, …; conditions, orderBy, paging; `add_kb_article`)
    GET|POST system/callbacks   DELETE system/callbacks/{id}
    GET  system/callbackkeys/{id}  (no auth; `{"signing_key": …}`: the fake's `Metadata.key_url` target)

Lists support `conditions` (and/or/not/parentheses/in(), `= != < <= > >= contains like`, strings in
"quotes" with backslash escapes, datetimes in [brackets], naive read as UTC), `orderBy`, `fields`, `page`
(1-based) and `pageSize` (default 25, clamped to 1000), and send RFC-5988 `Link` headers (first/prev/
next/last). Tickets carry `_info.lastUpdated`/`dateEntered` (whole seconds, from the injectable clock;
adding a note or time entry also bumps the ticket's `lastUpdated`, a choice [unverified] on real CW).
Statuses are board-scoped; choosing a `closedStatus` sets `closedFlag`/`closedDate`. PATCH takes a JSON
Patch array (add/replace/remove; paths case-sensitive, with or without the leading `/`). Notes keep their
flags; a note posted with `processNotifications` true (the CW default when omitted) on a ticket whose
`automaticEmailContactFlag` is set "e-mails" the contact (recorded in `fake.emails`), internal notes
included (the gotcha in jundis/CWSlack-SlashCommands#40).

Test API:
    fake.clock                      FakeClock (`advance(seconds)`, `set(dt)`); every change stamps clock()
    fake.add_company/add_contact/add_member/add_board/add_ticket(...)     direct data (no request counted)
    fake.add_catalogue(board_id, type, subtype, item=None)  a type > subtype (> item) combination of a board
    fake.edit_ticket(id, **fields), fake.add_note(ticket_id, text, contact_id=…, internal=…),
    fake.delete_ticket(id), fake.bulk_tickets(n)                          mutate as the PSA/customer would
    fake.fail_next(status, times=1, match="POST /service/tickets", retry_after=7)   429/500/… answers
    fake.lose_next_response(times=1, match="WRITE")    (match "WRITE" = any non-GET) apply the write, then time out / drop the connection
    fake.slow(seconds, times=None, match=…)      answer late (the transport raises ReadTimeout past the
                                                 client's read timeout, after the write was applied)
    fake.change_codebase("v2025_1/")             old codebase paths now 404
    fake.revoke_auth() / fake.restore_auth()     every authenticated call 401s
    fake.clear_faults()
    fake.requests (list[RecordedRequest]), fake.count("GET /service/tickets"), fake.reset_counts()
    fake.emails                                  notification e-mails the fake "sent"
    fake.signed_callback(type, action, id)       (headers, body) of a correctly signed callback POST
    fake.max_document_bytes                      the server's own upload cap (413 beyond it)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.base import ConnectionConfig
from tests.fakes import connectwise_routes as routes
from tests.fakes.connectwise_http import (
    FakeRequest,
    FakeResponse,
    FakeTransport,
    Fault,
    HttpError,
    RecordedRequest,
    serve_loopback,
)

CLOUD_SITE = "na.myconnectwise.net"
CLOUD_API_ROOT = "https://api-na.myconnectwise.net"


def iso(dt: datetime) -> str:
    """ConnectWise's date format: whole seconds, UTC, `Z`."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeClock:
    """Injectable clock; `step` advances it on every read so successive changes get distinct stamps."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start or datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        value = self.now
        self.now = self.now + self.step
        return value

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        self.now = when


class FakeConnectWise:
    def __init__(
        self,
        *,
        company_id: str = "deskbridge_test",
        public_key: str = "pub-key-1",
        private_key: str = "priv-key-1",
        client_id: str = "0a1b2c3d-client",
        codebase: str = "v2024_1/",
        clock: FakeClock | None = None,
        seed: bool = True,
    ) -> None:
        self.company_id, self.public_key, self.private_key, self.client_id = (
            company_id, public_key, private_key, client_id)
        self.codebase = codebase
        self.clock = clock or FakeClock()
        self.public_root = CLOUD_API_ROOT  # the host in callback key_urls; the loopback root while serving
        self.auth_revoked = False
        self.max_document_bytes = 25 * 1024 * 1024
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.counts: Counter[str] = Counter()
        self.emails: list[dict[str, Any]] = []
        self.record_bodies = True
        self.companies: dict[int, dict[str, Any]] = {}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.members: dict[int, dict[str, Any]] = {}
        self.boards: dict[int, dict[str, Any]] = {}
        self.statuses: dict[int, dict[str, Any]] = {}
        self.types: dict[int, dict[str, Any]] = {}
        self.subtypes: dict[int, dict[str, Any]] = {}  # board-scoped, like types
        self.items: dict[int, dict[str, Any]] = {}
        self.associations: dict[int, dict[str, Any]] = {}  # typeSubTypeItemAssociations
        self.kb_articles: dict[int, dict[str, Any]] = {}  # service/knowledgeBaseArticles
        self.priorities: dict[int, dict[str, Any]] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, dict[str, Any]] = {}
        self.time_entries: dict[int, dict[str, Any]] = {}
        self.documents: dict[int, dict[str, Any]] = {}
        self.document_content: dict[int, bytes] = {}
        self.callbacks: dict[int, dict[str, Any]] = {}
        self.configurations: dict[int, dict[str, Any]] = {}  # company/configurations (devices)
        self.ticket_configurations: dict[int, list[int]] = {}  # ticket id -> configuration ids, as attached
        self.signing_keys: dict[int, str] = {1: "fake-signing-key-" + uuid.uuid4().hex}
        self.version = 0
        self.list_cache: dict[tuple[Any, ...], Any] = {}  # filtered lists and their SortedIndex
        self._ids: Counter[str] = Counter()
        self.api_member_id = 0
        if seed:
            self.seed()

    # ------------------------------------------------------------ connector wiring

    def settings(self, root: str | None = None, **extra: Any) -> dict[str, Any]:
        """Connector settings for this fake (cloud host in-process; `root` = the loopback root)."""
        base = {"site": root or CLOUD_SITE, "company_id": self.company_id, "client_id": self.client_id}
        return {**base, **extra}

    def credentials(self) -> dict[str, str]:
        return {"public_key": self.public_key, "private_key": self.private_key}

    def config(self, root: str | None = None, *, connection_id: int = 1, workspace_id: int = 1,
               **extra: Any) -> ConnectionConfig:
        return ConnectionConfig(connection_id=connection_id, workspace_id=workspace_id, kind="connectwise",
                                settings=self.settings(root, **extra), credentials=self.credentials())

    def transport(self) -> httpx.AsyncBaseTransport:
        return FakeTransport(self)

    @contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        """Serve on loopback in a thread; yields the root URL to pass to `settings(root=...)`."""
        with serve_loopback(self, port) as root:
            yield root

    # ------------------------------------------------------------ ids, stamps, seed data

    def next_id(self, kind: str, start: int = 1) -> int:
        if not self._ids[kind]:
            self._ids[kind] = start - 1
        self._ids[kind] += 1
        return self._ids[kind]

    def now(self) -> str:
        return iso(self.clock())

    def touch(self) -> None:
        self.version += 1
        self.list_cache.clear()

    def seed(self) -> None:
        self.api_member_id = self.add_member("deskbridge-api", "Deskbridge", "API", "api@msp.example")
        self.add_member("bob", "Bob", "Tech", "bob@msp.example")
        self.add_member("ana", "Ana", "Lead", "ana@msp.example")
        for ident, name in (("ACME", "Acme Corp"), ("GLOBEX", "Globex"), ("INITECH", "Initech")):
            cid = self.add_company(ident, name)
            self.add_contact(cid, "Pat", f"User-{ident.title()}", f"pat@{ident.lower()}.example")
        self.add_board("Service Desk", [("New", False, True), ("In Progress", False, False),
                                        ("Waiting Customer", False, False), ("Resolved", True, False),
                                        ("Closed", True, False), ("Cancelled - No Time", True, False, True)],
                       types=["Incident", "Request"])
        self.add_board("Projects", [("Open", False, True), ("Done", True, False)], types=["Task"])
        desk = min(self.boards)
        for combo in (("Incident", "Email", None), ("Incident", "Email", "Outlook"), ("Incident", "Network", "VPN"),
                      ("Request", "Access", None)):
            self.add_catalogue(desk, *combo)
        for name, order in (("Priority 1 - Critical", 1), ("Priority 2 - High", 2),
                            ("Priority 3 - Medium", 3), ("Priority 4 - Low", 4)):
            pid = self.next_id("priority")
            self.priorities[pid] = {"id": pid, "name": name, "sortOrder": order, "defaultFlag": order == 3,
                                    "color": "Red", "_info": {"lastUpdated": self.now()}}

    def add_member(self, identifier: str, first: str, last: str, email: str, *, inactive: bool = False) -> int:
        mid = self.next_id("member", 100)
        self.members[mid] = {"id": mid, "identifier": identifier, "firstName": first, "lastName": last,
                             "primaryEmail": email, "inactiveFlag": inactive, "_info": {"lastUpdated": self.now()}}
        self.touch()
        return mid

    def add_company(self, identifier: str, name: str) -> int:
        cid = self.next_id("company", 250)
        self.companies[cid] = {"id": cid, "identifier": identifier, "name": name, "deletedFlag": False,
                               "status": {"id": 1, "name": "Active"}, "_info": {"lastUpdated": self.now()}}
        self.touch()
        return cid

    def add_contact(self, company_id: int, first: str, last: str, email: str) -> int:
        cid = self.next_id("contact", 500)
        self.contacts[cid] = {
            "id": cid, "firstName": first, "lastName": last, "inactiveFlag": False,
            "company": routes.ref(self.companies[company_id], "identifier"),
            "communicationItems": [{"type": {"id": 1, "name": "Email"}, "value": email, "defaultFlag": True,
                                    "communicationType": "Email"}],
            "_info": {"lastUpdated": self.now()}}
        self.touch()
        return cid

    def add_board(self, name: str, statuses: list[tuple[Any, ...]], types: list[str] = ()) -> int:  # type: ignore[assignment]
        bid = self.next_id("board")
        self.boards[bid] = {"id": bid, "name": name, "inactiveFlag": False, "_info": {"lastUpdated": self.now()}}
        for order, spec in enumerate(statuses):
            sname, closed, default = spec[:3]
            no_time = spec[3] if len(spec) > 3 else False
            sid = self.next_id("status", 10)
            self.statuses[sid] = {"id": sid, "name": sname, "board": {"id": bid, "name": name},
                                  "sortOrder": order, "closedStatus": closed, "defaultFlag": default,
                                  "inactive": False, "timeEntryNotAllowed": no_time, "displayOnBoard": True,
                                  "escalationStatus": "NotResponded", "customerPortalFlag": True}
        for tname in types:
            tid = self.next_id("type", 40)
            self.types[tid] = {"id": tid, "name": tname, "board": {"id": bid, "name": name}, "inactiveFlag": False}
        self.touch()
        return bid

    def add_catalogue(self, board_id: int, type_name: str, subtype: str, item: str | None = None) -> int:
        """Allow `type_name` > `subtype` (> `item`) on the board (its type must exist); the subtype and item are
        made on first use, like ConnectWise's board setup. Returns the association's id."""
        board = self.boards[board_id]
        bref = {"id": board_id, "name": board["name"]}
        ty = next(t for t in self.types.values() if t["board"]["id"] == board_id and t["name"] == type_name)

        def record(table: dict[int, dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
            hit = next((r for r in table.values() if r["board"]["id"] == board_id and r["name"] == name), None)
            if hit is None:
                rid = self.next_id(kind, 70)
                hit = table[rid] = {"id": rid, "name": name, "inactiveFlag": False, "board": bref,
                                    "_info": {"lastUpdated": self.now()}}
            return hit

        sub = record(self.subtypes, "subtype", subtype)
        sub.setdefault("typeAssociationIds", [])
        if ty["id"] not in sub["typeAssociationIds"]:
            sub["typeAssociationIds"].append(ty["id"])
        aid = self.next_id("association", 900)
        row: dict[str, Any] = {"id": aid, "type": routes.ref(ty), "subType": routes.ref(sub), "board": bref}
        if item is not None:
            row["item"] = routes.ref(record(self.items, "item", item))
        self.associations[aid] = row
        self.touch()
        return aid

    def board_statuses(self, board_id: int) -> list[dict[str, Any]]:
        return [s for s in self.statuses.values() if s["board"]["id"] == board_id]

    def status_named(self, board_id: int, name: str) -> dict[str, Any]:
        return next(s for s in self.board_statuses(board_id) if s["name"] == name)

    # ------------------------------------------------------------ direct mutation (as the PSA / a customer)

    def add_kb_article(self, title: str, issue: str, resolution: str = "", **fields: Any) -> dict[str, Any]:
        """A knowledge-base article as a technician writes it in ConnectWise."""
        with self.lock:
            aid = self.next_id("kb")
            row = {"id": aid, "title": title, "issue": issue, "resolution": resolution, "dateCreated": self.now(),
                   "createdBy": "bob", "_info": {"lastUpdated": self.now()}, **fields}
            self.kb_articles[aid] = row
            self.touch()
            return row

    def add_ticket(self, summary: str = "Printer on fire", **fields: Any) -> dict[str, Any]:
        """Create a ticket directly; `fields` are CW JSON (e.g. company={"id": 250}, status={"name": "New"})."""
        with self.lock:
            body = {"summary": summary, "company": {"id": min(self.companies)}, **fields}
            return routes.create_ticket(self, body)

    def bulk_tickets(self, n: int, *, company_id: int | None = None, open_every: int = 1) -> None:
        """Add `n` tickets quickly (benchmarks); each gets its own lastUpdated second. With `open_every` k,
        only every k-th ticket is open (the board's default status), the others closed."""
        with self.lock:
            board = self.boards[min(self.boards)]
            status = next(s for s in self.board_statuses(board["id"]) if s["defaultFlag"])
            closed = next(s for s in self.board_statuses(board["id"]) if s["closedStatus"])
            company = self.companies[company_id or min(self.companies)]
            prio = self.priorities[min(self.priorities)]
            for i in range(n):
                tid = self.next_id("ticket", 1000)
                stamp = self.now()
                self.tickets[tid] = routes.ticket_record(self, tid, f"Bulk ticket {i}", board,
                                                         status if i % open_every == 0 else closed, company,
                                                         prio, stamp)
            self.touch()

    def add_configuration(self, name: str, *, serial: str = "", device_identifier: str = "",
                          company_id: int | None = None, ticket_id: int | None = None) -> dict[str, Any]:
        """A configuration (device) of a company as CW keeps it, attached to `ticket_id` when given."""
        with self.lock:
            cid = self.next_id("configuration", 300)
            company = self.companies[company_id or min(self.companies)]
            self.configurations[cid] = {
                "id": cid, "name": name, "type": {"id": 1, "name": "Managed Workstation"},
                "status": {"id": 1, "name": "Active"}, "company": {"id": company["id"],
                                                                   "identifier": company["identifier"],
                                                                   "name": company["name"]},
                "serialNumber": serial, "deviceIdentifier": device_identifier, "activeFlag": True,
                "_info": {"lastUpdated": self.now()}}
            if ticket_id is not None:
                self.ticket_configurations.setdefault(ticket_id, []).append(cid)
            self.touch()
            return self.configurations[cid]

    def edit_ticket(self, ticket_id: int, **changes: Any) -> dict[str, Any]:
        """Change a ticket as a technician in CW would (bumps lastUpdated)."""
        with self.lock:
            ops = [{"op": "replace", "path": k, "value": v} for k, v in changes.items()]
            return routes.patch_ticket(self, ticket_id, ops, updated_by="bob")

    def add_note(self, ticket_id: int, text: str, *, contact_id: int | None = None, internal: bool = False,
                 member_id: int | None = None) -> dict[str, Any]:
        """A note written in CW (by a member) or e-mailed in by a customer (`contact_id`)."""
        with self.lock:
            body: dict[str, Any] = {"text": text, "detailDescriptionFlag": not internal,
                                    "internalAnalysisFlag": internal, "processNotifications": False}
            if contact_id is not None:
                body["contact"] = {"id": contact_id}
                body["customerUpdatedFlag"] = True
            elif member_id is not None:
                body["member"] = {"id": member_id}
            return routes.create_note(self, ticket_id, body, direct=True)

    def delete_ticket(self, ticket_id: int) -> None:
        with self.lock:
            self.tickets.pop(ticket_id)
            self.touch()

    # ------------------------------------------------------------ faults

    def fail_next(self, status: int, times: int | None = 1, *, match: str | None = None,
                  retry_after: float | None = None, after: int = 0) -> None:
        """Answer `status` to the next `times` requests matching `match` (after letting `after` through)."""
        self.faults.append(Fault("status", times, match, status=status, retry_after=retry_after, after=after))

    def lose_next_response(self, times: int | None = 1, *, match: str | None = None) -> None:
        self.faults.append(Fault("lose", times, match))

    def slow(self, seconds: float, times: int | None = None, *, match: str | None = None) -> None:
        self.faults.append(Fault("delay", times, match, seconds=seconds))

    def clear_faults(self) -> None:
        self.faults.clear()

    def change_codebase(self, codebase: str) -> None:
        self.codebase = codebase

    def revoke_auth(self) -> None:
        self.auth_revoked = True

    def restore_auth(self) -> None:
        self.auth_revoked = False

    # ------------------------------------------------------------ observation

    def count(self, key: str) -> int:
        """Requests seen for "METHOD /route" (e.g. "GET /service/tickets", "POST /system/documents")."""
        return self.counts[key]

    def reset_counts(self) -> None:
        self.counts.clear()
        self.requests.clear()

    def signed_callback(self, type_: str, action: str, record_id: int, *, key_id: int = 1,
                        key_url: str | None = None) -> tuple[dict[str, str], bytes]:
        """Headers and body of a callback POST as ConnectWise would send it, signed with key `key_id`."""
        record = self.tickets.get(record_id, {"id": record_id}) if type_ == "ticket" else {"id": record_id}
        payload = {
            "MessageId": str(uuid.uuid4()), "FromUrl": self.public_root, "CompanyId": self.company_id,
            "MemberId": "deskbridge-api", "Action": action, "Type": type_, "ID": record_id,
            "Entity": json.dumps(record),
            "Metadata": {"key_url": key_url or f"{self.public_root}/{self.codebase}apis/3.0/system/callbackkeys/"
                                              f"{key_id}"},
        }
        body = json.dumps(payload).encode()
        return {"content-type": "application/json", "x-content-signature": sign(self.signing_keys[key_id], body)}, body

    # ------------------------------------------------------------ dispatch

    def handle(self, req: FakeRequest) -> FakeResponse:
        """Answer one request (thread-safe); applies faults around the real handler."""
        with self.lock:
            route, handler, params = routes.match(self, req)
            key = f"{req.method} {route}"
            self.counts[key] += 1
            headers = {k: v for k, v in req.headers.items() if k != "authorization"}
            self.requests.append(RecordedRequest(req.method, route, req.path, dict(req.query), headers,
                                                 req.body if self.record_bodies else b""))
            lose, delay = False, 0.0
            for fault in list(self.faults):
                if fault.times == 0 or not fault.applies(key):
                    continue
                if fault.kind == "status":
                    fault.use()
                    hdrs = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                    code = {401: "Unauthorized", 403: "Forbidden", 429: "TooManyRequests", 500: "UnexpectedError", 503: "ServiceUnavailable"}.get(
                        fault.status, "Error")
                    return HttpError(fault.status, code, f"fake fault {fault.status}", headers=hdrs).response()
                if fault.kind == "lose":
                    fault.use()
                    lose = True
                elif fault.kind == "delay":
                    fault.use()
                    delay = max(delay, fault.seconds)
            self.faults = [f for f in self.faults if f.times != 0]
            try:
                resp = handler(self, req, **params)
            except HttpError as exc:
                resp = exc.response()
            resp.lose, resp.delay = lose, delay
            return resp


def sign(signing_key: str, body: bytes) -> str:
    """ConnectWise's callback signature: base64(HMAC-SHA256(key=SHA-256(signing_key), raw body))."""
    key = hashlib.sha256(signing_key.encode()).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


__all__ = ["FakeClock", "FakeConnectWise", "RecordedRequest", "iso", "sign", "CLOUD_SITE", "CLOUD_API_ROOT"]
