"""The README's pictures of a ticket card in Slack and in Teams, drawn from the real views and card builders.

    .venv/bin/python scripts/readme_pictures.py              # regenerate docs/pictures/ (run it when the views change)
    .venv/bin/python scripts/readme_pictures.py --from-data  # redraw from the kept view (docs/pictures/ticket-view.json)

What it does:
1. generates the sandbox's desk at this moment (ages and SLA figures are today's), syncs it into a throwaway
   database and picks a believable open ticket (assigned, a short conversation, SLA running, highest priority);
2. takes that ticket's view as a technician sees it (`chat_views.ticket`, what both surfaces call) and runs the
   real builders on it: `bot.slack.blocks.ticket_blocks` and `bot.teams.cards.ticket_card`;
3. Teams: the card JSON is drawn by the official Adaptive Cards renderer (npm `adaptivecards`) with a Teams-like
   host config; Slack: the Block Kit JSON is drawn by scripts/blockkit_html.py; both in headless Chromium
   (playwright-core driving Debian's /usr/bin/chromium) and screenshotted at 2x;
4. writes docs/pictures/: slack-ticket.png, teams-ticket.png, the JSON each was drawn from, and the view itself.

tests/test_readme_pictures.py (no browser needed) checks that the kept JSON is exactly what today's builders
return for the kept view, and that the Slack drawing covers every block and element the Slack cards emit, so
the pictures cannot drift from the builders without a test failing.

Needs: node and npm, `apt-get install -y chromium fonts-lato fonts-noto-color-emoji`. The npm packages go into
a cache directory (DESKBRIDGE_PICTURES_CACHE, default ~/.cache/deskbridge-pictures), never into the repo.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from string import Template
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "scripts"]

from bot.console.session import ConsoleSession  # noqa: E402
from bot.slack.blocks import ticket_blocks  # noqa: E402
from bot.teams.cards import ticket_card  # noqa: E402
from core.queue import QueueFilter  # noqa: E402
from core.views import TicketView  # noqa: E402
from scripts.blockkit_html import message_html  # noqa: E402
from scripts.view_codec import decode, encode  # noqa: E402

HERE = ROOT / "scripts" / "pictures"
OUT = ROOT / "docs" / "pictures"
NPM_PACKAGES = {"adaptivecards": "3.0.6", "playwright-core": "1.65.2"}
CHANNEL = "service-desk"


def slack_json(view: TicketView) -> list[dict[str, Any]]:
    return ticket_blocks(view)


def teams_json(view: TicketView) -> dict[str, Any]:
    return ticket_card(view)


def _time(view: TicketView) -> str:
    return view.now.strftime("%H:%M")


def _script_safe(data: Any) -> str:
    """JSON that can sit inside a <script> element (no `</script>` can close it early)."""
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


def slack_page(view: TicketView) -> str:
    """The Slack picture's page: the blocks `ticket_blocks(view)` returns, drawn as a bot message."""
    return Template((HERE / "slack.html").read_text()).substitute(
        css=(HERE / "slack.css").read_text(), channel=CHANNEL, time=_time(view),
        blocks=message_html(slack_json(view)))


def teams_page(view: TicketView, renderer_js: str) -> str:
    """The Teams picture's page: `ticket_card(view)` handed as is to the Adaptive Cards renderer."""
    return Template((HERE / "teams.html").read_text()).substitute(
        css=(HERE / "teams.css").read_text(), channel=f"Service Desk › {CHANNEL}", time=_time(view),
        card_json=_script_safe(teams_json(view)),
        host_config=_script_safe(json.loads((HERE / "teams-host-config.json").read_text())),
        renderer_js=renderer_js.replace("</script", "<\\/script"))


async def pick_view() -> TicketView:
    """A believable card from the sandbox desk generated now, as its first technician sees it."""
    from scripts.readme_console import sandbox_desk

    async with sandbox_desk() as c:
        session = ConsoleSession(c, read=lambda _p: asyncio.sleep(0, None), write=lambda _s: None, user_id="readme")
        await session.start()
        actor, _ = await session.actor()
        page = await c.queue.list(actor, QueueFilter(), limit=100)
        best: tuple[Any, ...] | None = None
        for row in page.items:
            view = await c.chat_views.ticket(actor, row.ref)
            if not (row.assignee_name and 3 <= len(view.conversation) <= 5 and (view.sla_remaining_s or 0) > 3600):
                continue
            rank = (row.priority.rank, view.sla_remaining_s, row.ref)
            if best is None or rank < best[0]:
                best = (rank, view)
        if best is None:
            raise SystemExit("The sandbox desk has no open ticket that makes a good picture; check bench/sandbox_desk.py.")
        return best[1]  # type: ignore[no-any-return]


def npm_cache() -> Path:
    """The cache directory with the pinned npm packages installed (installed on first use)."""
    cache = Path(os.environ.get("DESKBRIDGE_PICTURES_CACHE") or Path.home() / ".cache" / "deskbridge-pictures")
    cache.mkdir(parents=True, exist_ok=True)

    def installed(name: str) -> str | None:
        pkg = cache / "node_modules" / name / "package.json"
        return json.loads(pkg.read_text()).get("version") if pkg.exists() else None

    if all(installed(n) == v for n, v in NPM_PACKAGES.items()):
        return cache
    if shutil.which("npm") is None:
        raise SystemExit("npm is needed to install the Adaptive Cards renderer: apt-get install -y nodejs npm")
    (cache / "package.json").write_text(json.dumps({"private": True, "dependencies": NPM_PACKAGES}, indent=2))
    print(f"installing {', '.join(f'{n}@{v}' for n, v in NPM_PACKAGES.items())} into {cache}")
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=cache, check=True)
    return cache


def chromium() -> str:
    found = os.environ.get("DESKBRIDGE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise SystemExit("Headless Chromium is needed: apt-get install -y chromium fonts-lato fonts-noto-color-emoji "
                         "(or set DESKBRIDGE_CHROMIUM to a Chromium binary).")
    return found


def draw(view: TicketView) -> None:
    """Write docs/pictures/: the two PNGs and the JSON they were drawn from."""
    cache, browser = npm_cache(), chromium()
    renderer = (cache / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.min.js").read_text()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pages = {"slack-ticket": slack_page(view), "teams-ticket": teams_page(view, renderer)}
        args: list[str] = []
        for name, page in pages.items():
            (Path(tmp) / f"{name}.html").write_text(page)
            args += [str(Path(tmp) / f"{name}.html"), str(Path(tmp) / f"{name}.png")]
        subprocess.run(["node", str(HERE / "shoot.mjs"), str(cache), browser, *args], check=True)
        for name in pages:
            shutil.copyfile(Path(tmp) / f"{name}.png", OUT / f"{name}.png")
    write_json(view)


def write_json(view: TicketView) -> None:
    for name, data in (("ticket-view", encode(view)), ("slack-ticket", slack_json(view)),
                       ("teams-ticket", teams_json(view))):
        (OUT / f"{name}.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def kept_view() -> TicketView:
    """The view the kept pictures were drawn from (docs/pictures/ticket-view.json)."""
    try:
        view: TicketView = decode(TicketView, json.loads((OUT / "ticket-view.json").read_text()))
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"docs/pictures/ticket-view.json no longer fits core.views ({exc}): run "
                         "`.venv/bin/python scripts/readme_pictures.py` (a fresh desk) and commit docs/pictures/") from exc
    return view


def main() -> None:
    view = kept_view() if "--from-data" in sys.argv else asyncio.run(pick_view())
    draw(view)
    print(f"docs/pictures: ticket {view.summary.display_number} drawn for Slack and Teams")


if __name__ == "__main__":
    main()
