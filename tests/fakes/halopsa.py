"""A faithful fake HaloPSA tenant (reference/psa-apis.md §4, the vendor's OpenAPI), in memory, for tests.

Reach it two ways, with the same state:

    fake = FakeHalo()                          # hosted tenant "acme": acme.halopsa.com, seeded
    HaloAuth(..., transport=fake.transport())  # in-process httpx transport (answers for any host)
    with fake.serve() as root: ...             # real HTTP on 127.0.0.1; settings(root=root)

`fake.settings(root=None)`, `fake.credentials()`, `fake.config(root=None)` build connector input.

Auth: `GET /api/authinfo` (no auth; off with `authinfo=False` -> 404) answers `{auth_url}` (plus
`tenant_id` with `authinfo_tenant=True`). `POST {auth_path}/token` (default `/auth/token`) takes a
form-encoded client_credentials grant; hosted tenants need `?tenant=<name>` (else `invalid_client`);
errors are OAuth-shaped 400s. Tokens live `token_lifetime` seconds of the fake clock; with
`single_token=True` (default) a new token invalidates the older ones (djpsa). Every other `/api/*` call
needs `Authorization: Bearer` (401, empty body, `WWW-Authenticate`, otherwise).

Endpoints (under /api, case-insensitive; POSTs take JSON arrays, answer one object for one item):
    GET Tickets (named filters, pageinate/page_size≤100/page_no, last page repeats past the end)
    GET|DELETE Tickets/{id}   POST Tickets (no id = create, id = update; `_validate_only`,
        `_dont_fire_automations`/`dont_do_rules`, `sendack`; answers say `lastupdate`, GET says `last_update`)
    GET Actions (ticket_id, excludesys, excludeprivate, agentonly, conversationonly, timeentriesonly,
        importantonly, startdate/enddate, includehtmlnote, count; newest first)  GET Actions/{id}?ticket_id=
    POST Actions (outcome/outcome_id must be one the API agent may use, else the bare string "You do not
        have access to this Action at the moment"; omitted `hiddenfromuser`/`sendemail` come from the
        outcome's defaults; `sendemail` mails `emailto` or the ticket's user, hidden or not)
    GET|POST Attachment (data URI required; > max_attachment_bytes -> 413)  GET|DELETE Attachment/{id}
        (binary, or JSON with includedetails=true)   GET|POST TimesheetEvent (logs a time action)
    GET Client[/{id}], Users[/{id}] (paged like tickets), Agent (bare array; Unassigned id 1 and API agents
        only on request), Agent/me, Agent/{id}, Team, Status (ticket and non-ticket statuses;
        tickettype_id, excludeclosed), Priority (Policy rows per SLA; slaid), TicketType[/{id}] (details:
        fields with technew=2 mandatory, allowed_status), Outcome, Category[/{id}] (a bare array of
        CategoryDetail; `type_id` = which of category_1..4, nesting written as "Hardware>Laptop" in `value`),
        KBArticle (paged under `articles`; includeactive/includeinactive, search, client_id, order/orderdesc),
        KBArticle/{id} (the full KBEntry with `kbentryclientaccess`)
    GET|POST Webhook, GET|DELETE Webhook/{guid}, POST Notification
Error bodies use Halo's many shapes: .NET `{ClassName, Message}` (validation, 404s, faults), bare JSON
strings, ASP.NET problem details for values that do not bind, OAuth errors on the token endpoint, plain
text for 429 and 413.

Test API:
    fake.clock (HaloClock: now, stamp(), advance(s), set(dt), epoch())
    fake.add_category(value, type_id=1) (a category as an admin adds it; the ticket's category_N is its value),
    fake.add_kb_article(name, description, resolution=None, clients=(), inactive=False),
    fake.add_ticket(summary, **halo_fields), fake.edit_ticket(id, **halo_fields), fake.delete_ticket(id),
    fake.bulk_tickets(n), fake.add_reply(ticket_id, text, user_id=…) (an end-user e-mail reply),
    fake.add_note(ticket_id, text, agent_id=…, hidden=…)                    mutate as Halo/people would
    fake.fail_next(status, times=1, match="POST /api/Actions", retry_after=7)
    fake.lose_next_response(times=1, match="WRITE")   apply the write, then time out / drop the connection
    fake.slow(seconds, times=None, match=…)           answer late (ReadTimeout past the client's timeout)
    fake.rate_limit = (300, 300.0)                     requests per rolling window (token calls count);
        429 plain text, `Retry-After` unless fake.retry_after_header = False
    fake.expire_tokens(), fake.revoke_tokens(), fake.clear_faults(), fake.authinfo_url = "https://…"
    fake.requests (RecordedRequest: route, query as sent, body; secrets redacted), fake.count("GET
    /api/Tickets"), fake.reset_counts(), fake.emails, fake.automations, fake.token_history/tokens_issued
    fake.deliveries (webhook POSTs Halo would send: notifications with eventno 3 = new ticket [unverified],
    61 = ticket updated, signed as `signed_delivery(webhook_id, ticket_id)` does)
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from connectors.base import ConnectionConfig
from tests.fakes import halopsa_actions, halopsa_kb, halopsa_lookups, halopsa_tickets  # noqa: F401 - routes
from tests.fakes import halopsa_routes as routes
from tests.fakes.halopsa_http import (
    FakeRequest,
    FakeResponse,
    FakeTransport,
    Fault,
    HaloClock,
    HaloHttpError,
    RecordedRequest,
    exception_error,
    halo_date,
    serve_loopback,
)
from tests.fakes.halopsa_rules import HaloRules
from tests.fakes.halopsa_seed import seed

RATE_LIMIT_TEXT = "Rate Limit Reached – 300 Requests per rolling 5 minute window"
FAULT_BODIES: dict[int, HaloHttpError] = {
    400: HaloHttpError(400, "The request is invalid."),
    401: HaloHttpError(401, headers={"www-authenticate": 'Bearer error="invalid_token"'}),
    403: HaloHttpError(403, "Access denied."),
    500: exception_error(500, "Object reference not set to an instance of an object.",
                         "System.NullReferenceException"),
    502: HaloHttpError(502, text="<html><body>502 Bad Gateway</body></html>"),
    503: HaloHttpError(503, text="Service Unavailable"),
}


class FakeHalo(HaloRules):
    """One fake Halo tenant: state, tenant rules, faults, and the request dispatcher."""
    def __init__(self, *, tenant: str = "acme", hosted: bool = True, client_id: str = "deskbridge-client-id",
                 client_secret: str = "halo-secret-0123456789abcdef", auth_path: str = "/auth",
                 authinfo: bool = True, authinfo_tenant: bool = False, token_lifetime: float = 3600,
                 single_token: bool = True, clock: HaloClock | None = None, seed_data: bool = True) -> None:
        self.tenant, self.hosted = tenant, hosted
        self.client_id, self.client_secret = client_id, client_secret
        self.auth_path = "/" + auth_path.strip("/")
        self.authinfo_enabled, self.authinfo_tenant = authinfo, authinfo_tenant
        self.token_lifetime, self.single_token = token_lifetime, single_token
        self.public_root = f"https://{tenant}.halopsa.com" if hosted else "https://halo.msp.example"
        self.clock = clock or HaloClock()
        self.lock = threading.RLock()
        self.rate_limit: tuple[int, float] | None = None
        self.retry_after_header = True
        self.max_attachment_bytes = 20 * 1024 * 1024
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.counts: Counter[str] = Counter()
        self.emails: list[dict[str, Any]] = []
        self.automations: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.tokens: dict[str, datetime] = {}  # token -> expiry
        self.token_history: list[str] = []  # every token issued, oldest first
        self.authinfo_url: str | None = None  # what authinfo names instead of {root}{auth_path}
        self._hits: deque[datetime] = deque()
        self._ids: Counter[str] = Counter()
        self.clients: dict[int, dict[str, Any]] = {}
        self.sites: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.agents: dict[int, dict[str, Any]] = {}
        self.teams: dict[int, dict[str, Any]] = {}
        self.statuses: dict[int, dict[str, Any]] = {}
        self.slas: dict[int, dict[str, Any]] = {}
        self.policies: list[dict[str, Any]] = []
        self.ticket_types: dict[int, dict[str, Any]] = {}
        self.outcomes: dict[int, dict[str, Any]] = {}
        self.custom_fields: dict[int, dict[str, Any]] = {}
        self.categories: dict[int, dict[str, Any]] = {}
        self.kb: dict[int, dict[str, Any]] = {}  # KBEntry rows  # CategoryDetail rows (id, value, type_id, ...)
        self.tickets: dict[int, dict[str, Any]] = {}
        self.assets: dict[int, dict[str, Any]] = {}  # Device_List rows (id, key_field, intune_id, client_id, ...)
        self.actions: dict[int, dict[int, dict[str, Any]]] = {}
        self.attachments: dict[int, dict[str, Any]] = {}
        self.attachment_content: dict[int, bytes] = {}
        self.timesheet_events: dict[int, dict[str, Any]] = {}
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.notifications: dict[int, dict[str, Any]] = {}
        self.api_agent_id = 2
        self.api_outcomes: set[int] = set()
        self.default_ticket_type = 1
        self.system_outcome_id = self.time_outcome_id = self.reply_outcome_id = 0
        if seed_data:
            seed(self)

    # ------------------------------------------------------------ connector wiring

    def settings(self, root: str | None = None, **extra: Any) -> dict[str, Any]:
        """Connector settings (`url`; hosted tenants are found from the host or authinfo)."""
        return {"url": root or self.public_root, **extra}

    def credentials(self, **override: str) -> dict[str, str]:
        """The API application's client id and secret (with overrides)."""
        return {"client_id": self.client_id, "client_secret": self.client_secret, **override}

    def config(self, root: str | None = None, *, connection_id: int = 1, workspace_id: int = 1,
               **extra: Any) -> ConnectionConfig:
        """A ConnectionConfig for this tenant."""
        return ConnectionConfig(connection_id=connection_id, workspace_id=workspace_id, kind="halopsa",
                                settings=self.settings(root, **extra), credentials=self.credentials())

    def transport(self) -> httpx.AsyncBaseTransport:
        """An in-process httpx transport answering from this fake."""
        return FakeTransport(self)

    @contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        """Serve on loopback in a thread; yields the root URL to pass to `settings(root=...)`."""
        with serve_loopback(self, port) as root:
            yield root

    # ------------------------------------------------------------ tokens

    def issue_token(self, scope: str) -> str:
        """Mint a bearer token (invalidating older ones when single_token)."""
        if self.single_token:
            self.tokens.clear()  # a new token invalidates the older ones
        token = secrets.token_urlsafe(32)
        self.tokens[token] = self.clock.now + timedelta(seconds=self.token_lifetime)
        self.token_history.append(token)
        return token

    @property
    def tokens_issued(self) -> int:
        """How many tokens the token endpoint has minted."""
        return len(self.token_history)

    def token_valid(self, token: str) -> bool:
        """Whether `token` is current and unexpired."""
        expiry = self.tokens.get(token)
        return expiry is not None and self.clock.now < expiry

    def expire_tokens(self) -> None:
        """Make every current token expire now."""
        self.tokens = dict.fromkeys(self.tokens, self.clock.now)

    def revoke_tokens(self) -> None:
        """Invalidate every token (as a newer token minted elsewhere would)."""
        self.tokens.clear()

    # ------------------------------------------------------------ direct mutation (as Halo / people would)

    def _post(self, path: str, items: list[dict[str, Any]]) -> Any:
        req = FakeRequest("POST", path, {}, [], {"content-type": "application/json"},
                          json.dumps(items).encode(), path)
        handler = routes.match(self, req)[1]
        with self.lock:
            try:
                resp = handler(self, req)
            except HaloHttpError as exc:
                raise AssertionError(f"fake rejected test data: {exc.response().body!r}") from None
        return json.loads(resp.body) if resp.body else None

    def add_category(self, value: str, *, type_id: int = 1, **fields: Any) -> dict[str, Any]:
        """A category of field `category_<type_id>`, as an admin adds it in Halo ("Hardware>Laptop" nests)."""
        with self.lock:
            cid = max(self.categories, default=0) + 1
            row = {"id": cid, "guid": f"00000000-0000-0000-0000-{cid:012d}", "value": value, "type_id": type_id,
                   "category_name": value, "sla_id": None, "priority_id": None, **fields}
            self.categories[cid] = row
            return row

    def add_kb_article(self, name: str, description: str, *, resolution: str | None = None,
                       clients: tuple[int, ...] = (), inactive: bool = False, html: bool = True) -> dict[str, Any]:
        """A knowledge-base article; `clients` limits it to those clients (kbentryclientaccess)."""
        with self.lock:
            kid = max(self.kb, default=0) + 1
            text = {"description_html": description, "resolution_html": resolution} if html else {
                "description": description, "resolution": resolution}
            row = {"id": kid, "name": name, "inactive": inactive, "date_created": halo_date(self.clock.now),
                   "date_edited": halo_date(self.clock.stamp()), "view_count": 0, "type": 0, "tag_string": "",
                   "description": None, "resolution": None, **text,
                   "kbentryclientaccess": [{"id": kid * 100 + c, "kb_id": kid, "client_id": c,
                                            "client_name": self.clients.get(c, {}).get("name", "Stranger Ltd")}
                                           for c in clients]}
            self.kb[kid] = row
            return row

    def add_ticket(self, summary: str = "Printer on fire", **fields: Any) -> dict[str, Any]:
        """Create a ticket directly (`fields` are Halo JSON, e.g. client_id=12, status_id=2)."""
        return self.tickets[self._post("/api/Tickets", [{"summary": summary, **fields}])["id"]]

    def add_asset(self, client_id: int, key_field: str, *, intune_id: str | None = None,
                  ticket_id: int | None = None) -> int:
        """An asset of a client (as Halo's asset list shows it), optionally linked to a ticket (`Faults.assets`)."""
        with self.lock:
            asset_id = 2000 + len(self.assets) + 1
            self.assets[asset_id] = {"id": asset_id, "inventory_number": f"INV-{asset_id}", "key_field": key_field,
                                     "client_id": client_id, "client_name": self.clients.get(client_id, {}).get("name"),
                                     "intune_id": intune_id, "assettype_name": "Laptop", "inactive": False}
            if ticket_id is not None:
                self.tickets[ticket_id].setdefault("_assets", []).append(asset_id)
            return asset_id

    def edit_ticket(self, ticket_id: int, **fields: Any) -> dict[str, Any]:
        """Change a ticket as an agent in Halo would (bumps last_update)."""
        self._post("/api/Tickets", [{"id": ticket_id, **fields}])
        return self.tickets[ticket_id]

    def delete_ticket(self, ticket_id: int) -> None:
        """Delete a ticket as an agent would (it keeps answering with deleted=true)."""
        with self.lock:
            self.tickets[ticket_id]["deleted"] = True

    def bulk_tickets(self, n: int, *, client_id: int = 12) -> list[int]:
        """Add `n` tickets quickly; each gets its own last_update."""
        return [self.add_ticket(f"Bulk ticket {i}", client_id=client_id)["id"] for i in range(n)]

    def add_reply(self, ticket_id: int, text: str, *, user_id: int | None = None) -> dict[str, Any]:
        """An end user's e-mail reply arriving on a ticket."""
        with self.lock:
            t = self.tickets[ticket_id]
            return self.log_action(t, note=text, outcome_id=self.reply_outcome_id,
                                   user_id=user_id or t.get("user_id") or 0)

    def add_note(self, ticket_id: int, text: str, *, agent_id: int = 3, hidden: bool = True,
                 timetaken: float = 0.0) -> dict[str, Any]:
        """A note (or time) an agent writes in Halo."""
        with self.lock:
            return self.log_action(self.tickets[ticket_id], note=text, outcome_id=7 if hidden else 6,
                                   agent_id=agent_id, hidden=hidden, timetaken=timetaken)

    # ------------------------------------------------------------ faults and observation

    def fail_next(self, status: int, times: int | None = 1, *, match: str | None = None,
                  retry_after: float | None = None) -> None:
        """Answer the next matching request(s) with this status and Halo's body for it."""
        self.faults.append(Fault("status", times, match, status=status, retry_after=retry_after))

    def lose_next_response(self, times: int | None = 1, *, match: str | None = "WRITE") -> None:
        """Apply the next matching write(s), then lose the answer."""
        self.faults.append(Fault("lose", times, match))

    def slow(self, seconds: float, times: int | None = None, *, match: str | None = None) -> None:
        """Answer matching requests `seconds` late."""
        self.faults.append(Fault("delay", times, match, seconds=seconds))

    def clear_faults(self) -> None:
        """Remove every pending fault."""
        self.faults.clear()

    def count(self, key: str) -> int:
        """Requests seen for "METHOD /route" (e.g. "GET /api/Tickets", "POST /auth/token")."""
        return self.counts[key]

    def reset_counts(self) -> None:
        """Forget recorded requests and counts."""
        self.counts.clear()
        self.requests.clear()

    def _rate_limited(self) -> FakeResponse | None:
        if self.rate_limit is None:
            return None
        limit, window = self.rate_limit
        now = self.clock.now
        while self._hits and (now - self._hits[0]).total_seconds() >= window:
            self._hits.popleft()
        if len(self._hits) >= limit:
            wait = max(1, int(window - (now - self._hits[0]).total_seconds()))
            headers = {"retry-after": str(wait)} if self.retry_after_header else {}
            return HaloHttpError(429, text=RATE_LIMIT_TEXT, headers=headers).response()
        self._hits.append(now)
        return None

    def _record(self, req: FakeRequest, route: str) -> RecordedRequest:
        body = req.body
        if route.endswith("/token") and body:
            form = [(k, "[redacted]" if k == "client_secret" else v) for k, v in parse_qsl(body.decode())]
            body = urlencode(form).encode()
        headers = {k: v for k, v in req.headers.items() if k != "authorization"}
        return RecordedRequest(req.method, route, req.path, list(req.raw_query), headers, body)

    def handle(self, req: FakeRequest) -> FakeResponse:
        """Answer one request (thread-safe): rate limit, faults, auth, then the handler."""
        with self.lock:
            route, handler, params, needs_auth = routes.match(self, req)
            key = f"{req.method} {route}"
            self.counts[key] += 1
            record = self._record(req, route)
            self.requests.append(record)
            resp = self._rate_limited()
            lose, delay = False, 0.0
            for fault in [] if resp is not None else list(self.faults):
                if fault.times == 0 or not fault.applies(key):
                    continue
                fault.use()
                if fault.kind == "status":
                    err = FAULT_BODIES.get(fault.status, HaloHttpError(fault.status, f"HTTP {fault.status}"))
                    headers = dict(err.headers)
                    if fault.retry_after is not None:
                        headers["retry-after"] = f"{fault.retry_after:g}"
                    text = RATE_LIMIT_TEXT if fault.status == 429 else err.text
                    resp = HaloHttpError(fault.status, err.body, text=text, headers=headers).response()
                    break
                lose = lose or fault.kind == "lose"
                delay = max(delay, fault.seconds)
            self.faults = [f for f in self.faults if f.times != 0]
            if resp is None:
                try:
                    if needs_auth:
                        routes.authenticate(self, req)
                    resp = handler(self, req, **params)
                except HaloHttpError as exc:
                    resp = exc.response()
            record.status = resp.status
            resp.lose, resp.delay = lose, delay
            return resp


__all__ = ["FakeHalo", "HaloClock", "RecordedRequest", "RATE_LIMIT_TEXT"]
