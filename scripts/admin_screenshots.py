"""Screenshots of the admin pages for the README, taken from the real app in headless Chromium.

    .venv/bin/python scripts/admin_screenshots.py     # writes docs/pictures/admin-*.png

What it does: generates the sandbox desk now and syncs it into a throwaway database (scripts/readme_console.py),
makes two of its writes dead letters (as a PSA refusing them would), serves the real app on loopback with
uvicorn, signs in with a one-time link and screenshots the main pages in Debian's chromium driven by Playwright
(the PyPI package launching /usr/bin/chromium), as the browser tests do.

Needs: `apt-get install -y chromium` (nothing is downloaded at run time).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "scripts"]

import uvicorn  # noqa: E402
from playwright.async_api import async_playwright  # noqa: E402
from sqlmodel import select  # noqa: E402

from bot.api.app import create_app  # noqa: E402
from scripts.readme_console import sandbox_desk  # noqa: E402
from store.db import Scope  # noqa: E402
from store.enums import OutboxStatus  # noqa: E402
from store.tables import AuditLog, OutboxOp, PsaConnection, Ticket  # noqa: E402

OUT = ROOT / "docs" / "pictures"
PAGES = {  # file name -> path (after sign-in)
    "admin-overview": "/admin",
    "admin-dead-letters": "/admin/dead-letters",
    "admin-dead-letter": "/admin/dead-letters/{op}",
    "admin-connection": "/admin/connections/{conn}",
    "admin-connection-new": "/admin/connections/new?kind=connectwise",
    "admin-audit": "/admin/audit",
    "admin-sla": "/admin/sla",
}


async def dead_letters(container: Any) -> tuple[int, int]:
    """Two writes the PSA refused, with their attempts in the audit log; returns (an op id, the connection id)."""
    ws = container.default_workspace_id
    now = datetime.now(UTC)
    async with container.db.write(Scope.workspace(ws)) as s:
        conn = (await s.exec(select(PsaConnection))).first()
        tickets = (await s.exec(select(Ticket).where(Ticket.connection_id == conn.id).limit(2))).all()  # type: ignore[union-attr]
        ops = []
        for i, (t, error, code) in enumerate(zip(tickets, ("400 Bad Request: the note is longer than 4,000 "
                                                           "characters", "404 Not Found: ticket deleted in the PSA"),
                                                 (400, 404), strict=True)):
            op = OutboxOp(workspace_id=ws, connection_id=conn.id, ticket_id=t.id, kind="add_note",  # type: ignore[union-attr,arg-type]
                          payload={"kind": "add_note", "text": "Rebooted the router; the VPN is back."},
                          marker=f"screenshot{i:022d}", status=OutboxStatus.DEAD.value, attempts=8,
                          last_error=error, last_status_code=code, next_attempt_at=now, finished_at=now,
                          actor="slack:U024BE7LH (Ana)")
            s.add(op)
            await s.flush()
            for attempt in range(1, 9):
                s.add(AuditLog(workspace_id=ws, op_id=op.id, connection_id=conn.id, attempt=attempt,  # type: ignore[union-attr]
                               action="add_note", outcome="dead" if attempt == 8 else "retry", response_status=code,
                               error=error, actor="slack:U024BE7LH (Ana)", duration_ms=120 + attempt))
            ops.append(op.id)
        return ops[0], conn.id  # type: ignore[union-attr,return-value]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def shoot(base: str, token: str, paths: dict[str, str]) -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-quic",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, headless=True, args=args)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            await page.goto(f"{base}/admin/login?token={token}")
            await page.locator("main form button").click()
            await page.locator("#dead-count").wait_for()  # the overview: signed in
            OUT.mkdir(parents=True, exist_ok=True)
            for name, path in paths.items():
                await page.goto(base + path)
                height = await page.evaluate("document.body.scrollHeight")
                await page.set_viewport_size({"width": 1280, "height": min(max(int(height), 600), 1600)})
                await page.screenshot(path=str(OUT / f"{name}.png"))
                print(f"wrote docs/pictures/{name}.png")
        finally:
            await browser.close()


async def main() -> None:
    async with sandbox_desk() as container:
        op, conn = await dead_letters(container)
        await container.sla.refresh(container.default_workspace_id)  # the SLA monitor's pass: the overview's count
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(container, start_background=False), host="127.0.0.1",
                                               port=port, lifespan="off", log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for "started"
            await asyncio.sleep(0.01)
        try:
            token, _ = await container.admin_links.create(container.default_workspace_id)
            paths = {name: path.format(op=op, conn=conn) for name, path in PAGES.items()}
            await shoot(f"http://127.0.0.1:{port}", token, paths)
        finally:
            server.should_exit = True
            await serving


if __name__ == "__main__":
    asyncio.run(main())
