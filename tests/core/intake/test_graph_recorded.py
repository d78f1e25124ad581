"""The Microsoft Graph mailbox reader against Graph's own answers, replayed (recorded/graph_mail.json): the real
GraphReader and MailboxService over an httpx transport that answers each request with the next recorded response
for its URL, and refuses any request the recording does not have. A round of pages ending in an empty page with
the delta link, a changed message coming back under the same id, a removed one, an expired delta token (410:
a new round, nothing doubled), throttling (429, the watermark kept) and a mailbox RBAC no longer lets the app read."""

from __future__ import annotations

import json
from collections import defaultdict, deque
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from sqlmodel import select

from connectors.mail.graph import GraphReader
from core.errors import ConnectionProblem
from core.intake.mail import MailIntake
from core.intake.mailbox import MailboxService
from store.crypto import CredentialCipher, generate_key
from store.db import Scope
from store.tables import MailReceipt, Ticket
from tests.core.intake.test_mail import mail as mail  # noqa: F401 - fixture

RECORDED = Path(__file__).parent / "recorded" / "graph_mail.json"
CONFIG = {"mailbox": "help@msp.example", "tenant": "contoso-tenant", "client_id": "3f1c2a9e-app",
          "client_secret": "recorded-secret"}


def _key(method: str, url: str) -> tuple[str, str]:
    return method, unquote(str(httpx.URL(url)))


class Replay:
    """Each URL's recorded responses in order (a `repeat` one answers every time); anything else fails."""

    def __init__(self, path: Path) -> None:
        self.queues: dict[tuple[str, str], deque[dict[str, Any]]] = defaultdict(deque)
        self.repeat: dict[tuple[str, str], dict[str, Any]] = {}
        for ex in json.loads(path.read_text())["exchanges"]:
            key = _key(ex["method"], ex["url"])
            if ex.get("repeat"):
                self.repeat[key] = ex["response"]
            else:
                self.queues[key].append(ex["response"])
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = _key(request.method, str(request.url))
        rec = self.queues[key].popleft() if self.queues.get(key) else self.repeat.get(key)
        assert rec is not None, f"not in the recording: {key}"
        kw: dict[str, Any] = {"json": rec["json"]} if "json" in rec else {"content": rec["text"].encode()}
        return httpx.Response(rec["status"], headers=rec["headers"], **kw)

    def left(self) -> list[tuple[str, str]]:
        return [k for k, q in self.queues.items() if q]


@pytest.fixture
def replay() -> Replay:
    return Replay(RECORDED)


def _service(m: Any, replay: Replay) -> MailboxService:
    def readers(kind: str, config: Any) -> GraphReader:
        assert kind == "graph"
        return GraphReader(mailbox=config["mailbox"], tenant=config["tenant"], client_id=config["client_id"],
                           client_secret=config["client_secret"], transport=httpx.MockTransport(replay.handler))

    return MailboxService(m.db, cipher=CredentialCipher.from_keys([generate_key()]),
                          intake=MailIntake(m.db, tickets=m.tickets, clock=m.clock), readers=readers)


async def _subjects(m: Any) -> list[str]:
    async with m.db.read(Scope.workspace(m.ws)) as s:
        return sorted((await s.exec(select(Ticket.subject))).all())


async def _watermark(service: MailboxService, ws: int) -> str | None:
    return (await service.entry(ws) or {}).get("watermark")


async def test_graph_delta_rounds_changes_removals_an_expired_token_and_throttling(mail, replay):  # noqa: F811
    service = _service(mail, replay)
    before = await _subjects(mail)
    await service.configure(mail.ws, "graph", CONFIG)  # checked by reading, nothing taken
    assert await _subjects(mail) == before

    first = await service.poll(mail.ws)  # a round of two pages, the last one empty with the delta link
    assert first.outcomes == {"created": 1, "triage": 1, "ignored": 1}
    assert (await _watermark(service, mail.ws) or "").endswith("LztZwWjo5IivWBhyxw5rAKMt3QpClUvT1tlVafU8yQhOWaXPKvxbimr4"
                                                              "Qzy1v0bGm3v8b1s8lWTZgD5ZpHDw2w.Wn6rQCzXkW0hWs1gI8C4MzcAjx8Qp0y2ULsmkqUcDAk")
    assert all(r.headers["Authorization"].startswith("Bearer eyJ") for r in replay.requests if "graph" in str(r.url))
    assert any(r.headers.get("Prefer") == "odata.maxpagesize=25" for r in replay.requests)

    second = await service.poll(mail.ws)  # m1 again (someone read it), m4 new, m2 removed
    assert second.outcomes == {"duplicate": 1, "created": 1}
    third = await service.poll(mail.ws)  # 410: a new round lists the Inbox again; only m5 is new
    assert third.outcomes == {"duplicate": 3, "created": 1}
    assert await _subjects(mail) == sorted(before + ["Outlook keeps asking for my password", "VPN drops every hour",
                                                     "Scanner on floor 3 is offline"])
    async with mail.db.read(Scope.workspace(mail.ws)) as s:
        receipts = (await s.exec(select(MailReceipt.outcome, MailReceipt.reason))).all()
    assert ("ignored", "Auto-Submitted: auto-replied") in receipts and ("triage", "unknown sender") in receipts

    kept = await _watermark(service, mail.ws)
    with pytest.raises(ConnectionProblem, match="429.*retry after 17 s"):
        await service.poll(mail.ws)
    assert await _watermark(service, mail.ws) == kept  # read again next time, nothing skipped
    assert (await service.poll(mail.ws)).outcomes == {}
    with pytest.raises(ConnectionProblem, match="403: ErrorAccessDenied") as refused:
        await service.poll(mail.ws)
    assert "RBAC for Applications" in (refused.value.hint or "")
    assert "recorded-secret" not in str(refused.value) + (refused.value.hint or "")
    assert replay.left() == []  # every recorded answer was asked for
