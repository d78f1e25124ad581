"""Actions (notes, replies, time), attachments, timesheet events and webhooks of the fake HaloPSA server.

Action ids are numbered per ticket (1 is the "Ticket logged" system action), as in Halo.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import TYPE_CHECKING, Any

from tests.fakes.halopsa_http import (
    FakeRequest,
    FakeResponse,
    HaloHttpError,
    exception_error,
    halo_date,
    json_response,
    string_error,
)
from tests.fakes.halopsa_routes import (
    as_date,
    as_float,
    as_int,
    body_items,
    date_param,
    int_param,
    route,
    saved,
    truthy,
)
from tests.fakes.halopsa_tickets import ticket_or_404

if TYPE_CHECKING:
    from tests.fakes.halopsa import FakeHalo

NO_ACCESS = "You do not have access to this Action at the moment"
DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?;base64,(?P<data>.*)$", re.S)
ACTION_DATES = ("datetime", "actiondatecreated", "actionarrivaldate", "actioncompletiondate")


def action_out(fake: FakeHalo, a: dict[str, Any], *, html: bool = False) -> dict[str, Any]:
    """A stored action as Halo shows it."""
    out = {k: v for k, v in a.items() if not k.startswith("_") and k != "note_html"}
    for name in ACTION_DATES:
        out[name] = halo_date(a.get(name))
    if html:
        out["note_html"] = a.get("note_html") or ""
    if a.get("_cf"):
        out["customfields"] = fake.customfields_out(a["_cf"], "action")
    return out


# ---------------------------------------------------------------- actions


@route("GET", "/api/Actions")
def list_actions(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """GET /Actions: a ticket's actions (or all), filtered, newest first."""
    ticket_id = int_param(req, "ticket_id")
    pool = [a for tid, acts in fake.actions.items() if ticket_id in (None, tid) for a in acts.values()]
    q = req.query
    if truthy(q.get("excludesys")):
        pool = [a for a in pool if not a["_system"]]
    if truthy(q.get("excludeprivate")):
        pool = [a for a in pool if not a["hiddenfromuser"]]
    if truthy(q.get("agentonly")):
        pool = [a for a in pool if a["who_agentid"]]
    if truthy(q.get("conversationonly")):
        pool = [a for a in pool if not a["_system"] and not a["hiddenfromuser"]]
    if truthy(q.get("timeentriesonly")):
        pool = [a for a in pool if (a.get("timetaken") or 0) > 0]
    if truthy(q.get("importantonly")):
        pool = [a for a in pool if a.get("important")]
    start, end = date_param(req, "startdate"), date_param(req, "enddate")
    pool = [a for a in pool if (start is None or a["datetime"] >= start) and (end is None or a["datetime"] <= end)]
    pool.sort(key=lambda a: (a["datetime"], a["ticket_id"], a["id"]), reverse=True)  # newest first
    count = int_param(req, "count")
    rows = [action_out(fake, a, html=truthy(q.get("includehtmlnote"))) for a in pool[:count or None]]
    return json_response({"record_count": len(rows), "actions": rows})


@route("GET", "/api/Actions/{id}")
def get_action(fake: FakeHalo, req: FakeRequest, id: str) -> FakeResponse:  # noqa: A002
    """GET /Actions/{id}?ticket_id=: one action (ids are per ticket)."""
    ticket_id = int_param(req, "ticket_id")
    action = fake.actions.get(ticket_id or 0, {}).get(int(id) if id.isdigit() else -1)
    if action is None:  # action ids are per ticket: without ticket_id there is nothing to find
        raise exception_error(404, f"Action {id} not found.")
    return json_response(action_out(fake, action, html=True))


def _outcome(fake: FakeHalo, item: dict[str, Any], i: int) -> dict[str, Any]:
    oid = as_int(item, "outcome_id", i)
    if oid is not None:
        outcome = fake.outcomes.get(oid)
    elif item.get("outcome"):
        outcome = next((o for o in fake.outcomes.values()
                        if o["outcome"].lower() == str(item["outcome"]).lower()), None)
    else:
        raise exception_error(400, "Please select an action type (outcome).")
    if outcome is None or outcome["id"] not in fake.api_outcomes:
        raise string_error(400, NO_ACCESS)
    return outcome


@route("POST", "/api/Actions")
def post_actions(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """POST /Actions: add (or, with `id`, edit) actions; validated before any is saved."""
    items = body_items(req)
    plans = []
    for i, item in enumerate(items):
        t = ticket_or_404(fake, as_int(item, "ticket_id", i, required=True) or 0)
        existing = as_int(item, "id", i)
        if existing is not None and existing not in fake.actions.get(t["id"], {}):
            raise exception_error(404, f"Action {existing} not found on ticket {t['id']}.")
        outcome: dict[str, Any] = _outcome(fake, item, i) if existing is None else {}
        agent = as_int(item, "who_agentid", i)
        if agent is not None and agent not in fake.agents:
            raise exception_error(400, f"Agent {agent} does not exist.")
        status = as_int(item, "new_status", i)
        if status is not None and status not in fake.allowed_statuses(t["tickettype_id"]):
            raise exception_error(400, f"Status {status} is not valid for this ticket type.")
        numbers = {n: as_float(item, n, i) for n in ("timetaken", "nonbilltime")}
        dates = {n: as_date(item, n, i) for n in ("actionarrivaldate", "actioncompletiondate")}
        plans.append((item, t, existing, outcome, agent, status, numbers, dates))
    out = []
    for item, t, existing, outcome, agent, status, numbers, dates in plans:
        if existing is not None:
            a = fake.actions[t["id"]][existing]
            a.update({k: item[k] for k in ("note", "hiddenfromuser", "important") if k in item})
            a.update({k: v for k, v in numbers.items() if v is not None})
            t["last_update"] = fake.clock.stamp()
        else:
            a = fake.log_action(
                t, note=str(item.get("note") or ""), outcome_id=outcome["id"],
                agent_id=agent or fake.api_agent_id,
                hidden=bool(item["hiddenfromuser"]) if "hiddenfromuser" in item else outcome["hidefromuser"],
                timetaken=numbers["timetaken"] or 0.0, nonbilltime=numbers["nonbilltime"] or 0.0,
                billable=item.get("actisbillable"), arrival=dates["actionarrivaldate"],
                completion=dates["actioncompletiondate"], new_status=status, guid=item.get("guid"),
                cf=fake.customfields_in(item.get("customfields"), "action"), note_html=item.get("note_html"))
            send = bool(item["sendemail"]) if "sendemail" in item else bool(outcome["sendemail"])
            if send:
                to = item.get("emailto") or fake.users.get(t.get("user_id") or 0, {}).get("emailaddress")
                fake.send_email(t, to=to, cc=item.get("emailcc"), subject=item.get("emailsubject"),
                                body=a["note"], action_id=a["id"], hidden=a["hiddenfromuser"])
                a.update(emailto=to or "", emailcc=item.get("emailcc") or "", sendemail=True)
            fake.fire("action_added", t, suppressed=bool(item.get("dont_do_rules")))
        out.append(action_out(fake, a))
    return saved(out)


# ---------------------------------------------------------------- attachments


def attachment_out(a: dict[str, Any]) -> dict[str, Any]:
    """A stored attachment's metadata as Halo shows it."""
    out = {k: v for k, v in a.items() if not k.startswith("_")}
    out["datecreated"] = halo_date(a["datecreated"])
    return out


@route("GET", "/api/Attachment")
def list_attachments(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """GET /Attachment: a ticket's (or action's) attachments."""
    ticket_id, action_id = int_param(req, "ticket_id"), int_param(req, "action_id")
    if action_id is not None and ticket_id is None:
        raise exception_error(400, "ticket_id is required when filtering by action_id.")
    rows = [a for a in fake.attachments.values() if ticket_id in (None, a["ticket_id"])
            and action_id in (None, a["action_id"])]
    rows = [attachment_out(a) for a in sorted(rows, key=lambda a: a["id"])]
    return json_response({"record_count": len(rows), "attachments": rows})


@route("GET", "/api/Attachment/{id}")
def get_attachment(fake: FakeHalo, req: FakeRequest, id: str) -> FakeResponse:  # noqa: A002
    """GET /Attachment/{id}: the file, or its metadata with includedetails=true."""
    a = fake.attachments.get(int(id) if id.isdigit() else -1)
    if a is None:
        raise exception_error(404, f"Attachment {id} not found.")
    if truthy(req.query.get("includedetails")):
        return json_response(attachment_out(a))
    return FakeResponse(200, fake.attachment_content[a["id"]],
                        {"content-type": a["content_type"],
                         "content-disposition": f'attachment; filename="{a["filename"]}"'})


@route("DELETE", "/api/Attachment/{id}")
def delete_attachment(fake: FakeHalo, req: FakeRequest, id: str) -> FakeResponse:  # noqa: A002
    """DELETE /Attachment/{id}."""
    if fake.attachments.pop(int(id) if id.isdigit() else -1, None) is None:
        raise exception_error(404, f"Attachment {id} not found.")
    return FakeResponse(200)


@route("POST", "/api/Attachment")
def post_attachments(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """POST /Attachment: files as base64 data URIs."""
    items = body_items(req)
    plans = []
    for i, item in enumerate(items):
        t = ticket_or_404(fake, as_int(item, "ticket_id", i, required=True) or 0)
        if not str(item.get("filename") or "").strip():
            raise exception_error(400, "Please enter a file name.")
        m = DATA_URI.match(str(item.get("data_base64") or ""))
        if m is None:  # djpsa: the data-URI prefix is required
            raise exception_error(400, "The attachment data is not a valid base64 data URI.")
        try:
            content = base64.b64decode(m.group("data"), validate=True)
        except (binascii.Error, ValueError):
            raise exception_error(400, "The attachment data is not valid base64.") from None
        if len(content) > fake.max_attachment_bytes:
            raise HaloHttpError(413, text="Request Entity Too Large")
        plans.append((item, t, content, m.group("type") or "application/octet-stream", as_int(item, "action_id", i)))
    out = []
    for item, t, content, ctype, action_id in plans:
        aid = fake.next_id("attachment", 7001)
        now = fake.clock.stamp()
        fake.attachments[aid] = {
            "id": aid, "ticket_id": t["id"], "action_id": action_id or 0, "filename": item["filename"],
            "filesize": len(content), "content_type": ctype, "isimage": ctype.startswith("image/"),
            "showforusers": bool(item.get("showforusers", False)), "third_party_id": item.get("third_party_id"),
            "note": item.get("note") or "", "type": 0, "unique_id": aid, "datecreated": now}
        fake.attachment_content[aid] = content
        t["last_update"] = now
        out.append(attachment_out(fake.attachments[aid]))
    return saved(out)


# ---------------------------------------------------------------- timesheet events (time as its own record)


@route("POST", "/api/TimesheetEvent")
def post_timesheet_events(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """A time entry that, with a ticket, also logs a hidden time action on it (djpsa)."""
    out = []
    for i, item in enumerate(body_items(req)):
        start, end = as_date(item, "start_date", i), as_date(item, "end_date", i)
        if start is None or end is None or end < start:
            raise exception_error(400, "A timesheet event needs a start date before its end date.")
        agent = as_int(item, "agent_id", i) or fake.api_agent_id
        ticket_id = as_int(item, "ticket_id", i)
        event: dict[str, Any] = {"id": fake.next_id("event", 90001), "agent_id": agent, "ticket_id": ticket_id or 0,
                 "start_date": halo_date(start), "end_date": halo_date(end), "note": item.get("note") or "",
                 "timetaken": round((end - start).total_seconds() / 3600, 4), "event_type": 0, "action_number": 0}
        if ticket_id:
            t = ticket_or_404(fake, ticket_id)
            a = fake.log_action(t, note=event["note"], outcome_id=fake.time_outcome_id, agent_id=agent, hidden=True,
                                timetaken=event["timetaken"], arrival=start, completion=end)
            event["action_number"] = a["id"]
        fake.timesheet_events[event["id"]] = event
        out.append(event)
    return saved(out)


@route("GET", "/api/TimesheetEvent")
def list_timesheet_events(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """GET /TimesheetEvent (bare array)."""
    agent = int_param(req, "agent_id")
    return json_response([e for e in fake.timesheet_events.values() if agent in (None, e["agent_id"])])


# ---------------------------------------------------------------- webhooks (GUID ids) and notifications


@route("GET", "/api/Webhook")
def list_webhooks(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """GET /Webhook (bare array)."""
    return json_response(list(fake.webhooks.values()))


@route("GET", "/api/Webhook/{id}")
def get_webhook(fake: FakeHalo, req: FakeRequest, id: str) -> FakeResponse:  # noqa: A002
    """GET /Webhook/{guid}."""
    if id.lower() not in fake.webhooks:
        raise exception_error(404, f"Webhook {id} not found.")
    return json_response(fake.webhooks[id.lower()])


@route("DELETE", "/api/Webhook/{id}")
def delete_webhook(fake: FakeHalo, req: FakeRequest, id: str) -> FakeResponse:  # noqa: A002
    """DELETE /Webhook/{guid}."""
    if fake.webhooks.pop(id.lower(), None) is None:
        raise exception_error(404, f"Webhook {id} not found.")
    return FakeResponse(200)


@route("POST", "/api/Webhook")
def post_webhooks(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """POST /Webhook: create or update (GUID ids)."""
    out = []
    for item in body_items(req):
        wid = str(item.get("id") or uuid.uuid4()).lower()
        hook = {**fake.webhooks.get(wid, {"active": True, "type": 0, "method": 0, "authentication_type": 0}),
                **{k: v for k, v in item.items() if k != "id"}, "id": wid}
        fake.webhooks[wid] = hook
        out.append(hook)
    return saved(out)


@route("POST", "/api/Notification")
def post_notifications(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """POST /Notification: subscribe a webhook to an event number."""
    out = []
    for i, item in enumerate(body_items(req)):
        hook = str(item.get("webhook_id") or "").lower()
        if hook not in fake.webhooks:
            raise exception_error(400, f"Webhook {hook or '(none)'} not found.")
        note = {**item, "id": fake.next_id("notification", 301), "webhook_id": hook,
                "eventno": as_int(item, "eventno", i) or 0}
        fake.notifications[note["id"]] = note
        out.append(note)
    return saved(out)
