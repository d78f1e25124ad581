"""Tenant context beside a ticket: the Microsoft 365 user quick view for the ticket's contact.

Rules (all here, not in the surfaces):
- Technicians only: an end user (`Actor.is_member` False) or anyone in a customer channel (a server-side
  `customer_scope_id`) gets PermissionDenied, before any Graph call.
- The tenant is always the one recorded for the ticket's own customer; a contact of another customer is
  refused, and the cache is keyed by (workspace, tenant, e-mail), so one customer's data never serves another.
- Each piece (sign-in, MFA, licences, devices) is fetched in parallel once the user is known, and a missing
  permission or licence, throttling or an outage becomes a short note on the view, never a failure.
- Views are cached for `ttl` seconds (only complete ones: a view with a transient gap is fetched again),
  and concurrent requests for the same user share one fetch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from connectors.tenant import (
    DirectoryAuthError,
    DirectoryError,
    DirectoryNotFound,
    DirectoryUser,
    Licence,
    LicenceMissing,
    ManagedDevice,
    MfaStatus,
    PermissionMissing,
    TenantDirectory,
)
from core.context import Actor
from core.errors import NotFound, PermissionDenied
from core.m365_tenants import M365TenantService
from core.singleflight import SingleFlight
from store.db import Database
from store.tables import Contact, Ticket

T = TypeVar("T")
CACHE_MAX = 2000  # views kept per process
DirectoryFactory = Callable[[str], TenantDirectory]  # tenant id -> that tenant's directory (bot/main.py)

PERMISSIONS = {  # what each piece needs, named in the note when Graph says a permission is missing
    "Sign-in": "AuditLog.Read.All",
    "MFA": "AuditLog.Read.All or UserAuthenticationMethod.Read.All",
    "Licences": "User.Read.All",
    "Devices": "DeviceManagementManagedDevices.Read.All",
}


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
                 ttl: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.db, self.tenants, self._directories = db, tenants, directories
        self.ttl, self._clock = ttl, clock
        self._cache: dict[tuple[int, str, str], tuple[float, UserQuickView]] = {}
        self._flight: SingleFlight[UserQuickView] = SingleFlight()

    async def aclose(self) -> None:
        """Close the directories' HTTP clients (when the factory owns any)."""
        closer = getattr(self._directories, "aclose", None)
        if closer is not None:
            await closer()

    async def user_view(self, actor: Actor, ticket_id: int) -> UserQuickView:
        """The quick view of the ticket contact's Microsoft 365 account."""
        if not actor.is_member or actor.customer_scope_id is not None:
            raise PermissionDenied("Tenant context is only for technicians, and never in a customer channel.")
        ws = actor.workspace_id
        async with self.db.read(actor.scope) as session:
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None:
                raise NotFound(f"No ticket {ticket_id}.")
            contact = await session.get(Contact, ticket.contact_id) if ticket.contact_id else None
        if ticket.customer_id is None:
            return UserQuickView(None, None, notes=("This ticket has no customer.",))
        if contact is not None and contact.customer_id not in (None, ticket.customer_id):
            raise PermissionDenied("The ticket's contact belongs to another customer; no tenant context is shown.")
        email = (contact.email or "").strip().lower() if contact else ""
        tenant = await self.tenants.tenant_of(ws, ticket.customer_id)
        if tenant is None:
            return UserQuickView(None, email or None, notes=(
                "No Microsoft 365 tenant for this customer (`deskbridge customer connect-m365`).",))
        if not email:
            return UserQuickView(tenant, None, notes=("The ticket's contact has no e-mail address.",))
        if self._directories is None:
            return UserQuickView(tenant, email, notes=("Microsoft 365 is not configured on this Deskbridge.",))
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
