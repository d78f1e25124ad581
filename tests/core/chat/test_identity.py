"""Who is acting (core/chat/identity.py): decided from verified platform ids and bindings, default deny."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core.chat import ChatService
from core.errors import NotFound, PermissionDenied
from store.db import Scope
from store.tables import Ticket
from tests.core.chat.conftest import ChatEnv


async def _bind_customer(env: ChatEnv, channel: str, customer: str) -> None:
    user = env.user("U_ADMIN", channel=channel)
    actor, _ = await env.chat.actor_for(env.ws, user)
    await env.chat.bind(actor, user, "customer", customer)


@pytest.mark.parametrize(("user_id", "channel", "user_team", "member", "is_admin", "scope"), [
    # who          where        own team  technician  admin  customer scope
    ("U_TECH", "C1", None, True, False, None),  # a linked technician, anywhere
    ("U_TECH", "C_ACME", None, True, False, "acme"),  # in a customer channel: scoped to it
    ("U_ADMIN", "C1", None, True, True, None),
    ("U_NEW", "C_ACME", None, False, False, "acme"),  # someone unknown in a customer channel: a contact
    ("U_TECH", "C_ACME", "T_GUEST", False, False, "acme"),  # same id, another org (Slack Connect): not Ana
])
async def test_the_actor_for_a_chat_user(env: ChatEnv, user_id: str, channel: str, user_team: str | None,
                                         member: bool, is_admin: bool, scope: str | None) -> None:
    await _bind_customer(env, "C_ACME", "ACME")
    actor, info = await env.chat.actor_for(env.ws, env.user(user_id, channel=channel, user_team=user_team))
    assert actor.is_member is member and actor.is_admin is is_admin
    assert actor.customer_scope_id == (env.acme.id if scope else None) == info.customer_id
    assert (actor.member_id == env.tech.id) is (member and user_id == "U_TECH")


@pytest.mark.parametrize(("channel", "is_dm", "user_team"), [
    ("C1", False, None),  # an unbound channel
    (None, True, None),  # a DM
    ("C1", False, "T_GUEST"),  # a guest from another org
])
async def test_an_unknown_user_outside_a_customer_channel_is_refused(env: ChatEnv, channel: str | None,
                                                                     is_dm: bool, user_team: str | None) -> None:
    with pytest.raises(PermissionDenied, match="does not know you yet"):
        await env.chat.actor_for(env.ws, env.user("U_NEW", channel=channel, is_dm=is_dm, user_team=user_team))


async def test_a_platform_admin_bootstraps_only_until_deskbridge_has_an_admin(env: ChatEnv,
                                                                                other_workspace_id: int) -> None:
    # In a workspace without a Deskbridge admin, the chat platform's admin may set things up (and only that).
    actor, _ = await env.chat.actor_for(other_workspace_id, env.user("U_OWNER", platform_admin=True))
    assert actor.is_admin and not actor.is_member and actor.customer_scope_id == -1
    # Guests from another org never bootstrap.
    with pytest.raises(PermissionDenied):
        await env.chat.actor_for(other_workspace_id, env.user("U_OWNER", platform_admin=True, user_team="T_X"))
    # Where Deskbridge has its own admin, being a Slack admin grants nothing.
    with pytest.raises(PermissionDenied):
        await env.chat.actor_for(env.ws, env.user("U_OWNER", platform_admin=True))
    actor, _ = await env.chat.actor_for(env.ws, env.user("U_TECH", platform_admin=True))
    assert actor.is_member and not actor.is_admin


async def test_linking_by_verified_email(env: ChatEnv) -> None:
    member = await env.chat.link_user(env.ws, env.user("U_NEW"), "ana@msp.example")
    assert member.id == env.tech.id
    actor, _ = await env.chat.actor_for(env.ws, env.user("U_NEW"))
    assert actor.member_id == env.tech.id
    with pytest.raises(NotFound, match="No technician has the e-mail"):
        await env.chat.link_user(env.ws, env.user("U_OTHER"), "nobody@msp.example")
    with pytest.raises(PermissionDenied, match="another organisation"):
        await env.chat.link_user(env.ws, env.user("U_GUEST", user_team="T_GUEST"), "ana@msp.example")


async def test_autolink_asks_the_platform_once_per_user_and_never_for_guests(env: ChatEnv) -> None:
    asked: list[str] = []

    async def email() -> str | None:
        asked.append("x")
        return "nobody@msp.example"

    assert not await env.chat.autolink(env.ws, env.user("U_NEW"), email)
    assert not await env.chat.autolink(env.ws, env.user("U_NEW"), email)  # throttled: the platform is not asked
    assert not await env.chat.autolink(env.ws, env.user("U_GUEST", user_team="T_GUEST"), email)
    assert asked == ["x"]

    async def ana() -> str | None:
        return "ANA@msp.example"

    assert await env.chat.autolink(env.ws, env.user("U_ANA2"), ana)
    assert (await env.chat.member_actor(env.ws, "slack", "T1", "U_ANA2")).member_id == env.tech.id  # type: ignore[union-attr]
    assert await env.chat.member_actor(env.ws, "slack", "T1", "U_NOBODY") is None


async def test_whose_app_home_a_change_touches(env: ChatEnv, db) -> None:  # type: ignore[no-untyped-def]
    from tests.core.chat.test_threads import ticket

    t = await ticket(db, env.ws, assignee=env.tech.id)
    targets = env.chat.app_home_targets
    assert await targets(env.ws, "slack", ticket_id=t, created=True) == [("T1", "U_TECH")]
    assert await targets(env.ws, "slack", ticket_id=t, changes={"subject": ("a", "b")}) == [("T1", "U_TECH")]
    assert await targets(env.ws, "slack", ticket_id=t, changes={"description": ("a", "b")}) == []
    moved = await targets(env.ws, "slack", ticket_id=t, changes={"assignee_member_id": (env.admin.id, env.tech.id)})
    assert moved == [("T1", "U_ADMIN"), ("T1", "U_TECH")]
    assert await targets(env.ws, "slack", ticket_id=None) == []
    assert await env.chat.member_ids_for_chat(env.ws, "slack") == {env.tech.id: ("T1", "U_TECH"),
                                                                    env.admin.id: ("T1", "U_ADMIN")}


async def test_the_chat_author_of_an_outbox_write_is_the_ops_typed_author(env: ChatEnv, db) -> None:  # type: ignore[no-untyped-def]
    from core.context import Actor
    from core.tickets import TicketService
    from store.enums import Origin
    from store.tables import OutboxOp
    from tests.factories import psa_backed

    setup = await psa_backed(db, env.ws)
    await env.directory.link_chat_user(env.ws, setup.member_id, platform="slack", team_id="T1", user_id="U_BOB")
    await env.directory.link_chat_user(env.ws, setup.member_id, platform="slack", team_id="T2", user_id="U_BOB2")
    async with db.write(Scope.workspace(env.ws)) as s:
        t = Ticket(workspace_id=env.ws, number=77, external_id="77", connection_id=setup.connection_id,
                   subject="VPN", priority="high", stage="new")
        s.add(t)
    # Written from the console (its audit name says nothing about Slack): still Bob, on each Slack team.
    bob = Actor(workspace_id=env.ws, origin=Origin.CONSOLE, member_id=setup.member_id, display="console:bob")
    await TicketService(db).comment(bob, "77", "checked the logs")
    async with db.read(Scope.workspace(env.ws)) as s:
        op = (await s.exec(select(OutboxOp))).one()
    assert op.author_member_id == setup.member_id
    assert await env.chat.write_author(env.ws, op.id, "slack", "T1") == "U_BOB"  # type: ignore[arg-type]
    assert await env.chat.write_author(env.ws, op.id, "slack", "T2") == "U_BOB2"  # type: ignore[arg-type]
    assert await env.chat.write_author(env.ws, op.id, "slack", "T9") is None  # type: ignore[arg-type]
    assert await env.chat.write_author(env.ws, op.id, "teams") is None  # type: ignore[arg-type]
    system = Actor.system(env.ws)
    await TicketService(db).comment(system, "77", "from a rule")
    async with db.read(Scope.workspace(env.ws)) as s:
        last = (await s.exec(select(OutboxOp).order_by(OutboxOp.id.desc()))).first()  # type: ignore[union-attr]
    assert last is not None and last.author_member_id is None
    assert await env.chat.write_author(env.ws, last.id, "slack", "T1") is None  # type: ignore[arg-type]


def test_the_facade_and_the_parts_share_one_cache(env: ChatEnv) -> None:
    chat: ChatService = env.chat
    assert chat.identities._cache is chat.bindings._cache is chat.installations._cache is chat._cache
