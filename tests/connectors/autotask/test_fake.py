"""The fake Autotask server itself: loopback serving, child routes, read-only fields, metadata endpoints."""

from __future__ import annotations

import pytest

from connectors.autotask import query as aq
from connectors.autotask.auth import AtCredentials
from connectors.autotask.client import AtClient
from connectors.errors import PsaTimeout, PsaValidationError
from tests.fakes.autotask import FakeAutotask


async def test_over_loopback_zone_prefix_and_dropped_connection(fake: FakeAutotask, creds: AtCredentials) -> None:
    with fake.serve() as root:
        client = AtClient(creds, discovery_url=fake.discovery_url(root))
        zone = await client.zones.zone()
        assert zone.url == f"{root}/webservices2/ATServicesRest/"
        tid = await client.create("Tickets", {"companyID": 175, "title": "Over HTTP", "status": 1, "priority": 2})
        fake.lose_next_response()
        with pytest.raises(PsaTimeout) as caught:
            await client.create(f"Tickets/{tid}/Notes", {"description": "d", "noteType": 2, "publish": 2})
        assert caught.value.outcome_unknown and len(fake.tables["TicketNotes"]) == 1
        fake.move_zone(4)
        assert (await client.get_item(f"Tickets/{tid}"))["title"] == "Over HTTP"
        assert (await client.zones.zone()).url == f"{root}/webservices4/ATServicesRest/"
        await client.aclose()


async def test_children_live_under_their_parent(fake: FakeAutotask, client: AtClient) -> None:
    tid = fake.add_ticket("Parent")["id"]
    nid = await client.create(f"Tickets/{tid}/Notes", {"description": "d", "noteType": 2, "publish": 2})
    assert [n["id"] for n in await client.get_items(f"Tickets/{tid}/Notes")] == [nid]
    assert (await client.get_item(f"Tickets/{tid}/Notes/{nid}"))["description"] == "d"
    await client.update(f"Tickets/{tid}/Notes", {"id": nid, "description": "edited"})
    assert fake.tables["TicketNotes"][nid]["description"] == "edited"
    other = fake.add_ticket("Other")["id"]
    with pytest.raises(Exception) as wrong_parent:
        await client.get_item(f"Tickets/{other}/Notes/{nid}")
    assert type(wrong_parent.value).__name__ == "PsaNotFound"
    with pytest.raises(PsaValidationError):
        await client.create(f"Tickets/{tid}/Notes", {"ticketID": other, "description": "d", "noteType": 2,
                                                     "publish": 2})
    with pytest.raises(PsaValidationError) as contact_note:
        await client.create(f"Tickets/{tid}/Notes", {"description": "d", "noteType": 2, "publish": 2,
                                                     "createdByContactID": 30682801})
    assert "published to all" in contact_note.value.message
    with pytest.raises(Exception) as root_contact:
        await client.create("Contacts", {"companyID": 175, "firstName": "A", "lastName": "B", "isActive": 1})
    assert type(root_contact.value).__name__ == "PsaNotFound"  # contacts are created under their company


async def test_read_only_and_unknown_fields_are_ignored_silently(fake: FakeAutotask, client: AtClient) -> None:
    tid = fake.add_ticket("Time")["id"]
    eid = await client.create("TimeEntries", {"ticketID": tid, "resourceID": fake.api_resource_id, "hoursWorked": 2,
                                              "dateWorked": "2026-01-05T00:00:00Z", "summaryNotes": "x",
                                              "hoursToBill": 9, "offsetHours": -0.5, "HOURSWORKED": 2})
    entry = fake.tables["TimeEntries"][eid]
    assert entry["hoursToBill"] == 1.5 and entry["hoursWorked"] == 2
    assert fake.ignored_fields == [("TimeEntries", "hoursToBill", "read-only")]
    await client.update("Tickets", {"id": tid, "ticketNumber": "T1", "colour": "red"})
    assert fake.ignored_fields[1:] == [("Tickets", "ticketNumber", "read-only"), ("Tickets", "colour", "unknown")]


async def test_metadata_endpoints(fake: FakeAutotask, client: AtClient) -> None:
    info = await client.entity_information("TicketNotes")
    assert info["name"] == "TicketNote" and info["canCreate"] and not info["hasUserDefinedFields"]
    assert (await client.entity_information("Tickets"))["hasUserDefinedFields"]
    udfs = await client.udf_fields("Tickets")
    assert [u["name"] for u in udfs] == ["Deskbridge Ref", "Customer PO"] and udfs[0]["length"] == 64
    fields = {f["name"]: f for f in await client.entity_fields("Tickets")}
    assert fields["subIssueType"]["picklistParentValueField"] == "issueType"
    assert fields["companyID"]["isReference"] and fields["companyID"]["referenceEntityType"] == "Company"
    assert fields["ticketNumber"]["isReadOnly"] and fields["title"]["isRequired"]
    assert {p["value"]: p["parentValue"] for p in fields["subIssueType"]["picklistValues"]}["201"] == "12"


async def test_deleted_tickets_are_logged(fake: FakeAutotask, client: AtClient) -> None:
    t = fake.add_ticket("Doomed")
    fake.delete_ticket(t["id"])
    logs = await client.query_all("DeletedTicketLogs", [aq.eq("ticketID", t["id"])])
    assert [(x["ticketNumber"], x["ticketTitle"]) for x in logs] == [(t["ticketNumber"], "Doomed")]
    assert (await client.query_all("Tickets")) == []


async def test_ticket_numbers_and_completion(fake: FakeAutotask, client: AtClient) -> None:
    first, second = fake.add_ticket("A"), fake.add_ticket("B")
    assert (first["ticketNumber"], second["ticketNumber"]) == ("T20260105.0001", "T20260105.0002")
    await client.update("Tickets", {"id": first["id"], "status": 5})
    done = fake.tables["Tickets"][first["id"]]
    assert done["completedDate"] == done["lastTrackedModificationDateTime"]
    assert done["completedByResourceID"] == fake.api_resource_id
    await client.update("Tickets", {"id": first["id"], "status": 8})
    assert fake.tables["Tickets"][first["id"]]["completedDate"] is None


async def test_company_contact_and_resource_writes(fake: FakeAutotask, client: AtClient) -> None:
    with pytest.raises(PsaValidationError) as missing:
        await client.create("Companies", {"companyName": "Umbrella"})
    assert {"companyType", "ownerResourceID", "phone"} <= set(missing.value.fields)
    cid = await client.create("Companies", {"companyName": "Umbrella", "companyType": 1, "phone": "555-0199",
                                            "ownerResourceID": fake.api_resource_id})
    await client.update("Companies", {"id": cid, "companyNumber": "UMB",
                                      "userDefinedFields": [{"name": "Contract Tier", "value": "Gold"}]})
    company = fake.tables["Companies"][cid]
    assert company["companyNumber"] == "UMB" and company["userDefinedFields"] == [
        {"name": "Contract Tier", "value": "Gold"}]
    pid = await client.create(f"Companies/{cid}/Contacts", {"firstName": "Alice", "lastName": "Wesker",
                                                            "isActive": 1, "emailAddress": "alice@umbrella.example"})
    await client.update(f"Companies/{cid}/Contacts", {"id": pid, "isActive": 0})
    assert fake.tables["Contacts"][pid]["isActive"] == 0 and fake.tables["Contacts"][pid]["companyID"] == cid
    with pytest.raises(PsaValidationError):
        await client.create(f"Companies/{cid}/Contacts", {"firstName": "B", "lastName": "C", "isActive": 1,
                                                          "emailAddress": "not-an-address"})
    assert fake.tech_id is not None
    await client.update("Resources", {"id": fake.tech_id, "officePhone": "555-0101", "userName": "hacker"})
    bob = fake.tables["Resources"][fake.tech_id]
    assert bob["officePhone"] == "555-0101" and bob["userName"] == "bob"  # userName is read-only
    with pytest.raises(Exception) as no_create:
        await client.create("Resources", {"firstName": "New"})
    assert type(no_create.value).__name__ == "PsaNotFound"


async def test_answers_carry_the_servers_date(fake: FakeAutotask, client: AtClient) -> None:
    fake.clock.advance(3600)
    await client.get_item("Companies/0")
    assert client.server_time == fake.clock.now.replace(microsecond=0)
