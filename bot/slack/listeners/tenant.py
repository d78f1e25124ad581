"""Microsoft 365 context beside a ticket: the card's Context button and the buttons of the context modal.

`context` (on a technician's card) opens the modal; inside it `ctx_activity` and `ctx_device` redraw it,
`ctx_apps` and `ctx_change` push a modal over it, and `ctx_reset`, `ctx_revoke`, `ctx_sync` (each behind
Slack's confirmation dialog) queue a quick action and push what was done (a reset's temporary password is
shown there, to the clicking technician only). Every click re-resolves who is acting and the channel the
modal was opened from: core refuses end users and customer channels, whatever the request says.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.slack import blocks as bk
from bot.slack import tenant_blocks as tb
from bot.slack import text as t
from bot.slack.context import SlackContext
from bot.slack.listeners.common import bound
from core.chat import audience
from core.context import Actor
from core.errors import DeskbridgeError, InvalidInput
from core.tenant_actions import AskAgain

log = logging.getLogger("deskbridge.slack")
ACTIONS = {"ctx_reset": "reset_password", "ctx_revoke": "revoke_sessions", "ctx_sync": "sync_device"}
CHOOSE_BUDGET_S = 2.0  # the change-user check waits this long before the ack (Slack allows 3 s)


def register(app: AsyncApp, sc: SlackContext) -> None:
    app.view(tb.CHOOSE_CALLBACK)(bound(submit_choice, sc))


def handles(name: str) -> bool:
    return name == "context" or name.startswith("ctx_")


async def run(sc: SlackContext, name: str, body: dict[str, Any], context: Any, client: Any,
              channel: str | None, in_modal: bool) -> None:
    """One Context click (raises DeskbridgeError for the caller to show)."""
    if sc.tenant is None or sc.quick_actions is None:
        raise InvalidInput("Microsoft 365 context is not available on this Deskbridge.",
                           hint="An admin sets DESKBRIDGE_M365_CLIENT_ID and DESKBRIDGE_M365_CLIENT_SECRET, then "
                                "connects the customer with `deskbridge customer connect-m365`.")
    action = (body.get("actions") or [{}])[0]
    view = body.get("view") or {}
    if name == "context":
        opened_in = channel
    else:  # inside the modal: the channel it was opened from, as recorded when it was opened
        opened_in = _json(view.get("private_metadata")).get("c")
    user = sc.chat_user(context, body, opened_in)
    actor, info = await sc.actor(context, user, client)
    aud = audience(actor, info)
    if name == "context":
        ticket_id = await sc.tenant.ticket_id(actor, str(action.get("value") or ""))

        async def build() -> dict[str, Any]:
            return await _modal(sc, actor, ticket_id, aud, opened_in)

        await sc.open_modal(client, body["trigger_id"], build, title="Context", push=in_modal)
        return
    value = _json(action.get("value"))
    ticket_id, device_id = int(value["t"]), value.get("d")
    if name in ACTIONS:
        try:
            done = await sc.quick_actions.request(
                actor, ticket_id, ACTIONS[name], device_id=device_id, audience=aud, again=bool(value.get("again")),
                intent=f"slack:{user.team_id}:{user.user_id}:{action.get('action_ts')}")
        except AskAgain as exc:  # a reset moments ago: nothing done; a second one only with its own click
            await _show_done(client, body, view, tb.ask_again_modal(exc, ticket_id, opened_in))
            return
        await _show_done(client, body, view, tb.accepted_modal(done))
    elif name == "ctx_apps":
        apps = await sc.tenant.apps(actor, ticket_id, str(device_id), audience=aud)
        await client.views_push(trigger_id=body["trigger_id"], view=tb.apps_modal(apps))
    elif name == "ctx_change":
        current = await sc.tenant.subject(actor, ticket_id, audience=aud)
        await client.views_push(trigger_id=body["trigger_id"], view=tb.choose_modal(ticket_id, opened_in, current.key))
    elif name == "ctx_device":
        quick = await sc.tenant.user_view(actor, ticket_id, audience=aud)
        if quick.user is None:
            raise InvalidInput("This ticket has no Microsoft 365 user to pick a device of.",
                               hint="Choose the user first (Context › Change user), then the device.")
        await sc.tenant.choose(actor, ticket_id, quick.user.upn, device_id=device_id, audience=aud)
        await _redraw(sc, client, view, actor, ticket_id, aud, opened_in, notice="This ticket is now about that device.")
    elif name == "ctx_activity":
        activity = await sc.tenant.activity(actor, ticket_id, audience=aud)
        await _redraw(sc, client, view, actor, ticket_id, aud, opened_in, activity=activity)
    else:
        raise InvalidInput("That button is not known here.", hint="Open the ticket's context again.")


async def _modal(sc: SlackContext, actor: Actor, ticket_id: int, aud: str, channel: str | None,
                 **kw: Any) -> dict[str, Any]:
    assert sc.tenant is not None and sc.quick_actions is not None
    quick, similar = await asyncio.gather(sc.tenant.user_view(actor, ticket_id, audience=aud),
                                          sc.tenant.similar(actor, ticket_id, audience=aud))
    label = (await sc.views.ticket(actor, f"id:{ticket_id}", audience=aud)).summary.display_number
    return tb.context_modal(quick, ticket_label=label, channel=channel, similar=similar,
                            can_act=await sc.quick_actions.allowed(actor), **kw)


async def _redraw(sc: SlackContext, client: Any, view: dict[str, Any], actor: Actor, ticket_id: int, aud: str,
                  channel: str | None, **kw: Any) -> None:
    await client.views_update(view_id=view.get("id"), hash=view.get("hash"),
                              view=await _modal(sc, actor, ticket_id, aud, channel, **kw))


async def _show_done(client: Any, body: dict[str, Any], view: dict[str, Any], modal: dict[str, Any]) -> None:
    """Push what a quick action did over the context modal. The action is already queued, so this must reach the
    technician (a reset's temporary password is shown nowhere else): when Slack refuses the push (the click's
    trigger lasts 3 s, and Graph may have been slow), the context modal itself is replaced instead."""
    try:
        await client.views_push(trigger_id=body["trigger_id"], view=modal)
    except SlackApiError as exc:
        if not view.get("id"):
            raise
        log.info("quick action shown in place: views.push refused", extra={"error": exc.response.get("error")})
        await client.views_update(view_id=view["id"], view=modal)


def _json(text: Any) -> dict[str, Any]:
    try:
        data = json.loads(str(text or "{}"))
    except ValueError:
        raise InvalidInput("That button's data was not understood.", hint="Open the ticket's context again.") from None
    if not isinstance(data, dict):
        raise InvalidInput("That button's data was not understood.", hint="Open the ticket's context again.")
    return data


async def submit_choice(sc: SlackContext, ack: Any, body: dict[str, Any], context: Any, client: Any) -> None:
    """The change-user modal: checked against the tenant before the ack when it can be (a field error in the
    modal), else the modal says "Checking…" and is replaced by the context or the refusal."""
    view = body.get("view") or {}
    meta = _json(view.get("private_metadata"))
    typed = str((((view.get("state") or {}).get("values") or {}).get("user") or {}).get("value", {}).get("value")
                or "")
    user = sc.chat_user(context, body, meta.get("c"))

    async def choose() -> dict[str, Any]:
        assert sc.tenant is not None
        actor, info = await sc.actor(context, user, client, slack_lookups=False)
        aud = audience(actor, info)
        await sc.tenant.choose(actor, int(meta["t"]), typed, audience=aud)
        return await _modal(sc, actor, int(meta["t"]), aud, meta.get("c"), notice=f"This ticket is now about {typed}.")

    task = asyncio.ensure_future(choose())
    finished, _ = await asyncio.wait({task}, timeout=CHOOSE_BUDGET_S)
    if not finished:
        await ack(response_action="update", view=bk.loading_modal("Change user"))
        sc.background(_finish(task, view, client))
        return
    try:
        await ack(response_action="update", view=task.result())
    except DeskbridgeError as exc:
        await ack(response_action="errors", errors={"user": t.error_text(exc.message, exc.hint)[:150]})


async def _finish(task: asyncio.Future[dict[str, Any]], view: dict[str, Any], client: Any) -> None:
    try:
        modal = await task
    except DeskbridgeError as exc:
        modal = bk.error_modal("Change user", exc.message, exc.hint)
    await client.views_update(view_id=view.get("id"), view=modal)

