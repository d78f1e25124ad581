"""`/deskbridge ai …` from chat: model status, AI settings (admins change them), training, similar tickets.

Training is started in the background and answered at once ("training started"): it runs in a worker
thread (core/ai/service.py) and never holds up the chat worker; `/deskbridge ai` shows the result.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace

from core.ai.draft_choices import DraftChoices
from core.ai.knowledge import source_name
from core.ai.service import AiService
from core.chat import grammar as c
from core.chat.models import ChannelInfo
from core.context import Actor
from core.errors import DeskbridgeError, InvalidInput, PermissionDenied
from core.hints import TECH_ONLY_HINT
from core.views import MessageView

log = logging.getLogger(__name__)

AT_RISK_LIMIT = 15
AI_HELP = ("Use /deskbridge ai (status) · ai settings · ai set <name> <value> (admins) · ai train (admins) · "
           "ai similar <words> · tickets at-risk")


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ", ".join(value) or "(none)"
    return str(value)


def _draft_id(value: str) -> int:
    v = value.strip()
    if not (v.isascii() and v.isdigit() and len(v) <= 12):
        raise InvalidInput("That draft button's data was not understood.", hint="Ask for a new draft.")
    return int(v)


class ChatAi:
    def __init__(self, ai: AiService, *, drafts: DraftChoices | None = None) -> None:
        self.ai = ai
        self.drafts = drafts
        self._tasks: set[asyncio.Task[object]] = set()

    async def run(self, actor: Actor, info: ChannelInfo, cmd: c.AiCmd) -> MessageView:
        if not actor.is_member or actor.customer_scope_id is not None or info.visibility == "customer":
            raise PermissionDenied("AI settings and suggestions are for technicians, outside customer channels.",
                                   hint=TECH_ONLY_HINT)
        if cmd.action == "status":
            return await self._status(actor)
        if cmd.action == "at_risk":
            return await self._at_risk(actor)
        if cmd.action == "settings":
            opts = await self.ai.settings(actor.workspace_id)
            return MessageView(text="AI settings", lines=tuple(f"{k}: {_shown(v)}" for k, v in opts.items()),
                               hint="Change one with /deskbridge ai set <name> <value> (admins).")
        if cmd.action == "set":
            if not cmd.name or cmd.value is None:
                raise InvalidInput("Which setting, and what value?", hint=AI_HELP)
            opts = await self.ai.set_setting(actor, cmd.name, cmd.value)
            key = cmd.name.strip().lower().replace("-", "_")
            return MessageView(text=f"AI setting {key} is now {_shown(opts[key])}.", kind="success")
        if cmd.action == "train":
            if not actor.is_admin:
                raise PermissionDenied("Only a workspace admin can train the AI model.",
                                       hint="Ask a Deskbridge admin to run /deskbridge ai train (or `deskbridge ai train`).")
            return self._train(actor.workspace_id)
        if cmd.action == "similar":
            if not cmd.value:
                raise InvalidInput("Similar to what?", hint="Use /deskbridge ai similar <a few words>.")
            found = await self.ai.similar(actor, text=cmd.value)
            lines = [f"{'#' + str(h.doc.number) if h.doc.number is not None else 'id:' + str(h.doc.ticket_id)} "
                     f"{h.doc.text.splitlines()[0][:80]} ({h.score:.2f})" for h in found.hits]
            lines += [f"Suggested resolution ({r.attribution}): {r.text}" for r in found.resolutions.items]
            return MessageView(text="Similar closed tickets" if found.hits else "No similar closed ticket.",
                               lines=tuple(lines))
        raise InvalidInput(f"'{cmd.action}' is not an AI command.", hint=AI_HELP)

    async def _at_risk(self, actor: Actor) -> MessageView:
        found = await self.ai.risk.at_risk(actor, limit=AT_RISK_LIMIT)
        opts = await self.ai.settings(actor.workspace_id)
        if not opts["risk"]:
            return MessageView(text="Escalation risk is off in this workspace.",
                               hint="An admin can turn it on with /deskbridge ai set risk on.")
        if not found:
            return MessageView(text=f"No open ticket is at or above the risk threshold ({opts['risk_threshold']:.0%}).",
                               hint="Scores follow the open tickets every minute; an admin sets the threshold with "
                                    "/deskbridge ai set risk_threshold 0.5.")
        lines = tuple(
            f"{'#' + str(f.number) if f.number is not None else 'id:' + str(f.ticket_id)} {f.subject[:80]} · "
            f"{f.customer or 'no customer'} · {f.priority} · risk {f.score:.0%}"
            + (f": {', '.join(f.reasons)}" if f.reasons else "") for f in found)
        return MessageView(text=f"Open tickets at risk of escalation (risk at or above {opts['risk_threshold']:.0%}, "
                                "riskiest first)", lines=lines,
                           hint="Scored by Deskbridge AI from this workspace's own closed tickets; the reasons are "
                                "what pushed each score up.")

    async def _status(self, actor: Actor) -> MessageView:
        view = await self._category_status(actor)
        risk = await self.ai.risk.status(actor.workspace_id)
        line = (f"Escalation model v{risk[0]}: trained on {risk[1]} closed tickets with a known SLA outcome"
                if risk else "No escalation model yet (it needs closed tickets with a known SLA outcome).")
        kb = await self.ai.kb.count(actor.workspace_id)
        kb_line = ("KB articles for links: " + ", ".join(f"{n} from {source_name(s)}" for s, n in sorted(kb.items()))
                   if kb else "No KB articles yet (connect Hudu, or import a Markdown folder with "
                              "`deskbridge ai kb-import`).")
        return replace(view, lines=(*view.lines, line, kb_line))

    async def _category_status(self, actor: Actor) -> MessageView:
        status = await self.ai.status(actor.workspace_id)
        if status is None:
            return MessageView(text="No category model yet.",
                               hint="An admin can train one with /deskbridge ai train once closed tickets "
                                    "carry a category.")
        m = status.metrics
        acc = m.get("holdout_accuracy")
        lines = [f"Trained {status.created_at:%Y-%m-%d %H:%M} UTC on {status.trained_on} tickets, "
                 f"{len(m.get('labels', []))} categories",
                 "Held-out accuracy: " + (f"{acc:.1%} on {m.get('holdout_size')} tickets" if acc is not None
                                          else "not measured (too few tickets)")]
        if m.get("cold"):
            lines.append("Cold start: suggestions are marked low confidence and never applied.")
        return MessageView(text=f"Category model v{status.version}", lines=tuple(lines))

    async def card_action(self, actor: Actor, action: str, value: str) -> tuple[str, str, bool]:
        """A one-click AI button on a technician's card: (ticket ref, confirmation, changed)."""
        if action == "ai_undo_category":
            now = await self.ai.category_writes.undo(actor, value)
            return value, f"AI category undone: the type is {now or 'empty'} again. The AI will leave it alone.", True
        if action == "ai_accept_category":
            try:
                data = json.loads(value)
                ref, label = str(data["t"]), str(data["l"])
            except (ValueError, KeyError, TypeError):
                raise InvalidInput("That button's data was not understood.", hint="Open the ticket again.") from None
            changed = await self.ai.category_writes.accept(actor, ref, label)
            return ref, (f"Category set to {label}." if changed else f"The category is already {label}."), changed
        if action in ("ai_draft_approve", "ai_draft_discard") and self.drafts is not None:
            draft_id = _draft_id(value)
            if action == "ai_draft_approve":
                detail = await self.drafts.approve(actor, draft_id)
                return f"id:{detail.summary.id}", "Draft approved: sent as your public reply.", True
            ref = await self.drafts.discard(actor, draft_id)
            return ref, "Draft discarded; nothing was sent.", False
        raise InvalidInput(f"Unknown AI action '{action[:40]}'.", hint="Open the ticket again and use its buttons.")

    def _train(self, workspace_id: int) -> MessageView:
        async def train() -> object:
            try:
                await self.ai.risk.train(workspace_id)
            except DeskbridgeError as exc:
                log.info("Escalation-risk training refused: %s", exc.message)
            except Exception:
                log.exception("Escalation-risk training failed")
            try:
                return await self.ai.train(workspace_id)
            except DeskbridgeError as exc:
                log.info("AI training refused: %s", exc.message)
            except Exception:
                log.exception("AI training failed")
            return None

        task = asyncio.get_running_loop().create_task(train())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return MessageView(text="Training started.", kind="success",
                           hint="It runs in the background; /deskbridge ai shows the new model when it is done.")
