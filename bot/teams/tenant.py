"""Microsoft 365 context in Teams: the card's Context button and the context card's buttons (bot/teams/tenant_cards.py).

Each answer is the card the clicking technician sees next. Who acts and the channel's audience are resolved by the
listener for every invoke; core refuses end users and customer channels whatever the card's data says.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.teams import tenant_cards as tc
from core.context import Actor
from core.errors import InvalidInput
from core.tenant_actions import AskAgain, QuickActions
from core.tenant_context import TenantContextService

ACTIONS = tc.ACTION_OF


def handles(name: str) -> bool:
    return name == "context" or name.startswith("ctx_")


async def answer(ctx: TenantContextService, quick: QuickActions, actor: Actor, aud: str, name: str, ref: str,
                 data: dict[str, Any], *, ticket_label: str, personal: bool) -> dict[str, Any]:
    """The card that answers one Context click. A password reset answers with the temporary password, so it runs
    only in the technician's own chat with Deskbridge: an answer card in a channel or group chat may be redrawn
    for everyone there (Teams refreshes cards for all members of conversations up to 60)."""
    if name == "ctx_reset" and not personal:
        raise InvalidInput("A password reset shows the temporary password, so it runs only in your own chat with "
                           "Deskbridge, never where others can see it.",
                           hint=f"Message Deskbridge `ticket {ref.removeprefix('id:')}` in your chat with it, then "
                                "Context › Reset password there.")
    ticket_id = await ctx.ticket_id(actor, ref)
    device = str(data.get("device") or "") or None

    async def context(**kw: Any) -> dict[str, Any]:
        view, similar = await asyncio.gather(ctx.user_view(actor, ticket_id, audience=aud),
                                             ctx.similar(actor, ticket_id, audience=aud))
        return tc.context_card(view, ticket_label=ticket_label, can_act=await quick.allowed(actor), similar=similar,
                               **kw)

    if name == "context":
        return await context()
    if name == "ctx_activity":
        return await context(activity=await ctx.activity(actor, ticket_id, audience=aud))
    if name == "ctx_apps":
        return tc.apps_card(await ctx.apps(actor, ticket_id, str(device), audience=aud), ticket_id)
    if name == "ctx_choose":
        typed = str(data.get("user") or "").strip()
        await ctx.choose(actor, ticket_id, typed, audience=aud)
        return await context(notice=f"This ticket is now about {typed}.")
    if name in ACTIONS:
        if not data.get("confirm"):
            view = await ctx.user_view(actor, ticket_id, audience=aud)
            if view.user is None:
                raise InvalidInput("This ticket has no Microsoft 365 user.",
                                   hint="Type the user's sign-in name in the context card and choose Use this user.")
            label = next((d.name for d in view.devices or () if d.id == device), None)
            return tc.confirm_card(name, ticket_id, user=view.user.upn, device=label, device_id=device)
        try:
            done = await quick.request(actor, ticket_id, ACTIONS[name], device_id=device, audience=aud,
                                       intent=f"teams:{actor.workspace_id}:{data.get('intent')}",
                                       again=bool(data.get("again")))
        except AskAgain as exc:  # a reset moments ago: nothing done; a second one only with its own Yes
            return tc.ask_again_card(exc, ticket_id)
        return tc.accepted_card(done, ticket_id)
    raise InvalidInput(f"'{name[:40]}' is not something this card can do.", hint="Open the ticket again.")
