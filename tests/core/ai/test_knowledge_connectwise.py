"""ConnectWise's knowledge base as a KB source (connectors/connectwise/kb.py -> core/ai/psa_kb.py), end to end
through the real container against the fake ConnectWise (injected transport): the newest articles read page by
page with the same parameters on every page, issue and resolution chunked by heading, all general (an article
carries no company), linked on a technician's card as "ConnectWise"; a failing read keeps what was there."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from bot.main import build
from bot.settings import Settings
from connectors.connectwise import kb as cw_kb
from store.crypto import generate_key
from store.db import Scope
from store.enums import Priority, Stage
from store.tables import KbArticle, Ticket
from tests.fakes.connectwise import FakeConnectWise


@pytest.fixture
def fake() -> FakeConnectWise:
    f = FakeConnectWise()
    f.add_kb_article("VPN tunnel drops", "The office VPN tunnel drops every hour.",
                     "Raise the keepalive to 60 s on the firewall when the VPN tunnel drops every hour.")
    f.add_kb_article("Printer mapping", "Map the office printer with the print server path.")
    f.add_kb_article("Empty draft", "", "")
    return f


@pytest.fixture
async def env(db_url, tmp_path, workspace_id, fake):  # type: ignore[no-untyped-def]
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k"), transport=fake.transport())
    c.default_workspace_id = workspace_id
    conn, _ = await c.connections.add(workspace_id, kind="connectwise", name="cw", settings=fake.settings(),
                                      credentials=fake.credentials())
    yield c, int(conn.id)
    await c.aclose()


async def _rows(c, ws: int) -> dict[str, KbArticle]:  # type: ignore[no-untyped-def]
    async with c.db.read(Scope.workspace(ws)) as s:
        return {r.external_id: r for r in (await s.exec(select(KbArticle))).all()}


async def test_articles_are_read_page_by_page_as_general_articles(env, fake, workspace_id, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(cw_kb, "PAGE_SIZE", 2)  # three articles: two pages
    c, cid = env
    report = await c.ai.kb.refresh(workspace_id)
    assert report.sources == {f"cw:{cid}": 2} and report.skipped == {}
    rows = await _rows(c, workspace_id)
    assert set(rows) == {"1", "2"}  # an article without text is left out
    assert all(r.customer_id is None and r.url is None and r.source == f"cw:{cid}" for r in rows.values())
    body = rows["1"].body
    assert body.index("drops every hour") < body.index("## Resolution") < body.index("keepalive to 60 s")
    pages = [r for r in fake.requests if r.path.endswith("/service/knowledgeBaseArticles")]
    query = [{k.lower(): v for k, v in r.query.items()} for r in pages]  # ConnectWise reads names in any case
    assert [q.get("page") for q in query] == ["1", "2"]
    assert all(q.get("pagesize") == "2" and q.get("orderby") == "id desc" for q in query)


async def test_a_technician_sees_the_article_on_the_card_with_its_source(env, fake, workspace_id, tech,
                                                                        monkeypatch):  # type: ignore[no-untyped-def]
    from bot.slack.blocks import ticket_blocks
    from core.chat import cards

    monkeypatch.setattr(cards, "AI_BUDGET_S", 60.0)
    c, _ = env
    await c.ai.kb.refresh(workspace_id)
    async with c.db.write(Scope.workspace(workspace_id)) as s:
        s.add(Ticket(workspace_id=workspace_id, number=8001, subject="VPN tunnel drops every hour",
                     description="The VPN tunnel drops on the hour.", priority=Priority.LOW.value, priority_rank=3,
                     stage=Stage.NEW.value))
    view = await c.chat_views.ticket(tech, 8001)
    assert view.ai is not None
    [vpn] = [a for a in view.ai.kb if a.title == "VPN tunnel drops"]
    assert vpn.source == "ConnectWise" and vpn.url is None  # no guessed link (connectors/connectwise/kb.py)
    assert vpn.paragraph == "The office VPN tunnel drops every hour."  # verbatim
    assert "KB article (ConnectWise, match" in json.dumps(ticket_blocks(view))


async def test_a_failing_read_keeps_what_was_there(env, fake, workspace_id):  # type: ignore[no-untyped-def]
    c, cid = env
    assert (await c.ai.kb.refresh(workspace_id)).sources == {f"cw:{cid}": 2}
    fake.fail_next(403, times=None, match="GET /service/knowledgeBaseArticles")
    report = await c.ai.kb.refresh(workspace_id)
    assert f"cw:{cid}" in report.skipped and len(await _rows(c, workspace_id)) == 2
