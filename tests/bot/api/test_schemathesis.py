"""Property-based conformance of the REST API to its own OpenAPI with every check schemathesis has (no 5xx,
documented status codes, headers and media types, response schemas, schema-valid data accepted and invalid data
rejected, auth not ignored, Allow headers, …), and never a byte of another workspace's data. Runs against a real uvicorn on loopback
(one event loop owns the database pool), bootstrapped by the app's own lifespan."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig

from bot.api.app import create_app
from bot.api.portal.limits import RateLimiter
from bot.main import bootstrap, build
from core.context import Actor
from tests.bot.api.conftest import PREFIX, api_settings

OTHER_MARKER = "zz-other-workspace-only"
# Schema-valid requests that may still be 422, as documented: values checked against the workspace's own data
# (PSA status names of the ticket's board, boards and types, customers by name, queue filter words), and an
# Idempotency-Key the fuzzer reuses for a different request (the IETF draft's answer), and an AI setting's value,
# whose grammar (on/off, a ratio, a list) depends on the setting named in the path. Every other operation
# must accept every schema-valid request.
_WORKSPACE_CHECKED = ["GET /api/msp-portal/tickets", "POST /api/msp-portal/tickets",
                      "PUT /api/msp-portal/tickets/{ticketId}", "POST /api/msp-portal/tickets/{ticketId}/comments",
                      "GET /api/msp-portal/outbox", "POST /api/msp-portal/outbox/{opId}/retry",
                      "POST /api/msp-portal/outbox/{opId}/discard", "PUT /api/msp-portal/ai/settings/{name}"]
CONFIG = "\n".join(
    f"""[[operations]]
include-name = "{name}"
[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]
""" for name in _WORKSPACE_CHECKED)


@dataclass
class Live:
    base_url: str
    token: str
    schema: object


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[Live]:
    s = api_settings(db_url, tmp_path, api_rate_per_second=100_000.0, api_rate_burst=100_000)

    async def prepare() -> str:
        c = build(s)
        try:
            await bootstrap(c)
            ws = c.default_workspace_id
            await c.directory.add_customer(ws, identifier="ACME", name="Acme Corp")
            await c.directory.add_member(ws, name="Ana Tech", email="ana@msp.example")
            for i in range(3):
                await c.tickets.create(c.system_actor(), subject=f"Seed {i}")
            # Another workspace's data, with a marker that must never appear in any response (BOLA check).
            other = await c.workspaces.create(slug="other-msp", name="Other MSP")
            await c.directory.add_customer(other.id, identifier=OTHER_MARKER, name=OTHER_MARKER)
            await c.directory.add_member(other.id, name=OTHER_MARKER)
            for _ in range(5):
                await c.tickets.create(Actor.system(other.id), subject=f"{OTHER_MARKER} ticket")
            return (await c.apikeys.create(ws, name="fuzz", scopes=["admin"]))[1]
        finally:
            await c.aclose()

    token = asyncio.run(prepare())
    port = _free_port()
    app = create_app(build(s), start_background=False)
    app.state.portal_auth_failures = RateLimiter(100_000.0, 100_000)  # fuzzing sends bad keys on purpose
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1",
                                           port=port, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # "eventually": the start runs the lifespan, slow on a loaded machine
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    try:
        config = SchemathesisConfig.from_str(CONFIG)
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json", config=config).include(path_regex=f"^{PREFIX}")
        yield Live(base, token, schema)
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.mark.slow
def test_api_conforms_to_its_openapi(live: Live):
    headers = {"Authorization": f"Bearer {live.token}"}
    operations = [op for op in (result.ok() for result in live.schema.get_all_operations())  # type: ignore[attr-defined]
                  if op.label.split(" ", 1)[1].startswith(PREFIX)]
    assert len(operations) == 13  # 11, plus GET and PUT /ai/settings (session 8)
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def conforms(case) -> None:
            response = case.call_and_validate(base_url=live.base_url, headers=headers)
            assert OTHER_MARKER not in response.text, "another workspace's data leaked"

        conforms()
