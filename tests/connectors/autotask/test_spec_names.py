"""Every path and field name the Autotask client and mapping send or read, checked against the names in
Autotask's published swagger (shared/specs/psa/autotask-rest-index.json).

Letter-case caveat (shared/specs/README.md): the index capitalises the first letter of every field
(`TicketID`); on the wire it is lower-cased (`ticketID`) and the rest must match exactly. Paths are
case-insensitive. Query bodies bind case-insensitively (`filter`, `IncludeFields`, `MaxRecords`).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.autotask import auth as at_auth
from connectors.autotask import client as at_client
from connectors.autotask import dedupe as d
from connectors.autotask import mapping as m
from connectors.autotask import picklists as pk
from connectors.autotask.client import AtClient
from connectors.base import NewAttachment, NewNote, NewTicket, NewTimeEntry, NoteVisibility, TicketPatch
from tests.connectors.autotask.conftest import T0, load_picklists
from tests.fakes.autotask import FakeAutotask
from tests.fakes.autotask_schema import SPECS, seed_picklists

INDEX_PATH = Path("/work/shared/specs/psa/autotask-rest-index.json")
pytestmark = pytest.mark.skipif(not INDEX_PATH.exists(), reason="the Autotask REST index is not on this machine")
MODELS = {"Tickets": "TicketModel", "TicketNotes": "TicketNoteModel", "TimeEntries": "TimeEntryModel",
          "TicketAttachments": "TicketAttachmentModel", "Companies": "CompanyModel", "Contacts": "ContactModel",
          "Resources": "ResourceModel", "ResourceServiceDeskRoles": "ResourceServiceDeskRoleModel",
          "DeletedTicketLogs": "DeletedTicketLogModel", "ConfigurationItems": "ConfigurationItemModel"}
CHILD_ROUTES = {"/tickets/{id}/notes": "TicketNotes", "/tickets/{id}/attachments": "TicketAttachments",
                "/companies/{id}/contacts": "Contacts"}
RESPONSE_MODELS = ("QueryActionResultTicketModelTicket", "ItemQueryResultModelTicketModelTicket", "OperationResultModel",
                   "QueryCountResultModel", "EntityInformationResultModel", "FieldInformationResultModel",
                   "ThresholdStatusResultModel", "ZoneInformationResultModel", "PagingModel")
NOT_IN_INDEX = {"errors", "Message", "message", "error"}  # error bodies: not part of the swagger models
OURS = {"username", "secret", "integration_code", "impersonation_resource_id", "retry-after", "date"}  # settings, headers


@pytest.fixture(scope="module")
def index() -> dict[str, Any]:
    return json.loads(INDEX_PATH.read_text())


def wire(index: dict[str, Any], model: str) -> set[str]:
    """A model's field names as they travel (first letter lower-cased)."""
    return {k[0].lower() + k[1:] for k in index["models"][model]}


def operations(index: dict[str, Any]) -> set[str]:
    """Every documented operation as "method /path" with placeholders as {} and the version prefix dropped."""
    out = set()
    for ops in index["entities"].values():
        for op in ops:
            method, path = op.split(" ", 1)
            path = re.sub(r"\{[^}]+\}", "{}", path).lower().removeprefix("/v1.0")
            out.add(f"{method.lower()} {path}")
    return out


def entity_of(route: str) -> str:
    lowered = route.lower()
    for prefix, entity in CHILD_ROUTES.items():
        if lowered.startswith(prefix):
            return entity
    first = route.strip("/").split("/")[0]
    return next(e for e in SPECS if e.lower() == first.lower())


@pytest.fixture
async def workload(fake: FakeAutotask, client: AtClient) -> FakeAutotask:
    """Drive every client call and write body the connector will need, through mapping and dedupe."""
    picks = await load_picklists(client)
    await client.udf_fields("Tickets")
    await client.entity_information("Tickets")
    await client.threshold()
    for marker_udf in (None, "Deskbridge Ref"):
        body = m.new_ticket_body(NewTicket(summary="S", marker=f"mk-{marker_udf}", company_external_id="175",
                                           contact_external_id="30682801", board_external_id="29682833",
                                           type_external_id="2", owner_external_id=str(fake.tech_id)),
                                 picks, marker_udf=marker_udf, owner_role_id="29683461", source="11")
        tid = await client.create("Tickets", body)
        await client.query_all("Tickets", d.ticket_filters(f"mk-{marker_udf}", marker_udf=marker_udf),
                               include_fields=["title", "externalID", "lastActivityDate"])
    await client.update("Tickets", m.ticket_patch_body(str(tid), TicketPatch(status_external_id="8", summary="x",
                                                                             board_external_id="8")))
    await client.update("Tickets", m.ticket_patch_body(str(tid), TicketPatch(unassign=True)))
    for vis in NoteVisibility:
        await client.create(f"Tickets/{tid}/Notes", m.note_body(NewNote(ticket_external_id=str(tid), text="t",
                                                                        visibility=vis, marker="n"), picks))
    await client.create("TimeEntries", m.time_entry_body(
        NewTimeEntry(ticket_external_id=str(tid), minutes=15, started_at=T0, marker="t"),
        resource_id=str(fake.api_resource_id), role_id="29683461", internal_notes="ref"))
    aid = await client.create(f"Tickets/{tid}/Attachments", m.attachment_body(
        NewAttachment(ticket_external_id=str(tid), filename="a.txt", content=b"a", marker="a"), picks))
    await client.download_attachment(tid, aid)
    await client.query_all("TicketNotes", d.note_filters(str(tid), T0))
    await client.query_all("TimeEntries", d.time_entry_filters(str(tid), str(fake.api_resource_id), T0))
    await client.query_all("TicketAttachments", d.attachment_filters(str(tid), T0))
    await client.get_items(f"Tickets/{tid}/Notes")
    for entity in ("Companies", "Contacts", "Resources", "ResourceServiceDeskRoles", "DeletedTicketLogs"):
        await client.query_all(entity)
    await client.count("Tickets", d.ticket_filters("mk-None"))
    await client.create("Companies/175/Contacts", {"firstName": "A", "lastName": "B", "isActive": 1,
                                                   "emailAddress": "a@b.example"})
    spare = await client.create(f"Tickets/{tid}/Attachments", m.attachment_body(
        NewAttachment(ticket_external_id=str(tid), filename="b.txt", content=b"b", marker="b"), picks))
    await client.delete(f"Tickets/{tid}/Attachments/{spare}")
    for entity, rid in (("Tickets", tid), ("Companies", 175), ("Resources", fake.tech_id)):
        await client.get_item(f"{entity}/{rid}")
    assert fake.ignored_fields == []
    return fake


async def test_every_path_is_a_documented_operation(index: dict[str, Any], workload: FakeAutotask) -> None:
    documented = operations(index)
    sent = {f"{r.method.lower()} {re.sub(r'{[^}]+}', '{}', r.route).lower()}" for r in workload.requests}
    assert len(sent) >= 20 and sent - documented == set()


async def test_every_written_field_is_in_its_model(index: dict[str, Any], workload: FakeAutotask) -> None:
    bad = []
    for r in workload.requests:
        if r.method not in ("POST", "PATCH") or "/query" in r.route:
            continue
        names = wire(index, MODELS[entity_of(r.route)])
        body = r.json()
        bad += [(r.key, k) for k in body if k not in names]
        for udf in body.get("userDefinedFields") or []:
            bad += [(r.key, f"udf.{k}") for k in udf if k not in wire(index, "UserDefinedField")]
    assert bad == []


def _nodes(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in items:
        yield node
        yield from _nodes(node.get("items") or [])


async def test_every_queried_field_is_in_its_model(index: dict[str, Any], workload: FakeAutotask) -> None:
    query_keys = {k.lower() for k in index["models"]["QueryModel"]}
    filter_keys = wire(index, "Filter")
    bad, seen = [], 0
    for r in workload.requests:
        if "/query" not in r.route:
            continue
        names = wire(index, MODELS[entity_of(r.route)])
        body = r.json()
        bad += [(r.key, k) for k in body if k.lower() not in query_keys]
        bad += [(r.key, f"IncludeFields.{f}") for f in body.get("IncludeFields") or [] if f not in names]
        for node in _nodes(body["filter"]):
            seen += 1
            bad += [(r.key, f"filter.{k}") for k in node if k not in filter_keys]
            if "field" in node and not node.get("udf") and node["field"] not in names:
                bad.append((r.key, node["field"]))
    assert seen >= 15 and bad == []


class Spy(dict):  # type: ignore[type-arg]
    """A dict that records which keys were read."""

    def __init__(self, data: dict[str, Any], seen: set[str]) -> None:
        super().__init__(data)
        self.seen = seen

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.seen.add(key)
        return super().__getitem__(key)


async def test_every_field_mapping_reads_is_in_its_model(index: dict[str, Any], workload: FakeAutotask,
                                                         client: AtClient) -> None:
    picks = await load_picklists(client)
    readers: dict[str, Any] = {
        "Tickets": [lambda x: m.ticket(x, picks), lambda x: m.ticket(x, picks, marker_udf="Deskbridge Ref"),
                    lambda x: m.issue_refs(x, picks)],
        "TicketNotes": [lambda x: m.note(x, picks), lambda x: m.is_workflow_note(x, picks),
                        lambda x: d.same_note(x, x, creator_resource_id="1")],
        "TimeEntries": [m.time_entry, lambda x: d.same_time_entry(x, x)],
        "TicketAttachments": [m.attachment, lambda x: d.same_attachment(x, x, 1, creator_resource_id="1")],
        "Companies": [m.company], "Contacts": [m.contact], "Resources": [m.member]}
    bad = []
    for entity, funcs in readers.items():
        seen: set[str] = set()
        for item in await client.query_all(entity):
            for fn in funcs:
                fn(Spy(item, seen))
        assert seen, entity
        bad += [(entity, k) for k in seen - wire(index, MODELS[entity])]
    field_seen: set[str] = set()
    value_seen: set[str] = set()
    fields = [Spy({**f, "picklistValues": [Spy(p, value_seen) for p in f["picklistValues"] or []] or f[
        "picklistValues"]}, field_seen) for f in await client.entity_fields("Tickets")]
    pk.picklists_from_fields(fields)
    bad += [("fields", k) for k in field_seen - wire(index, "FieldInformationModel")]
    bad += [("picklistValues", k) for k in value_seen - wire(index, "PickListValue")]
    zone_seen: set[str] = set()
    at_auth.zone_from_answer(Spy({"url": "https://x.example/", "webUrl": "", "zoneName": "", "ci": 1}, zone_seen))
    bad += [("zone", k) for k in zone_seen - wire(index, "ZoneInformationResultModel")]
    assert bad == []


def _read_keys(module: Any) -> set[str]:
    """String keys a module reads with `.get("k")` or `x["k"]`."""
    tree = ast.parse(Path(module.__file__).read_text())
    keys = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            keys.add(node.args[0].value)
        if (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str) and isinstance(node.ctx, ast.Load)):
            keys.add(node.slice.value)
    return keys


def test_every_response_key_the_client_reads_is_documented(index: dict[str, Any]) -> None:
    known = set().union(*(wire(index, name) for name in RESPONSE_MODELS))
    known |= set().union(*(wire(index, name) for name in MODELS.values())) | wire(index, "FieldInformationModel")
    keys = _read_keys(at_client) | _read_keys(at_auth)
    assert {"items", "item", "itemId", "queryCount", "info", "fields", "currentTimeframeRequestCount", "url"} <= keys
    assert keys - known - NOT_IN_INDEX - OURS - {"MaxRecords"} == set()


def test_the_fake_knows_only_documented_fields(index: dict[str, Any]) -> None:
    bad = [(e, f) for e, spec in SPECS.items() for f in spec.fields if f not in wire(index, MODELS[e])]
    bad += [(e, f) for e, fields in seed_picklists().items() for f in fields if f not in wire(index, MODELS[e])]
    assert bad == []


async def test_the_fakes_metadata_answers_use_documented_names(index: dict[str, Any], fake: FakeAutotask,
                                                               client: AtClient) -> None:
    fields = await client.entity_fields("Tickets")
    assert set().union(*map(set, fields)) <= wire(index, "FieldInformationModel")
    values = [p for f in fields for p in f["picklistValues"] or []]
    assert values and set().union(*map(set, values)) <= wire(index, "PickListValue")
    udfs = await client.udf_fields("Tickets")
    assert set().union(*map(set, udfs)) <= wire(index, "Field")
    assert set(await client.entity_information("Tickets")) <= wire(index, "EntityInformationModel")
    page = await client.json("POST", "Companies/query", body={"filter": [{"op": "gte", "field": "id", "value": 0}]})
    assert set(page) == wire(index, "QueryActionResultCompanyModelAccount")
    assert set(page["pageDetails"]) == wire(index, "PagingModel")
    zone = await client.zones.zone()
    assert zone.ci == fake.ci
    threshold = (await client.json("GET", "ThresholdInformation"))
    assert set(threshold) == wire(index, "ThresholdStatusResultModel")
