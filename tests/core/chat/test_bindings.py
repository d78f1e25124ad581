"""Channel bindings and the routing read from them (core/chat/bindings.py): which channel is what, and which
channels get a ticket's dispatch post and SLA warnings."""

from __future__ import annotations

import pytest

from core.chat import ChatUser
from core.context import Actor
from core.errors import InvalidInput, NotFound, PermissionDenied
from tests.core.chat.conftest import ChatEnv


async def _admin(env: ChatEnv, user: ChatUser) -> Actor:
    actor, _ = await env.chat.actor_for(env.ws, user)
    assert actor.is_admin
    return actor


async def _bind(env: ChatEnv, channel: str, kind: str, customer: str | None = None, *, shared: bool = False) -> None:
    user = env.user("U_ADMIN", channel=channel)
    await env.chat.bind(await _admin(env, user), user, kind, customer, shared=shared)


async def test_a_channel_is_what_it_is_bound_to(env: ChatEnv) -> None:
    assert (await env.chat.channel(env.ws, "slack", "T1", "C_NONE")).kinds == frozenset()
    await _bind(env, "C_ACME", "customer", "acme")
    await _bind(env, "C_ACME", "sla")
    info = await env.chat.channel(env.ws, "slack", "T1", "C_ACME")
    assert info.kinds == {"customer", "sla_alerts"} and info.customer_id == env.acme.id
    assert (info.customer_name, info.visibility, info.is_customer_channel) == ("Acme Corp", "tech", True)
    await _bind(env, "C_ACME", "customer", "GLOBEX")  # one customer per channel: the new one replaces it
    assert (await env.chat.channel(env.ws, "slack", "T1", "C_ACME")).customer_id == env.globex.id
    user = env.user("U_ADMIN", channel="C_ACME")
    assert await env.chat.unbind(await _admin(env, user), user, "sla") == 1
    assert await env.chat.unbind(await _admin(env, user), user) == 1
    assert (await env.chat.channel(env.ws, "slack", "T1", "C_ACME")).kinds == frozenset()


async def test_shared_sticks_until_unbound(env: ChatEnv) -> None:
    await _bind(env, "C_SH", "customer", "ACME", shared=True)
    await _bind(env, "C_SH", "customer", "ACME")  # re-binding without `shared` does not make it internal again
    assert (await env.chat.channel(env.ws, "slack", "T1", "C_SH")).visibility == "customer"


@pytest.mark.parametrize(("user_id", "channel", "kind", "customer", "error", "match"), [
    ("U_TECH", "C1", "sla", None, PermissionDenied, "Only Deskbridge admins"),
    ("U_ADMIN", None, "sla", None, InvalidInput, "Only channels"),
    ("U_ADMIN", "C1", "weather", None, InvalidInput, "not a channel kind"),
    ("U_ADMIN", "C1", "customer", None, InvalidInput, "Which customer"),
    ("U_ADMIN", "C1", "customer", "INITECH", NotFound, "INITECH"),
])
async def test_a_binding_is_refused_with_a_reason(env: ChatEnv, user_id: str, channel: str | None, kind: str,
                                                  customer: str | None, error: type[Exception], match: str) -> None:
    user = env.user(user_id, channel=channel)
    actor, _ = await env.chat.actor_for(env.ws, env.user(user_id))
    with pytest.raises(error, match=match):
        await env.chat.bind(actor, user, kind, customer)


async def test_dispatch_routing(env: ChatEnv) -> None:
    await _bind(env, "C_DISPATCH", "dispatch")  # every customer's new tickets
    await _bind(env, "C_ACME_DISPATCH", "dispatch", "ACME")  # ACME's only
    await _bind(env, "C_ACME_SHARED", "customer", "ACME", shared=True)
    await _bind(env, "C_ACME_SHARED", "dispatch")  # shared: ACME's only, as the customer's card
    await _bind(env, "C_SLA", "sla")  # not a dispatch channel
    routes = {c: (t, a) for t, c, a in await env.chat.dispatch_channels(env.ws, "slack", customer_id=env.acme.id)}
    assert routes == {"C_DISPATCH": ("T1", "tech"), "C_ACME_DISPATCH": ("T1", "tech"),
                      "C_ACME_SHARED": ("T1", "customer")}
    globex = {c for _, c, _ in await env.chat.dispatch_channels(env.ws, "slack", customer_id=env.globex.id)}
    assert globex == {"C_DISPATCH"}
    assert {c for _, c, _ in await env.chat.dispatch_channels(env.ws, "slack", customer_id=None)} == {"C_DISPATCH"}
    assert await env.chat.dispatch_channels(env.ws, "teams", customer_id=env.acme.id) == []


async def test_sla_warning_routing(env: ChatEnv) -> None:
    await _bind(env, "C_SLA", "sla")  # technicians' SLA channel: every ticket's warnings
    await _bind(env, "C_ACME", "customer", "ACME")  # internal customer channel: its customer's warnings only
    await _bind(env, "C_ACME_SHARED", "customer", "ACME", shared=True)  # the customer reads it: never SLA figures
    await _bind(env, "C_ACME_SHARED", "sla")
    await _bind(env, "C_DISPATCH", "dispatch")
    acme = {c for _, c in await env.chat.sla_warning_channels(env.ws, "slack", customer_id=env.acme.id)}
    assert acme == {"C_SLA", "C_ACME"}
    globex = {c for _, c in await env.chat.sla_warning_channels(env.ws, "slack", customer_id=env.globex.id)}
    assert globex == {"C_SLA"}
