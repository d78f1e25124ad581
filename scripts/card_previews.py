"""Previews of every kind of Teams card Deskbridge sends, drawn from the real views and card builders.

    .venv/bin/python scripts/card_previews.py              # regenerate docs/cards/ from a fresh sandbox desk
    .venv/bin/python scripts/card_previews.py --from-data  # redraw the kept card JSON (docs/cards/*.json)

1. generates the sandbox desk now, syncs it into a throwaway database, and takes one believable open ticket
   (the one the README picture shows, chosen the same way) as a technician sees it;
2. builds each card kind from what core returns for it and bot/teams/cards.py: the ticket card (technician and
   customer), the queue and "my queue", the reply, status, time and new-ticket forms, a refused reply given
   back filled in, help, an error with its hint, an SLA warning, an escalation-risk alert, an alert offered
   as a ticket, the ticket's Microsoft 365 context (user, devices, recent activity; bot/teams/tenant_cards.py)
   and an AI reply draft (the technician's 1:1 chat). The risk, alert, Microsoft 365 and draft views are
   written here (a tenant's directory and the AI's draft are not part of the sandbox desk); the card
   builders are the real ones;
3. draws each with the official Adaptive Cards renderer in headless Chromium (scripts/pictures/card-preview.html,
   the same renderer, host config and browser as scripts/readme_pictures.py) and checks the drawing: nothing
   past the card's edge, no text cut short, no empty text block, fact, label or button. A card with a problem
   fails the run, and no picture is written for it;
4. writes docs/cards/<kind>.png and the card JSON it was drawn from, docs/cards/<kind>.json.

tests/test_card_previews.py checks that every kind is kept and valid Adaptive Card 1.5, and (where node, npm
and Chromium are present) draws the kept JSON again with the same checks.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "scripts"]

from bot.teams import cards, tenant_cards  # noqa: E402
from bot.teams.listeners import styled  # noqa: E402
from connectors.tenant import AuditEvent, DirectoryUser, Licence, ManagedDevice, MfaStatus, SignIn  # noqa: E402
from core.ai.drafts import TEMPLATE_LABEL  # noqa: E402
from core.chat import ChannelInfo, ChatUser, error_view  # noqa: E402
from core.chat.text import MENTION  # noqa: E402
from core.errors import NotFound  # noqa: E402
from core.mentions import parse_mention  # noqa: E402
from core.tenant_context import ActivityView, UserQuickView  # noqa: E402
from core.views import (  # noqa: E402
    AiDraftView,
    AiSimilarView,
    AlertOfferView,
    FormOption,
    RiskAlertView,
    SlaWarningView,
    ViewAction,
)
from scripts.readme_pictures import HERE, _script_safe, chromium, npm_cache  # noqa: E402

OUT = ROOT / "docs" / "cards"
KINDS = ("ticket", "ticket-customer", "queue", "my-queue", "reply-form", "status-form", "time-form",
         "new-ticket-form", "reply-refused", "help", "error", "sla-warning", "risk-alert", "alert-offer",
         "m365-context", "ai-draft")


def m365_context(ticket_id: int, label: str, now: datetime) -> dict[str, Any]:
    """The ticket's Microsoft 365 context as a technician who may act sees it, recent activity opened."""
    laptop = ManagedDevice(id="dev-1", name="ACME-LT-042", os="Windows", os_version="10.0.26100.2605",
                           compliance="compliant", last_sync=now - timedelta(hours=3), encrypted=True,
                           serial="5CG4321XYZ", enrolled=now - timedelta(days=214))
    phone = ManagedDevice(id="dev-2", name="Dana's iPhone", os="iOS", os_version="18.1.1", compliance="noncompliant",
                          last_sync=now - timedelta(days=9), encrypted=None)
    view = UserQuickView(
        tenant_id="contoso.onmicrosoft.com", email="dana.miller@acme.example", ticket_id=ticket_id, device_id="dev-1",
        user=DirectoryUser(id="u-1", display_name="Dana Miller", upn="dana.miller@acme.example",
                           mail="dana.miller@acme.example", enabled=True, on_prem_synced=False),
        last_sign_in=now - timedelta(minutes=42), mfa=MfaStatus(registered=True, methods=("Authenticator app",)),
        licences=(Licence(sku="SPB", name="Microsoft 365 Business Premium"),), devices=(laptop, phone))
    activity = ActivityView(
        user_label="Dana Miller", device=laptop,
        sign_ins=(SignIn(at=now - timedelta(minutes=42), app="Outlook", ip="203.0.113.24", location="Leeds, GB",
                         ok=True, failure="", client="Windows", device_id="aad-1"),
                  SignIn(at=now - timedelta(hours=2), app="VPN client", ip="203.0.113.24", location="Leeds, GB",
                         ok=False, failure="Invalid username or password", client="Windows", device_id="aad-1")),
        audits=(AuditEvent(at=now - timedelta(days=2), activity="Update user", by="admin@acme.example",
                           result="success"),),
        device_sign_ins=(SignIn(at=now - timedelta(minutes=42), app="Outlook", ip="203.0.113.24", location="",
                                ok=True, failure="", client="Windows", device_id="aad-1"),))
    similar = (AiSimilarView(ticket_id=1, ref="#4821", number=4821, subject="VPN drops after Windows update",
                             score=0.71, closed_at=now - timedelta(days=40)),)
    return tenant_cards.context_card(view, ticket_label=label, can_act=True, activity=activity, similar=similar)


def ai_draft(ref: str, contact: str) -> dict[str, Any]:
    """A reply draft offered in the technician's 1:1 chat: the exact text Approve sends, and its label."""
    return cards.draft_card(AiDraftView(
        draft_id=12, ticket_ref=ref, label=TEMPLATE_LABEL,
        text=f"Hi {contact},\n\nThanks for reporting this. We have restarted the VPN service on your firewall "
             "and the tunnel is up again. Could you try connecting now and let us know if it drops again?",
        actions=(ViewAction(action="ai_draft_approve", label="Approve and send", value="12", style="primary"),
                 ViewAction(action="ai_draft_edit", label="Edit", value="12"),
                 ViewAction(action="ai_draft_discard", label="Discard", value="12", style="danger"))))


async def build_cards() -> dict[str, dict[str, Any]]:
    """Each kind's card JSON, from the sandbox desk generated now."""
    from bot.console.session import ConsoleSession
    from scripts.readme_console import sandbox_desk
    from scripts.readme_pictures import pick_view

    picked = await pick_view()
    ref = picked.summary.ref
    async with sandbox_desk() as c:
        session = ConsoleSession(c, read=lambda _p: asyncio.sleep(0, None), write=lambda _s: None, user_id="cards")
        await session.start()
        actor, _ = await session.actor()
        user = ChatUser(platform="teams", team_id="tenant", user_id="cards", channel_id="19:desk@thread.tacv2")
        info = ChannelInfo()
        views = c.chat_views

        async def run(text: str) -> Any:
            return styled(await c.chat_commands.run(actor, user, info, parse_mention(text), style=MENTION))

        ticket = await views.ticket(actor, ref)
        reply = await views.reply_form(actor, ref, visibility="public")
        refused = cards.form_card(reply, values={"text": "Rebooted the VPN box; try now.", "visibility": "public"},
                                  error="Status 'Closed' needs a resolution note in this PSA.",
                                  error_field="status")
        warning = SlaWarningView(ticket_number=ticket.summary.number, subject=ticket.summary.subject,
                                 customer_name=ticket.summary.customer_name, priority=ticket.summary.priority.value,
                                 metric="resolution", threshold=75, remaining_s=2700.0,
                                 due_at=ticket.now + timedelta(seconds=2700), psa_url=None, used_pct=0.76)
        return {
            "ticket": cards.ticket_card(ticket),
            "ticket-customer": cards.ticket_card(await views.ticket(actor, ref, audience="customer")),
            "queue": cards.queue_card(await run("tickets open")),
            "my-queue": cards.queue_card(await run("my queue")),
            "reply-form": cards.form_card(reply),
            "status-form": cards.form_card(await views.status_form(actor, ref)),
            "time-form": cards.form_card(await views.time_form(actor, ref)),
            "new-ticket-form": cards.form_card(await run("ticket new")),
            "reply-refused": refused,
            "help": cards.message_card(await run("help")),
            "error": cards.message_card(styled(error_view(NotFound(
                "Ticket #99999 was not found.",
                hint="Check the number. In a customer channel only that customer's tickets can be opened.")))),
            "sla-warning": cards.sla_card(warning),
            "risk-alert": cards.risk_card(RiskAlertView(
                ticket_number=ticket.summary.number, subject=ticket.summary.subject,
                customer_name=ticket.summary.customer_name, priority=ticket.summary.priority.value, score=0.72,
                threshold=0.6, reasons=("priority critical", "no reply for 3 business hours"))),
            "alert-offer": cards.alert_offer_card(AlertOfferView(
                alert_id=7, title="Disk space low on ACME-FS01 (C: 4% free)",
                lines=("RMM alert · warning · raised 09:12", "No alert rule makes tickets of it."),
                hint="Choose the customer and create a ticket, or leave it.",
                customers=(FormOption(value="1", label=ticket.summary.customer_name or "Acme"),))),
            "m365-context": m365_context(ticket.summary.id, ticket.summary.display_number,
                                         datetime.now(UTC).replace(microsecond=0)),
            "ai-draft": ai_draft(ref, (ticket.detail.contact_name or "there").split(" ")[0]),
        }


def page(card: dict[str, Any], renderer_js: str) -> str:
    return Template((HERE / "card-preview.html").read_text()).substitute(
        css=(HERE / "teams.css").read_text(), channel="Service Desk › service-desk", time="09:41",
        card_json=_script_safe(card), host_config=_script_safe(json.loads((HERE / "teams-host-config.json").read_text())),
        renderer_js=renderer_js.replace("</script", "<\\/script"))


def draw(cards_by_kind: dict[str, dict[str, Any]], out: Path) -> subprocess.CompletedProcess[str]:
    """Draw and check each card; PNGs go to `out` (only for cards without problems). The completed node run:
    its stderr names each card with a problem (return code 1)."""
    cache, browser = npm_cache(), chromium()
    renderer = (cache / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.min.js").read_text()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        args: list[str] = []
        for kind, card in cards_by_kind.items():
            (Path(tmp) / f"{kind}.html").write_text(page(card, renderer))
            args += [str(Path(tmp) / f"{kind}.html"), str(out / f"{kind}.png")]
        return subprocess.run(["node", str(HERE / "shoot.mjs"), str(cache), browser, *args],
                              capture_output=True, text=True, check=False)


def kept_cards() -> dict[str, dict[str, Any]]:
    return {kind: json.loads((OUT / f"{kind}.json").read_text()) for kind in KINDS}


def main() -> None:
    built = kept_cards() if "--from-data" in sys.argv else asyncio.run(build_cards())
    OUT.mkdir(parents=True, exist_ok=True)
    for kind, card in built.items():
        (OUT / f"{kind}.json").write_text(json.dumps(card, indent=1, ensure_ascii=False) + "\n")
    done = draw(built, OUT)
    print(done.stdout, end="")
    if done.returncode != 0:
        raise SystemExit(f"some cards have problems:\n{done.stderr}")
    print(f"docs/cards: {len(built)} cards drawn")


if __name__ == "__main__":
    main()
