"""Seed data of the fake HaloPSA tenant: a small MSP with three customers.

    agents   1 Unassigned (Halo's placeholder), 2 Deskbridge API (isapiagent), 3 Bob Tech, 4 Ana Lead,
             5 Old Timer (disabled)
    teams    1 Service Desk, 2 Second Line, 3 Retired Team (inactive)
    clients  1 Unallocated (Halo's placeholder), 12 Acme Corp, 13 Globex, 14 Initech, 15 Umbrella (inactive);
             each with a main site (101…) and an end user (501…: pat@<client>.example), plus an inactive user
    statuses 1 New, 2 In Progress, 3 Waiting on Customer, 8 Resolved (closed), 9 Closed (closed),
             20 Lead Qualified (type 1: an opportunity status, not a ticket one)
    SLAs     1 Standard (priorities 1-4), 2 Premium (1-4 faster, plus hidden 5 Planned)
    types    1 Incident (all statuses, SLA 1, team Service Desk), 2 Service Request (statuses 1, 2, 3, 9;
             user_id mandatory; SLA 2), 3 Change (statuses 1, 2, 9; category_1 mandatory), 4 Old Type (inactive)
    outcomes 1 Ticket Logged (system), 5 Email User (sendemail, visible), 6 Public Note, 7 Internal Note
             (hidden), 9 Time Entry (hidden), 10 Escalate (not allowed for the API agent),
             11 Email Received (end-user replies); the API agent may use 5, 6, 7, 9
    categories (category_1) Hardware, Hardware>Laptop, Hardware>Printer, Software>E-mail, Software>Office;
             (category_2) Resolved by phone
    custom fields 101 CFDeskbridgeRef (tickets and actions, onlyshowforagents), 102 CFSiteNotes (tickets)
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.halopsa import FakeHalo


def _agents(fake: FakeHalo) -> None:
    rows: list[tuple[int, str, str, bool, bool, tuple[int, ...]]] = [
        (1, "Unassigned", "", False, False, ()), (2, "Deskbridge API", "api@msp.example", False, True, ()),
        (3, "Bob Tech", "bob@msp.example", False, False, (1,)), (4, "Ana Lead", "ana@msp.example", False, False,
                                                                  (1, 2)),
        (5, "Old Timer", "old@msp.example", True, False, (2,))]
    for aid, name, email, disabled, api, teams in rows:
        first, _, last = name.partition(" ")
        fake.agents[aid] = {"id": aid, "name": name, "firstname": first, "surname": last, "email": email,
                            "initials": "".join(p[0] for p in name.split()), "isdisabled": disabled,
                            "isapiagent": api, "is_agent": True, "_teams": teams}


def _teams(fake: FakeHalo) -> None:
    for tid, name, inactive in ((1, "Service Desk", False), (2, "Second Line", False), (3, "Retired Team", True)):
        fake.teams[tid] = {"id": tid, "name": name, "inactive": inactive, "sequence": tid, "forrequests": True,
                           "department_id": 1, "department_name": "Support"}


def _clients(fake: FakeHalo) -> None:
    rows = [(1, "Unallocated", False), (12, "Acme Corp", False), (13, "Globex", False), (14, "Initech", False),
            (15, "Umbrella", True)]
    for cid, name, inactive in rows:
        sid = 100 + len(fake.sites) + 1
        fake.sites[sid] = {"id": sid, "name": "Main", "client_id": cid}
        fake.clients[cid] = {"id": cid, "name": name, "inactive": inactive, "toplevel_id": 1, "main_site_id": sid,
                             "main_phonenumber": f"+1 555 01{cid:02d}", "colour": "#2a6"}
        if cid == 1:
            continue
        slug = name.split()[0].lower()
        uid = 500 + len(fake.users) + 1
        fake.users[uid] = {"id": uid, "name": f"Pat User-{name.split()[0]}", "firstname": "Pat",
                           "surname": f"User-{name.split()[0]}", "emailaddress": f"pat@{slug}.example",
                           "phonenumber_preferred": f"+1 555 02{cid:02d}", "client_id": cid, "site_id": sid,
                           "inactive": False, "neversendemails": False}
    fake.users[599] = {"id": 599, "name": "Gone Person", "firstname": "Gone", "surname": "Person",
                       "emailaddress": "gone@acme.example", "phonenumber_preferred": "", "client_id": 12,
                       "site_id": fake.clients[12]["main_site_id"], "inactive": True, "neversendemails": False}


def _statuses(fake: FakeHalo) -> None:
    rows = [(1, "New", 0, False), (2, "In Progress", 0, False), (3, "Waiting on Customer", 0, False),
            (8, "Resolved", 0, True), (9, "Closed", 0, True), (20, "Lead Qualified", 1, False)]
    for seq, (sid, name, kind, closed) in enumerate(rows, 1):
        fake.statuses[sid] = {"id": sid, "name": name, "shortname": name[:4], "type": kind, "sequence": seq,
                              "colour": "#888", "slaaction": "Hold" if sid == 3 else "No Change", "_closed": closed}


def _priorities(fake: FakeHalo) -> None:
    fake.slas = {1: {"id": 1, "name": "Standard SLA"}, 2: {"id": 2, "name": "Premium SLA"}}
    names = {1: "Critical", 2: "High", 3: "Medium", 4: "Low", 5: "Planned"}
    rows: list[tuple[int, int, float, float, bool]] = [
        (1, pid, [1, 4, 8, 24][pid - 1], [4, 8, 24, 72][pid - 1], False) for pid in (1, 2, 3, 4)]
    rows += [(2, pid, [0.5, 2, 4, 8][pid - 1], [2, 4, 8, 24][pid - 1], False) for pid in (1, 2, 3, 4)]
    rows.append((2, 5, 24, 240, True))
    for sla, pid, respond, fix, hidden in rows:
        fake.policies.append({"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"halo-policy-{sla}-{pid}")), "slaid": sla,
                              "priorityid": pid, "name": names[pid], "responsetime": respond, "responseunits": "hours",
                              "fixtime": fix, "fixunits": "hours", "ishidden": hidden, "colour": "#c33"})


def _ticket_types(fake: FakeHalo) -> None:
    def field(name: str, technew: int) -> dict[str, Any]:
        """A ticket type field entry."""
        return {"fieldid": {"category_1": 21, "user_id": 5}[name], "fieldname": name, "technew": technew,
                "enduserdetail": 1}

    rows = [(1, "Incident", True, [], 1, [field("category_1", 1)], True),
            (2, "Service Request", False, [1, 2, 3, 9], 2, [field("user_id", 2)], True),
            (3, "Change", False, [1, 2, 9], 1, [field("category_1", 2)], True),
            (4, "Old Type", True, [], 1, [], False)]
    for seq, (tid, name, allow_all, allowed, sla, fields, active) in enumerate(rows, 1):
        fake.ticket_types[tid] = {
            "id": tid, "name": name, "use": "reqs", "sequence": seq, "active": active, "agentscanselect": True,
            "default_sla": sla, "initial_status": 1, "default_team": "Service Desk", "default_priority": 3,
            "allowall_status": allow_all, "hasmandatorytechfields": any(f["technew"] == 2 for f in fields),
            "_allowed": allowed, "_fields": fields}


def _outcomes(fake: FakeHalo) -> None:
    rows = [(1, "Ticket Logged", False, 0, 1), (5, "Email User", False, 1, 0), (6, "Public Note", False, 0, 0),
            (7, "Internal Note", True, 0, 0), (9, "Time Entry", True, 0, 0), (10, "Escalate", True, 0, 0),
            (11, "Email Received", False, 0, 2)]
    for seq, (oid, name, hide, send, system) in enumerate(rows, 1):
        fake.outcomes[oid] = {"id": oid, "outcome": name, "buttonname": name, "sequence": seq, "hidden": False,
                              "hidefromuser": hide, "sendemail": send, "systemid": system}
    fake.api_outcomes = {5, 6, 7, 9}
    fake.system_outcome_id, fake.time_outcome_id, fake.reply_outcome_id = 1, 9, 11


def _custom_fields(fake: FakeHalo) -> None:
    fake.custom_fields[101] = {"id": 101, "name": "CFDeskbridgeRef", "label": "Deskbridge reference", "type": 0,
                               "onlyshowforagents": True, "_usage": ("ticket", "action")}
    fake.custom_fields[102] = {"id": 102, "name": "CFSiteNotes", "label": "Site notes", "type": 0,
                               "onlyshowforagents": False, "_usage": ("ticket",)}


def _categories(fake: FakeHalo) -> None:
    for value in ("Hardware", "Hardware>Laptop", "Hardware>Printer", "Software>E-mail", "Software>Office"):
        fake.add_category(value, type_id=1)
    fake.add_category("Resolved by phone", type_id=2)


def seed(fake: FakeHalo) -> None:
    """Fill an empty fake tenant with the data described above."""
    for step in (_agents, _teams, _clients, _statuses, _priorities, _ticket_types, _outcomes, _custom_fields,
                 _categories):
        step(fake)
