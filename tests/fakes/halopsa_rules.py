"""Tenant rules of the fake HaloPSA server that the route handlers share (a mixin of FakeHalo): ids, which
statuses a ticket type allows, SLA hours, custom fields, and logging an action with what it implies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from tests.fakes.halopsa_http import HaloClock

# Notification event numbers per fake event: 61 "Ticket updated" (djpsa), 3 a new ticket [unverified].
EVENT_NUMBERS = {"ticket_created": {3}, "ticket_updated": {61}, "action_added": {61}}


class HaloRules:
    """The state the rules read (filled by FakeHalo.__init__ and the seed) and the rules themselves."""

    _ids: Counter[str]
    agents: dict[int, dict[str, Any]]
    users: dict[int, dict[str, Any]]
    statuses: dict[int, dict[str, Any]]
    policies: list[dict[str, Any]]
    ticket_types: dict[int, dict[str, Any]]
    outcomes: dict[int, dict[str, Any]]
    custom_fields: dict[int, dict[str, Any]]
    actions: dict[int, dict[int, dict[str, Any]]]
    emails: list[dict[str, Any]]
    automations: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    webhooks: dict[str, dict[str, Any]]
    notifications: dict[int, dict[str, Any]]
    tickets: dict[int, dict[str, Any]]
    clock: HaloClock

    def next_id(self, kind: str, start: int = 1) -> int:
        """The next id of a kind of record."""
        if not self._ids[kind]:
            self._ids[kind] = start - 1
        self._ids[kind] += 1
        return self._ids[kind]

    def status_closed(self, status_id: int) -> bool:
        """Whether a status closes the ticket."""
        return bool(self.statuses.get(status_id, {}).get("_closed"))

    def allowed_statuses(self, ticket_type_id: int) -> set[int]:
        """The status ids valid on a ticket type."""
        tt = self.ticket_types[ticket_type_id]
        ticket_statuses = {s["id"] for s in self.statuses.values() if s["type"] == 0}
        return ticket_statuses if tt["allowall_status"] else set(tt["_allowed"])

    def mandatory_fields(self, ticket_type_id: int) -> list[str]:
        """Field names a new ticket of this type must carry."""
        return [f["fieldname"] for f in self.ticket_types[ticket_type_id]["_fields"] if f.get("technew") == 2]

    def priority_name(self, priority_id: int | None) -> str | None:
        """The name of a priority id (any SLA), None if unknown."""
        return next((p["name"] for p in self.policies if p["priorityid"] == priority_id), None)

    def sla_hours(self, sla_id: int | None, priority_id: int | None) -> tuple[float | None, float | None]:
        """(response, fix) hours of a priority under an SLA."""
        policy = next((p for p in self.policies if p["slaid"] == sla_id and p["priorityid"] == priority_id), None)
        return (policy["responsetime"], policy["fixtime"]) if policy else (None, None)

    def customfields_in(self, items: Any, usage: str) -> dict[int, Any]:
        """Custom field values from a body (`[{id|name, value}]`); unknown fields are ignored."""
        values: dict[int, Any] = {}
        for item in items or []:
            if not isinstance(item, dict):
                continue
            field = next((f for f in self.custom_fields.values() if usage in f["_usage"] and
                          (f["id"] == item.get("id") or f["name"] == item.get("name"))), None)
            if field is not None:
                values[field["id"]] = item.get("value")
        return values

    def customfields_out(self, values: dict[int, Any], usage: str) -> list[dict[str, Any]]:
        """Custom fields as Halo lists them on a record."""
        return [{"id": f["id"], "name": f["name"], "label": f["label"], "value": values.get(f["id"]),
                 "display": str(values.get(f["id"]) or ""), "onlyshowforagents": f["onlyshowforagents"]}
                for f in self.custom_fields.values() if usage in f["_usage"]]

    def log_action(self, t: dict[str, Any], *, note: str, outcome_id: int, agent_id: int = 0, user_id: int = 0,
                   hidden: bool = False, timetaken: float = 0.0, nonbilltime: float = 0.0,
                   billable: Any = None, arrival: datetime | None = None, completion: datetime | None = None,
                   new_status: int | None = None, guid: Any = None, cf: dict[int, Any] | None = None,
                   note_html: Any = None, system: bool = False, at: datetime | None = None) -> dict[str, Any]:
        """Append an action to a ticket (ids per ticket) and apply what it implies."""
        now = at or self.clock.stamp()
        acts = self.actions.setdefault(t["id"], {})
        aid = max(acts, default=0) + 1
        outcome = self.outcomes.get(outcome_id, {})
        who = self.agents[agent_id]["name"] if agent_id else (self.users[user_id]["name"] if user_id else "System")
        try:
            guid_value = str(uuid.UUID(str(guid))) if guid else None  # a client-chosen guid [unverified]
        except ValueError:
            guid_value = None
        action = {"id": aid, "ticket_id": t["id"], "outcome": outcome.get("outcome", ""), "outcome_id": outcome_id,
                  "who": who, "who_type": 1 if agent_id else (2 if user_id else 0), "who_agentid": agent_id,
                  "actionby_agent_id": agent_id, "actionby_user_id": user_id, "datetime": now,
                  "actiondatecreated": now, "note": note, "note_html": note_html or note.replace("\n", "<br>"),
                  "hiddenfromuser": hidden, "important": False, "timetaken": timetaken, "nonbilltime": nonbilltime,
                  "actisbillable": bool(billable) if billable is not None else nonbilltime < timetaken,
                  "actionarrivaldate": arrival, "actioncompletiondate": completion, "sendemail": False,
                  "emailto": "", "emailcc": "", "new_status": new_status or 0,
                  "guid": guid_value or str(uuid.uuid4()), "_system": system, "_cf": cf or {}}
        acts[aid] = action
        if new_status is not None:
            t["status_id"] = new_status
            t["dateclosed"] = (t.get("dateclosed") or now) if self.status_closed(new_status) else None
        if agent_id and not hidden and not system and t.get("responsedate") is None:
            t["responsedate"] = now
        t["lastactiondate"] = t["last_update"] = now
        return action

    def send_email(self, t: dict[str, Any], *, to: Any, subject: Any, body: str, action_id: int | None,
                   hidden: bool, cc: Any = None) -> None:
        """Record an e-mail the tenant would have sent."""
        self.emails.append({"ticket_id": t["id"], "action_id": action_id, "to": to, "cc": cc or "",
                            "subject": subject or f"Update on ticket {t['id']}", "body": body, "hidden": hidden})

    def fire(self, event: str, t: dict[str, Any], *, suppressed: bool) -> None:
        """Record an automation trigger and, unless suppressed, deliver it to subscribed webhooks."""
        self.automations.append({"event": event, "ticket_id": t["id"], "fired": not suppressed})
        if suppressed:
            return
        wanted = EVENT_NUMBERS[event]
        hooks = {n["webhook_id"] for n in self.notifications.values() if n["eventno"] in wanted}
        for hook_id in sorted(hooks):
            hook = self.webhooks.get(hook_id)
            if hook and hook.get("active", True):
                headers, body = self.signed_delivery(hook_id, t["id"])
                self.deliveries.append({"webhook_id": hook_id, "url": hook.get("url"), "event": event,
                                        "headers": headers, "body": body})

    def signed_delivery(self, webhook_id: str, ticket_id: int) -> tuple[dict[str, str], bytes]:
        """(headers, body) of a webhook POST about a ticket: the record under `ticket`; with
        authentication_type 3 the `authentication_header` carries base64(HMAC-SHA256(basic_password, body))
        (djpsa's scheme; [unverified] on a live tenant)."""
        from tests.fakes.halopsa_tickets import ticket_out

        hook = self.webhooks[webhook_id]
        body = json.dumps({"ticket": ticket_out(self, self.tickets[ticket_id], full=True)}).encode()  # type: ignore[arg-type]
        headers = {"content-type": hook.get("content_type") or "application/json"}
        if int(hook.get("authentication_type") or 0) == 3:
            digest = hmac.new(str(hook.get("basic_password") or "").encode(), body, hashlib.sha256).digest()
            headers[str(hook.get("authentication_header") or "Token").lower()] = base64.b64encode(digest).decode()
        return headers, body
