"""Tenant context beside a ticket: the Microsoft 365 user quick view of the user the ticket is about (the one a
technician chose for it, else the ticket contact's e-mail), their recent activity, and a device's installed apps.

(Over 400 lines: which user and device a ticket is about, and the views built on that, share one cache and one
set of rules; quick actions live in core/tenant_actions.py.)

Rules (all here, not in the surfaces):
- Technicians only: an end user (`Actor.is_member` False) or anyone in a customer channel (a server-side
  `customer_scope_id`) gets PermissionDenied, before any Graph call.
- The tenant is always the one recorded for the ticket's own customer; a contact of another customer is
  refused, and the cache is keyed by (workspace, tenant, e-mail), so one customer's data never serves another.
- Each piece (sign-in, MFA, licences, devices) is fetched in parallel once the user is known, and a missing
  permission or licence, throttling or an outage becomes a short note on the view, never a failure.
- A surface passes the channel's audience: "customer" (a customer or shared channel) is refused like an end user.
- Recent sign-ins need Entra ID P1 (Graph refuses them without it): the activity view says so and still shows
  the directory audit events, which every tenant has (7 days kept without P1, 30 with it).
- Views are cached for `ttl` seconds (only complete ones: a view with a transient gap is fetched again),
  and concurrent requests for the same user share one fetch.
- The device a ticket is about: the one a technician chose, else the ticket's `device_ref` matched to one of the
  user's Intune devices. Where the PSA connector reads configuration items (Autotask: `configurationItemID`;
  ConnectWise: the ticket's first attached configuration; HaloPSA: the ticket's first asset), the item's Intune
  id, serial number, then its RMM host name and its name are matched; otherwise the ref as a device name.
  An unmatched reference is said on the view.
- Device activity (with the user's activity): that device's last Intune check-in and enrolment, and the user's
  recent sign-ins made from it (matched on the Entra device id; Graph has no check-in history).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlmodel import select

from connectors.base import ConfigurationItem
from connectors.errors import PsaError
from connectors.tenant import (
    AuditEvent,
    DetectedApp,
    DirectoryAuthError,
    DirectoryError,
    DirectoryNotFound,
    DirectoryUser,
    Licence,
    LicenceMissing,
    ManagedDevice,
    MfaStatus,
    PermissionMissing,
    SignIn,
    TenantDirectory,
)
from core.connections import ConnectionService
from core.context import Actor
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.m365_tenants import M365TenantService
from core.singleflight import SingleFlight
from core.ticket_lookup import load_ticket, ticket_id_not_found
from core.views import AiSimilarView
from store.db import Database
from store.tables import Contact, Ticket, TicketM365Subject

T = TypeVar("T")
CACHE_MAX = 2000  # views kept per process
DirectoryFactory = Callable[[str], TenantDirectory]  # tenant id -> that tenant's directory (bot/main.py)
SIMILAR_BUDGET_S = 0.5  # the context waits at most this long for similar tickets (like a card for AI assist)
SIMILAR_TOP = 3


class SimilarSource(Protocol):
    """core/ai/service.py AiService: closed tickets similar to a ticket (the actor's scope and AI settings)."""

    async def similar(self, actor: Actor, *, ticket_id: int | None = None, text: str | None = None,
                      k: int = 3) -> Any: ...

PERMISSIONS = {  # what each piece needs, named in the note when Graph says a permission is missing
    "Sign-in": "AuditLog.Read.All",
    "MFA": "AuditLog.Read.All or UserAuthenticationMethod.Read.All",
    "Licences": "User.Read.All",
    "Devices": "DeviceManagementManagedDevices.Read.All",
    "Sign-ins": "AuditLog.Read.All and Directory.Read.All",
    "Audit events": "AuditLog.Read.All",
    "Installed apps": "DeviceManagementManagedDevices.Read.All",
}
ACTIVITY_TOP = 10
SIGN_IN_SCAN = 50  # the user's sign-ins read to find those made from the ticket's device
log = logging.getLogger("deskbridge.tenant_context")


@dataclass(frozen=True, slots=True)
class UserQuickView:
    """What a technician sees about the ticket's contact; None fields were not available (see `notes`)."""

    tenant_id: str | None
    email: str | None
    user: DirectoryUser | None = None
    last_sign_in: datetime | None = None
    mfa: MfaStatus | None = None
    licences: tuple[Licence, ...] | None = None
    devices: tuple[ManagedDevice, ...] | None = None
    notes: tuple[str, ...] = ()
    complete: bool = field(default=True, compare=False)  # False: a transient gap (not cached)
    ticket_id: int | None = None
    device_id: str | None = None  # the device the ticket is about, when a technician chose one
    chosen: bool = False  # True: a technician picked the user (else: the ticket contact's e-mail)


@dataclass(frozen=True, slots=True)
class ActivityView:
    """The user's latest sign-ins and the directory audit events that targeted them."""

    user_label: str
    sign_ins: tuple[SignIn, ...] | None
    audits: tuple[AuditEvent, ...] | None
    notes: tuple[str, ...] = ()
    device: ManagedDevice | None = None  # the ticket's device (its check-in and enrolment are shown)
    device_sign_ins: tuple[SignIn, ...] | None = None  # the user's recent sign-ins made from that device


@dataclass(frozen=True, slots=True)
class AppsView:
    device_name: str
    apps: tuple[DetectedApp, ...] | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Subject:
    """Whom a ticket is about, in which tenant (None fields: unknown, `note` says why)."""

    ticket_id: int
    tenant_id: str | None
    key: str | None  # UPN, e-mail or object id
    device_id: str | None = None
    chosen: bool = False
    note: str | None = None
    device_ref: str | None = None  # the ticket's RMM device name or PSA configuration item id
    connection_id: int | None = None  # the ticket's PSA connection (which may say the ticket's device)
    external_id: str | None = None  # the ticket's id in that PSA


def _note(label: str, exc: DirectoryError) -> tuple[str, bool]:
    """A short line for a piece that could not be read, and whether the gap is lasting (cacheable)."""
    if isinstance(exc, LicenceMissing):
        return f"{label}: needs {exc.product} in this tenant.", True
    if isinstance(exc, PermissionMissing):
        return f"{label}: the Deskbridge app lacks the Graph permission {PERMISSIONS.get(label, '')}.".replace(
            " .", "."), True
    if isinstance(exc, DirectoryNotFound):
        return f"{label}: not available for this user.", True
    if isinstance(exc, DirectoryAuthError):
        return f"{label}: no access to this tenant (has the customer's admin consented?).", True
    return f"{label}: Microsoft 365 did not answer; try again shortly.", False


class TenantContextService:
    """Builds user quick views for tickets (technicians only, the ticket customer's tenant only)."""

    def __init__(self, db: Database, *, tenants: M365TenantService, directories: DirectoryFactory | None,
                 ttl: float = 120.0, clock: Callable[[], float] = time.monotonic,
                 connections: ConnectionService | None = None, ai: SimilarSource | None = None) -> None:
        self.db, self.tenants, self._directories, self.connections = db, tenants, directories, connections
        self._items: dict[tuple[int, str], tuple[float, ConfigurationItem | None]] = {}
        self.ai = ai  # AI assist: similar tickets beside the context
        self.similar_budget = SIMILAR_BUDGET_S
        self.ttl, self._clock = ttl, clock
        self._cache: dict[tuple[int, str, str], tuple[float, UserQuickView]] = {}
        self._flight: SingleFlight[UserQuickView] = SingleFlight()
        self._has_tenant: dict[tuple[int, int], tuple[float, bool]] = {}

    async def aclose(self) -> None:
        """Close the directories' HTTP clients (when the factory owns any)."""
        closer = getattr(self._directories, "aclose", None)
        if closer is not None:
            await closer()

    @staticmethod
    def check_actor(actor: Actor, audience: str = "tech") -> None:
        """Technicians only, never in a customer channel (a bound one, or any channel outsiders read)."""
        if not actor.is_member or actor.customer_scope_id is not None or audience == "customer":
            raise PermissionDenied("Tenant context is only for technicians, and never in a customer channel.",
                                   hint="Open the ticket in a technicians' channel or a direct message.")

    async def ticket_id(self, actor: Actor, ref: int | str) -> int:
        """The id of the ticket a surface names (number, prefixed ref or id:N), in the actor's scope."""
        async with self.db.read(actor.scope) as session:
            ticket = await load_ticket(session, actor, ref)
        assert ticket.id is not None
        return ticket.id

    async def available(self, workspace_id: int, customer_id: int | None) -> bool:
        """Whether a card should offer Context: Microsoft 365 is configured and the customer has a tenant
        (remembered for `ttl` seconds, so a card pays no database read for it most of the time)."""
        if self._directories is None or customer_id is None:
            return False
        key, now = (workspace_id, customer_id), self._clock()
        hit = self._has_tenant.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = await self.tenants.tenant_of(workspace_id, customer_id) is not None
        if len(self._has_tenant) >= CACHE_MAX:
            self._has_tenant.clear()
        self._has_tenant[key] = (now + self.ttl, found)
        return found

    def directory(self, tenant: str) -> TenantDirectory:
        if self._directories is None:
            raise InvalidInput("Microsoft 365 is not configured on this Deskbridge.",
                               hint="Set DESKBRIDGE_M365_CLIENT_ID and DESKBRIDGE_M365_CLIENT_SECRET.")
        return self._directories(tenant)

    async def subject(self, actor: Actor, ticket_id: int, *, audience: str = "tech") -> Subject:
        """Which user (and device) the ticket is about, in its customer's tenant; refuses non-technicians."""
        self.check_actor(actor, audience)
        async with self.db.read(actor.scope) as session:
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None or ticket.workspace_id != actor.workspace_id:
                raise ticket_id_not_found(ticket_id)
            contact = await session.get(Contact, ticket.contact_id) if ticket.contact_id else None
            chosen = (await session.exec(select(TicketM365Subject).where(
                TicketM365Subject.ticket_id == ticket_id))).first()
        if ticket.customer_id is None:
            return Subject(ticket_id, None, None, note="This ticket has no customer.")
        if contact is not None and contact.customer_id not in (None, ticket.customer_id):
            raise PermissionDenied("The ticket's contact belongs to another customer; no tenant context is shown.",
                                   hint="Set the ticket's contact to one of its customer's users in the PSA, then "
                                        "open the context again.")
        email = (contact.email or "").strip().lower() if contact else ""
        tenant = await self.tenants.tenant_of(actor.workspace_id, ticket.customer_id)
        if tenant is None:
            return Subject(ticket_id, None, email or None, note=(
                "No Microsoft 365 tenant for this customer (`deskbridge customer connect-m365`)."))
        psa: dict[str, Any] = {"device_ref": ticket.device_ref or None, "connection_id": ticket.connection_id,
                               "external_id": ticket.external_id}
        if chosen is not None:
            return Subject(ticket_id, tenant, chosen.user_key, chosen.device_id, chosen=True, **psa)
        if not email:
            return Subject(ticket_id, tenant, None, note="The ticket's contact has no e-mail address.")
        return Subject(ticket_id, tenant, email, **psa)

    async def user_view(self, actor: Actor, ticket_id: int, *, audience: str = "tech") -> UserQuickView:
        """The quick view of the Microsoft 365 account the ticket is about."""
        sub = await self.subject(actor, ticket_id, audience=audience)
        extra: dict[str, Any] = {"ticket_id": ticket_id, "device_id": sub.device_id, "chosen": sub.chosen}
        if sub.note is not None or sub.tenant_id is None or sub.key is None:
            return UserQuickView(sub.tenant_id, sub.key, notes=(sub.note or "",), **extra)
        if self._directories is None:
            return UserQuickView(sub.tenant_id, sub.key, notes=(
                "Microsoft 365 is not configured on this Deskbridge.",), **extra)
        view = await self._cached(actor.workspace_id, sub.tenant_id, sub.key)
        if extra["device_id"] is None and (sub.device_ref or sub.external_id) and view.devices is not None:
            device, note = await self._ticket_device(actor, sub, view.devices)
            extra["device_id"] = device.id if device else None
            if note:
                extra["notes"] = (*view.notes, note)
        return replace(view, **extra)

    async def _ticket_device(self, actor: Actor, sub: Subject,
                             devices: tuple[ManagedDevice, ...]) -> tuple[ManagedDevice | None, str | None]:
        """The user's Intune device the ticket's device (PSA item or RMM name) is, and a note when none is."""
        item = await self._configuration_item(actor, sub)
        if item is None and not sub.device_ref:
            return None, None
        keys = [("id", item.intune_id), ("serial", item.serial), ("name", item.hostname),
                ("name", item.name)] if item else []
        keys.append(("name", sub.device_ref or ""))
        for attr, want in keys:
            found = next((d for d in devices if want and getattr(d, attr).lower() == want.strip().lower()), None)
            if found is not None:
                return found, None
        label = f"{item.name or item.hostname or item.serial} (the PSA's configuration item)" if item else \
            str(sub.device_ref)
        return None, f"Device: the ticket's device {label} is not one of this user's Intune devices."

    async def _configuration_item(self, actor: Actor, sub: Subject) -> ConfigurationItem | None:
        """The ticket's device as its PSA knows it (cached `ttl`); None when the connector reads none, the ticket
        has none, or the PSA cannot answer now (a device_ref is then matched as a name)."""
        connection_id = sub.connection_id
        if self.connections is None or connection_id is None or not sub.external_id:
            return None
        key, now = (connection_id, f"{sub.external_id}|{sub.device_ref or ''}"), self._clock()
        hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            conn = await self.connections.get(actor.workspace_id, connection_id)
            reader = getattr(self.connections.shared(conn), "ticket_device", None)
            item = await reader(sub.external_id, sub.device_ref) if reader is not None else None
        except (PsaError, NotFound) as exc:
            log.info("configuration item not read", extra={"connection_id": connection_id, "error": str(exc)})
            return None
        if len(self._items) >= CACHE_MAX:
            self._items.clear()
        self._items[key] = (now + self.ttl, item)
        return item

    async def _cached(self, ws: int, tenant: str, email: str) -> UserQuickView:
        key = (ws, tenant, email)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        view = await self._flight.run(key, lambda: self._fetch(tenant, email))
        if view.complete:
            now = self._clock()
            if len(self._cache) >= CACHE_MAX:  # drop expired entries, then the oldest, so it stays small
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                while len(self._cache) >= CACHE_MAX:
                    self._cache.pop(next(iter(self._cache)))
            self._cache[key] = (now + self.ttl, view)
        return view

    async def choose(self, actor: Actor, ticket_id: int, user_key: str, *, device_id: str | None = None,
                     audience: str = "tech") -> UserQuickView:
        """Record which user (and device) the ticket is about, after checking they exist in its tenant."""
        key = (user_key or "").strip().lower()
        if not key or len(key) > 254 or any(c.isspace() for c in key):
            raise InvalidInput(f"'{user_key}' is not a user name.", field="user",
                               hint="Give the user's sign-in name (UPN) or e-mail, e.g. jane@contoso.com.")
        sub = await self.subject(actor, ticket_id, audience=audience)
        if sub.tenant_id is None:
            raise InvalidInput(sub.note or "This ticket has no Microsoft 365 tenant.",
                               hint="Connect the customer's tenant with `deskbridge customer connect-m365`.")
        directory = self.directory(sub.tenant_id)
        try:
            user = await directory.user(key)
            if device_id and device_id not in {d.id for d in await directory.devices(user.id)}:
                raise InvalidInput("That device is not one of the user's Intune devices.", field="device",
                                   hint="Pick one of the devices listed for the user.")
        except DirectoryNotFound:
            raise InvalidInput(f"No user {key} in the customer's Microsoft 365 tenant.", field="user",
                               hint="Check the spelling; use the sign-in name (UPN) or primary e-mail.") from None
        except DirectoryError as exc:
            raise InvalidInput(_note("User", exc)[0], hint="Nothing was changed; try again shortly.") from None
        async with self.db.write(actor.scope) as session:
            row = (await session.exec(select(TicketM365Subject).where(
                TicketM365Subject.ticket_id == ticket_id))).first() or TicketM365Subject(
                workspace_id=actor.workspace_id, ticket_id=ticket_id, user_key=key)
            row.user_key, row.device_id, row.chosen_by = user.upn.lower() or key, device_id, actor.display[:200]
            session.add(row)
        return await self.user_view(actor, ticket_id, audience=audience)

    async def activity(self, actor: Actor, ticket_id: int, *, audience: str = "tech") -> ActivityView:
        """The user's latest sign-ins and directory audit events (fetched together, never cached), and the ticket's
        device: its last check-in and the user's sign-ins made from it."""
        sub = await self.subject(actor, ticket_id, audience=audience)
        if sub.tenant_id is None or sub.key is None:
            return ActivityView(sub.key or "", None, None, notes=(sub.note or "",))
        directory = self.directory(sub.tenant_id)
        view = await self.user_view(actor, ticket_id, audience=audience)
        user = view.user
        if user is None:
            return ActivityView(sub.key, None, None, notes=tuple(n for n in view.notes if n))
        device = next((d for d in view.devices or () if d.id == view.device_id), None)
        notes: list[str] = []

        async def piece(label: str, call: Awaitable[T]) -> T | None:
            try:
                return await call
            except DirectoryError as exc:
                notes.append(_note(label, exc)[0])
                return None

        top = SIGN_IN_SCAN if device is not None else ACTIVITY_TOP
        sign_ins, audits = await asyncio.gather(piece("Sign-ins", directory.sign_ins(user.id, top)),
                                                piece("Audit events", directory.audits(user.id, ACTIVITY_TOP)))
        from_device = None
        if device is not None and sign_ins is not None:
            from_device = tuple(x for x in sign_ins if device.aad_device_id and x.device_id == device.aad_device_id)
        return ActivityView(user.upn or sub.key, sign_ins[:ACTIVITY_TOP] if sign_ins is not None else None, audits,
                            notes=tuple(sorted(notes, reverse=True)), device=device,
                            device_sign_ins=from_device[:ACTIVITY_TOP] if from_device is not None else None)

    async def similar(self, actor: Actor, ticket_id: int, *, audience: str = "tech") -> tuple[AiSimilarView, ...]:
        """Closed tickets like this one (AI assist, within the actor's customers and the workspace's AI settings),
        beside the context; () when AI assist is off or not ready within `similar_budget` (it goes on warming)."""
        self.check_actor(actor, audience)
        if self.ai is None:
            return ()
        work = asyncio.ensure_future(self.ai.similar(actor, ticket_id=ticket_id, k=SIMILAR_TOP))
        work.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            found = await asyncio.wait_for(asyncio.shield(work), self.similar_budget)
        except TimeoutError:
            return ()
        except Exception:  # noqa: BLE001 - optional beside the context; never breaks it
            log.warning("similar tickets failed", extra={"ticket_id": ticket_id}, exc_info=True)
            return ()
        return tuple(AiSimilarView(
            ticket_id=h.doc.ticket_id, number=h.doc.number, score=h.score, closed_at=h.doc.closed_at,
            ref=f"#{h.doc.number}" if h.doc.number is not None else f"id:{h.doc.ticket_id}",
            subject=h.doc.text.split("\n", 1)[0][:120]) for h in found.hits)

    async def apps(self, actor: Actor, ticket_id: int, device_id: str, *, audience: str = "tech") -> AppsView:
        """Apps Intune detected on one of the ticket user's devices (any other device is refused)."""
        sub = await self.subject(actor, ticket_id, audience=audience)
        if sub.tenant_id is None or sub.key is None:
            return AppsView("", None, notes=(sub.note or "",))
        directory = self.directory(sub.tenant_id)
        try:
            user = await directory.user(sub.key)
            device = next((d for d in await directory.devices(user.id) if d.id == device_id), None)
            if device is None:
                raise PermissionDenied("That device is not one of this ticket's user's devices.",
                                       hint="Open the context of the ticket the device belongs to.")
            return AppsView(device.name, await directory.detected_apps(device_id))
        except DirectoryError as exc:
            return AppsView("", None, notes=(_note("Installed apps", exc)[0],))

    async def _fetch(self, tenant: str, email: str) -> UserQuickView:
        assert self._directories is not None
        directory = self._directories(tenant)
        try:
            user = await directory.user(email)
        except DirectoryNotFound:
            return UserQuickView(tenant, email, notes=(f"No user {email} in the customer's Microsoft 365 tenant.",))
        except DirectoryError as exc:
            note, lasting = _note("User", exc)
            return UserQuickView(tenant, email, notes=(note,), complete=lasting)
        notes: list[str] = []
        complete = True

        async def piece(label: str, call: Awaitable[T]) -> T | None:
            nonlocal complete
            try:
                return await call
            except DirectoryError as exc:
                note, lasting = _note(label, exc)
                notes.append(note)
                complete = complete and lasting
                return None

        sign_in, mfa, licences, devices = await asyncio.gather(
            piece("Sign-in", directory.last_sign_in(user.id)), piece("MFA", directory.mfa(user.id)),
            piece("Licences", directory.licences(user.id)), piece("Devices", directory.devices(user.id)))
        order = {label: i for i, label in enumerate(("Sign-in", "MFA", "Licences", "Devices"))}
        notes.sort(key=lambda n: order.get(n.split(":")[0], 9))
        return UserQuickView(tenant, email, user=user, last_sign_in=sign_in, mfa=mfa, licences=licences,
                             devices=devices, notes=tuple(notes), complete=complete)
