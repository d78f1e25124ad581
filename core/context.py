"""Who is acting: the workspace, the member (if known), the surface, and any server-side customer scope."""

from __future__ import annotations

from dataclasses import dataclass, replace

from store.db import Scope
from store.enums import Origin


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    workspace_id: int
    origin: Origin
    member_id: int | None = None
    display: str = "system"  # for the audit log: "slack:U123 (Ana)", "apikey:ci-bot", "system"
    is_admin: bool = False
    is_member: bool = True  # False for end users/contacts (customer channels, portal)
    # Set from a channel binding on the server, never from what the user typed.
    customer_scope_id: int | None = None

    @property
    def scope(self) -> Scope:
        return Scope.workspace(self.workspace_id)

    def scoped_to_customer(self, customer_id: int | None) -> Actor:
        return replace(self, customer_scope_id=customer_id)

    @classmethod
    def system(cls, workspace_id: int) -> Actor:
        return cls(workspace_id=workspace_id, origin=Origin.SYSTEM, display="system", is_admin=True)
