"""Which Microsoft 365 tenant each customer has, and the admin-consent link that lets our app read it.

The consent link and the Graph directories are built by the composition root (bot/main.py) from the one
multi-tenant app registration in settings; this service only stores and looks up the customer -> tenant
mapping, and never hands out one customer's tenant for another.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import select

from core.errors import ConnectionProblem, InvalidInput, NotFound
from core.hints import CUSTOMER_HINT
from store.db import Database, Scope
from store.tables import Customer, CustomerM365Tenant

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def check_tenant_id(value: str) -> str:
    """A tenant GUID (lower-cased) or verified domain such as contoso.onmicrosoft.com."""
    v = (value or "").strip().lower()
    if GUID.match(v) or DOMAIN.match(v):
        return v
    raise InvalidInput(f"'{value}' is not a Microsoft 365 tenant id.", field="tenant",
                       hint="Use the tenant's GUID (Entra admin center > Overview) or its "
                            "<name>.onmicrosoft.com domain.")


@dataclass(frozen=True, slots=True)
class M365Link:
    customer_id: int
    customer: str  # identifier
    tenant_id: str
    consent_url: str | None  # None when no app is configured


class M365TenantService:
    """Store and read each customer's M365 tenant."""

    def __init__(self, db: Database, *, consent_url: Callable[[str], str] | None = None) -> None:
        self.db = db
        self._consent_url = consent_url  # None: DESKBRIDGE_M365_CLIENT_ID/SECRET are not set

    @property
    def configured(self) -> bool:
        return self._consent_url is not None

    async def connect(self, workspace_id: int, customer: Customer, tenant: str) -> M365Link:
        """Record (or change) the customer's tenant; the result carries the admin-consent link."""
        tenant_id = check_tenant_id(tenant)
        if customer.id is None or customer.workspace_id != workspace_id:
            raise NotFound("No such customer in this workspace.", hint=CUSTOMER_HINT)
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            taken = (await session.exec(select(CustomerM365Tenant).where(
                CustomerM365Tenant.tenant_id == tenant_id, CustomerM365Tenant.customer_id != customer.id))).first()
            if taken is not None:
                raise InvalidInput(f"Tenant {tenant_id} is already connected to another customer.", field="tenant",
                                   hint="One Microsoft 365 tenant belongs to one customer.")
            row = (await session.exec(select(CustomerM365Tenant).where(
                CustomerM365Tenant.customer_id == customer.id))).first()
            if row is None:
                row = CustomerM365Tenant(workspace_id=workspace_id, customer_id=customer.id, tenant_id=tenant_id)
            row.tenant_id = tenant_id
            session.add(row)
        return M365Link(customer.id, customer.identifier, tenant_id,
                        self._consent_url(tenant_id) if self._consent_url else None)

    async def tenant_of(self, workspace_id: int, customer_id: int) -> str | None:
        """The customer's tenant id, or None when it has none."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            row = (await session.exec(select(CustomerM365Tenant).where(
                CustomerM365Tenant.customer_id == customer_id))).first()
        return row.tenant_id if row else None

    def require_configured(self) -> None:
        if not self.configured:
            raise ConnectionProblem("Microsoft 365 is not configured.",
                                    hint="Set DESKBRIDGE_M365_CLIENT_ID and DESKBRIDGE_M365_CLIENT_SECRET "
                                         "(a multi-tenant Entra app with Graph application permissions).")
