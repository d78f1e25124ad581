"""Every path, query parameter and body field name the HaloPSA client, queries and write bodies send exists in
the vendor's own OpenAPI description (../shared/specs/psa/halopsa-openapi.json, Sept 2024).

The spec is read as plain JSON (its C#-style type names make it invalid OpenAPI; specs/README.md). Only
names are checked: the spec is a list of names and shapes, not a promise about what a tenant does. The
token endpoint lives on the authorisation server, outside the spec; its OAuth form is checked by name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.base import NewAttachment, NewNote, NewTicket, NewTimeEntry, NoteVisibility, TicketPatch
from connectors.halopsa import queries
from connectors.halopsa.client import HaloClient
from connectors.halopsa.mapping_writes import (
    attachment_body,
    new_ticket_body,
    note_body,
    ticket_update_body,
    time_entry_body,
)
from tests.fakes.halopsa import FakeHalo
from tests.fakes.halopsa_http import RecordedRequest

SPEC = Path(os.environ.get("DESKBRIDGE_HALO_SPEC", "/work/shared/specs/psa/halopsa-openapi.json"))
OAUTH_FORM = {"grant_type", "client_id", "client_secret", "scope"}
WHEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Operation:
    params: set[str]
    body: set[str] | None  # properties of the array item the body takes (None: no body)
    nested: dict[str, set[str]] = field(default_factory=dict)  # array-of-object properties -> their fields


class Spec:
    """The names in Halo's OpenAPI: paths (case-insensitive), parameters, body item properties."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.schemas: dict[str, Any] = data["components"]["schemas"]
        self.ops: list[tuple[re.Pattern[str], str, str, Operation]] = []
        for path, methods in data["paths"].items():
            regex = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", re.escape(path).replace(r"\{", "{")
                                            .replace(r"\}", "}")) + "$", re.I)
            for method, op in methods.items():
                self.ops.append((regex, method.upper(), path, self._operation(op)))

    def _schema(self, ref_or_schema: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in ref_or_schema:
            return self.schemas[ref_or_schema["$ref"].rsplit("/", 1)[-1]]  # type: ignore[no-any-return]
        return ref_or_schema

    def _operation(self, op: dict[str, Any]) -> Operation:
        params = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
        content = op.get("requestBody", {}).get("content", {}).get("application/json")
        if not content:
            return Operation(params, None)
        schema = self._schema(content["schema"])
        item = self._schema(schema["items"]) if schema.get("type") == "array" else schema
        props = item.get("properties", {})
        nested = {}
        for name, prop in props.items():
            if prop.get("type") == "array" and "$ref" in prop.get("items", {}):
                nested[name] = set(self._schema(prop["items"]).get("properties", {}))
        return Operation(params, set(props), nested)

    def operation(self, method: str, api_path: str) -> tuple[str, Operation] | None:
        """The spec operation for `METHOD /Path/123` (the path without the `/api` server prefix)."""
        for regex, m, path, op in self.ops:
            if m == method and regex.match(api_path):
                return path, op
        return None

    def problems(self, method: str, path: str, query: list[tuple[str, str]], body: Any) -> list[str]:
        """Names in one request that the spec does not know."""
        if not path.lower().startswith("/api/"):
            return [f"{method} {path}: not under /api"]
        found = self.operation(method, path[4:])
        if found is None:
            return [f"{method} {path}: no such operation"]
        spec_path, op = found
        out = [f"{method} {spec_path}: query parameter {name!r}" for name, _ in query if name not in op.params]
        items = body if isinstance(body, list) else ([] if body is None else [body])
        if items and op.body is None:
            out.append(f"{method} {spec_path}: takes no JSON body")
        for item in items:
            for key, value in item.items():
                if op.body is not None and key not in op.body:
                    out.append(f"{method} {spec_path}: body field {key!r}")
                elif key in op.nested and isinstance(value, list):
                    out += [f"{method} {spec_path}: {key}[].{k!r}" for v in value for k in v if k not in op.nested[key]]
        return out


@pytest.fixture(scope="module")
def spec() -> Spec:
    if not SPEC.exists():
        pytest.skip(f"the vendor's OpenAPI file is not at {SPEC}")
    return Spec(json.loads(SPEC.read_text()))


def test_the_checker_catches_unknown_names(spec: Spec) -> None:
    assert spec.problems("GET", "/api/Tickets", [("page_size", "1"), ("pageinate", "true")], None) == []
    assert spec.problems("GET", "/api/tickets/12", [("includedetails", "true")], None) == []  # case-insensitive
    assert spec.problems("GET", "/api/Tickets", [("pagesize", "1")], None) == [
        "GET /Tickets: query parameter 'pagesize'"]
    assert spec.problems("POST", "/api/Actions", [], [{"ticket_id": 1, "hidden": True}]) == [
        "POST /Actions: body field 'hidden'"]
    assert spec.problems("POST", "/api/Tickets", [], [{"customfields": [{"id": 1, "val": "x"}]}]) == [
        "POST /Tickets: customfields[].'val'"]
    assert spec.problems("PATCH", "/api/Tickets/1", [], None) == ["PATCH /api/Tickets/1: no such operation"]


def _every_query() -> list[tuple[str, dict[str, Any]]]:
    """Each query builder with every option switched on."""
    return [
        ("Tickets", queries.tickets(updated_since=WHEN, updated_until=WHEN, client_id="12", open_only=True,
                                    closed_only=True, status_ids=["1"], ticket_type_id="1", agent_id="3",
                                    team_ids=["1"], ticket_ids=["2001"], search="x", date_field="dateoccured",
                                    start=WHEN, end=WHEN, order="id", descending=True)),
        ("Tickets/2001", queries.ticket()),
        ("Actions", queries.actions("2001", since=WHEN, until=WHEN, agent_only=True, exclude_private=True,
                                    time_only=True, html=True)),
        ("Actions/2", queries.action("2001")),
        ("Attachment", queries.attachments("2001", action_id=2)),
        ("Client", queries.clients(include_inactive=True, search="a")),
        ("Users", queries.users(client_id="12", include_inactive=True, search="a")),
        ("Agent", queries.agents()), ("Status", queries.statuses(ticket_type_id="1", exclude_closed=True)),
        ("Priority", queries.priorities(sla_id="1")), ("TicketType", queries.ticket_types(include_inactive=True)),
        ("TicketType/1", queries.ticket_type()), ("Team", queries.teams(include_disabled=True)),
    ]


def _every_body() -> list[tuple[str, dict[str, Any]]]:
    """Each write body with every option used."""
    new = NewTicket(summary="s", marker="m", description="d", company_external_id="12", contact_external_id="501",
                    board_external_id="1", type_external_id="1", status_external_id="1", priority_external_id="1",
                    owner_external_id="3")
    patch = TicketPatch(summary="s", status_external_id="2", priority_external_id="2", board_external_id="1",
                        owner_external_id="3")
    note = NewNote(ticket_external_id="2001", text="t", visibility=NoteVisibility.PUBLIC, marker="m",
                   author_member_external_id="3", email_contact=True)
    entry = NewTimeEntry(ticket_external_id="2001", minutes=30, started_at=WHEN, marker="m", member_external_id="3",
                         billable=False)
    att = NewAttachment(ticket_external_id="2001", filename="a.txt", content=b"hi", marker="m")
    return [
        ("Tickets", new_ticket_body(new, site_id=101, team_name="Service Desk", sendack=False, quiet=True,
                                    marker_field_id=101)),
        ("Tickets", ticket_update_body("2001", patch, team_name="Service Desk", quiet=True)),
        ("Tickets", ticket_update_body("2001", TicketPatch(unassign=True))),
        ("Actions", note_body(note, outcome_id=6, email_to="a@b.c", email_cc="d@e.f", email_subject="s",
                              new_status_id="2", marker_field_id=101)),
        ("Actions", note_body(note, outcome="Public Note")),
        ("Actions", time_entry_body(entry, outcome_id=9, marker_field_id=101)),
        ("Attachment", attachment_body(att, visible_to_user=True, action_id=2)),
    ]


def test_every_query_parameter_is_in_the_spec(spec: Spec) -> None:
    problems = [p for path, params in _every_query()
                for p in spec.problems("GET", f"/api/{path}", list(params.items()), None)]
    assert problems == []
    assert sum(len(params) for _, params in _every_query()) > 40  # the builders really produced names


def test_every_body_field_is_in_the_spec(spec: Spec) -> None:
    problems = [p for path, body in _every_body() for p in spec.problems("POST", f"/api/{path}", [], [body])]
    assert problems == []


async def test_everything_sent_on_the_wire_is_in_the_spec(spec: Spec, fake: FakeHalo, halo: HaloClient) -> None:
    """Run every query and write through the client against the fake, then check what went over the wire."""
    t = fake.add_ticket("Spec run", client_id=12, user_id=501)
    for path, params in _every_query():
        path = path.replace("2001", str(t["id"]))
        if path == "Actions/2":  # the ticket's own action 1 ("Ticket logged")
            path, params = "Actions/1", queries.action(str(t["id"]))
        if path in ("Tickets", "Client", "Users"):
            await halo.get_all(path, {"Tickets": "tickets", "Client": "clients", "Users": "users"}[path], params)
        else:
            await halo.get(path, params)
    for path, body in _every_body():
        if "ticket_id" in body:
            body = {**body, "ticket_id": t["id"]}
        if body.get("id") == 2001:
            body = {**body, "id": t["id"]}
        if path == "Attachment":
            body = {k: v for k, v in body.items() if k != "action_id"}
        await halo.post_one(path, body)
    await halo.get_list("Attachment", queries.attachments(str(t["id"])), key="attachments")
    sent: list[RecordedRequest] = [r for r in fake.requests if r.route.startswith("/api/")]
    assert {r.status for r in sent} == {200}  # the fake accepted every one of them
    problems = [p for r in sent if r.route.lower() != "/api/authinfo"
                for p in spec.problems(r.method, r.path, r.query, r.json() if r.method == "POST" else None)]
    assert problems == []
    assert spec.operation("GET", "/AuthInfo") is not None and fake.count("GET /api/authinfo") == 1
    token_calls = [r for r in fake.requests if r.route == "/auth/token"]
    assert token_calls and all(set(r.form()) <= OAUTH_FORM and set(r.params) <= {"tenant"} for r in token_calls)
    assert len({r.route for r in sent}) >= 14  # a broad run, not a token gesture


async def test_everything_the_connector_sends_is_in_the_spec(spec: Spec, fake: FakeHalo) -> None:
    """Every connector method (both time modes, every visibility, lost-write searches, webhook housekeeping)
    against the fake; then every path, query parameter and body field it sent is checked by name."""
    from connectors.base import WriteKind, WriteProbe
    from connectors.halopsa.connector import HaloPsaConnector

    creds = fake.credentials(webhook_secret="s3cret")
    conns = [HaloPsaConnector(dataclasses.replace(fake.config(**extra), credentials=creds),
                              transport=fake.transport(), clock=fake.clock.epoch, page_size=5)
             for extra in ({"marker_field_id": 101}, {"time_mode": "timesheet", "internal_outcome_id": 7,
                                                       "public_outcome_id": 6, "time_outcome_id": 9})]
    fake.bulk_tickets(12)
    try:
        for conn in conns:
            await conn.check_credentials()
            picks = await conn.picklists()
            await conn.list_members()
            for lister in (conn.list_companies, conn.list_contacts):
                page = await lister(None)
                while page.next_cursor:
                    page = await lister(page.next_cursor)
            page2 = await conn.list_changed_tickets(WHEN)
            while page2.next_cursor:
                page2 = await conn.list_changed_tickets(WHEN, page2.next_cursor)
            ids = await conn.list_ticket_ids()
            t = await conn.create_ticket(NewTicket(summary="Spec", marker="m1", company_external_id="12",
                                                   contact_external_id="501", board_external_id=picks.boards[0].external_id,
                                                   priority_external_id="2", owner_external_id="3"))
            await conn.update_ticket(t.external_id, TicketPatch(status_external_id="2", summary="Spec 2"))
            await conn.update_ticket(t.external_id, TicketPatch(unassign=True))
            await conn.get_ticket(ids.items[0])
            for vis in (NoteVisibility.PUBLIC, NoteVisibility.INTERNAL):
                await conn.add_note(NewNote(ticket_external_id=t.external_id, text="n", visibility=vis, marker="m2",
                                            email_contact=True, author_member_external_id="3"))
            await conn.add_time_entry(NewTimeEntry(ticket_external_id=t.external_id, minutes=15, started_at=WHEN,
                                                   marker="m3", member_external_id="3", notes="t"))
            await conn.upload_attachment(NewAttachment(ticket_external_id=t.external_id, filename="a.txt",
                                                       content=b"hi", marker="m4"))
            await conn.list_notes(t.external_id)
            await conn.list_time_entries(t.external_id)
            await conn.list_attachments(t.external_id)
            for kind in WriteKind:
                await conn.find_write(WriteProbe(kind=kind, marker="m", ticket_external_id=t.external_id,
                                                 since=fake.clock.now, text="n", filename="a.txt"))
            await conn.ensure_callbacks("https://deskbridge.example/hooks/halo")
            await conn.remove_callbacks("https://deskbridge.example/hooks/halo")
    finally:
        for conn in conns:
            await conn.aclose()
    sent = [r for r in fake.requests if r.route.startswith("/api/") and r.route.lower() != "/api/authinfo"]
    assert {r.status for r in sent} == {200}
    problems = [p for r in sent for p in spec.problems(r.method, r.path, r.query,
                                                         r.json() if r.method == "POST" else None)]
    assert problems == []
    routes = {r.key for r in sent}
    for expected in ("POST /api/TimesheetEvent", "POST /api/Webhook", "POST /api/Notification",
                     "GET /api/Notification", "DELETE /api/Webhook/{id}", "GET /api/Agent/me", "GET /api/Outcome",
                     "GET /api/TicketType/{id}", "POST /api/Attachment", "GET /api/Attachment"):
        assert expected in routes
    assert len(routes) >= 20
