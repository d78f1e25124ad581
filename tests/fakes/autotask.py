"""A faithful fake Datto Autotask REST API (reference/psa-apis.md §3, §6), in memory, for tests and benchmarks.

Reach it two ways, with the same state:

    fake = FakeAutotask()                        # seeded: the MSP (company 0), 3 customers, contacts, resources
    client = AtClient(creds, transport=fake.transport())           # in-process httpx transport
    with fake.serve() as root:                   # real HTTP on 127.0.0.1 (benchmarks, multi-process tests)
        client = AtClient(creds, discovery_url=fake.discovery_url(root))

Zones: zone discovery is `GET https://webservices.autotask.net/atservicesrest/v1.0/zoneInformation?user=...`
(no credentials; 500 for a blank or unknown user) answering `{zoneName, url, webUrl, ci}` with
`url = https://webservices{N}.autotask.net/ATServicesRest/`. On loopback the zone is a path prefix:
`{root}/webservices{N}/ATServicesRest/`. Calls to any other zone answer 401 (`fake.move_zone(n)`).

Every API call below `…/v1.0/` needs the headers ApiIntegrationCode, UserName, Secret (401 otherwise; an
unknown user name or integration code answers 500, as reported); writes may carry ImpersonationResourceId.

    POST {Entity}/query[/count]   GET {Entity}/query[/count]?search=  (404 past 2048 URL characters)
    POST {Entity}/query/next?paging=…  (same body required; GET answers 405)
    GET  {Entity}/{id} -> {"item": …|null}   GET {Entity}/entityInformation[/fields|/userDefinedFields]
    POST|PATCH Tickets, TimeEntries, Companies   PATCH Resources   DELETE TimeEntries/{id}
    GET|POST|PATCH Tickets/{id}/Notes  GET Tickets/{id}/Notes/{id}   (POST /TicketNotes answers 404)
    GET|POST Tickets/{id}/Attachments  GET|DELETE Tickets/{id}/Attachments/{id} (GET answers {"items": [..data]})
    GET|POST|PATCH Companies/{id}/Contacts   GET ThresholdInformation
    entities: Tickets TicketNotes TimeEntries TicketAttachments Companies Contacts Resources
              ResourceServiceDeskRoles DeletedTicketLogs ConfigurationItems (query filters: tests/fakes/autotask_query.py)

Request budget: `threshold` requests per `threshold_minutes` (10,000 per 60) over a rolling window on the
fake clock, shared with "other integrations" (`use_budget(n)`). From 50% every answer is delayed
`latency[0]` seconds, from 75% `latency[1]` (0.5 s / 1 s, scaled by `latency_scale`); past 100% calls
answer 429 with Retry-After (seconds until the oldest counted call leaves the window) [unverified status].
`thread_limit` (3) concurrent calls per endpoint and integration code; the next answers 429 Itgenatr005.

Test API:
    fake.clock                          FakeClock(`advance`, `set`); every change is stamped with clock()
    fake.add_company/add_contact/add_resource/add_ticket/add_note/edit_ticket/delete_ticket/bulk_tickets
    fake.fail_next(status, times=1, match="POST /Tickets", retry_after=7, message=None)   fake.lose_next_response(match=…)
    fake.slow(seconds, times=None, match=…)   fake.clear_faults()   fake.deny(match)  (permission 500s)
    fake.move_zone(n)  fake.revoke_auth()/restore_auth()  fake.lock_timesheet(resource_id, through=date)
    fake.read_lag = n                   new records stay invisible to the next n requests (replication lag)
    fake.requests / count("POST /Tickets/query") / reset_counts()   fake.ignored_fields   fake.added_latency
    fake.picklists / fake.udfs          the tenant's picklists and UDF definitions (replaceable)
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date
from email.utils import format_datetime
from typing import Any

import httpx

from tests.fakes import autotask_children as children
from tests.fakes import autotask_hooks as hooks
from tests.fakes import autotask_routes as routes
from tests.fakes import autotask_writes as writes
from tests.fakes.autotask_http import (
    AtError,
    FakeRequest,
    FakeResponse,
    FakeTransport,
    Fault,
    RecordedRequest,
    rejected,
    serve_loopback,
)
from tests.fakes.autotask_limits import FakeClock, LimitsMixin
from tests.fakes.autotask_schema import SPECS, fmt, seed_picklists, seed_udfs

DISCOVERY_URL = "https://webservices.autotask.net/atservicesrest/v1.0/zoneInformation"


class FakeAutotask(LimitsMixin):
    def __init__(self, *, username: str = "deskbridge-api@msp.example", secret: str = "s3cr3t-AT-key",
                 integration_code: str = "DESKBRIDGE27CHARTRACKINGID1", zone: int = 2,
                 clock: FakeClock | None = None, seed: bool = True) -> None:
        self.username, self.secret, self.integration_code = username, secret, integration_code
        self.zone, self.ci = zone, 424242
        self.clock = clock or FakeClock()
        self.loopback_root: str | None = None
        self.lock = threading.RLock()
        self.auth_revoked, self.auth_quirks = False, True
        self.read_lag = 0
        self._init_limits()
        self.note_title_required = False
        self.notes_move_tracked_modification = False  # [unverified] on a live tenant (reference §9)
        self.faults: list[Fault] = []
        self.denied: list[str] = []
        self.requests: list[RecordedRequest] = []
        self.counts: Counter[str] = Counter()
        self.ignored_fields: list[tuple[str, str, str]] = []
        self.locked_timesheets: dict[int, date] = {}
        self.picklists = seed_picklists()
        self.udfs = seed_udfs()
        self.tables: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in SPECS}
        self.webhooks: dict[str, dict[int, dict[str, Any]]] = {"TicketWebhooks": {}, "TicketNoteWebhooks": {}}
        self.deliveries: list[tuple[str, dict[str, str], bytes]] = []  # callouts made (tests/fakes/autotask_hooks.py)
        self.next_hook_id, self.hook_sequence = 100, 0
        self.created_at_seq: dict[tuple[str, int], int] = {}
        self.seq = 0
        self.acting = 0
        self._ids: dict[str, int] = {"Tickets": 7000, "TicketNotes": 31000, "TimeEntries": 52000,
                                     "TicketAttachments": 900, "Companies": 173, "Contacts": 30682800,
                                     "Resources": 29682884, "ResourceServiceDeskRoles": 400,
                                     "DeletedTicketLogs": 10, "ConfigurationItems": 29683300}
        self.api_resource_id = 0
        self.tech_id: int | None = None  # the technician direct mutations act as
        if seed:
            self.seed()

    # ------------------------------------------------------------ wiring

    def discovery_url(self, root: str | None = None) -> str:
        """The zoneInformation URL a client should use (in-process default, or the loopback root)."""
        return f"{root}/atservicesrest/v1.0/zoneInformation" if root else DISCOVERY_URL

    def settings(self, root: str | None = None, **extra: Any) -> dict[str, Any]:
        """Non-secret connection settings for this tenant."""
        base: dict[str, Any] = {"username": self.username}
        if root:
            base["zone_lookup_url"] = self.discovery_url(root)
        return {**base, **extra}

    def credentials(self) -> dict[str, str]:
        return {"secret": self.secret, "integration_code": self.integration_code}

    def transport(self) -> httpx.AsyncBaseTransport:
        return FakeTransport(self)

    @contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        """Serve on loopback in a thread; yields the root URL."""
        with serve_loopback(self, port) as root:
            yield root

    # ------------------------------------------------------------ storage

    def stamp(self) -> str:
        return fmt(self.clock())

    def blank(self, entity: str) -> dict[str, Any]:
        spec = SPECS[entity]
        return {name: ([] if kind == "u" else None) for name, kind in spec.fields.items()}

    def insert(self, entity: str, record: dict[str, Any]) -> int:
        self._ids[entity] += 1
        rid = self._ids[entity]
        record["id"] = rid
        self.tables[entity][rid] = record
        self.created_at_seq[(entity, rid)] = self.seq
        return rid

    def _visible(self, entity: str, rid: int) -> bool:
        return self.seq > self.created_at_seq.get((entity, rid), -1) + self.read_lag or not self.read_lag

    def visible(self, entity: str) -> list[dict[str, Any]]:
        return [r for rid, r in self.tables[entity].items() if self._visible(entity, rid)]

    def visible_record(self, entity: str, rid: int) -> dict[str, Any] | None:
        record = self.tables[entity].get(rid)
        return record if record is not None and self._visible(entity, rid) else None

    def udf_names(self, entity: str) -> list[str]:
        return [u.name for u in self.udfs.get(entity, [])]

    def prefix_of(self, req: FakeRequest) -> str:
        return routes.locate(req)[2]

    def publish_to_all(self, entity: str) -> int | None:
        """The `publish` value this tenant shows to everyone, customers included ("All Autotask Users")."""
        return next((p.value for p in self.picklists[entity]["publish"] if p.label.startswith("All ")), None)

    def pick(self, entity: str, field: str, label: str) -> int:
        """The picklist value with this label (for tests)."""
        return next(p.value for p in self.picklists[entity][field] if p.label == label)

    # ------------------------------------------------------------ seed and direct mutation

    def seed(self) -> None:
        with self.lock:
            self.api_resource_id = self.add_resource("Deskbridge", "API", self.username, user_type=17)
            bob = self.tech_id = self.add_resource("Bob", "Tech", "bob@msp.example")
            ana = self.add_resource("Ana", "Lead", "ana@msp.example")
            self.add_resource("Old", "Timer", "old@msp.example", active=False)
            for resource, role, default in ((self.api_resource_id, 29683461, True), (bob, 29683461, True),
                                            (ana, 29683461, True), (ana, 29683462, False)):
                self.insert("ResourceServiceDeskRoles", {"resourceID": resource, "roleID": role,
                                                         "isDefault": default, "isActive": True})
            self.acting = self.api_resource_id
            own = self.add_company("Deskbridge Test MSP", number="MSP")
            self.tables["Companies"][0] = self.tables["Companies"].pop(own) | {"id": 0}  # company 0 is the MSP
            for name, number in (("Acme Corp", "ACME"), ("Globex", "GLOBEX"), ("Initech", "INITECH")):
                cid = self.add_company(name, number=number)
                self.add_contact(cid, "Pat", f"User-{number.title()}", f"pat@{number.lower()}.example")

    def add_resource(self, first: str, last: str, email: str, *, active: bool = True, user_type: int = 1) -> int:
        with self.lock:
            return self.insert("Resources", self.blank("Resources") | {
                "firstName": first, "lastName": last, "email": email, "userName": email.split("@")[0],
                "isActive": active, "userType": user_type, "licenseType": 1, "resourceType": "Employee"})

    def add_company(self, name: str, *, number: str | None = None, active: bool = True) -> int:
        with self.lock:
            now = self.stamp()
            return self.insert("Companies", self.blank("Companies") | {
                "companyName": name, "companyNumber": number, "companyType": 1, "isActive": active,
                "phone": "555-0100", "ownerResourceID": self.api_resource_id, "createDate": now,
                "lastActivityDate": now, "lastTrackedModifiedDateTime": now,
                "userDefinedFields": [{"name": u.name, "value": None} for u in self.udfs["Companies"]]})

    def add_contact(self, company_id: int, first: str, last: str, email: str, *, active: bool = True) -> int:
        with self.lock:
            now = self.stamp()
            return self.insert("Contacts", self.blank("Contacts") | {
                "companyID": company_id, "firstName": first, "lastName": last, "emailAddress": email,
                "isActive": 1 if active else 0, "createDate": now, "lastActivityDate": now,
                "lastModifiedDate": now})

    def add_configuration_item(self, company_id: int, title: str, *, serial: str = "", hostname: str = "") -> int:
        """A device of a company as Autotask's configuration items hold it (read-only here, as for Deskbridge)."""
        with self.lock:
            now = self.stamp()
            return self.insert("ConfigurationItems", self.blank("ConfigurationItems") | {
                "companyID": company_id, "referenceTitle": title, "serialNumber": serial or None,
                "rmmDeviceAuditHostname": hostname or None, "isActive": True, "configurationItemType": 1,
                "createDate": now, "lastModifiedTime": now})

    def add_ticket(self, title: str = "Printer on fire", **fields: Any) -> dict[str, Any]:
        """Create a ticket as a technician would in the UI; `fields` are Autotask JSON names."""
        with self.lock:
            self._as_tech(fields.pop("_resource", None))
            data = {"companyID": min(c for c in self.tables["Companies"] if c), "status": 1, "priority": 2,
                    "title": title, **fields}
            return self.tables["Tickets"][writes.create_ticket(self, data)]

    def _as_tech(self, resource_id: int | None) -> None:
        self.acting = resource_id or self.tech_id or self.api_resource_id

    def bulk_tickets(self, n: int, **fields: Any) -> list[int]:
        """Add `n` tickets quickly (each gets its own stamp from the clock)."""
        return [self.add_ticket(f"Bulk ticket {i}", **fields)["id"] for i in range(n)]

    def edit_ticket(self, ticket_id: int, **changes: Any) -> dict[str, Any]:
        """Change a ticket as a technician would (moves lastTrackedModificationDateTime and lastActivityDate)."""
        with self.lock:
            self._as_tech(changes.pop("_resource", None))
            record = self.tables["Tickets"][ticket_id]
            writes.update_ticket(self, record, dict(changes))
            return record

    def add_note(self, ticket_id: int, text: str, *, title: str = "", publish: int = 1, note_type: int = 2,
                 contact_id: int | None = None) -> dict[str, Any]:
        """A note written in Autotask (or by a customer, with `contact_id`)."""
        with self.lock:
            self._as_tech(None)
            data = {"description": text, "title": title or None, "publish": publish, "noteType": note_type,
                    "createdByContactID": contact_id}
            return self.tables["TicketNotes"][children.create_note(self, ticket_id, data)]

    def delete_ticket(self, ticket_id: int) -> None:
        """Delete a ticket (and log it in DeletedTicketLogs, as Autotask does)."""
        with self.lock:
            t = self.tables["Tickets"].pop(ticket_id)
            hooks.emit(self, "Tickets", "Delete", t)
            self.insert("DeletedTicketLogs", {"ticketID": ticket_id, "ticketNumber": t["ticketNumber"],
                                              "ticketTitle": t["title"], "deletedByResourceID": self.acting,
                                              "deletedDateTime": self.stamp()})

    # ------------------------------------------------------------ faults and tenant state

    def fail_next(self, status: int, times: int | None = 1, *, match: str | None = None,
                  retry_after: float | None = None, message: str | None = None) -> None:
        """The next matching request(s) answer `status`; with `message`, in Autotask's `{"errors": [...]}`."""
        self.faults.append(Fault("status", times, match, status=status, retry_after=retry_after, message=message))

    def lose_next_response(self, times: int | None = 1, *, match: str | None = "WRITE") -> None:
        self.faults.append(Fault("lose", times, match))

    def slow(self, seconds: float, times: int | None = None, *, match: str | None = None) -> None:
        self.faults.append(Fault("delay", times, match, seconds=seconds))

    def clear_faults(self) -> None:
        self.faults.clear()
        self.denied.clear()

    def deny(self, match: str) -> None:
        """Requests whose "METHOD /Route" starts with `match` answer Autotask's permission 500."""
        self.denied.append(match)

    def move_zone(self, zone: int) -> None:
        self.zone = zone

    def revoke_auth(self) -> None:
        self.auth_revoked = True

    def restore_auth(self) -> None:
        self.auth_revoked = False

    def lock_timesheet(self, resource_id: int, through: date) -> None:
        self.locked_timesheets[resource_id] = through

    # ------------------------------------------------------------ observation

    def count(self, key: str) -> int:
        """Requests seen for "METHOD /Route" (e.g. "POST /Tickets/query"), letter case ignored."""
        return sum(n for k, n in self.counts.items() if k.lower() == key.lower())

    def reset_counts(self) -> None:
        self.counts.clear()
        self.requests.clear()
        self.added_latency.clear()

    # ------------------------------------------------------------ dispatch

    def handle(self, req: FakeRequest) -> FakeResponse:
        """Answer one request (thread-safe): faults, auth, budget, thread limit, then the handler."""
        with self.lock:
            self.seq += 1
            zone, rest, _ = routes.locate(req)
            route = routes.match(req, rest) if rest is not None else routes._missing(req.path)
            key = f"{req.method} {route.template}"
            self.counts[key] += 1
            headers = {k: ("***" if k == "secret" else v) for k, v in req.headers.items()}
            self.requests.append(RecordedRequest(req.method, route.template, req.path, dict(req.query), headers,
                                                 req.body, zone))
            lose, delay, release = False, 0.0, None
            try:
                for fault in list(self.faults):
                    if fault.times == 0 or not fault.applies(key, route.write):
                        continue
                    fault.use()
                    if fault.kind == "status":
                        hdrs = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                        shape = "message" if fault.status in (401, 500) and not fault.message else "errors"
                        text = fault.message or {401: "Authorization has been denied for this request.",
                                                 500: "An error has occurred."}.get(fault.status,
                                                                                     f"fake fault {fault.status}")
                        raise AtError(fault.status, text, headers=hdrs, shape=shape)
                    if fault.kind == "lose":
                        lose = True
                    else:
                        delay = max(delay, fault.seconds)
                self.faults = [f for f in self.faults if f.times != 0]
                if route.authenticated:
                    self.acting = routes.authenticate(self, req, zone, route.write)
                    latency = self._spend()
                    self.added_latency.append(latency)
                    delay += latency
                    release = self._enter(route.entity or "?")
                    if any(key.lower().startswith(d.lower()) for d in self.denied):
                        raise rejected("The logged in Resource does not have the adequate permissions to "
                                       "perform this action on this entity type.")
                resp = route.handler(self, req, **route.params)
            except AtError as exc:
                resp = exc.response()
            resp.lose, resp.delay, resp.release = lose, delay, release
            resp.headers["date"] = format_datetime(self.clock.now.astimezone(UTC), usegmt=True)
            return resp


__all__ = ["DISCOVERY_URL", "FakeAutotask", "FakeClock", "RecordedRequest"]
