"""The REST API under test: the real app from bot.api.app.create_app around a container from bot.main.build,
on the test's database, driven in-process by httpx (ASGITransport) with real API keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.api.app import create_app
from bot.main import Deskbridge, bootstrap, build, settings_from_env
from store.crypto import generate_key

PREFIX = "/api/msp-portal"


@dataclass
class Api:
    container: Deskbridge
    client: httpx.AsyncClient
    ws: int  # the default workspace
    other_ws: int
    keys: dict[str, str] = field(default_factory=dict)  # "read" | "write" | "admin" | "other" -> token

    def auth(self, which: str = "write") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[which]}"}

    async def get(self, path: str, which: str = "read", **kw: Any) -> httpx.Response:
        return await self.client.get(PREFIX + path, headers={**self.auth(which), **kw.pop("headers", {})}, **kw)

    async def post(self, path: str, json: Any, which: str = "write", **kw: Any) -> httpx.Response:
        return await self.client.post(PREFIX + path, json=json, headers={**self.auth(which), **kw.pop("headers", {})},
                                      **kw)

    async def put(self, path: str, json: Any, which: str = "write", **kw: Any) -> httpx.Response:
        return await self.client.put(PREFIX + path, json=json, headers={**self.auth(which), **kw.pop("headers", {})},
                                     **kw)

    async def ticket(self, subject: str = "Printer jams", which: str = "write", **extra: Any) -> dict[str, Any]:
        r = await self.post("/tickets", {"subject": subject, **extra}, which)
        assert r.status_code == 201, r.text
        return r.json()


def api_settings(db_url: str, tmp_path: Path, **overrides: Any) -> Any:
    overrides.setdefault("sandbox", "off")
    overrides.setdefault("secret_key", generate_key())
    return settings_from_env(database_url=db_url,
                             secret_key_file=tmp_path / "secret.key", run_scheduler=False,
                             run_outbox_worker=False, **overrides)


async def make_api(db_url: str, tmp_path: Path, **overrides: Any) -> tuple[Api, Any]:
    overrides.setdefault("api_rate_per_second", 10_000.0)
    overrides.setdefault("api_rate_burst", 10_000)
    container = build(api_settings(db_url, tmp_path, **overrides))
    await bootstrap(container)  # what the lifespan does (ASGITransport does not run lifespans)
    app = create_app(container, start_background=False)
    other = await container.workspaces.create(slug="other-msp", name="Other MSP")
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://deskbridge.test")
    api = Api(container, client, container.default_workspace_id, other.id)  # type: ignore[arg-type]
    for scope in ("read", "write", "admin"):
        api.keys[scope] = (await container.apikeys.create(api.ws, name=f"{scope}-key", scopes=[scope]))[1]
    api.keys["other"] = (await container.apikeys.create(api.other_ws, name="other-admin", scopes=["admin"]))[1]
    return api, app


@pytest.fixture
async def api(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    made, _ = await make_api(db_url, tmp_path)
    try:
        yield made
    finally:
        await made.client.aclose()
        await made.container.aclose()


def assert_problem(r: httpx.Response, status: int, *, kind: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem document with our `hint`."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("urn:")
    assert "hint" in body and body["hint"]
    if kind is not None:
        assert body["type"] == f"urn:deskbridge:problem:{kind}"
    return body
