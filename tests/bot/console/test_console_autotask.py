"""A technician's day in the console against an Autotask connection (the fake Autotask behind the real
composition root): the queue, a ticket's conversation, an internal note and a public reply, time, a status
change and a new ticket on a queue; then the outbox delivers it all to Autotask, exactly as written, internal
notes never published, and nothing left on any ticket that the technician did not change."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from bot.console.session import ConsoleSession
from bot.main import build
from bot.settings import Settings
from store.crypto import generate_key
from tests.fakes.autotask import FakeAutotask, FakeClock

ACME, GLOBEX = 175, 176
SCRIPT = [
    "/tickets mine", "1",                                            # Bob's queue, open the VPN ticket
    "Checked the firewall logs: the tunnel flaps every 10 minutes.",  # a thread message: internal note
    "!public We replaced the VPN gateway & the <PSU>; please try again.",  # a public reply
    "4", "45m", "Replaced the gateway", "y",                          # time
    "3", "2", "", "",                                                 # status -> In Progress
    "/ticket new", "New starter: laptop for Sam", "1", "2", "", "3", "", "Starts Monday.",  # Acme, Level II, Incident, no category
    "quit"]


class Script:
    def __init__(self, lines: Iterable[str]) -> None:
        self.lines = list(lines)
        self.prompts: list[str] = []

    async def __call__(self, prompt: str) -> str | None:
        self.prompts.append(prompt)
        return self.lines.pop(0) if self.lines else None


@pytest.fixture
def fake() -> FakeAutotask:
    return FakeAutotask(clock=FakeClock(datetime.now(UTC)))


@pytest.fixture
async def container(db_url, tmp_path, workspace_id, fake):  # type: ignore[no-untyped-def]
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k"), transport=fake.transport())
    c.default_workspace_id = workspace_id
    yield c
    await c.aclose()


def _contact(fake: FakeAutotask, company: int) -> int:
    return next(c["id"] for c in fake.tables["Contacts"].values() if c["companyID"] == company)


async def test_a_technicians_day_against_autotask(container, fake: FakeAutotask, workspace_id: int) -> None:  # type: ignore[no-untyped-def]
    bob = fake.tech_id
    vpn = fake.add_ticket("VPN down for the Leeds office", companyID=ACME, contactID=_contact(fake, ACME),
                          assignedResourceID=bob, assignedResourceRoleID=29683461, queueID=29682833)
    fake.add_note(vpn["id"], "Still down this morning, please help!", publish=1, contact_id=_contact(fake, ACME))
    fake.add_ticket("Printer jammed", companyID=GLOBEX, queueID=29682833)
    conn, info = await container.connections.add(workspace_id, kind="autotask", name="autotask",
                                                 settings=fake.settings(default_board_id="29682833"),
                                                 credentials=fake.credentials())
    assert "acting as Deskbridge API" in info.display_name
    assert (await container.sync.run(conn.id)).ok
    out: list[str] = []
    script = Script(SCRIPT)
    await ConsoleSession(container, read=script, write=out.append, as_email="bob@msp.example").run()
    text = "\n".join(out)
    assert "#7001     VPN down for the Leeds office" in text and "Printer jammed" not in text
    assert "[PUBLIC] Pat User-Acme: Still down this morning, please help!" in text  # Autotask's conversation
    assert "ExecuteCommand.aspx?Code=OpenTicketDetail&TicketID=7001" in text
    assert "Status → In Progress" in text and "45 min logged" in text
    before = dict(fake.tables["Tickets"][vpn["id"]])
    for _ in range(5):  # deliver everything queued, as `deskbridge serve` does in the background
        await container.outbox_worker.drain()
    notes = [n for n in fake.tables["TicketNotes"].values() if n["ticketID"] == vpn["id"] and n["creatorResourceID"]]
    internal, everyone = (fake.pick("TicketNotes", "publish", "Internal Users Only"),
                          fake.publish_to_all("TicketNotes"))
    assert [(n["description"], n["publish"], n["creatorResourceID"]) for n in notes] == [
        ("Checked the firewall logs: the tunnel flaps every 10 minutes.", internal, bob),
        ("We replaced the VPN gateway & the <PSU>; please try again.", everyone, bob)]  # as Bob, as typed
    [entry] = fake.tables["TimeEntries"].values()
    assert (entry["ticketID"], entry["resourceID"], entry["hoursWorked"], entry["summaryNotes"]) == (
        vpn["id"], bob, 0.75, "Replaced the gateway")
    after = fake.tables["Tickets"][vpn["id"]]
    assert after["status"] == fake.pick("Tickets", "status", "In Progress")
    changed = {k for k in after if after[k] != before[k]} - {"lastActivityDate", "lastTrackedModificationDateTime",
                                                              "lastActivityResourceID",
                                                              "lastCustomerVisibleActivityDateTime"}
    assert changed <= {"status"}  # nothing else on the ticket moved
    [made] = [t for t in fake.tables["Tickets"].values() if t["title"] == "New starter: laptop for Sam"]
    assert (made["companyID"], made["queueID"], made["ticketType"], made["priority"]) == (
        ACME, 29682969, fake.pick("Tickets", "ticketType", "Incident"), fake.pick("Tickets", "priority", "Medium"))
    assert made["description"] == "Starts Monday." and made["externalID"]  # our marker, in a hidden field
    texts = [n["description"] for n in fake.tables["TicketNotes"].values()] + [made["title"], made["description"]]
    assert not any(made["externalID"] in t or "[db:" in t for t in texts)
