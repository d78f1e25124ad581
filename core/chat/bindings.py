"""Channel bindings: what a channel is bound to (customer, dispatch, SLA alerts) and which channels get what.

One place answers every routing question from the `channel_binding` rows: the binding of one channel
(`channel`), and the channels a ticket's SLA warnings and dispatch posts go to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select

from core.admin_audit import record_change
from core.chat.cache import TTLCache
from core.chat.models import ChannelInfo, ChatUser
from core.chat.visibility import require_admin
from core.context import Actor
from core.errors import InvalidInput, NotFound
from core.workspaces import DirectoryService
from store.db import Database, Scope
from store.enums import BindingKind
from store.sql import rowcount
from store.tables import ChannelBinding, Customer
from store.types import utcnow


@dataclass(frozen=True, slots=True)
class BindingInfo:
    """One binding as an admin page lists it."""

    id: int
    platform: str
    team_id: str
    channel_id: str
    kind: str
    customer: str | None
    visibility: str
    created_by: str | None
    created_at: datetime


BINDING_KINDS = {"customer": BindingKind.CUSTOMER, "dispatch": BindingKind.DISPATCH, "sla": BindingKind.SLA_ALERTS,
                 "sla_alerts": BindingKind.SLA_ALERTS}


class Bindings:
    """Channel bindings per workspace, cached briefly."""

    def __init__(self, db: Database, *, directory: DirectoryService, cache: TTLCache,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.directory = directory
        self._cache = cache
        self._clock = clock

    def invalidate(self) -> None:
        self._cache.clear()

    async def channel(self, workspace_id: int, platform: str, team_id: str, channel_id: str | None) -> ChannelInfo:
        """What a channel is bound to (cached briefly)."""
        if not channel_id:
            return ChannelInfo()
        async def fetch() -> ChannelInfo:
            async with self.db.read(Scope.workspace(workspace_id)) as session:
                rows = (await session.exec(select(ChannelBinding).where(
                    ChannelBinding.platform == platform, ChannelBinding.team_id == team_id,
                    ChannelBinding.channel_id == channel_id))).all()
                cust = next((r for r in rows if r.kind == BindingKind.CUSTOMER and r.customer_id), None)
                customer = await session.get(Customer, cust.customer_id) if cust and cust.customer_id else None
            # Any binding saying the customer reads the channel makes it a customer channel (fail closed).
            outsiders = any(r.visibility == "customer" for r in rows)
            return ChannelInfo(kinds=frozenset(r.kind for r in rows), customer_id=customer.id if customer else None,
                               customer_name=customer.name if customer else None,
                               visibility="customer" if outsiders else "tech")

        info: ChannelInfo = await self._cache.load(("chan", workspace_id, platform, team_id, channel_id), fetch)
        return info

    async def bind(self, actor: Actor, user: ChatUser, kind: str, customer_text: str | None = None, *,
                   shared: bool = False) -> ChannelInfo:
        """Bind the user's channel; customer channels shared with another org get customer visibility."""
        require_admin(actor, "bind channels")
        if not user.channel_id or user.is_dm:
            raise InvalidInput("Only channels can be bound, not direct messages.", hint="Run it in the channel.")
        bkind = BINDING_KINDS.get(kind)
        if bkind is None:
            raise InvalidInput(f"'{kind}' is not a channel kind.", hint="Use customer, dispatch or sla.")
        customer = None
        if bkind == BindingKind.CUSTOMER or customer_text:
            if not customer_text:
                raise InvalidInput("Which customer?", hint="Use /deskbridge bind customer <identifier>.")
            customer = await self.directory.find_customer(actor.workspace_id, customer_text)
        async with self.db.write(actor.scope) as session:
            # Once the customer's people read a channel, re-binding without `shared` does not make it internal
            # again (guests are invisible to the chat API): `unbind` first to really change that.
            shared = shared or any(r.visibility == "customer" for r in (await session.exec(select(ChannelBinding).where(
                ChannelBinding.platform == user.platform, ChannelBinding.team_id == user.team_id,
                ChannelBinding.channel_id == user.channel_id))).all())
            if bkind == BindingKind.CUSTOMER:
                # One customer per channel: rebinding replaces the old customer.
                await session.execute(sa.delete(ChannelBinding).where(
                    col(ChannelBinding.platform) == user.platform, col(ChannelBinding.team_id) == user.team_id,
                    col(ChannelBinding.channel_id) == user.channel_id,
                    col(ChannelBinding.kind) == BindingKind.CUSTOMER))
            row = (await session.exec(select(ChannelBinding).where(
                ChannelBinding.platform == user.platform, ChannelBinding.team_id == user.team_id,
                ChannelBinding.channel_id == user.channel_id, ChannelBinding.kind == bkind))).first()
            if row is None:
                row = ChannelBinding(workspace_id=actor.workspace_id, platform=user.platform, team_id=user.team_id,
                                     channel_id=user.channel_id, kind=bkind, created_by=actor.display[:128])
                session.add(row)
            else:
                row.updated_at = self._clock()
            row.customer_id = customer.id if customer else None
            row.visibility = "customer" if shared else "tech"
            record_change(session, actor, actor.workspace_id, "binding.add", {
                "platform": user.platform, "team": user.team_id, "channel": user.channel_id, "kind": str(bkind),
                "customer": customer.identifier if customer else None, "visibility": row.visibility})
        self.invalidate()
        return await self.channel(actor.workspace_id, user.platform, user.team_id, user.channel_id)

    async def unbind(self, actor: Actor, user: ChatUser, kind: str | None = None) -> int:
        require_admin(actor, "unbind channels")
        stmt = sa.delete(ChannelBinding).where(
            col(ChannelBinding.platform) == user.platform, col(ChannelBinding.team_id) == user.team_id,
            col(ChannelBinding.channel_id) == user.channel_id)
        if kind:
            if kind not in BINDING_KINDS:
                raise InvalidInput(f"'{kind}' is not a channel kind.", hint="Use customer, dispatch or sla.")
            stmt = stmt.where(col(ChannelBinding.kind) == BINDING_KINDS[kind])
        async with self.db.write(actor.scope) as session:
            n = rowcount(await session.execute(stmt)) or 0
            if n:
                record_change(session, actor, actor.workspace_id, "binding.remove", {
                    "platform": user.platform, "team": user.team_id, "channel": user.channel_id, "kind": kind or "all",
                    "removed": n})
        self.invalidate()
        return n

    async def page(self, workspace_id: int, *, limit: int = 50,
                   after: int | None = None) -> tuple[list[BindingInfo], int | None]:
        """Bindings by id (keyset: `after` the last id shown); returns them and the next page's `after`."""
        stmt = select(ChannelBinding, Customer.name).join(
            Customer, col(Customer.id) == col(ChannelBinding.customer_id), isouter=True)
        if after is not None:
            stmt = stmt.where(col(ChannelBinding.id) > after)
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(stmt.order_by(col(ChannelBinding.id)).limit(limit + 1))).all()
        items = [BindingInfo(b.id, b.platform, b.team_id, b.channel_id, b.kind, name, b.visibility,  # type: ignore[arg-type]
                             b.created_by, b.created_at) for b, name in rows[:limit]]
        return items, (items[-1].id if len(rows) > limit else None)

    async def remove(self, actor: Actor, binding_id: int) -> BindingInfo:
        """Remove one binding by id (the admin pages' unbind); NotFound when not in the actor's workspace."""
        require_admin(actor, "unbind channels")
        async with self.db.write(actor.scope) as session:
            row = (await session.exec(select(ChannelBinding).where(ChannelBinding.id == binding_id))).first()
            if row is None:
                raise NotFound(f"There is no binding {binding_id}.", hint="Reload the list of bindings.")
            info = BindingInfo(binding_id, row.platform, row.team_id, row.channel_id, row.kind, None, row.visibility,
                               row.created_by, row.created_at)
            await session.delete(row)
            record_change(session, actor, actor.workspace_id, "binding.remove", {
                "platform": row.platform, "team": row.team_id, "channel": row.channel_id, "kind": row.kind})
        self.invalidate()
        return info

    async def sla_warning_channels(self, workspace_id: int, platform: str, *,
                                   customer_id: int | None) -> list[tuple[str, str]]:
        """(team, channel) pairs that get an SLA warning for a ticket of `customer_id`, each once.

        SLA figures are internal: a channel shared with a customer never gets one. A channel bound to a
        customer gets warnings for that customer's tickets only, even when it is also bound `sla`
        (otherwise one customer's channel would show every other customer's warnings). A technicians'
        `sla` channel bound to no customer gets them all.
        """
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(ChannelBinding).where(
                ChannelBinding.platform == platform,
                ChannelBinding.kind.in_((BindingKind.SLA_ALERTS, BindingKind.CUSTOMER))))).all()  # type: ignore[attr-defined]
        channels: dict[tuple[str, str], list[ChannelBinding]] = {}
        for r in rows:
            channels.setdefault((r.team_id, r.channel_id), []).append(r)
        out = []
        for key, bindings in channels.items():
            if any(b.visibility == "customer" for b in bindings):
                continue
            bound_customers = {b.customer_id for b in bindings if b.kind == BindingKind.CUSTOMER}
            if bound_customers and customer_id not in bound_customers:
                continue
            out.append(key)
        return out

    async def risk_alert_channels(self, workspace_id: int, platform: str, *,
                                  customer_id: int | None) -> list[tuple[str, str]]:
        """(team, channel) pairs bound `sla` or `dispatch` that get an at-risk post for a ticket of `customer_id`.

        Escalation risk is internal: a channel shared with a customer never gets one, nor does a customer channel
        that is neither `sla` nor `dispatch`. A channel also bound to customers gets their tickets only.
        """
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(ChannelBinding).where(ChannelBinding.platform == platform))).all()
        channels: dict[tuple[str, str], list[ChannelBinding]] = {}
        for r in rows:
            channels.setdefault((r.team_id, r.channel_id), []).append(r)
        out = []
        for key, bindings in channels.items():
            if not any(b.kind in (BindingKind.SLA_ALERTS, BindingKind.DISPATCH) for b in bindings):
                continue
            if any(b.visibility == "customer" for b in bindings):
                continue
            bound = {b.customer_id for b in bindings if b.customer_id is not None}
            if bound and customer_id not in bound:
                continue
            out.append(key)
        return out

    async def dispatch_channels(self, workspace_id: int, platform: str, *,
                                customer_id: int | None) -> list[tuple[str, str, str]]:
        """(team, channel, audience) for each channel bound `dispatch` that gets a new ticket of `customer_id`.

        A dispatch channel also bound to a customer (by a customer binding, or `bind dispatch <customer>`)
        gets that customer's tickets only. A channel shared with a customer gets the customer-audience card,
        and only when it is bound to that customer: never every customer's tickets.
        """
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(ChannelBinding).where(
                ChannelBinding.platform == platform,
                ChannelBinding.kind.in_((BindingKind.DISPATCH, BindingKind.CUSTOMER))))).all()  # type: ignore[attr-defined]
        channels: dict[tuple[str, str], list[ChannelBinding]] = {}
        for r in rows:
            channels.setdefault((r.team_id, r.channel_id), []).append(r)
        out = []
        for (team, channel), bindings in channels.items():
            if not any(b.kind == BindingKind.DISPATCH for b in bindings):
                continue
            shared = any(b.visibility == "customer" for b in bindings)
            bound = {b.customer_id for b in bindings if b.customer_id is not None}
            if (bound or shared) and customer_id not in bound:
                continue
            out.append((team, channel, "customer" if shared else "tech"))
        return out
