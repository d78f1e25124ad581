"""Buttons on cards, queues and App Home (action ids `deskbridge:<action>`, the views' ViewAction ids)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack import blocks as bk
from bot.slack import text as t
from bot.slack import urgency
from bot.slack.context import SlackContext
from bot.slack.install import WORKSPACE_KEY
from bot.slack.listeners import tenant
from bot.slack.listeners.common import bound, on_ephemeral
from core.chat import ChannelInfo, ChatUser, audience, grammar
from core.context import Actor
from core.errors import DeskbridgeError, InvalidInput
from core.views import FormView

URL_ACTIONS = ("open_psa", "open_rmm", "open_runbook", "open_docs")
FORM_ACTIONS = ("reply", "note", "status", "time")


def register(app: AsyncApp, sc: SlackContext) -> None:
    app.action(re.compile(f"^{bk.ACTION_PREFIX}"))(sc.after_ack(bound(run_action, sc), urgent=urgency.action_opens_modal,
                                                                 claim=action_claim))


def action_claim(body: dict[str, Any], context: Any) -> tuple[str, str]:
    """The event id a click is claimed by (one click is one intent, whatever Slack retries)."""
    action = (body.get("actions") or [{}])[0]
    return f"slack-action:{context.team_id or ''}", f"{action.get('action_ts')}:{body.get('trigger_id')}"


async def run_action(sc: SlackContext, body: dict[str, Any], context: Any, client: Any, respond: Any) -> None:
    action = (body.get("actions") or [{}])[0]
    name = str(action.get("action_id", "")).removeprefix(bk.ACTION_PREFIX)
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    if not await sc.chat.first_time(*action_claim(body, context)):
        return
    user = sc.chat_user(context, body, channel)
    from_home = (body.get("view") or {}).get("type") == "home"
    in_modal = (body.get("view") or {}).get("type") == "modal"  # a ticket opened from App Home
    if from_home and sc.homes is not None:  # a click in Home: it is open (its refreshes go on)
        sc.homes.opened(user.team_id, user.user_id, int(context[WORKSPACE_KEY]))
    card_ts = (body.get("container") or {}).get("message_ts")
    if channel and card_ts:  # someone looks at this card: PSA changes to it go before other cards' (outbound.py)
        sc.poster.outbound.watch(channel, str(card_ts))
    try:
        if tenant.handles(name):  # Microsoft 365 context (it resolves the actor for the channel it was opened in)
            await tenant.run(sc, name, body, context, client, channel, in_modal)
            return
        actor, info = await sc.actor(context, user, client)
        if name in URL_ACTIONS:
            if not action.get("url"):
                await respond(text=t.NO_LINK, response_type="ephemeral", replace_original=False)
            return
        if name == "ai_draft":  # a draft for the clicker alone; sent only by their Approve
            view = await sc.commands.draft_offer(actor, _value(body))
            if body.get("response_url"):
                await respond(text="Reply draft", blocks=bk.draft_blocks(view), response_type="ephemeral",
                              replace_original=False)
            elif in_modal:  # no message to answer in: the draft goes on top of the ticket modal
                await client.views_push(trigger_id=body["trigger_id"], view=bk.draft_modal(view))
            else:  # App Home
                await client.views_open(trigger_id=body["trigger_id"], view=bk.draft_modal(view))
        elif name == "ai_draft_edit":
            await _edit_draft(sc, body, client, actor, channel, in_modal)
        elif name == "open":
            await _open(sc, body, context, client, respond, actor, info, user, channel, in_modal)
        elif name == "page":
            await _page(sc, body, client, respond, actor, info, user, from_home)
        else:
            await _act(sc, name, body, context, client, respond, actor, user, channel, in_modal)
    except (DeskbridgeError, ValueError, KeyError) as exc:
        err = exc if isinstance(exc, DeskbridgeError) else InvalidInput(
            "That button's data was not understood.", hint="Run the command again.")
        if from_home:  # no response_url on App Home: show the error at the top of the tab
            await client.views_publish(user_id=user.user_id, view=bk.home_error_view(err.message, err.hint))
        elif in_modal:  # nor in a modal: stack the error on top of it
            await client.views_push(trigger_id=body["trigger_id"],
                                    view=bk.error_modal("Deskbridge", err.message, err.hint))
        else:
            await sc.reply_error(respond, err)


def _value(body: dict[str, Any]) -> str:
    return str(((body.get("actions") or [{}])[0]).get("value") or "")


async def _open(sc: SlackContext, body: dict[str, Any], context: Any, client: Any, respond: Any, actor: Actor,
                info: ChannelInfo, user: ChatUser, channel: str | None, in_modal: bool) -> None:
    """`open`: the ticket's card into the channel, or (from App Home, a DM) a ticket modal."""
    value = _value(body)
    if channel and not user.is_dm and (body.get("container") or {}).get("type") != "view":
        view = await sc.views.ticket(actor, value, audience=audience(actor, info))
        await sc.post_card(client, int(context[WORKSPACE_KEY]), user.team_id, channel, view, respond=respond)
        return

    async def ticket_modal() -> dict[str, Any]:
        return bk.ticket_modal(await sc.views.ticket(actor, value, audience=audience(actor, info)))

    await sc.open_modal(client, body["trigger_id"], ticket_modal, title="Ticket", push=in_modal)


async def _edit_draft(sc: SlackContext, body: dict[str, Any], client: Any, actor: Actor, channel: str | None,
                      in_modal: bool) -> None:
    """`ai_draft_edit`: the normal reply form, prefilled with the draft (it is sent like any reply)."""
    meta: dict[str, Any] = {"channel": channel, "card_ts": None, "thread_ts": None}
    if body.get("response_url"):
        meta["response_url"] = body["response_url"]  # the ephemeral draft message becomes the updated card

    async def build() -> FormView:
        return await sc.commands.draft_edit(actor, _value(body), context=meta)

    await sc.open_form(client, body["trigger_id"], build, meta, title=t.FORM_TITLES["reply"], push=in_modal)


async def _page(sc: SlackContext, body: dict[str, Any], client: Any, respond: Any, actor: Actor,
                info: ChannelInfo, user: ChatUser, from_home: bool) -> None:
    """`page`: the next page of a queue, with the filters it was asked with."""
    data = json.loads(_value(body))
    cmd = grammar.parse_filters(data.get("f", ""))
    view = await sc.commands.queue(actor, replace(cmd, cursor=data.get("c")), info=info)
    if from_home:  # App Home has no response_url: re-publish the tab with the next page
        if sc.homes is not None:  # refreshes of their queue keep this page (bot/slack/home.py)
            sc.homes.paged(user.team_id, user.user_id, data.get("f", ""), data.get("c"), actor.workspace_id)
        await client.views_publish(user_id=user.user_id, view=bk.home_view(view))
    else:
        await respond(text=view.title, blocks=bk.queue_blocks(view), replace_original=True)


async def _act(sc: SlackContext, name: str, body: dict[str, Any], context: Any, client: Any, respond: Any,
               actor: Actor, user: ChatUser, channel: str | None, in_modal: bool) -> None:
    """A form to open (reply, note, status, time) or a one-click action, confirmed where the card is."""
    value = _value(body)
    message = body.get("message") or {}
    ephemeral = on_ephemeral(body)
    meta = {"channel": channel, "card_ts": None if ephemeral else message.get("ts"),
            "thread_ts": None if ephemeral else (message.get("thread_ts") or message.get("ts"))}
    if ephemeral and body.get("response_url"):
        meta["response_url"] = body["response_url"]  # to update that card after the form is sent
    if name in FORM_ACTIONS:
        async def build() -> FormView:
            if name == "status":
                return await sc.views.status_form(actor, value, context=meta)
            if name == "time":
                return await sc.views.time_form(actor, value, context=meta)
            return await sc.views.reply_form(actor, value, context=meta,
                                             visibility="public" if name == "reply" else "internal")

        await sc.open_form(client, body["trigger_id"], build, meta, title=t.FORM_TITLES[name], push=in_modal)
        return
    if meta["card_ts"] and channel and body.get("response_url"):  # its write's outcome replaces the card through it
        sc.confirmations.clicked(channel, str(meta["card_ts"]), str(body["response_url"]))
    in_thread = bool(channel and meta["thread_ts"])  # the card there is built when its update is sent
    done = await sc.commands.action(actor, name, value, card=not in_thread)
    if not done.changed and not in_modal and body.get("response_url"):  # a no-op: said to the clicker only
        await respond(text=t.confirm_thread(done.confirmation), response_type="ephemeral", replace_original=False)
    elif channel and meta["thread_ts"]:
        await sc.confirm_in_thread(client, int(context[WORKSPACE_KEY]), user.team_id, channel, meta["thread_ts"],
                                   meta["card_ts"], done.view, done.confirmation, user_id=user.user_id)
    elif in_modal:  # the ticket modal shows the new state and what was done
        v = body["view"]
        await client.views_update(view_id=v.get("id"), hash=v.get("hash"),
                                  view=bk.ticket_modal(replace(done.view, notice=done.confirmation)))
    else:  # an ephemeral card (or a DM): it has no thread, so the card itself says what was done
        card = replace(done.view, notice=done.confirmation)
        await respond(text=bk.ticket_fallback(card), blocks=bk.ticket_blocks(card), replace_original=True)
