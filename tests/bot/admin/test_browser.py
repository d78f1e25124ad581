"""The admin pages in a real browser: headless Debian Chromium driven by Playwright (the Python package from
PyPI, launching /usr/bin/chromium through `executable_path`: no browser is downloaded), against the real app served
by uvicorn on loopback. Sign in with a one-time link, redrive a dead letter, change a status mapping and see it on
the ticket, add a PSA connection, sign out; a forged form is refused.

Needs Debian's chromium (installed by .ci/run). Without it the tests are skipped locally; under CI (CI=true) its
absence fails the run unless .ci/run said why it could not install it (DESKBRIDGE_NO_BROWSER).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlmodel import select

from bot.api.app import create_app
from bot.main import bootstrap, build
from store.db import Scope
from store.enums import OutboxStatus
from store.tables import AuditLog, OutboxOp, PsaConnection, StatusMapping, Ticket
from store.types import utcnow
from tests.bot.api.conftest import api_settings
from tests.factories import psa_backed

CHROMIUM = shutil.which("chromium")
if not CHROMIUM:
    WHY = os.environ.get("DESKBRIDGE_NO_BROWSER")
    if os.environ.get("CI") == "true" and not WHY:
        raise RuntimeError("CI needs Debian's chromium for the browser tests (see .ci/run)")
    pytest.skip(WHY or "no chromium here (apt-get install chromium)", allow_module_level=True)

from playwright.async_api import Page, async_playwright, expect  # noqa: E402 - only where a browser exists

pytestmark = pytest.mark.slow
# No background networking: this machine's network is closed, and the pages are on loopback.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
                 "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(30_000)  # a loaded CI machine may render slowly
            yield await context.new_page()
        finally:
            await browser.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def served(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Any, str]]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    container = build(api_settings(db_url, tmp_path, public_url=base))
    await bootstrap(container)
    server = uvicorn.Server(uvicorn.Config(create_app(container, start_background=False), host="127.0.0.1",
                                           port=port, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve())
    for _ in range(6000):  # noqa: ASYNC110 - uvicorn offers no event for "started" ("eventually": 60 s, loaded)
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield container, base
    finally:
        server.should_exit = True
        await serving
        await container.aclose()


async def sign_in(page: Page, container: Any, base: str) -> None:
    token, _ = await container.admin_links.create(container.default_workspace_id)
    await page.goto(f"{base}/admin/login?token={token}")
    await page.locator("main form button").click()
    await expect(page.locator("h1")).to_have_text("Overview")


async def _dead_op(container: Any, ws: int) -> tuple[int, int]:
    setup = await psa_backed(container.db, ws)
    now = utcnow()
    async with container.db.write(Scope.workspace(ws)) as s:
        ticket = Ticket(workspace_id=ws, connection_id=setup.connection_id, external_id="900", number=900,
                        subject="VPN down", stage="in_progress", priority="high", board_external_id="1",
                        psa_status_id="11", psa_status_name="In Progress")
        s.add(ticket)
        await s.flush()
        op = OutboxOp(workspace_id=ws, connection_id=setup.connection_id, ticket_id=ticket.id, kind="add_note",
                      payload={"kind": "add_note", "text": "hello"}, marker="b" * 32, status=OutboxStatus.DEAD.value,
                      attempts=8, last_error="400 Bad Request: note too long", last_status_code=400,
                      next_attempt_at=now, finished_at=now)
        s.add(op)
        await s.flush()
        return op.id, setup.connection_id  # type: ignore[return-value]


async def test_sign_in_redrive_change_a_mapping_and_sign_out(page: Page, served: tuple[Any, str]):
    container, base = served
    ws = container.default_workspace_id
    op_id, connection_id = await _dead_op(container, ws)
    await sign_in(page, container, base)
    await expect(page.locator("#dead-count")).to_have_text("1")

    await page.get_by_role("link", name="dead letters", exact=True).click()
    await page.get_by_role("link", name=str(op_id), exact=True).click()
    await expect(page.locator("#why")).to_contain_text("The PSA refused this write")
    await page.get_by_role("button", name="Redrive", exact=True).click()
    await expect(page.locator("#flash")).to_have_text("Queued again.")
    async with container.db.read(Scope.workspace(ws)) as s:
        op = (await s.exec(select(OutboxOp).where(OutboxOp.id == op_id))).one()
    assert (op.status, op.attempts) == (OutboxStatus.PENDING.value, 0)

    await page.goto(f"{base}/admin/connections/{connection_id}")
    row = page.locator("#status-mappings tr").filter(
        has=page.locator("td:nth-child(2)", has_text=re.compile(r"^In Progress$")))
    await row.locator("select[name=stage]").select_option("waiting")
    await row.get_by_role("button", name="Save").click()
    await expect(page.locator("#flash")).to_contain_text("Mapping saved")
    async with container.db.read(Scope.workspace(ws)) as s:
        mapping = (await s.exec(select(StatusMapping).where(StatusMapping.psa_status_id == "11"))).one()
        ticket = (await s.exec(select(Ticket).where(Ticket.number == 900))).one()
    assert (mapping.stage, mapping.overridden, ticket.stage) == ("waiting", True, "waiting")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("h1")).to_have_text("Sign in")
    await page.goto(f"{base}/admin")
    await expect(page.locator("h1")).to_have_text("Sign in")


async def test_a_psa_connection_is_added_in_the_browser(page: Page, served: tuple[Any, str]):
    """Pick the kind, fill in its fields; a refused key says so and keeps the name, the right one saves it."""
    container, base = served
    ws = container.default_workspace_id
    await sign_in(page, container, base)
    await page.locator("#add-connection-link").click()
    await page.locator("#pick-kind select[name=kind]").select_option("sandbox")
    await page.get_by_role("button", name="Show its fields").click()
    form = page.locator("#add-connection")
    await form.locator("input[name=name]").fill("sandbox-two")
    await form.locator("input[name=cred_api_key]").fill("not-the-key")
    await form.locator("input[name=default]").uncheck()
    await form.get_by_role("button", name="Check and save").click()
    await expect(page.locator("#problem")).to_contain_text("refused these credentials")
    await expect(page.locator("#add-connection input[name=name]")).to_have_value("sandbox-two")
    await expect(page.locator("#add-connection input[name=cred_api_key]")).to_have_value("")  # never echoed
    await page.locator("#add-connection input[name=cred_api_key]").fill("sandbox")
    await page.locator("#add-connection").get_by_role("button", name="Check and save").click()
    await expect(page.locator("#flash")).to_contain_text("Connected")
    await expect(page.locator("h1")).to_contain_text("sandbox-two")
    conn = await container.connections.by_name(ws, "sandbox-two")
    assert conn.kind == "sandbox" and not conn.is_default
    async with container.db.read(Scope.workspace(ws)) as s:
        rows = (await s.exec(select(AuditLog).where(AuditLog.action == "connection.add"))).all()
    assert [r.actor.startswith("admin-page:") for r in rows] == [True]


async def test_a_forged_form_from_another_site_is_refused(page: Page, served: tuple[Any, str]):
    container, base = served
    ws = container.default_workspace_id
    op_id, _ = await _dead_op(container, ws)
    await sign_in(page, container, base)
    # The page's own form, with its CSRF token replaced, as a cross-site page would have to post it.
    await page.goto(f"{base}/admin/dead-letters/{op_id}")
    await page.evaluate("document.querySelector(\"form[action$='/redrive'] input[name=csrf]\").value = 'forged'")
    await page.get_by_role("button", name="Redrive", exact=True).click()
    await expect(page.locator("p.error").first).to_contain_text("did not come from this site")
    async with container.db.read(Scope.workspace(ws)) as s:
        assert (await s.exec(select(OutboxOp).where(OutboxOp.id == op_id))).one().status == OutboxStatus.DEAD.value
        assert (await s.exec(select(PsaConnection))).first() is not None


async def test_a_mail_in_triage_is_read_inert_in_the_browser_and_discarded(page: Page, served: tuple[Any, str]):
    from email.message import EmailMessage

    container, base = served
    ws = container.default_workspace_id
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "x@unknown.example", "help@msp.example", "Hi", "<b1@x>"
    msg.set_content("<html><head><script>window.ran = 1</script></head><body onload=\"window.ran = 2\">"
                    "<p>Our printer is on fire.</p><img src=\"http://127.0.0.1:9/track.png\">"
                    "<img src=\"https://evil.example/x.png\"><script>window.ran = 3</script></body></html>",
                    subtype="html")
    assert (await container.mailboxes.intake.ingest(ws, bytes(msg))).outcome == "triage"
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    await sign_in(page, container, base)
    await expect(page.locator("#mail-waiting")).to_have_text("1")
    await page.get_by_role("link", name="e-mails waiting in triage").click()
    await page.get_by_role("link", name="Hi", exact=True).click()
    await expect(page.locator("#mail-body")).to_have_text("Our printer is on fire.")
    assert await page.evaluate("window.ran === undefined")  # no script of the mail ran
    assert await page.locator("img").count() == 0
    assert [u for u in asked if not u.startswith(base)] == []  # nothing fetched from anywhere else
    await page.locator("#mail-discard input[name=reason]").fill("spam")
    await page.get_by_role("button", name="Discard", exact=True).click()
    await expect(page.locator("#flash")).to_contain_text("Discarded")
    await expect(page.locator("#mail-outcome")).to_have_text("discarded")
