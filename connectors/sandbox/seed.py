"""The sandbox's generated demo data: a pure function of (seed, anchor time).

Records are the sandbox's own "vendor" shape (plain dicts with int ids and ISO timestamps), the same
shape the server keeps and persists; connectors/sandbox/mapping.py turns them into canonical models.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from connectors.sandbox.dialect import iso

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
TECH_PUBLIC = ["Thanks for reporting this. I'm looking into it now.", "I've applied a fix; can you try again?",
               "Could you send a screenshot of the error?", "I'll connect remotely at 2pm if that suits you.",
               "This should be working again. Please let us know if not."]
TECH_INTERNAL = ["Checked event log, repeated auth failures from the old phone.", "Escalating to vendor support.",
                 "Root cause: expired certificate on the RADIUS server.", "Waiting for parts, ETA Thursday.",
                 "Same issue as last month at this site; see the KB article."]
CUSTOMER_REPLIES = ["Thanks, that worked!", "Still happening, unfortunately.", "Sure, 2pm works for me.",
                    "Screenshot attached.", "Any update on this?", "It's fine now, you can close it."]
RESOLUTIONS = ["Reset the credential cache and re-added the account.", "Replaced the toner and cleared the queue.",
               "Updated the driver and rebooted.", "Extended the volume and cleaned temp files."]
ATTACHMENTS = [("screenshot.png", "image/png"), ("error-log.txt", "text/plain"), ("invoice.pdf", "application/pdf")]


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

    for _ in range(tickets):
        _ticket(state, rng, anchor, new_id)
    return state


def _ticket(state: dict[str, Any], rng: random.Random, anchor: datetime, new_id: Any) -> None:
    board = rng.choices(state["boards"], weights=[7, 1, 2])[0]
    statuses = [s for s in state["statuses"] if s["board_id"] == board["id"]]
    company = rng.choice(state["companies"])
    contacts = [c for c in state["contacts"] if c["company_id"] == company["id"]]
    contact = rng.choice(contacts)
    members = state["members"]
    person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    host = f"{company['identifier'][:3]}-{rng.choice(['SRV', 'WS', 'NAS', 'DC'])}{rng.randint(1, 30):02d}"
    if board["name"] == "Alerts":
        summary, source = rng.choice(ALERT_SUMMARIES).format(host=host), "alert"
    elif board["name"] == "Projects":
        summary, source = rng.choice(PROJECT_SUMMARIES).format(n=rng.randint(1, 4)), "manual"
    else:
        summary, source = rng.choice(SERVICE_SUMMARIES).format(person=person), rng.choice(["email", "portal", "phone"])
    types = [t for t in state["types"] if t["board_id"] == board["id"]]
    age = timedelta(minutes=rng.randint(10, 60 * 24 * 60))
    created = (anchor - age).replace(microsecond=0)
    # Older tickets are more likely closed.
    closed_share = min(0.9, age.days / 30)
    status = rng.choice([s for s in statuses if s["closed"]] if rng.random() < closed_share
                        else [s for s in statuses if not s["closed"]])
    owner = rng.choice(members) if status["name"] != "New" or rng.random() < 0.3 else None
    ticket = {
        "id": new_id(), "summary": summary, "description": f"{summary}.\n\nReported by {contact['first_name']}.",
        "company_id": company["id"], "contact_id": contact["id"], "board_id": board["id"], "status_id": status["id"],
        "priority_id": rng.choices(state["priorities"], weights=[1, 3, 8, 4])[0]["id"],
        "type_id": rng.choice(types)["id"], "owner_id": owner["id"] if owner else None, "source": source,
        "created_at": iso(created), "updated_at": iso(created), "closed_at": None, "marker": None, "deleted": False,
    }
    state["tickets"].append(ticket)
    when = created
    for _ in range(rng.randint(0, 5)):
        when = min(when + timedelta(minutes=rng.randint(5, 60 * 24 * 2)), anchor - timedelta(minutes=1))
        roll = rng.random()
        tech = owner or rng.choice(members)
        if roll < 0.4:
            note = {"text": rng.choice(TECH_PUBLIC), "visibility": "public", "member_id": tech["id"], "contact_id": None}
        elif roll < 0.7:
            note = {"text": rng.choice(TECH_INTERNAL), "visibility": "internal", "member_id": tech["id"],
                    "contact_id": None}
        else:
            note = {"text": rng.choice(CUSTOMER_REPLIES), "visibility": "public", "member_id": None,
                    "contact_id": contact["id"]}
        state["notes"].append({"id": new_id(), "ticket_id": ticket["id"], "created_at": iso(when),
                               "emailed_contact": False, **note})
        ticket["updated_at"] = iso(max(when, created))
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3]) if owner else 0):
        start = created + timedelta(minutes=rng.randint(5, 600))
        if start < anchor:
            state["time_entries"].append({
                "id": new_id(), "ticket_id": ticket["id"], "member_id": owner["id"] if owner else None,
                "minutes": rng.choice([15, 15, 30, 30, 45, 60, 90]), "started_at": iso(start),
                "notes": rng.choice(TECH_INTERNAL), "billable": rng.random() < 0.8})
    if rng.random() < 0.05:
        name, ctype = rng.choice(ATTACHMENTS)
        state["attachments"].append({"id": new_id(), "ticket_id": ticket["id"], "filename": name,
                                     "content_type": ctype, "size": rng.randint(2_000, 900_000),
                                     "sha256": None, "title": "", "created_at": iso(created)})
    if status["closed"]:
        closed_at = min(when + timedelta(hours=rng.randint(1, 48)), anchor - timedelta(minutes=1))
        closed_at = max(closed_at, created)
        if rng.random() < 0.7:
            state["notes"].append({"id": new_id(), "ticket_id": ticket["id"], "created_at": iso(closed_at),
                                   "text": rng.choice(RESOLUTIONS), "visibility": "resolution",
                                   "member_id": (owner or rng.choice(members))["id"], "contact_id": None,
                                   "emailed_contact": False})
        ticket["closed_at"] = iso(closed_at)
        ticket["updated_at"] = iso(closed_at)
