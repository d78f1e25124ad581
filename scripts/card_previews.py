"""Previews of every kind of Teams card Deskbridge sends, drawn from the real views and card builders.

    .venv/bin/python scripts/card_previews.py              # regenerate docs/cards/ from a fresh sandbox desk
    .venv/bin/python scripts/card_previews.py --from-data  # redraw the kept card JSON (docs/cards/*.json)

1. generates the sandbox desk now, syncs it into a throwaway database, and takes one believable open ticket
   (the one the README picture shows, chosen the same way) as a technician sees it;
2. builds each card kind from what core returns for it and bot/teams/cards.py: the ticket card (technician and
   customer), the queue and "my queue", the reply, status, time and new-ticket forms, a refused reply given
   back filled in, help, an error with its hint, an SLA warning, an escalation-risk alert and an alert offered
   as a ticket;
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
from datetime import timedelta
from pathlib import Path
from string import Template
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "scripts"]

from bot.teams import cards  # noqa: E402
from bot.teams.listeners import styled  # noqa: E402
from core.chat import ChannelInfo, ChatUser, error_view  # noqa: E402
from core.chat.text import MENTION  # noqa: E402
from core.errors import NotFound  # noqa: E402
from core.mentions import parse_mention  # noqa: E402
from core.views import AlertOfferView, FormOption, RiskAlertView, SlaWarningView  # noqa: E402
from scripts.readme_pictures import HERE, _script_safe, chromium, npm_cache  # noqa: E402

OUT = ROOT / "docs" / "cards"
KINDS = ("ticket", "ticket-customer", "queue", "my-queue", "reply-form", "status-form", "time-form",
         "new-ticket-form", "reply-refused", "help", "error", "sla-warning", "risk-alert", "alert-offer")


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
