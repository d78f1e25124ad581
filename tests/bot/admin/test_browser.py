"""The admin pages in a real browser: headless Debian Chromium driven through chromedriver (Selenium), against the
real app served by uvicorn on loopback. Sign in with a one-time link, redrive a dead letter, change a status
mapping and see it on the ticket, sign out.

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian's chromium and chromium-driver, installed by .ci/run).
Without them the tests are skipped locally; under CI (CI=true) their absence fails the run unless .ci/run said
why it could not install them (DESKBRIDGE_NO_BROWSER).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from sqlmodel import select

from bot.api.app import create_app
from bot.main import bootstrap, build
from store.db import Scope
from store.enums import OutboxStatus
from store.tables import OutboxOp, PsaConnection, StatusMapping, Ticket
from store.types import utcnow
from tests.bot.api.conftest import api_settings
from tests.factories import psa_backed

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    WHY = os.environ.get("DESKBRIDGE_NO_BROWSER")
    if os.environ.get("CI") == "true" and not WHY:
        raise RuntimeError("CI needs Debian's chromium and chromium-driver for the browser tests (see .ci/run)")
    pytest.skip(WHY or "no chromium/chromedriver here (apt-get install chromium chromium-driver)",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402 - only where a browser exists
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow
T = TypeVar("T")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    # No background networking: this machine's network is closed, and the pages are on loopback.
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-extensions", "--disable-quic", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(DRIVER), options=options)  # no driver download: Debian's
    browser.implicitly_wait(15)  # finds wait for the element: a loaded CI machine may render slowly
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


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


async def step(fn: Callable[..., T], *args: Any) -> T:
    """A blocking browser call, run off the loop that serves the app."""
    return await asyncio.to_thread(fn, *args)


async def click(driver: WebDriver, find: Callable[[], WebElement]) -> None:
    """Click (a submit button or a link) and wait until the next page replaced this one."""

    def go() -> None:
        element = find()
        element.click()
        WebDriverWait(driver, 30).until(expected_conditions.staleness_of(element))

    await step(go)


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


async def test_sign_in_redrive_change_a_mapping_and_sign_out(driver: WebDriver, served: tuple[Any, str]):
    container, base = served
    ws = container.default_workspace_id
    op_id, connection_id = await _dead_op(container, ws)
    token, _ = await container.admin_links.create(ws)

    await step(driver.get, f"{base}/admin/login?token={token}")
    await click(driver, lambda: driver.find_element(By.CSS_SELECTOR, "main form button"))
    assert await step(lambda: driver.find_element(By.TAG_NAME, "h1").text) == "Overview"
    assert await step(lambda: driver.find_element(By.ID, "dead-count").text) == "1"

    await click(driver, lambda: driver.find_element(By.LINK_TEXT, "dead letters"))
    await click(driver, lambda: driver.find_element(By.LINK_TEXT, str(op_id)))
    assert "The PSA refused this write" in await step(lambda: driver.find_element(By.ID, "why").text)
    await click(driver, lambda: driver.find_element(By.XPATH, "//button[text()='Redrive']"))
    assert await step(lambda: driver.find_element(By.ID, "flash").text) == "Queued again."
    async with container.db.read(Scope.workspace(ws)) as s:
        op = (await s.exec(select(OutboxOp).where(OutboxOp.id == op_id))).one()
    assert (op.status, op.attempts) == (OutboxStatus.PENDING.value, 0)

    await step(driver.get, f"{base}/admin/connections/{connection_id}")

    def choose_waiting() -> WebElement:
        row = driver.find_element(By.XPATH, "//table[@id='status-mappings']//tr[td[2][text()='In Progress']]")
        Select(row.find_element(By.NAME, "stage")).select_by_value("waiting")
        return row.find_element(By.TAG_NAME, "button")

    await click(driver, choose_waiting)
    assert "Mapping saved" in await step(lambda: driver.find_element(By.ID, "flash").text)
    async with container.db.read(Scope.workspace(ws)) as s:
        mapping = (await s.exec(select(StatusMapping).where(StatusMapping.psa_status_id == "11"))).one()
        ticket = (await s.exec(select(Ticket).where(Ticket.number == 900))).one()
    assert (mapping.stage, mapping.overridden, ticket.stage) == ("waiting", True, "waiting")

    await click(driver, lambda: driver.find_element(By.XPATH, "//button[text()='Sign out']"))
    await step(driver.get, f"{base}/admin")
    assert await step(lambda: driver.find_element(By.TAG_NAME, "h1").text) == "Sign in"


async def test_a_forged_form_from_another_site_is_refused(driver: WebDriver, served: tuple[Any, str]):
    container, base = served
    ws = container.default_workspace_id
    op_id, _ = await _dead_op(container, ws)
    token, _ = await container.admin_links.create(ws)
    await step(driver.get, f"{base}/admin/login?token={token}")
    await click(driver, lambda: driver.find_element(By.CSS_SELECTOR, "main form button"))
    # The page's own form, with its CSRF token replaced, as a cross-site page would have to post it.
    await step(driver.get, f"{base}/admin/dead-letters/{op_id}")
    await step(driver.execute_script, "document.querySelector(\"form[action$='/redrive'] input[name=csrf]\").value = 'forged'")
    await click(driver, lambda: driver.find_element(By.XPATH, "//button[text()='Redrive']"))
    assert "did not come from this site" in await step(lambda: driver.find_element(By.CSS_SELECTOR, "p.error").text)
    async with container.db.read(Scope.workspace(ws)) as s:
        assert (await s.exec(select(OutboxOp).where(OutboxOp.id == op_id))).one().status == OutboxStatus.DEAD.value
        assert (await s.exec(select(PsaConnection))).first() is not None
