"""The sandbox's generated demo data: a pure function of (seed, anchor time).

Records are the sandbox's own "vendor" shape (plain dicts with int ids and ISO timestamps), the same
shape the server keeps and persists; connectors/sandbox/mapping.py turns them into canonical models.

Two months of closed history, and a desk as it stands at the anchor (desk.py): about a sixth of the
tickets open, most within SLA, a few at risk, a couple breached, threads that fit each status. Ticket
numbers run from 1001 in the order tickets were opened, so the highest number is the newest ticket.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

from connectors.sandbox.desk import (
    TARGETS,
    Plan,
    business_back,
    business_forward,
    plan_open_desk,
    priority_for,
)
from connectors.sandbox.dialect import iso

FIRST_TICKET = 1001
OPEN_SHARE = 0.17
HISTORY_BUSINESS_HOURS = 300  # about seven weeks of working days

COMPANIES = [
    ("ACME", "Acme Corp"), ("GLOBEX", "Globex Corporation"), ("INITECH", "Initech"),
    ("UMBRELLA", "Umbrella Health"), ("STARK", "Stark Industries"), ("WAYNE", "Wayne Enterprises"),
    ("HOOLI", "Hooli"), ("VANDELAY", "Vandelay Industries"), ("DUNDER", "Dunder Mifflin Paper"),
    ("SOYLENT", "Soylent Foods"), ("TYRELL", "Tyrell Dental"), ("CYBERDYNE", "Cyberdyne Logistics"),
]
FIRST = ["Alice", "Ben", "Chloe", "Dan", "Eva", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Liam",
         "Maya", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Victor", "Wen", "Yusuf"]
LAST = ["Adams", "Becker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ivanova", "Jensen",
        "Khan", "Lopez", "Meyer", "Nowak", "Okafor", "Patel", "Rossi", "Silva", "Tanaka", "Weber"]
MEMBERS = [("ana", "Ana Torres"), ("bob", "Bob Nguyen"), ("carla", "Carla Schmidt"), ("dev", "Dev Sharma"),
           ("emil", "Emil Larsen")]
MEMBER_DOMAIN = "msp.example"

# (board name, [(status name, closed, default)], [type names])
BOARDS = [
    ("Service Desk",
     [("New", False, True), ("In Progress", False, False), ("Waiting Customer Response", False, False),
      ("Scheduled", False, False), ("Resolved", True, False), ("Closed", True, False)],
     ["Incident", "Service Request", "Problem", "Change"]),
    ("Projects",
     [("New", False, True), ("Planning", False, False), ("In Progress", False, False), ("On Hold", False, False),
      ("Completed", True, False)],
     ["Project Task"]),
    ("Alerts",
     [("New", False, True), ("Acknowledged", False, False), ("Investigating", False, False),
      ("Closed", True, False)],
     ["Monitoring Alert"]),
]
PRIORITIES = [("Priority 1 - Critical", False), ("Priority 2 - High", False), ("Priority 3 - Medium", True),
              ("Priority 4 - Low", False)]

SERVICE_SUMMARIES = [
    "Outlook keeps asking for my password", "Printer on the 2nd floor is offline", "VPN drops every hour",
    "New hire onboarding: {person}", "Cannot open shared drive S:", "Teams calls have no audio",
    "Laptop very slow since the update", "Please reset MFA for {person}", "Wi-Fi in the meeting room is down",
    "Request: new monitor for {person}", "Scanner sends e-mails to nowhere", "Password expired, locked out",
    "QuickBooks won't start", "Phishing e-mail received, please check", "Offboarding: {person}",
    "OneDrive not syncing", "Install Adobe Acrobat for {person}", "Calendar invites not arriving",
]
PROJECT_SUMMARIES = ["Migrate file server to SharePoint", "Replace core switch", "Windows 11 rollout phase {n}",
                     "Firewall firmware upgrade", "Backup retention review", "Office move: cabling and Wi-Fi"]
ALERT_SUMMARIES = ["Disk space low on {host} (C: 92%)", "{host} is offline", "Backup job failed on {host}",
                   "High CPU on {host} for 15 minutes", "Certificate expiring on {host} in 14 days",
                   "AV: threat quarantined on {host}"]
ACKS = ["Thanks for reporting this. I'm looking into it now.", "Thanks, I've picked this up and will update you shortly.",
        "Got it. I'm on this now and will keep you posted."]
QUESTIONS = ["Could you send a screenshot of the error?", "I've applied a fix; can you try again and let me know?",
             "Could you restart the laptop and tell me whether it still happens?",
             "Which printer exactly? There are two on that floor."]
FIXED = ["This should be working again. Please let us know if not.", "I've applied a fix; it is working on our side now.",
         "Done. You should see the change after your next sign-in."]
TECH_INTERNAL = ["Checked event log, repeated auth failures from the old phone.", "Escalated to vendor support.",
                 "Root cause: expired certificate on the RADIUS server.", "Same issue as last month at this site; "
                 "see the KB article.", "Remote session: cleared the cached credentials, testing now."]
CUSTOMER_MIDWAY = ["Still happening, unfortunately.", "Screenshot attached.", "It happened again this morning."]
CUSTOMER_THANKS = ["Thanks, that worked!", "It's fine now, you can close it.", "All good now, thank you."]
RESOLUTIONS = ["Reset the credential cache and re-added the account.", "Replaced the toner and cleared the queue.",
               "Updated the driver and rebooted.", "Extended the volume and cleaned temp files."]
ALERT_NOTES = {"ack": "Acknowledged; checking the device now.",
               "working": "Investigating: the service stopped after last night's patching.",
               "closed": "Alert cleared after the service restart."}
PROJECT_NOTES = {"hold": ["Waiting for parts, ETA Thursday.", "On hold until the customer's month-end close."],
                 "planning": ["Drafted the plan; reviewing it with the customer next week."]}
ATTACHMENTS = [("screenshot.png", "image/png"), ("error-log.txt", "text/plain"), ("invoice.pdf", "application/pdf")]
MEMBER_LOAD = [5, 4, 4, 3, 2]  # who takes how much of the work (Emil is part-time)

Event = dict[str, Any]


def generate(seed: int, anchor: datetime, *, tickets: int = 300) -> dict[str, Any]:
    """The whole initial state of a sandbox PSA; the same (seed, anchor) always gives the same data."""
    rng = random.Random(seed)
    state: dict[str, Any] = {"seed": seed, "anchor": iso(anchor), "next_id": 1, "companies": [], "contacts": [],
                             "members": [], "boards": [], "statuses": [], "priorities": [], "types": [],
                             "tickets": [], "notes": [], "time_entries": [], "attachments": []}

    def new_id() -> int:
        state["next_id"] += 1
        return int(state["next_id"]) - 1

    for ident, name in COMPANIES:
        company = {"id": new_id(), "identifier": ident, "name": name, "active": True}
        state["companies"].append(company)
        domain = ident.lower() + ".example"
        for _ in range(rng.randint(2, 5)):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            state["contacts"].append({
                "id": new_id(), "company_id": company["id"], "first_name": first, "last_name": last,
                "email": f"{first.lower()}.{last.lower()}@{domain}", "phone": f"+1 555 {rng.randint(1000, 9999)}",
                "active": True})
    for ident, name in MEMBERS:
        state["members"].append({"id": new_id(), "identifier": ident, "name": name,
                                 "email": f"{ident}@{MEMBER_DOMAIN}", "active": True})
    for board_name, statuses, types in BOARDS:
        board = {"id": new_id(), "name": board_name, "active": True}
        state["boards"].append(board)
        for order, (sname, closed, default) in enumerate(statuses):
            state["statuses"].append({"id": new_id(), "board_id": board["id"], "name": sname, "closed": closed,
                                      "default": default, "sort": order, "active": True})
        for tname in types:
            state["types"].append({"id": new_id(), "board_id": board["id"], "name": tname})
    for order, (pname, default) in enumerate(PRIORITIES):
        state["priorities"].append({"id": new_id(), "name": pname, "sort": order + 1, "default": default})

    gen = _Tickets(state, rng, anchor)
    n_open = max(1, round(tickets * OPEN_SHARE)) if tickets >= 3 else tickets
    specs = [gen.open_ticket(plan) for plan in plan_open_desk(rng, n_open)]
    specs += [gen.closed_ticket() for _ in range(tickets - n_open)]
    specs.sort(key=lambda s: (s[0]["created_at"], s[0]["summary"]))
    child_id = ((FIRST_TICKET + tickets) // 1000 + 1) * 1000 + 1  # notes, time and files: their own range
    for number, (ticket, events) in enumerate(specs, start=FIRST_TICKET):
        ticket["id"] = number
        state["tickets"].append(ticket)
        for event in sorted(events, key=lambda e: e["at"]):
            child_id = _materialize(state, ticket, event, child_id)
    state["next_id"] = max(child_id, FIRST_TICKET + tickets)
    return state


def _materialize(state: dict[str, Any], ticket: dict[str, Any], e: Event, record_id: int) -> int:
    at = iso(e["at"])
    if e["type"] == "note":
        state["notes"].append({"id": record_id, "ticket_id": ticket["id"], "created_at": at, "text": e["text"],
                               "visibility": e["visibility"], "member_id": e.get("member_id"),
                               "contact_id": e.get("contact_id"), "emailed_contact": False})
    elif e["type"] == "time":
        state["time_entries"].append({"id": record_id, "ticket_id": ticket["id"], "member_id": e["member_id"],
                                      "minutes": e["minutes"], "started_at": at, "notes": e["text"],
                                      "billable": e["billable"]})
    else:
        state["attachments"].append({"id": record_id, "ticket_id": ticket["id"], "filename": e["filename"],
                                     "content_type": e["content_type"], "size": e["size"], "sha256": None,
                                     "title": "", "created_at": at})
    return record_id + 1


class _Tickets:
    """Builds one ticket and its thread at a time: (ticket record without id, events)."""

    def __init__(self, state: dict[str, Any], rng: random.Random, anchor: datetime) -> None:
        self.state, self.rng, self.anchor = state, rng, anchor
        self.boards = {b["name"]: b for b in state["boards"]}
        self.priorities = {p["name"]: p for p in state["priorities"]}

    # ------------------------------------------------------------ pieces

    def _status(self, board: str, name: str) -> dict[str, Any]:
        bid = self.boards[board]["id"]
        return next(s for s in self.state["statuses"] if s["board_id"] == bid and s["name"] == name)

    def _owner(self) -> dict[str, Any]:
        return self.rng.choices(self.state["members"], weights=MEMBER_LOAD[:len(self.state["members"])])[0]

    def _base(self, kind: str, board: str, status: str, created: datetime, owner: dict[str, Any] | None,
              priority: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        rng = self.rng
        company = rng.choice(self.state["companies"])
        contacts = [c for c in self.state["contacts"] if c["company_id"] == company["id"]]
        contact = None if kind.startswith("alert") else rng.choice(contacts)
        person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        host = f"{company['identifier'][:3]}-{rng.choice(['SRV', 'WS', 'NAS', 'DC'])}{rng.randint(1, 30):02d}"
        if board == "Alerts":
            summary, source = rng.choice(ALERT_SUMMARIES).format(host=host), "alert"
            description = f"{summary}.\n\nRaised by the RMM monitor."
        elif board == "Projects":
            summary, source = rng.choice(PROJECT_SUMMARIES).format(n=rng.randint(1, 4)), "manual"
            description = f"{summary}.\n\nScoped with {contacts[0]['first_name']}."
        else:
            summary, source = rng.choice(SERVICE_SUMMARIES).format(person=person), \
                rng.choice(["email", "email", "portal", "phone"])
            assert contact is not None
            description = f"{summary}.\n\nReported by {contact['first_name']}."
        types = [t for t in self.state["types"] if t["board_id"] == self.boards[board]["id"]]
        st = self._status(board, status)
        ticket = {"id": 0, "summary": summary, "description": description, "company_id": company["id"],
                  "contact_id": contact["id"] if contact else None, "board_id": self.boards[board]["id"],
                  "status_id": st["id"], "priority_id": self.priorities[priority]["id"],
                  "type_id": rng.choice(types)["id"], "owner_id": owner["id"] if owner else None, "source": source,
                  "created_at": iso(created), "updated_at": iso(created), "closed_at": None, "responded_at": None,
                  "marker": None, "deleted": False}
        return ticket, contact

    @staticmethod
    def _tech(at: datetime, text: str, member: dict[str, Any], visibility: str = "public") -> Event:
        return {"type": "note", "at": at, "text": text, "visibility": visibility, "member_id": member["id"]}

    @staticmethod
    def _customer(at: datetime, text: str, contact: dict[str, Any]) -> Event:
        return {"type": "note", "at": at, "text": text, "visibility": "public", "contact_id": contact["id"]}

    def _time(self, at: datetime, member: dict[str, Any]) -> Event:
        return {"type": "time", "at": at, "member_id": member["id"], "text": self.rng.choice(TECH_INTERNAL),
                "minutes": self.rng.choice([15, 15, 30, 30, 45, 60, 90]), "billable": self.rng.random() < 0.85}

    def _file(self, at: datetime, name: str = "screenshot.png", ctype: str = "image/png") -> Event:
        return {"type": "file", "at": at, "filename": name, "content_type": ctype,
                "size": self.rng.randint(20_000, 900_000)}

    @staticmethod
    def _finish(ticket: dict[str, Any], events: list[Event], *, responded: datetime | None,
                closed: datetime | None = None, last: datetime | None = None) -> tuple[dict[str, Any], list[Event]]:
        times = [e["at"] for e in events if e["type"] != "time"] + [t for t in (closed, last) if t is not None]
        if times:
            ticket["updated_at"] = iso(max(times))
        ticket["responded_at"] = iso(responded) if responded else None
        ticket["closed_at"] = iso(closed) if closed else None
        return ticket, events

    # ------------------------------------------------------------ the desk at the anchor

    def open_ticket(self, plan: Plan) -> tuple[dict[str, Any], list[Event]]:
        rng, now = self.rng, self.anchor
        priority = priority_for(rng, plan.kind, list(self.priorities))
        first, resolve = TARGETS[priority]
        paused = plan.kind in ("waiting", "scheduled", "project")
        pause_at = business_back(now, rng.uniform(0.5, 14) * 3600) if paused else now
        answered = plan.kind not in ("new", "alert_new")
        active = plan.used * (resolve if answered else first)  # business seconds the clock has run
        created = business_back(pause_at, active)
        owner = self._owner() if answered else None
        ticket, contact = self._base(plan.kind, plan.board, plan.status, created, owner, priority)
        events: list[Event] = []
        at: Callable[[float], datetime] = lambda share: business_forward(created, share * active)  # noqa: E731
        if not answered:
            if contact is not None and plan.band != "within" and rng.random() < 0.7:
                events.append(self._customer(at(0.8), "Any update on this?", contact))
            return self._finish(ticket, events, responded=None)
        assert owner is not None
        responded = business_forward(created, rng.uniform(0.1, 0.6) * min(first, active * 0.3))
        if plan.kind.startswith("alert"):
            events.append(self._tech(responded, ALERT_NOTES["ack"], owner, "internal"))
            if plan.kind == "alert_working":
                events.append(self._tech(at(0.7), ALERT_NOTES["working"], owner, "internal"))
            return self._finish(ticket, events, responded=responded)
        if plan.kind.startswith("project"):
            notes = PROJECT_NOTES["hold" if plan.kind == "project" else "planning"]
            events += [self._tech(responded, "Kick-off done; scope agreed.", owner, "internal"),
                       self._tech(pause_at if paused else at(0.8), rng.choice(notes), owner, "internal")]
            return self._finish(ticket, events, responded=responded)
        assert contact is not None
        events += [self._tech(responded, rng.choice(ACKS), owner), self._time(responded, owner)]
        if rng.random() < 0.5:
            events.append(self._tech(at(0.5), rng.choice(TECH_INTERNAL), owner, "internal"))
        if plan.kind == "waiting":
            events.append(self._tech(pause_at, rng.choice(QUESTIONS), owner))
        elif plan.kind == "scheduled":
            events += [self._tech(at(0.8), "I can connect remotely tomorrow at 10:00; does that suit you?", owner),
                       self._customer(pause_at, "Sure, 10:00 works for me.", contact)]
        else:  # work in progress: the customer has answered, or is chasing us
            said = "Any update on this?" if plan.band == "breached" else rng.choice(CUSTOMER_MIDWAY)
            events.append(self._customer(at(0.85), said, contact))
            if said == "Screenshot attached.":
                events.append(self._file(at(0.85)))
        return self._finish(ticket, events, responded=responded)

    # ------------------------------------------------------------ history

    def closed_ticket(self) -> tuple[dict[str, Any], list[Event]]:
        rng = self.rng
        kind = rng.choices(["service", "alert", "project"], weights=[75, 18, 7])[0]
        priority = priority_for(rng, kind, list(self.priorities))
        first, resolve = TARGETS[priority]
        took = resolve * (rng.uniform(0.05, 0.9) if rng.random() < 0.88 else rng.uniform(1.05, 1.6))
        gap = rng.uniform(1, HISTORY_BUSINESS_HOURS) * 3600  # business time since it was closed
        created = business_back(self.anchor, took + gap)
        closed = business_forward(created, took)
        board, status = {"service": ("Service Desk", "Resolved" if gap < 27 * 3600 else "Closed"),
                         "alert": ("Alerts", "Closed"), "project": ("Projects", "Completed")}[kind]
        owner = self._owner()
        ticket, contact = self._base(kind, board, status, created, owner, priority)
        responded = business_forward(created, rng.uniform(0.05, 0.8) * min(first, took * 0.3))
        at: Callable[[float], datetime] = lambda share: business_forward(created, share * took)  # noqa: E731
        events: list[Event] = [self._time(at(0.3), owner)]
        if kind == "alert":
            events.append(self._tech(closed, ALERT_NOTES["closed"], owner, "internal"))
            return self._finish(ticket, events, responded=responded, closed=closed)
        if kind == "project":
            events += [self._tech(responded, "Kick-off done; scope agreed.", owner, "internal"),
                       self._tech(closed, "Project completed and signed off.", owner, "resolution")]
            return self._finish(ticket, events, responded=responded, closed=closed)
        assert contact is not None
        events.append(self._tech(responded, rng.choice(ACKS), owner))
        if rng.random() < 0.12:
            events += [self._customer(at(0.3), "Screenshot attached.", contact), self._file(at(0.3))]
        if rng.random() < 0.5:
            events.append(self._tech(at(0.5), rng.choice(TECH_INTERNAL), owner, "internal"))
        if rng.random() < 0.3:
            events.append(self._time(at(0.6), owner))
        events.append(self._tech(at(0.8), rng.choice(FIXED), owner))
        if rng.random() < 0.6:
            events.append(self._customer(at(0.9), rng.choice(CUSTOMER_THANKS), contact))
        if rng.random() < 0.8:
            events.append(self._tech(closed, rng.choice(RESOLUTIONS), owner, "resolution"))
        return self._finish(ticket, events, responded=responded, closed=closed)
