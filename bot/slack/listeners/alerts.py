""""Create ticket" on an alert that made no ticket (core/intake/offers.py decides; this only translates).

The notifier posts the offer in technicians' dispatch channels: the alert, a customer picker and the button.
Picking a customer only acks; the button creates the ticket for the clicking technician under the picked
customer (core: one ticket per alert, whatever double clicks or retries), replaces the offer with what was
done, and posts the ticket's card in the offer's thread, which becomes the ticket's thread there. A second
click is told that the alert already has its ticket; a refusal says why and what to do.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack import alert_blocks as ab
from bot.slack import blocks as bk
from bot.slack.context import SlackContext
from bot.slack.install import WORKSPACE_KEY
from bot.slack.listeners.common import bound
from core.errors import DeskbridgeError, InvalidInput


def register(app: AsyncApp, sc: SlackContext) -> None:
    app.action(ab.ALERT_CREATE)(sc.after_ack(bound(create_ticket, sc)))

    @app.action(ab.ALERT_CUSTOMER)
    async def _picked(ack: Any) -> None:  # the choice is read from the message's state on "Create ticket"
        await ack()


def _picked_customer(body: dict[str, Any]) -> str | None:
    values = ((body.get("state") or {}).get("values") or {}).get(ab.ALERT_BLOCK) or {}
    chosen = (values.get(ab.ALERT_CUSTOMER) or {}).get("selected_option") or {}
    return str(chosen["value"]) if chosen.get("value") else None


async def create_ticket(sc: SlackContext, body: dict[str, Any], context: Any, client: Any, respond: Any) -> None:
    action = (body.get("actions") or [{}])[0]
    channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")
    message = body.get("message") or {}
    user = sc.chat_user(context, body, channel)
    try:
        if sc.alert_offers is None:
            raise InvalidInput("Alert intake is not running on this instance.", hint="Ask an admin.")
        actor, _ = await sc.actor(context, user, client)
        alert_id = str(action.get("value") or "")
        if not alert_id.isdigit():
            raise InvalidInput("That button's data was not understood.", hint="Use `deskbridge intake triage`.")
        done = await sc.alert_offers.create(actor, int(alert_id), _picked_customer(body))
    except DeskbridgeError as exc:
        await sc.reply_error(respond, exc)
        return
    if done.again or done.ticket_id is None:
        await respond(text=done.line, response_type="ephemeral", replace_original=False)
        return
    title = next((b["text"]["text"] for b in message.get("blocks") or [] if b.get("type") == "section"), "")
    await respond(replace_original=True, text=done.line,
                  blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": title or "Alert"}},
                          {"type": "context", "elements": [{"type": "mrkdwn", "text": bk.esc(done.line)}]}])
    view = await sc.views.ticket(actor, f"id:{done.ticket_id}")
    ws, team = int(context[WORKSPACE_KEY]), str(context.team_id or "")
    await sc.post_card(client, ws, team, channel, view, thread_ts=str(message.get("ts") or "") or None)
