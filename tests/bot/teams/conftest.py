"""Harness: the real Teams SDK app behind our FastAPI route, driven over ASGI with activities signed exactly as
the Bot Framework signs them, against the loopback stand-in (tests/fakes/teams_connector.py) for the keys,
the bot's token and the Bot Connector."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import httpx
import pytest

import core.chat.cards as chat_cards
from bot.api.app import create_app
from bot.main import build
from bot.settings import Settings
from store.crypto import generate_key
from tests.bot.slack.conftest import budgets_a_loaded_machine_meets, seed_tickets
from tests.factories import psa_backed
from tests.fakes.teams_connector import FakeBotFramework

APP_ID = "00000000-0000-4000-8000-0000000000b0"
TENANT = "11111111-1111-4111-8111-111111111111"
SECRET = "test-app-secret"
TEAM = "19:team-msp@thread.tacv2"
CHANNEL = "19:tech@thread.tacv2"
TECH = "aad-bob"
ADMIN = "aad-ada"
STRANGER = "aad-stranger"
_ids = itertools.count(1000)


def activity(text: str = "", *, user: str = TECH, conversation: str = CHANNEL, kind: str = "message",
             ctype: str = "channel", service_url: str, tenant: str = TENANT, **extra: Any) -> dict[str, Any]:
    """An activity as Teams sends it to the bot (a channel post by default, mentioning the bot)."""
    base = conversation.split(";messageid=")[0]
    body: dict[str, Any] = {
        "type": kind, "id": f"f:{next(_ids)}", "timestamp": "2026-12-07T03:00:00.000Z", "serviceUrl": service_url,
        "channelId": "msteams", "from": {"id": f"29:{user}", "aadObjectId": user, "name": user},
        "conversation": {"id": conversation, "conversationType": ctype, "tenantId": tenant,
                         "isGroup": ctype != "personal"},
        "recipient": {"id": f"28:{APP_ID}", "name": "Deskbridge"},
        "channelData": {"tenant": {"id": tenant}},
    }
    if ctype == "channel":
        body["channelData"].update({"team": {"id": TEAM}, "channel": {"id": base}})
    if kind == "message":
        body["text"] = f"<at>Deskbridge</at> {text}" if text else ""
        body["entities"] = [{"type": "mention", "text": "<at>Deskbridge</at>",
                             "mentioned": {"id": f"28:{APP_ID}", "name": "Deskbridge"}}]
    body.update(extra)
    return body


class TeamsHarness:
    def __init__(self, app: Any, container: Any, fake: FakeBotFramework, ws: int, setup: Any) -> None:
        self.app = app
        self.c = container
        self.fake = fake
        self.ws = ws
        self.setup = setup
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://deskbridge.test")

    def activity(self, text: str = "", **kw: Any) -> dict[str, Any]:
        return activity(text, service_url=self.fake.service_url, **kw)

    async def send(self, body: dict[str, Any] | bytes, *, token: str | None = None, settle: bool = True,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        if token is None and isinstance(body, dict):
            token = self.fake.sign(body)
        h = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {}),
             **(headers or {})}
        resp = await self.http.post("/api/messages", content=raw, headers=h)
        if settle:
            await self.settle()
        return resp

    async def say(self, text: str, **kw: Any) -> httpx.Response:
        return await self.send(self.activity(text, **kw))

    async def settle(self) -> None:
        try:
            await asyncio.wait_for(self.c.teams.drain(), 60)  # "eventually", on a loaded machine
        except TimeoutError:
            raise AssertionError("Teams work after the ack did not finish") from None

    def posted(self) -> list[dict[str, Any]]:
        return [c.body for c in self.fake.calls if c.op in ("create", "reply")]

    def last_text(self) -> str:
        """Everything visible in the last post: its text and every TextBlock / fact of its card."""
        return text_of(self.posted()[-1])


def text_of(body: dict[str, Any]) -> str:
    out: list[str] = [str(body.get("text") or "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                out.append(str(node.get("text")))
            if node.get("type") == "RichTextBlock":  # text shown exactly (cards._plain): its runs joined
                out.append("".join(r["text"] if isinstance(r, dict) else str(r) for r in node.get("inlines", [])))
            if node.get("type") == "FactSet":
                out.extend(f"{f['title']}: {f['value']}" for f in node.get("facts", []))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(body.get("attachments") or body.get("value") or [])
    return "\n".join(out)


def teams_settings(db_url: str, tmp_path: Any, fake: FakeBotFramework, **over: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
        secret_key_file=tmp_path / "k", workspace_slug="acme-msp", run_scheduler=False, run_outbox_worker=False,
        teams_app_id=APP_ID, teams_app_secret=SECRET, teams_tenant_id=TENANT,
        teams_openid_metadata_url=fake.openid_url, teams_login_url=fake.login_url,
        teams_service_url=fake.service_url,
        # Every click's answer waits for its outcome (a loaded machine must not turn a test's answer into
        # "saving…"); tests/bot/teams/test_write_hold.py sets the budget itself.
        teams_write_hold_seconds=0)
    values.update(over)
    return Settings(**values)


@pytest.fixture(autouse=True)
def _loaded_machine_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A card waits for its AI and documentation parts as long as a loaded machine needs (see the Slack
    conftest): a card without them is not kept, and the card cache tests count what is kept."""
    budgets_a_loaded_machine_meets(monkeypatch, modules=(chat_cards,))


@pytest.fixture
async def fake_bf():
    fake = await FakeBotFramework(app_id=APP_ID, app_secret=SECRET, tenant_id=TENANT).start()
    fake.add_user(TECH, name="Bob Tech", email="bob@acme-msp.example")
    fake.add_user(ADMIN, name="Ada Admin", email="admin@acme-msp.example")
    fake.add_user(STRANGER, name="Stranger", email="someone@customer.example")
    yield fake
    await fake.stop()


@pytest.fixture
async def teams(db, db_url, workspace_id, fake_bf, tmp_path):
    setup = await psa_backed(db, workspace_id)
    await seed_tickets(db, workspace_id, setup)
    container = build(teams_settings(db_url, tmp_path, fake_bf))
    container.default_workspace_id = workspace_id
    await container.directory.link_chat_user(workspace_id, setup.member_id, platform="teams", team_id=TENANT,
                                             user_id=TECH)
    await container.teams.start()
    app = create_app(container, start_background=False)
    h = TeamsHarness(app, container, fake_bf, workspace_id, setup)
    yield h
    await h.settle()
    await h.http.aclose()
    await container.aclose()
