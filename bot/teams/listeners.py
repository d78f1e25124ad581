"""Teams SDK handlers. Each answers at once; the work runs after the answer (surface.work).

Messages to the bot (`@Deskbridge tickets mine`) run through the same grammar and runner as Slack
(core/mentions.py, ChatCommands). A message in a ticket's reply chain is that ticket's thread message
(ChatCommands.thread_message decides what is written). Card buttons are Action.Execute invokes: their one
local write runs before the answer, so the card the clicker gets back already says "queued".
The personal chat is the technician's own desk: `my queue` (Slack's App Home, core's my_queue), shown on
install too. A Data.Query choice set's typeahead (`application/search`) is answered in the invoke response.
Help and hints are shown in Teams' `@Deskbridge …` form (core/chat/text.py MENTION). The activity parsing is
in bot/teams/incoming.py.

(Over 400 lines: messages, card actions, typeahead and installs share one Listeners object; the card actions
(`card_action`, `on_execute`, `_form_again`) are the next piece to move into their own module.)
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from microsoft_teams.api.models.adaptive_card.adaptive_card_action_response import (
    AdaptiveCardActionCardResponse,
    AdaptiveCardActionMessageResponse,
)
from microsoft_teams.api.models.search.search_response import (
    SearchInvokeResponseValue,
    SearchInvokeResult,
    SearchResponse,
)

from bot import looptrace
from bot.teams import alerts, cards, requests, tenant
from bot.teams.get_help import TeamsHelp
from bot.teams.incoming import Incoming, incoming, mentioned_people, message_text
from bot.teams.poster import PostRefused, Target, message
from bot.teams.requests import TeamsRequests
from core.chat import (
    ChannelInfo,
    audience,
    card_audience,
    error_view,
    grammar,
    may_post_ticket,
    seen_with,
)
from core.chat.text import MENTION
from core.context import Actor
from core.errors import DeskbridgeError, InvalidInput, NotFound, PermissionDenied
from core.mentions import parse_mention
from core.views import FormOption, FormView, MessageView, QueueView, TicketView

if TYPE_CHECKING:
    from bot.teams.app import TeamsSurface

log = logging.getLogger("deskbridge.teams")

PLATFORM = "teams"
KEPT_ANSWERS = 64  # kept ticket cards' answers, rendered once (Listeners._card_answer)
SEARCH_TOP, SEARCH_TOP_MAX = 15, 50  # typeahead results per request: Teams' default page, and our ceiling
STYLE = MENTION  # Teams users type `@Deskbridge tickets mine`: help and hints say so
ADMIN_COMMANDS = (grammar.Bind, grammar.Unbind, grammar.Bindings, grammar.Outbox, grammar.SettingsCmd, grammar.Link)


@dataclass(frozen=True, slots=True)
class Executed:
    """A card click's outcome: the invoke answer; the refusal it shows (None: done); the refused form given back
    filled in (`form`); the workspace, when it was found."""

    answer: Any
    refused: DeskbridgeError | None = None
    ws: int | None = None
    form: bool = False
    ticket_id: int | None = None  # the ticket the answer's card shows (a held click's follow-up may reuse it)


def styled(view: Any) -> Any:
    """A message's hint (and an error's text) in Teams' command form: core writes them once, in Slack's slash
    form. Other texts are left as they are (a quoted note is shown exactly as written)."""
    if not isinstance(view, MessageView):
        return view
    text = STYLE.restyle(view.text) if view.kind == "error" else view.text
    return replace(view, text=text, hint=STYLE.restyle(view.hint) if view.hint else view.hint)


class Listeners:
    def __init__(self, surface: TeamsSurface) -> None:
        self.s = surface
        self.c = surface.container
        self.requests = TeamsRequests(self)  # end users asking for help
        self.help = TeamsHelp(self)  # the "Get help" welcome card in customer conversations, and its dialog
        self._card_answers: OrderedDict[int, tuple[TicketView, AdaptiveCardActionCardResponse]] = OrderedDict()

    # ------------------------------------------------------------ context

    async def workspace(self, inc: Incoming) -> int:
        """The workspace of the bot's tenant (one registration per MSP): recorded on first contact."""
        inst = await self.c.chat.installation(PLATFORM, inc.tenant)
        if inst is None:
            inst = await self.c.chat.save_installation(platform=PLATFORM, team_id=inc.tenant, bot_token=None,
                                                       bot_user_id=self.s.app_id,
                                                       workspace_id=self.c.default_workspace_id)
        return inst.workspace_id

    async def remember(self, ws: int, inc: Incoming) -> None:
        await self.s.refs.remember(ws, tenant_id=inc.tenant, conversation_id=inc.base_conversation,
                                   service_url=inc.service_url, conversation_type=inc.conversation_type,
                                   team_id=inc.team_id, channel_id=inc.user.channel_id, shared=inc.shared,
                                   user_id=inc.user.user_id)

    async def actor(self, ws: int, inc: Incoming) -> tuple[Actor, ChannelInfo]:
        """The acting technician/contact; an unknown user gets core's auto-link attempt by their Teams e-mail."""
        try:
            actor, info = await self.c.chat.actor_for(ws, inc.user)
        except PermissionDenied as unknown:
            if not await self.c.chat.autolink(ws, inc.user, lambda: self.email_of(inc)):
                try:  # a customer's contact, by the e-mail Teams reports (core/chat/end_users.py)
                    actor, info = await self.c.chat.end_user_actor(ws, inc.user, await self.email_of(inc))
                except PermissionDenied:
                    raise unknown from None
                return actor, seen_with(info, shared=inc.shared)
            actor, info = await self.c.chat.actor_for(ws, inc.user)
        else:
            if not actor.is_member and not inc.user.is_external and await self.c.chat.autolink(
                    ws, inc.user, lambda: self.email_of(inc)):
                actor, info = await self.c.chat.actor_for(ws, inc.user)
        return actor, seen_with(info, shared=inc.shared)  # a shared channel is read by outsiders, bound or not

    async def mentioned_technician(self, ws: int, inc: Incoming, mention_id: str, name: str) -> str:
        """Who an @mention names, as core's grant takes it: a Teams mention carries the person's `29:` id, and
        technicians are linked by their AAD object id; the conversation's roster gives both their AAD id and their
        e-mail. Linked: `<@aad id>`; otherwise their e-mail (a technician account is found by it)."""
        try:
            member = await self.s.sdk.api.conversations.get_member_by_id(inc.base_conversation, mention_id)
        except Exception:  # noqa: BLE001 - no roster access, or not a member of this conversation
            log.info("Teams member lookup for a mention failed", exc_info=True)
            raise NotFound(f"I could not look up {name[:80]} in this conversation.",
                           hint="Give the e-mail of their technician account instead: "
                                "@Deskbridge m365 grant ana@msp.example.") from None
        aad = str(getattr(member, "aad_object_id", None) or "")
        if aad and await self.c.chat.member_for(ws, replace(inc.user, user_id=aad, user_team_id=None,
                                                             name=name)) is not None:
            return f"<@{aad}>"
        email = getattr(member, "email", None) or getattr(member, "user_principal_name", None)
        if email:
            return str(email).lower()
        raise NotFound(f"{name[:80]} has not linked a technician account.",
                       hint="They message Deskbridge `link` first; or give the e-mail of their technician account.")

    async def email_of(self, inc: Incoming) -> str | None:
        """The sender's e-mail as Teams reports it (the roster of the conversation)."""
        try:
            member = await self.s.sdk.api.conversations.get_member_by_id(inc.base_conversation, inc.aad_id)
        except Exception:  # noqa: BLE001 - no roster access: linking says what to do instead
            log.info("Teams member lookup failed", exc_info=True)
            return None
        email = getattr(member, "email", None) or getattr(member, "user_principal_name", None)
        return str(email).lower() if email else None

    # ------------------------------------------------------------ messages

    async def on_message(self, activity: dict[str, Any]) -> None:
        inc = incoming(activity)
        ws = await self.workspace(inc)
        await self.remember(ws, inc)
        value = activity.get("value")
        if isinstance(value, dict) and value.get("action") and not (activity.get("text") or "").strip():
            await self.on_submit_message(ws, inc, value)  # Action.Submit from an older client
            return
        text = message_text(activity)
        if inc.thread_root:
            ticket_id = await self.c.chat.ticket_for_thread(ws, PLATFORM, inc.user.channel_id or "", inc.thread_root)
            if ticket_id is not None and text.lower() != "help":
                await self.thread_message(ws, inc, ticket_id, text)
                return
        await self.command(ws, inc, text, str(activity.get("id") or ""), mentioned=mentioned_people(activity))

    async def command(self, ws: int, inc: Incoming, text: str, activity_id: str = "",
                      mentioned: list[tuple[str, str]] | None = None) -> None:
        try:
            try:
                cmd: grammar.Command | None = parse_mention(text)
            except InvalidInput as not_a_command:
                cmd, unknown = None, not_a_command
            if isinstance(cmd, grammar.M365Cmd) and cmd.action in ("grant", "revoke") and mentioned:
                cmd = replace(cmd, who=await self.mentioned_technician(ws, inc, *mentioned[0]))
            actor, info = await self.actor(ws, inc)
            if await self.requests.take(ws, inc, activity_id, actor, info, cmd, text):
                return  # an end user asking for help (bot/teams/requests.py)
            if cmd is None:
                raise unknown
            if isinstance(cmd, grammar.ShowTicket):
                card = await self.c.chat_views.ticket(actor, cmd.ref, audience=audience(actor, info))
                if inc.conversation_type == "channel" and (actor.is_member or info.is_customer_channel):
                    await self.post_ticket(ws, inc, card)
                else:
                    await self.s.poster.post(inc.target, message(cards.fallback(card), cards.ticket_card(card)))
                return
            # verified e-mail: linking a technician, or an end user's own tickets ("mine", by their contact)
            wants_email = isinstance(cmd, grammar.Link) or (
                isinstance(cmd, grammar.ListTickets) and cmd.assignee == "mine" and not actor.is_member)
            email = await self.email_of(inc) if wants_email else None
            view = await self.c.chat_commands.run(actor, inc.user, info, cmd, verified_email=email,
                                                  shared_channel=inc.shared, style=STYLE)
            if isinstance(cmd, grammar.Bind | grammar.Unbind) and cmd.kind in (None, "customer"):
                await self._help_card(ws, inc, bound=isinstance(cmd, grammar.Bind))
        except DeskbridgeError as exc:
            view = error_view(exc)
        await self.answer(inc, view)

    async def _help_card(self, ws: int, inc: Incoming, *, bound: bool) -> None:
        """After a customer bind or unbind: the conversation's Get help card (bot/teams/get_help.py), before the
        admin's answer, so that the answer stays the newest message."""
        channel = inc.user.channel_id or inc.base_conversation
        try:
            if bound:
                await self.help.ensure(ws, inc.tenant, channel)
            else:
                await self.help.remove(ws, inc.tenant, channel)
        except PostRefused as exc:
            await self.answer(inc, MessageView(
                text=f"The Get help card could not be {'posted' if bound else 'removed'} here ({exc}).",
                kind="error", hint="Bind the channel again in a minute to retry."))

    async def answer(self, inc: Incoming, view: Any) -> None:
        view = styled(view)
        if isinstance(view, QueueView):
            card = cards.queue_card(view)
        elif isinstance(view, TicketView):
            card = cards.ticket_card(view)
        elif isinstance(view, FormView):
            card = cards.form_card(view)
        else:
            assert isinstance(view, MessageView)
            card = cards.message_card(view)
        await self.s.poster.post(inc.target, message(cards.fallback(view), card))

    async def post_ticket(self, ws: int, inc: Incoming, view: TicketView) -> None:
        """A ticket card as a new channel post: its reply chain is the ticket's thread."""
        info = seen_with(await self.c.chat.channel(ws, PLATFORM, inc.tenant, inc.user.channel_id), shared=inc.shared)
        if not may_post_ticket(info, view.summary.customer_id):
            await self.answer(inc, MessageView(text="That ticket cannot be shown in this channel.", kind="error",
                                               hint="Open it in a channel of its customer, or in a chat with me."))
            return
        if card_audience(info) == "customer" and view.audience != "customer":
            view = await self.c.chat_views.ticket(self.c.system_actor(), view.summary.ref, audience="customer")
        root = await self.s.poster.post(Target(inc.base_conversation, inc.service_url),
                                        message(cards.fallback(view), cards.ticket_card(view)))
        await self.c.chat.record_post(ws, ticket_id=view.summary.id, platform=PLATFORM, team_id=inc.tenant,
                                      channel_id=inc.user.channel_id or inc.base_conversation, message_ts=root,
                                      ref={"conversation_id": inc.base_conversation, "service_url": inc.service_url,
                                           "audience": view.audience})

    async def thread_message(self, ws: int, inc: Incoming, ticket_id: int, text: str) -> None:
        """A reply in a ticket's reply chain: written to the PSA by ChatCommands' rules; refusals are told."""
        try:
            actor, info = await self.actor(ws, inc)
            source = f"{PLATFORM}:{inc.user.channel_id}:{inc.thread_root}"
            customer_reads = info.visibility == "customer"
            # a contact recognised by e-mail outside their customer's channels (core/chat/end_users.py)
            as_contact = not actor.is_member and not info.is_customer_channel
            # A customer's words in their own thread are theirs: core attributes them by their e-mail.
            email = await self.email_of(inc) if (customer_reads or as_contact) and not actor.is_member else None
            out = await self.c.chat_commands.thread_message(actor, ticket_id, text, customer_reads=customer_reads,
                                                            source=source, author_email=email, as_contact=as_contact)
        except DeskbridgeError as exc:
            await self.answer(inc, error_view(exc))
            return
        if out is None:
            return
        for problem in out.problems:
            await self.answer(inc, error_view(problem))
        if out.confirmation:
            await self.answer(inc, MessageView(text=out.confirmation, kind="success"))
        if out.view is not None:  # the card above the thread shows the queued write
            await self.s.notifier.refresh_cards(ws, ticket_id)

    # ------------------------------------------------------------ card actions

    async def on_execute(self, activity: dict[str, Any]) -> Any:
        """An Action.Execute click: the write runs now (local, queued for the PSA); the refreshed card returns."""
        return (await self.execute(activity)).answer

    async def execute(self, activity: dict[str, Any]) -> Executed:
        """A click's answer, and the refusal it carries (bot/teams/hold.py follows up on a held write with both)."""
        inc = incoming(activity)
        action = ((activity.get("value") or {}).get("action") or {})
        data: dict[str, Any] = action["data"] if isinstance(action.get("data"), dict) else {}
        ws: int | None = None
        try:
            ws = await self.workspace(inc)
            if data.get("action") in requests.ACTIONS:
                return Executed(await self.requests.on_click(ws, inc, data), ws=ws)
            if data.get("action") == requests.REPLY:
                return Executed(await self.requests.on_reply(ws, inc, data), ws=ws)
            if data.get("action") == alerts.CREATE:
                return Executed(await alerts.create(self, ws, inc, data), ws=ws)
            if data.get("from") == "my_queue" and data.get("action") == "open":
                return Executed(await self._open_from_my_queue(ws, inc, data), ws=ws)
            looptrace.mark("workspace")
            view = await self.card_action(ws, inc, data)
            looptrace.mark("view")
        except DeskbridgeError as exc:
            view = error_view(exc)
            if ws is not None and data.get("submit") and data.get("action") in ("reply", "status", "time", "new_ticket"):
                form = await self._form_again(ws, inc, data, exc)
                if form is not None:
                    return Executed(AdaptiveCardActionCardResponse.model_validate({"statusCode": 200, "value": form}),
                                    refused=exc, ws=ws, form=True)
            return Executed(self._answer_of(view), refused=exc, ws=ws)
        return Executed(self._answer_of(view), ws=ws,
                        ticket_id=view.detail.summary.id if isinstance(view, TicketView) else None)

    def _answer_of(self, view: Any) -> Any:
        if isinstance(view, MessageView):
            view = styled(view)
            return AdaptiveCardActionMessageResponse(
                value=cards.fallback(view) + (f" {view.hint}" if view.hint and view.kind == "error" else ""))
        if isinstance(view, dict):  # a card built by its own renderer (Microsoft 365 context)
            return AdaptiveCardActionCardResponse.model_validate({"statusCode": 200, "value": view})
        return self._card_answer(view)

    def _card_answer(self, view: Any) -> AdaptiveCardActionCardResponse:
        """The invoke answer showing `view`. A kept ticket card (core/chat/card_cache.py) is the same view object
        for every refresh while it is kept: its answer is rendered and validated once, and is the same object
        (bot/teams/app.py then serialises it once)."""
        if isinstance(view, TicketView):
            memo = self._card_answers.get(id(view))
            if memo is not None and memo[0] is view:
                return memo[1]
        answer = AdaptiveCardActionCardResponse.model_validate({"statusCode": 200, "value": cards.any_card(view)})
        if isinstance(view, TicketView):
            self._card_answers[id(view)] = (view, answer)  # the view is held: its id is not reused meanwhile
            while len(self._card_answers) > KEPT_ANSWERS:
                self._card_answers.popitem(last=False)
        return answer

    async def _open_from_my_queue(self, ws: int, inc: Incoming, data: dict[str, Any]) -> Any:
        """A row of `my queue`: the ticket card is posted below (after the answer); the queue, refreshed, stays."""
        ticket = await self.card_action(ws, inc, {"action": "open", "ref": data.get("ref")})
        queue = await self.card_action(ws, inc, {"action": "my_queue"})
        if not self.s.work.submit(lambda: _safely(self.s.poster.post(
                inc.target, message(cards.fallback(ticket), cards.ticket_card(ticket))))):
            raise InvalidInput("Deskbridge is too busy to open that ticket right now.", hint="Try again in a moment.")
        return AdaptiveCardActionCardResponse.model_validate({"statusCode": 200, "value": cards.queue_card(queue)})

    async def _form_again(self, ws: int, inc: Incoming, data: dict[str, Any],
                          exc: DeskbridgeError) -> dict[str, Any] | None:
        """The refused form, filled in with what was sent and the reason under its field (nothing is lost; a
        customer picked by typeahead keeps its name)."""
        values = dict(data)
        try:
            form = await self.card_action(ws, inc, {k: v for k, v in data.items() if k != "submit"})
            if isinstance(form, FormView):
                form = await self._keep_choices(ws, inc, form, values)
        except DeskbridgeError:
            return None
        if not isinstance(form, FormView):
            return None
        reason = exc.message + (f" {exc.hint}" if exc.hint else "")
        return cards.form_card(form, values=values, error=reason, error_field=getattr(exc, "field", None))

    async def _keep_choices(self, ws: int, inc: Incoming, form: FormView, values: dict[str, Any]) -> FormView:
        """A typeahead field's chosen value becomes its one static choice (so the card shows its name); a value
        the user may not pick is dropped from `values`."""
        fields = list(form.fields)
        for i, f in enumerate(fields):
            if f.kind == "search_select" and f.source == "customers" and values.get(f.name):
                actor, _ = await self.actor(ws, inc)
                choice = await self.c.chat_views.customer_choice(actor, str(values[f.name]))
                fields[i] = replace(f, options=(choice,) if choice else ())
                if choice is None:
                    values.pop(f.name)
        return replace(form, fields=tuple(fields))

    async def on_submit_message(self, ws: int, inc: Incoming, data: dict[str, Any]) -> None:
        try:
            view = await self.card_action(ws, inc, data)
        except DeskbridgeError as exc:
            view = error_view(exc)
        await self.answer(inc, view)

    async def card_action(self, ws: int, inc: Incoming, data: dict[str, Any]) -> Any:
        name, ref = str(data.get("action") or ""), str(data.get("ref") or "")
        actor, info = await self.actor(ws, inc)
        looptrace.mark("actor")
        aud = audience(actor, info)
        if tenant.handles(name):  # Microsoft 365 context: a card for the clicking technician only
            label = (await self.c.chat_views.ticket(actor, ref, audience=aud)).summary.display_number
            return await tenant.answer(self.c.tenant_context, self.c.quick_actions, actor, aud, name, ref, data,
                                       ticket_label=label, personal=inc.conversation_type == "personal")
        if name == "open":  # a card's refresh (Teams asks each time someone looks): a kept card will do
            return await self.c.chat_views.ticket(actor, ref, audience=aud, kept=True)
        if name in ("assign_me", "alert_ack", "alert_resolve"):
            return (await self.c.chat_commands.action(actor, name, ref)).view
        if name.startswith("ai_draft") and inc.conversation_type != "personal":
            raise InvalidInput("A reply draft is shown only to you, so it opens in your chat with Deskbridge.",
                               hint=f"Message Deskbridge `ticket {ref.removeprefix('id:')}` in that chat and "
                                    "ask there." if name == "ai_draft" else "Ask for the draft in that chat.")
        if name == "ai_draft":
            return await self.c.chat_commands.draft_offer(actor, ref)
        if name == "ai_draft_edit":
            return await self.c.chat_commands.draft_edit(actor, ref)
        if name.startswith("ai_"):
            done = await self.c.chat_commands.action(actor, name, ref)
            return replace(done.view, notice=done.confirmation)
        if data.get("submit") and name in ("reply", "status", "time", "new_ticket"):
            values = {k: str(v) for k, v in data.items() if k not in ("action", "ref", "submit") and v is not None}
            source = f"{PLATFORM}:{inc.user.channel_id}:{inc.thread_root}" if inc.thread_root else None
            return (await self.c.chat_commands.submit(actor, name, values, ticket_ref=ref or None, audience=aud,
                                                      source=source)).view
        if name == "new_ticket":  # the form again (a refused submission is given back filled in)
            return await self.c.chat_commands.run(actor, inc.user, info, grammar.NewTicket(), style=STYLE)
        if name == "status":
            return await self.c.chat_views.status_form(actor, ref)
        if name == "time":
            return await self.c.chat_views.time_form(actor, ref)
        if name in ("reply", "note"):
            return await self.c.chat_views.reply_form(actor, ref, visibility="public" if name == "reply" else "internal")
        if name == "my_queue":
            return await self.c.chat_commands.run(actor, inc.user, info, grammar.MyQueue(cursor=data.get("cursor")),
                                                  style=STYLE)
        if name == "page":
            cmd = grammar.parse_filters(str(data.get("filters") or ""))
            return await self.c.chat_commands.queue(actor, replace(cmd, cursor=data.get("cursor")), info=info)
        raise InvalidInput(f"'{name[:40]}' is not something this card can do.", hint="Open the ticket again.")

    # ------------------------------------------------------------ typeahead

    async def on_search(self, activity: dict[str, Any]) -> SearchResponse:
        """`application/search` from a Data.Query choice set (the new-ticket form's customer above 100 customers),
        answered in the invoke response. The searcher is resolved from our database only (no roster call per
        keystroke), in the conversation the card is in: whoever may not pick customers gets nothing, a customer
        channel only its own customer; only this workspace's customers are ever searched."""
        raw = activity.get("value")
        value: dict[str, Any] = raw if isinstance(raw, dict) else {}
        options: dict[str, Any] = value["queryOptions"] if isinstance(value.get("queryOptions"), dict) else {}
        try:
            skip = max(0, int(options.get("skip") or 0))
            top = min(max(1, int(options.get("top") or SEARCH_TOP)), SEARCH_TOP_MAX)
        except (TypeError, ValueError):
            skip, top = 0, SEARCH_TOP
        found: list[FormOption] = []
        inc = incoming(activity)
        try:
            ws = await self.workspace(inc)
            if value.get("dataset") == "customers":
                actor, _ = await self.c.chat.actor_for(ws, inc.user)
                found = (await self.c.chat_views.customer_options(actor, str(value.get("queryText") or ""),
                                                                   limit=skip + top))[skip:]
        except DeskbridgeError:
            found = []
        return SearchResponse(value=SearchInvokeResponseValue(
            results=[SearchInvokeResult(title=o.label[:120], value=o.value) for o in found[:top]]))

    # ------------------------------------------------------------ install / uninstall

    async def on_installation(self, activity: dict[str, Any], *, added: bool) -> None:
        inc = incoming(activity)
        ws = await self.workspace(inc)
        if not added:
            await self.s.refs.forget(ws, tenant_id=inc.tenant, conversation_id=inc.base_conversation)
            if inc.conversation_type == "channel" and inc.team_id:  # removed from the team: all its channels
                await self.s.refs.team_installed(ws, tenant_id=inc.tenant, team_id=inc.team_id, installed=False)
            return
        await self.remember(ws, inc)
        if inc.conversation_type != "personal":
            info = await self.c.chat.channel(ws, PLATFORM, inc.tenant, inc.user.channel_id)
            if not info.is_customer_channel:  # a customer's conversation gets its Get help card instead
                await self.answer(inc, MessageView(
                    text="Deskbridge is here. Technicians: mention me with `link` to link your account, then "
                         "`tickets mine`. Admins: `bind customer ACME` makes a channel that customer's.",
                    kind="success"))
            await self.help.on_install(ws, inc)
            return
        # The personal app is the technician's own desk (Slack's App Home): their queue, or how to get one.
        try:
            actor, info = await self.actor(ws, inc)
            view = await self.c.chat_commands.run(actor, inc.user, info, grammar.MyQueue(), style=STYLE)
        except DeskbridgeError as exc:
            view = error_view(exc)
        await self.answer(inc, MessageView(
            text="Deskbridge is here. Say `my queue` any time for your own open tickets, `help` for the rest.",
            kind="success"))
        await self.answer(inc, view)


def register(surface: TeamsSurface) -> Listeners:
    ls = Listeners(surface)
    app = surface.sdk

    def later(job: Any) -> None:
        if not surface.work.submit(job):
            log.error("Teams activity dropped: the work queue is full")

    @app.on_message
    async def _message(ctx: Any) -> None:
        body = ctx.activity.model_dump(mode="json", by_alias=True, exclude_none=True)
        later(lambda: _safely(ls.on_message(body)))

    @app.on_card_action_execute
    async def _execute(ctx: Any) -> Any:
        return await ls.on_execute(ctx.activity.model_dump(mode="json", by_alias=True, exclude_none=True))

    @app.on_card_search
    async def _search(ctx: Any) -> Any:
        return await ls.on_search(ctx.activity.model_dump(mode="json", by_alias=True, exclude_none=True))

    @app.on_dialog_open
    async def _dialog_open(ctx: Any) -> Any:  # the Get help card's button (bot/teams/get_help.py)
        return await ls.help.open_dialog(ctx.activity.model_dump(mode="json", by_alias=True, exclude_none=True))

    @app.on_dialog_submit
    async def _dialog_submit(ctx: Any) -> Any:
        return await ls.help.submit(ctx.activity.model_dump(mode="json", by_alias=True, exclude_none=True))

    @app.on_install_add
    async def _installed(ctx: Any) -> None:
        body = ctx.activity.model_dump(mode="json", by_alias=True, exclude_none=True)
        later(lambda: _safely(ls.on_installation(body, added=True)))

    @app.on_install_remove
    async def _uninstalled(ctx: Any) -> None:
        body = ctx.activity.model_dump(mode="json", by_alias=True, exclude_none=True)
        later(lambda: _safely(ls.on_installation(body, added=False)))

    return ls


async def _safely(coro: Any) -> None:
    try:
        await coro
    except PostRefused as exc:
        log.error("Teams post refused: %s", exc)
