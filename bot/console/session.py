"""`deskbridge console`: a terminal surface speaking the same commands and views as Slack.

Type `/tickets mine`, `/ticket 12`, `/deskbridge help` (the slash is optional). Buttons are numbered:
type the number. With a ticket open, any other text is written to it like a Slack thread message
(internal note; `!public` for a customer reply; `!time 30m …` to log time).
"""

from __future__ import annotations

import asyncio
import difflib
import getpass
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bot.console import render
from bot.console.context import (
    CONTEXT_CONFIRM,
    CONTEXT_WORDS,
    render_accepted,
    render_activity,
    render_apps,
    render_user_context,
)
from core.chat import ChatUser, grammar
from core.context import Actor
from core.control_chars import drop_controls
from core.errors import DeskbridgeError, NotFound
from core.notify import DomainEvent
from core.tenant_actions import AskAgain, QuickActionAccepted
from core.views import FormField, FormOption, FormView, MessageView, QueueView, TicketView, ViewAction

InputFn = Callable[[str], Awaitable[str | None]]
OutputFn = Callable[[str], None]

GREETING = ("Deskbridge console — the same commands as in Slack. Try /tickets, /tickets mine, /ticket <n>, "
            "/ticket new, context, /deskbridge help. Type a number to press a button; 'quit' to leave.")
COMMANDS = ("tickets", "ticket", "deskbridge", "queue", "q")
SEARCH_SHOWN = 10  # matches listed for a searched field (customers): type more to narrow


def terminal_safe(output: OutputFn) -> OutputFn:
    """`output` for text from outside (PSA subjects and notes, alert titles): a terminal gets its words, never a
    control sequence (an ESC [2J clears the screen, ESC ]0; retitles the window); line breaks and tabs stay."""
    return lambda text: output(drop_controls(text))


class ConsoleNotifier:
    """Prints domain events (PSA notes, deliveries, SLA warnings) as they happen."""

    def __init__(self, output: OutputFn) -> None:
        self.output = terminal_safe(output)

    async def notify(self, event: DomainEvent) -> None:
        line = render.render_event(event)
        if line:
            self.output(line)


class ConsoleSession:
    def __init__(self, container: Any, *, read: InputFn, write: OutputFn, as_email: str | None = None,
                 user_id: str | None = None) -> None:
        self.c = container
        self.read = read
        self.write = terminal_safe(write)
        self.as_email = as_email
        self.user = ChatUser(platform="console", team_id="local", user_id=user_id or _os_user(),
                             channel_id="console", platform_admin=True)
        self.buttons: list[ViewAction] = []
        self.current_ticket: str | None = None
        self.last_filters: grammar.ListTickets | None = None

    @property
    def workspace_id(self) -> int:
        return int(self.c.default_workspace_id)

    async def start(self) -> None:
        """Pick the technician the console acts as and link the console identity to them."""
        directory = self.c.directory
        member = None
        if self.as_email:
            member = await directory.member_by_email(self.workspace_id, self.as_email)
            if member is None:  # never act (and write notes, log time) as someone else by a typo
                emails = [m.email for m in await directory.members(self.workspace_id) if m.active and m.email]
                close = difflib.get_close_matches(self.as_email.lower(), emails, n=3, cutoff=0.6)
                raise NotFound(f"No technician has the e-mail {self.as_email}.",
                               hint=(f"Did you mean {' or '.join(close)}? " if close else "")
                               + "Leave out --as-email to act as the first technician.")
        if member is None:
            existing = await self.c.chat.member_for(self.workspace_id, self.user)
            members = [m for m in await directory.members(self.workspace_id) if m.active]
            member = existing or next((m for m in sorted(members, key=lambda m: m.id) if m.external_id), None) \
                or (members[0] if members else None)
        if member is None:
            member = await directory.add_member(self.workspace_id, name="Console Technician", is_admin=True)
        await directory.link_chat_user(self.workspace_id, member.id, platform="console", team_id="local",
                                       user_id=self.user.user_id)
        self.c.chat.invalidate()
        self.write(GREETING)
        self.write(f"You are {member.name}.")

    async def actor(self) -> tuple[Actor, Any]:
        return await self.c.chat.actor_for(self.workspace_id, self.user)

    async def run(self) -> None:
        """Read lines until 'quit' or end of input."""
        await self.start()
        while True:
            line = await self.read("deskbridge> ")
            if line is None or line.strip().lower() in ("quit", "exit", ":q"):
                self.write("Bye.")
                return
            await self.handle(line)

    async def handle(self, line: str) -> None:
        """One line: a command, a button number, or a message for the open ticket."""
        text = line.strip()
        if not text:
            return
        try:
            if text.isdecimal() and self.buttons:
                await self._press(int(text))
                return
            word, _, rest = text.lstrip("/").partition(" ")
            if word.lower() == "context":
                await self._context(rest.strip())
                return
            if word.lower() in COMMANDS or text.startswith("/"):
                await self._command(word, rest)
                return
            if text.lower() in ("help", "?"):
                await self._command("deskbridge", "help")
                return
            if self.current_ticket is None:
                self.write("No ticket is open. Open one with /ticket <n>, or see /deskbridge help.")
                return
            actor, _ = await self.actor()
            ticket_id = (await self.c.tickets.get(actor, self.current_ticket)).summary.id
            done = await self.c.chat_commands.thread_message(actor, ticket_id, text)
            if done is None:
                self.write("(not sent)")
                return
            self._show_ticket(done.view, notice=done.confirmation)
        except DeskbridgeError as exc:
            self.write(render.render_message(_error(exc)))

    async def _context(self, rest: str) -> None:
        """`context [ticket]`: the M365 quick view of the ticket's user (the open ticket by default);
        `context activity|apps DEVICE|user UPN|reset|revoke|sync DEVICE` on the open ticket (actions confirmed)."""
        word, _, arg = rest.partition(" ")
        sub = word.lower() if word.lower() in CONTEXT_WORDS else ""
        ref = (rest if not sub else "").lstrip("#") or (self.current_ticket or "")
        if not ref:
            self.write("No ticket is open. Use context <ticket number>.")
            return
        actor, _ = await self.actor()
        ticket_id = await self.c.tenant_context.ticket_id(actor, ref)
        ctx, arg = self.c.tenant_context, arg.strip()
        if sub == "activity":
            self.write(render_activity(await ctx.activity(actor, ticket_id)))
        elif sub == "apps":
            self.write(render_apps(await ctx.apps(actor, ticket_id, arg)))
        elif sub == "user":
            self.write(render_user_context(await ctx.choose(actor, ticket_id, arg)))
        elif sub in ("reset", "revoke", "sync"):
            action = {"reset": "reset_password", "revoke": "revoke_sessions", "sync": "sync_device"}[sub]
            answer = await self.read(f"{CONTEXT_CONFIRM[sub]} Type yes to go on: ")
            if (answer or "").strip().lower() != "yes":
                self.write("Nothing was done.")
                return
            done = await self._quick_action(actor, ticket_id, action, arg or None)
            self.write(render_accepted(done) if done is not None else "Nothing was done.")
        else:
            view, similar = await asyncio.gather(ctx.user_view(actor, ticket_id), ctx.similar(actor, ticket_id))
            self.write(render_user_context(view, similar))

    async def _quick_action(self, actor: Actor, ticket_id: int, action: str,
                            device: str | None) -> QuickActionAccepted | None:
        """One confirmed quick action; a reset of a user reset moments ago is asked about once more."""
        try:
            return await self.c.quick_actions.request(actor, ticket_id, action, device_id=device,
                                                      intent=f"console:{self.user.user_id}:{uuid.uuid4().hex}")
        except AskAgain as exc:
            self.write(exc.message)
            if ((await self.read(f"{exc.question} Type yes to go on: ")) or "").strip().lower() != "yes":
                return None
            return await self.c.quick_actions.request(actor, ticket_id, action, device_id=device, again=True,
                                                      intent=f"console:{self.user.user_id}:{uuid.uuid4().hex}")

    async def _command(self, word: str, rest: str) -> None:
        cmd = grammar.parse(word, rest)
        actor, info = await self.actor()
        if isinstance(cmd, grammar.ListTickets):
            self.last_filters = cmd
        view = await self.c.chat_commands.run(actor, self.user, info, cmd)
        await self._show(view)

    async def _show(self, view: Any) -> None:
        if isinstance(view, QueueView):
            text, self.buttons = render.render_queue(view)
            self.write(text)
        elif isinstance(view, TicketView):
            self._show_ticket(view)
        elif isinstance(view, FormView):
            await self._fill(view)
        elif isinstance(view, MessageView):
            self.buttons = []
            self.write(render.render_message(view))

    def _show_ticket(self, view: TicketView, notice: str | None = None) -> None:
        if notice:
            from dataclasses import replace

            view = replace(view, notice=notice)
        text, self.buttons = render.render_ticket(view)
        self.current_ticket = view.summary.ref
        self.write(text)

    async def _press(self, n: int) -> None:
        if not 1 <= n <= len(self.buttons):
            self.write(f"There is no button {n}.")
            return
        b = self.buttons[n - 1]
        actor, info = await self.actor()
        cmds = self.c.chat_commands
        views = self.c.chat_views
        if b.action == "open":
            await self._show(await views.ticket(actor, b.value))
        elif b.action == "page" and self.last_filters is not None:
            from dataclasses import replace

            await self._show(await cmds.queue(actor, replace(self.last_filters, cursor=b.value), info=info))
        elif b.action in ("reply", "note"):
            await self._fill(await views.reply_form(actor, b.value,
                                                    visibility="public" if b.action == "reply" else "internal"))
        elif b.action == "status":
            await self._fill(await views.status_form(actor, b.value))
        elif b.action == "time":
            await self._fill(await views.time_form(actor, b.value))
        elif b.action == "ai_draft":
            draft = await cmds.draft_offer(actor, b.value)
            text, self.buttons = render.render_draft(draft)
            self.write(text)
        elif b.action == "ai_draft_edit":
            await self._fill(await cmds.draft_edit(actor, b.value))
        elif b.action in ("assign_me", "alert_ack", "alert_resolve") or b.action.startswith("ai_"):
            done = await cmds.action(actor, b.action, b.value)
            self._show_ticket(done.view, notice=done.confirmation)
        elif b.url:
            self.write(f"{b.label}: {b.url}")
        else:
            self.write(f"{b.label}: no link is configured for this ticket.")

    async def _fill(self, form: FormView) -> None:
        """Ask each field in turn, then submit through the same code path as a Slack modal."""
        self.write(render.render_form_intro(form))
        values: dict[str, str] = {}
        for f in form.fields:
            if f.kind == "search_select":
                answered, picked = await self._search(f)
                if not answered:
                    self.write("Cancelled.")
                    return
                if picked is not None:
                    values[f.name] = picked
                continue
            while True:
                answer = await self.read(render.render_field_prompt(f))
                if answer is None or answer.strip().lower() == "cancel":
                    self.write("Cancelled.")
                    return
                value, problem = _field_value(f, answer.strip())
                if problem:
                    self.write(problem)
                    continue
                if value is not None:
                    values[f.name] = value
                break
        actor, _ = await self.actor()
        ref = form.ticket_ref or (str(form.ticket_number) if form.ticket_number is not None else None)
        done = await self.c.chat_commands.submit(actor, form.form, values, ticket_ref=ref)
        self._show_ticket(done.view, notice=done.confirmation)


    async def _search(self, f: FormField) -> tuple[bool, str | None]:
        """A searched field: the typed text gives numbered matches (core's search, as Slack's typeahead), a
        number picks one, other text searches again. Returns (False, None) when cancelled."""
        matches: list[FormOption] = []
        prompt = render.render_field_prompt(f)
        while True:
            answer = await self.read(prompt)
            if answer is None or answer.strip().lower() == "cancel":
                return False, None
            text = answer.strip()
            if matches and text.isdecimal():
                if 1 <= int(text) <= len(matches):
                    chosen = matches[int(text) - 1]
                    self.write(f"{f.label}: {chosen.label}")
                    return True, chosen.value
                self.write(f"There is no {text} in the list; pick 1-{len(matches)} or type to search again.")
                continue
            if not text:
                if f.initial is not None:
                    return True, f.initial
                if not f.required:
                    return True, None
                self.write(f"{f.label} is required.")
                continue
            actor, _ = await self.actor()
            found = await self._options(actor, f, text, SEARCH_SHOWN + 1)
            matches = found[:SEARCH_SHOWN]
            self.write(render.render_matches(f, text, matches, more=len(found) > SEARCH_SHOWN))
            prompt = render.render_pick_prompt(f, len(matches)) if matches else render.render_field_prompt(f)

    async def _options(self, actor: Actor, f: FormField, text: str, limit: int) -> list[FormOption]:
        if f.source == "customers":
            return list(await self.c.chat_views.customer_options(actor, text, limit=limit))
        return []


def _field_value(f: Any, answer: str) -> tuple[str | None, str | None]:
    if not answer:
        if f.initial is not None:
            return f.initial, None
        return (None, f"{f.label} is required.") if f.required else (None, None)
    if f.kind == "select":
        if answer.isdecimal() and 1 <= int(answer) <= len(f.options):
            return f.options[int(answer) - 1].value, None
        match = [o for o in f.options if o.label.lower() == answer.lower() or o.value.lower() == answer.lower()]
        if match:
            return match[0].value, None
        return None, f"Pick a number from 1 to {len(f.options)}."
    if f.kind == "checkbox":
        return ("true" if answer.lower() in ("y", "yes", "true", "1", "on") else "false"), None
    if f.max_length and len(answer) > f.max_length:
        return None, f"{f.label} is limited to {f.max_length} characters."
    return answer, None


def _error(exc: DeskbridgeError) -> MessageView:
    from core.chat import error_view

    return error_view(exc)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "console"


async def stdin_reader(prompt: str) -> str | None:
    """Read a line from the terminal without blocking the event loop (background work keeps running)."""
    try:
        return await asyncio.to_thread(input, prompt)
    except EOFError:
        return None
