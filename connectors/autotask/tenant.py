"""What an Autotask connector learns from its tenant, cached: picklists (each part on its own), the API user's
resource, service-desk roles, ticket UDF definitions (reference/psa-apis.md §3.3-3.5).

Picklists come from `entityInformation/fields` of Tickets, TicketNotes and TicketAttachments; each part is
fetched and kept on its own, so one that fails keeps its last good value and is named in `problems`
(issue 17 item 4). Writes need the note and attachment parts; a write made before they were ever read
fetches them first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from connectors.autotask import query as aq
from connectors.autotask.client import AtClient
from connectors.autotask.picklists import (
    AtPicklists,
    FieldPicklists,
    canonical_picklists,
    picklists_from_fields,
)
from connectors.base import Picklists, PsaCustomField, PsaNote, Ref
from connectors.errors import PsaAuthError, PsaError, PsaForbidden, PsaValidationError

PICKLIST_TTL = 900.0  # seconds: picklists change rarely; a sync refreshes them explicitly
PARTS = {"ticket": "Tickets", "note": "TicketNotes", "attachment": "TicketAttachments"}
RESOURCE_FIELDS = ["id", "firstName", "lastName", "userName", "email", "isActive", "userType", "licenseType"]


class TenantData:
    """Cached tenant facts of one connection (one instance per connector)."""

    def __init__(self, client: AtClient, username: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.username, self.clock = client, username.lower(), clock
        self.parts: dict[str, FieldPicklists] = {}
        self.problems: dict[str, str] = {}
        self.udfs: list[dict[str, Any]] | None = None
        self._fetched_at = 0.0
        self._api_resource: dict[str, Any] | None = None
        self._roles: dict[str, str | None] = {}
        self._resource_names: dict[str, str] | None = None
        self._contact_names: dict[str, str] = {}
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------ picklists

    async def picks(self, *, fresh: bool = False) -> AtPicklists:
        """The picklists writes and mapping use (fetched when never read or older than the TTL)."""
        stale = self.clock() - self._fetched_at > PICKLIST_TTL
        if fresh or stale or len(self.parts) < len(PARTS):
            async with self._lock:
                if fresh or len(self.parts) < len(PARTS) or self.clock() - self._fetched_at > PICKLIST_TTL:
                    await self._refresh()
        return AtPicklists(**{name: self.parts.get(name, FieldPicklists()) for name in PARTS})

    async def _refresh(self) -> None:
        problems: dict[str, str] = {}
        for name, entity in PARTS.items():
            try:
                self.parts[name] = picklists_from_fields(await self.client.entity_fields(entity))
            except PsaError as exc:
                if _not_a_gap(exc):
                    raise
                problems[name] = f"{entity} picklists: {exc.message}"
        try:
            self.udfs = await self.client.udf_fields("Tickets")
        except PsaError as exc:
            if _not_a_gap(exc):
                raise
            problems["udf"] = f"ticket user-defined fields: {exc.message}"
        self.problems = problems
        if len(self.parts) == len(PARTS):
            self._fetched_at = self.clock()

    async def canonical(self) -> Picklists:
        """Boards (queues), statuses, priorities, types; a part that failed is named in `problems`."""
        picks = await self.picks(fresh=True)
        out = canonical_picklists(picks)
        required = self.required_udfs()
        boards = [replace(b, create_requires=required) for b in out.boards] if required else list(out.boards)
        complete = frozenset({"board", "status", "priority", "type", "category"}) if "ticket" in self.parts \
            else frozenset()
        if "udf" not in self.problems and self.udfs is not None:
            complete |= {"custom_field"}
        fields = [PsaCustomField(name=str(u.get("name")), label=str(u.get("label") or u.get("name")),
                                 required=bool(u.get("isRequired")), active=u.get("isActive") is not False,
                                 read_only=bool(u.get("isReadOnly")))
                  for u in self.udfs or () if u.get("name") and str(u.get("name")).lower() != "deskbridge ref"]
        return replace(out, boards=boards, problems=dict(self.problems), complete=complete, custom_fields=fields)

    def required_udfs(self) -> frozenset[str]:
        """Ticket UDFs the tenant makes mandatory: "custom:<name>" (the create form asks for them by the UDF's
        name, which is what a create writes; core refuses a create without them up front)."""
        return frozenset(f"custom:{u.get('name')}" for u in self.udfs or ()
                         if u.get("isRequired") and str(u.get("name")).lower() != "deskbridge ref")

    def udf_exists(self, name: str) -> bool:
        return any(str(u.get("name", "")).lower() == name.lower() for u in self.udfs or ())

    # ------------------------------------------------------------ resources and names

    async def named(self, notes: list[PsaNote]) -> list[PsaNote]:
        """Notes with their authors' names: resources from one cached read, contacts by one `id in` query for
        those not seen before."""
        if not notes:
            return notes
        if self._resource_names is None:
            rows = await self.client.query_all("Resources", include_fields=RESOURCE_FIELDS)
            self._resource_names = {str(r["id"]): _full_name(r) for r in rows}
        wanted = sorted({n.author.id for n in notes if n.author_is_contact and n.author
                         and n.author.id not in self._contact_names}, key=int)
        if wanted:
            rows = await self.client.query_all("Contacts", [aq.in_("id", [int(i) for i in wanted[:500]])],
                                               include_fields=["id", "firstName", "lastName"])
            self._contact_names.update({str(r["id"]): _full_name(r) for r in rows})
        out = []
        for n in notes:
            names = self._contact_names if n.author_is_contact else self._resource_names
            name = names.get(n.author.id) if n.author else None
            out.append(replace(n, author=Ref(n.author.id, name)) if n.author and name else n)
        return out

    async def api_resource(self) -> dict[str, Any]:
        """The Resources record of the API user (by user name or e-mail)."""
        if self._api_resource is None:
            local = self.username.split("@", 1)[0]
            rows = await self.client.query_all("Resources", [aq.or_(aq.eq("email", self.username),
                                                                    aq.eq("userName", self.username),
                                                                    aq.eq("userName", local))],
                                               include_fields=RESOURCE_FIELDS)
            exact = [r for r in rows if str(r.get("email") or "").lower() == self.username] or rows
            if not exact:
                raise PsaValidationError(f"Autotask has no resource for the API user '{self.username}'.",
                                         fields={"username": "no matching resource"})
            self._api_resource = exact[0]
        return self._api_resource

    async def api_resource_id(self) -> str:
        return str((await self.api_resource())["id"])

    async def default_role(self, resource_id: str) -> str | None:
        """The resource's default service-desk role (assignment and time entries need one)."""
        if resource_id not in self._roles:
            rows = await self.client.query_all("ResourceServiceDeskRoles", [
                aq.eq("resourceID", int(resource_id)), aq.eq("isActive", True)])
            chosen = next((r for r in rows if r.get("isDefault")), rows[0] if rows else None)
            self._roles[resource_id] = str(chosen["roleID"]) if chosen else None
        return self._roles[resource_id]


def _full_name(row: Mapping[str, Any]) -> str:
    return " ".join(str(row.get(k) or "") for k in ("firstName", "lastName")).strip() or str(row.get("id"))


def is_api_member(row: Mapping[str, Any], username: str) -> bool:
    """Whether a Resources row is the API user (never listed as a technician)."""
    name = username.lower()
    return str(row.get("email") or "").lower() == name or str(row.get("userName") or "").lower() in (
        name, name.split("@", 1)[0])


def _not_a_gap(exc: PsaError) -> bool:
    """A failure that is not about one picklist: refused credentials, throttling, an outage. Raised as what it is
    (a retry, or the reauth step) instead of being kept as a missing picklist, which a write then reported as "the
    tenant has no usable note type". A role that may not read one entity's fields is a gap (PsaForbidden)."""
    return exc.retryable or (isinstance(exc, PsaAuthError) and not isinstance(exc, PsaForbidden))
