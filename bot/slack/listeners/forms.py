"""Modal submissions: the write runs before the ack (a refused value becomes a field error in the modal),
within SUBMIT_BUDGET_S; a slower write turns the modal into "Saving…" and finishes after the ack."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.slack import blocks as bk
from bot.slack import text as t
from bot.slack.context import SlackContext
from bot.slack.install import WORKSPACE_KEY
from bot.slack.listeners.common import bound, source
from core.chat import ChatUser, Submitted, audience
from core.errors import DeskbridgeError

log = logging.getLogger("deskbridge.slack")

FIELD_BLOCKS = {"note": "text", "time note": "notes", "minutes": "minutes", "filter": "text"}
SUBMIT_BUDGET_S = 2.0  # a modal submission waits this long for its write before acking (Slack allows 3 s)


def register(app: AsyncApp, sc: SlackContext) -> None:
    app.view(re.compile(f"^{bk.FORM_PREFIX}"))(bound(submit_form, sc))


async def submit_form(sc: SlackContext, ack: Any, body: dict[str, Any], context: Any, client: Any) -> None:
    view = body.get("view") or {}
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        meta = {}
    form = str(view.get("callback_id", "")).removeprefix(bk.FORM_PREFIX)
    values = bk.form_values((view.get("state") or {}).get("values") or {})
    channel = meta.get("channel")
    user = sc.chat_user(context, body, channel)
    ws = int(context[WORKSPACE_KEY])

    # One submission is one write: the same modal sent twice (a double click; Slack's view id and hash with
    # the same values) is taken once. A refused submission is forgotten, so the corrected one is new work.
    claim = (f"slack-view:{user.team_id}", f"{view.get('id')}:{view.get('hash')}:{values_digest(values)}")

    async def write() -> Submitted | None:
        if not await sc.chat.first_time(*claim):
            return None
        try:
            # Before the ack: database only (the user was resolved when the modal was opened).
            actor, info = await sc.actor(context, user, client, slack_lookups=False)
            thread = meta.get("thread_ts") or meta.get("card_ts")
            return await sc.commands.submit(actor, form, values,
                                            ticket_ref=str(meta["ticket"]) if meta.get("ticket") else None,
                                            audience=audience(actor, info),
                                            source=source(channel, thread) if channel and thread else None)
        except BaseException:
            await sc.chat.not_done(*claim)
            raise

    # The write normally takes milliseconds and a refused value becomes a field error in the modal. If the
    # database is slow (a long write lock), the ack cannot wait: Slack gives up after 3 s and the user, seeing
    # an error, would submit again and write twice. So after SUBMIT_BUDGET_S the modal turns into "Saving…"
    # and the outcome (or the refusal, with the user's text so nothing is lost) replaces it when known.
    task = asyncio.ensure_future(write())
    finished, _ = await asyncio.wait({task}, timeout=SUBMIT_BUDGET_S)
    if not finished:
        await ack(response_action="update", view=bk.saving_modal(view))
        sc.background(_finish_slow_submit(sc, task, view, values, meta, user, ws, client))
        return
    try:
        done = task.result()
    except DeskbridgeError as exc:
        blocks = [b.get("block_id") for b in view.get("blocks") or [] if b.get("block_id")]
        field = getattr(exc, "field", None)
        target = FIELD_BLOCKS.get(field or "", field)
        target = target if target in blocks else (blocks[0] if blocks else "text")
        await ack(response_action="errors", errors={target: t.error_text(exc.message, exc.hint)[:2000]})
        return
    await ack()
    if done is None:
        log.info("a modal submitted twice was taken once", extra={"form": form})
        return
    sc.background(_after_submit(sc, done, form, meta, user, ws, client))
    sc.background(_refresh_modal_below(done, view, client))


async def _refresh_modal_below(done: Submitted, view: dict[str, Any], client: Any) -> None:
    """A form pushed over the ticket modal (App Home): once it closes, the ticket modal it was pushed on
    shows the ticket as it is now and says what was done."""
    below = view.get("previous_view_id")
    if not below or below == view.get("id") or done.view is None:
        return
    try:
        await client.views_update(view_id=below, view=bk.ticket_modal(replace(done.view, notice=done.confirmation)))
    except SlackApiError:
        log.info("the ticket modal under a submitted form was already closed")


def values_digest(values: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:24]


async def _after_submit(sc: SlackContext, done: Submitted, form: str, meta: dict[str, Any], user: ChatUser,
                        ws: int, client: Any) -> None:
    """Say what was done where the form came from: the ticket's thread, or the ephemeral card itself."""
    channel = meta.get("channel")
    if channel and form == "new_ticket":
        url = meta.get("response_url")

        async def privately(**message: Any) -> None:  # the card could not go into the channel: tell its creator
            if not url or not await sc.respond_to(url, **message):
                log.warning("new ticket's card could not be shown to its creator", extra={"channel": channel})

        await sc.post_card(client, ws, user.team_id, channel, done.view, thread_ts=meta.get("source_ts"),
                           respond=privately)
        return
    thread_ts = meta.get("thread_ts") or meta.get("card_ts")
    if channel and thread_ts:
        await sc.confirm_in_thread(client, ws, user.team_id, channel, thread_ts, meta.get("card_ts"),
                                   done.view, done.confirmation, user_id=user.user_id)
    elif meta.get("response_url"):
        card = replace(done.view, notice=done.confirmation)
        await sc.respond_to(meta["response_url"], text=bk.ticket_fallback(card), blocks=bk.ticket_blocks(card),
                            replace_original=True)


async def _finish_slow_submit(sc: SlackContext, task: asyncio.Future[Submitted | None], view: dict[str, Any],
                              values: dict[str, str], meta: dict[str, Any], user: ChatUser, ws: int,
                              client: Any) -> None:
    form = str(view.get("callback_id", "")).removeprefix(bk.FORM_PREFIX)
    try:
        done = await task
    except Exception as exc:  # refused, or failed unexpectedly: either way the modal must not stay "Saving…"
        if isinstance(exc, DeskbridgeError):
            message, hint = exc.message, exc.hint
        else:
            log.exception("slow form submission failed")
            message, hint = t.SUBMIT_CRASHED, t.SUBMIT_CRASHED_HINT
        try:
            await client.views_update(view_id=view.get("id"), view=bk.submit_failed_modal(
                view, message, hint, values))
        except SlackApiError:  # the user closed the modal: tell them where they were, with their text
            if meta.get("channel"):
                await client.chat_postEphemeral(channel=meta["channel"], user=user.user_id,
                                                text=t.submit_failed(message, hint, values))
        return
    if done is None:  # a second copy of a submission already taken: the first one answers
        return
    try:
        await client.views_update(view_id=view.get("id"), view=bk.submit_done_modal(view, done.confirmation))
    except SlackApiError:
        log.info("slow form's modal was closed before it finished")
    await _after_submit(sc, done, form, meta, user, ws, client)
    await _refresh_modal_below(done, view, client)
