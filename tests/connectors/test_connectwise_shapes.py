"""ConnectWise records in every documented shape map the same: older API versions and long-lived tenants
name some fields differently (members' e-mail, priority order, inactive flags)."""

from __future__ import annotations

from connectors.connectwise import mapping as m

# Shapes as older tenants return them (written for these tests after the forms seen in public fixtures of
# long-lived ConnectWise integrations): e-mail in officeEmail with defaultEmail naming it, `sort`, `inactive`.
OLD_MEMBER = {"id": 176, "identifier": "jdoe", "firstName": "Jane", "lastName": "Doe", "defaultEmail": "Office",
              "officeEmail": "Jane.Doe@msp.example", "mobileEmail": None, "homeEmail": None, "inactiveFlag": False}
MOBILE_MEMBER = {"id": 177, "identifier": "road", "firstName": "Road", "lastName": "Warrior",
                 "defaultEmail": "Mobile", "officeEmail": "office@msp.example", "mobileEmail": "road@msp.example"}
NEW_MEMBER = {"id": 178, "identifier": "new", "firstName": "New", "lastName": "Shape",
              "primaryEmail": "new@msp.example", "officeEmail": "other@msp.example"}
NO_MAIL_MEMBER = {"id": 179, "identifier": "api", "firstName": "API", "lastName": "Member"}


def test_members_e_mail_in_every_documented_form():
    assert m.member(OLD_MEMBER).email == "Jane.Doe@msp.example"
    assert m.member(MOBILE_MEMBER).email == "road@msp.example"  # the one defaultEmail names
    assert m.member(NEW_MEMBER).email == "new@msp.example"  # primaryEmail wins where present
    assert m.member(NO_MAIL_MEMBER).email is None


def test_priority_order_from_sortOrder_or_sort():
    assert m.priority({"id": 1, "name": "Critical", "sort": 1}).sort_order == 1
    assert m.priority({"id": 2, "name": "Low", "sortOrder": 4}).sort_order == 4
    assert m.priority({"id": 3, "name": "Odd", "sort": "x"}).sort_order == 0


def test_inactive_boards_and_statuses_in_either_flag():
    assert m.board({"id": 1, "name": "Old", "inactive": True}).active is False
    assert m.board({"id": 2, "name": "New", "inactiveFlag": True}).active is False
    assert m.board({"id": 3, "name": "Live"}).active is True
    assert m.status({"id": 5, "name": "Gone", "inactiveFlag": True}, "1").active is False
    assert m.status({"id": 6, "name": "Waiting", "sort": 3}, "1").sort_order == 3


async def test_picklists_order_by_either_sort_field():
    from tests.fakes.connectwise import FakeConnectWise

    fake = FakeConnectWise()
    for p in fake.priorities.values():  # an older tenant: `sort` instead of `sortOrder`
        p["sort"] = 100 - int(p["id"])
        p.pop("sortOrder", None)
    from connectors.connectwise.connector import ConnectWiseConnector

    cw = ConnectWiseConnector(fake.config(), transport=fake.transport())
    try:
        prios = (await cw.picklists()).priorities
    finally:
        await cw.aclose()
    assert [int(p.external_id) for p in prios] == sorted((int(p.external_id) for p in prios), reverse=True)
