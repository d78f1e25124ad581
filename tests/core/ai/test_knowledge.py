"""KB linking end to end (core/ai/knowledge.py through the real container): Hudu articles over real HTTP from the
loopback fake, matched to our customers, a Markdown folder, links on technicians' Slack / console / Teams cards
and in the REST detail, never on a customer's, and a failing platform that keeps what it had."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from bot.console.render import render_ticket
from bot.main import build
from bot.settings import Settings
from bot.slack.blocks import ticket_blocks
from bot.teams import cards as teams_cards
from core.context import Actor
from core.errors import InvalidInput, PermissionDenied
from store.crypto import generate_key
from store.db import Scope
from store.enums import Origin
from store.tables import KbArticle, Ticket
from tests.factories import psa_backed
from tests.fakes.docs_platforms import FakeHudu, seed_hudu

VPN_HTML = ("<h1>VPN troubleshooting</h1><p>Start with the client log.</p><h2>Tunnel drops every hour</h2>"
            "<p>When the tunnel drops every hour, the IKE lifetime is shorter than the firewall's: raise the keepalive "
            "to 60 s on the Acme firewall.</p><p>Then watch one full cycle.</p>")


def seed_articles(h: FakeHudu) -> None:
    base = h.url
    h.companies.append({"id": 77, "name": "Globex", "id_in_integration": None, "url": f"{base}/c/globex"})
    h.articles += [
        {"id": 1, "name": "VPN tunnel drops", "content": VPN_HTML, "company_id": 99, "url": f"{base}/kba/1"},
        {"id": 2, "name": "Printer queue stuck", "content": "<p>Restart the print spooler service.</p>",
         "company_id": None, "url": f"{base}/kba/2"},
        {"id": 3, "name": "Globex VPN tunnel drops", "company_id": 77, "url": f"{base}/kba/3",
         "content": "<p>Globex only: the VPN tunnel drops hourly because fw01 reboots; replace fw01.</p>"},
        {"id": 4, "name": "Draft: VPN tunnel drops", "content": "<p>VPN tunnel drops hourly draft</p>",
         "company_id": None, "url": f"{base}/kba/4", "draft": True},
        {"id": 5, "name": "Unknown company VPN", "content": "<p>VPN tunnel drops hourly</p>", "company_id": 5000,
         "url": f"{base}/kba/5"},
        {"id": 6, "name": "Bad link", "content": "<p>Password reset steps for locked accounts.</p>",
         "company_id": None, "url": "javascript:alert(1)"},
    ]
    h.articles += [{"id": 100 + i, "name": f"Filler {i}", "content": f"<p>Filler article {i} about topic{i}.</p>",
                    "company_id": None, "url": f"{base}/kba/{100 + i}"} for i in range(30)]  # more than a page


@pytest.fixture
async def env(db_url, db, tmp_path, workspace_id):
    hudu = await FakeHudu().start()
    seed_hudu(hudu)
    seed_articles(hudu)
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k", run_scheduler=False, run_outbox_worker=False))
    c.default_workspace_id = workspace_id
    setup = await psa_backed(db, workspace_id)
    async with db.write(Scope.workspace(workspace_id)) as s:
        t = Ticket(workspace_id=workspace_id, number=8001, customer_id=setup.customer_id,
                   subject="VPN tunnel drops every hour",
                   description="The VPN tunnel drops on the hour since Monday.", priority="low", priority_rank=3,
                   stage="new")
        s.add(t)
        await s.flush()
    await c.docs.configure(Actor.system(workspace_id), "hudu", hudu.url, hudu.api_key)
    yield c, hudu, setup
    await c.aclose()
    await hudu.stop()


async def _rows(db, ws):
    async with db.read(Scope.workspace(ws)) as s:
        return {r.external_id: r for r in (await s.exec(select(KbArticle))).all()}


async def test_hudu_articles_are_read_and_matched_to_customers(env, db, workspace_id):
    c, hudu, setup = env
    report = await c.ai.kb.refresh(workspace_id)
    assert report.sources == {"hudu": 34} and report.skipped == {}
    rows = await _rows(db, workspace_id)
    assert rows["1"].customer_id == setup.customer_id  # by PSA id (id_in_integration 250)
    assert rows["3"].customer_id == setup.other_customer_id  # by name
    assert rows["2"].customer_id is None
    assert "4" not in rows and "5" not in rows  # a draft; a company that is none of our customers
    assert rows["6"].url is None  # not a web link: kept as text, never as a link
    assert rows["1"].body.startswith("# VPN troubleshooting") and "## Tunnel drops every hour" in rows["1"].body
    assert any(p == "/api/v1/articles" and q.get("page") == "2" for p, q in hudu.requests)


async def test_technician_card_links_the_article_with_source_paragraph_and_score(env, workspace_id, tech, monkeypatch):
    from core.chat import cards

    monkeypatch.setattr(cards, "AI_BUDGET_S", 60.0)
    c, _, setup = env
    await c.ai.kb.refresh(workspace_id)
    view = await c.chat_views.ticket(tech, 8001)
    assert view.ai is not None
    [vpn] = [a for a in view.ai.kb if a.title == "VPN tunnel drops"]
    assert vpn.source == "Hudu" and vpn.url is not None and vpn.url.endswith("/kba/1")
    assert vpn.heading == "Tunnel drops every hour" and vpn.paragraph.startswith("When the tunnel drops every hour")
    assert vpn.score >= 0.30
    assert all("Globex" not in a.title for a in view.ai.kb)  # another customer's article never links here
    slack = json.dumps(ticket_blocks(view))
    assert "KB article (Hudu, match" in slack and "raise the keepalive to 60 s" in slack
    assert "KB article (Hudu" in render_ticket(view)[0]
    assert "KB article (Hudu" in json.dumps(teams_cards.ticket_card(view))
    as_customer = Actor(workspace_id=workspace_id, origin=Origin.SLACK, is_member=False,
                        customer_scope_id=setup.customer_id)
    customer_card = await c.chat_views.ticket(as_customer, 8001)
    assert customer_card.ai is None and "KB article" not in json.dumps(ticket_blocks(customer_card))
    assert (await c.chat_views.ticket(tech, 8001, audience="customer")).ai is None
    with pytest.raises(PermissionDenied):
        await c.ai.kb.links(as_customer, view.summary.id)


async def test_no_link_below_the_threshold_and_off_switch(env, workspace_id, tech):
    c, _, _ = env
    await c.ai.kb.refresh(workspace_id)
    ticket_id = (await c.chat_views.ticket(tech, 8001)).summary.id
    assert await c.ai.kb.links(tech, ticket_id)
    await c.ai.set_setting(Actor.system(workspace_id), "kb_threshold", "0.99")
    assert await c.ai.kb.links(tech, ticket_id) == ()  # "no link" is a valid answer
    await c.ai.set_setting(Actor.system(workspace_id), "kb_threshold", "0.3")
    await c.ai.set_setting(Actor.system(workspace_id), "kb", "off")
    assert await c.ai.kb.links(tech, ticket_id) == ()


async def test_a_failing_platform_keeps_its_articles_and_a_deleted_article_goes(env, db, workspace_id):
    c, hudu, _ = env
    await c.ai.kb.refresh(workspace_id)
    hudu.api_key = "rotated"  # every call now answers 401
    report = await c.ai.kb.refresh(workspace_id)
    assert report.sources == {} and "hudu" in report.skipped
    assert len(await _rows(db, workspace_id)) == 34
    hudu.api_key = "docs-key-0123456789"
    hudu.articles = [a for a in hudu.articles if a["id"] != 2]
    await c.ai.kb.refresh(workspace_id)
    assert "2" not in await _rows(db, workspace_id)


async def test_markdown_folder_import(env, db, workspace_id, tech, tmp_path):
    c, _, _ = env
    admin = Actor.system(workspace_id)
    with pytest.raises(InvalidInput, match="is not a folder") as e:
        await c.ai.kb.import_folder(admin, str(tmp_path / "nope"))
    assert "nothing was imported" in (e.value.hint or "")
    folder = tmp_path / "kb"
    (folder / "network").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="no .md files"):
        await c.ai.kb.import_folder(admin, str(folder))
    (folder / "network" / "vpn.md").write_text("# VPN hourly drops\n\n## Fix\n\nRaise the IKE keepalive to 60 s "
                                              "when the VPN tunnel drops every hour.\n")
    (folder / "bad.md").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(InvalidInput, match="could not be read") as bad:
        await c.ai.kb.import_folder(admin, str(folder))
    assert "bad.md" in str(bad.value) and await c.ai.kb.count(workspace_id) == {}
    (folder / "bad.md").unlink()
    with pytest.raises(PermissionDenied):
        await c.ai.kb.import_folder(tech, str(folder))
    assert await c.ai.kb.import_folder(admin, str(folder)) == 1
    ticket_id = (await c.chat_views.ticket(tech, 8001)).summary.id
    [link] = [a for a in await c.ai.kb.links(tech, ticket_id) if a.article.source == "markdown"]
    assert link.article.title == "VPN hourly drops" and link.heading == "Fix" and link.article.url is None
    assert (await _rows(db, workspace_id))["network/vpn.md"].customer_id is None


async def test_the_template_draft_quotes_the_linked_article(env, workspace_id, tech):
    c, _, _ = env
    await c.ai.kb.refresh(workspace_id)
    await c.ai.set_setting(Actor.system(workspace_id), "drafts", "on")
    ticket_id = (await c.chat_views.ticket(tech, 8001)).summary.id
    draft = await c.ai.draft(tech, ticket_id)
    assert 'Our guide "VPN tunnel drops" says:' in draft.text
    assert "raise the keepalive to 60 s on the Acme firewall" in draft.text and "/kba/" not in draft.text


async def test_a_similar_ticket_on_the_card_links_into_the_psa(env, db, workspace_id, tech, monkeypatch):
    from core.chat import cards

    monkeypatch.setattr(cards, "AI_BUDGET_S", 60.0)
    c, _, setup = env
    async with db.write(Scope.workspace(workspace_id)) as s:
        s.add(Ticket(workspace_id=workspace_id, number=7001, external_id="7001", connection_id=setup.connection_id,
                     customer_id=setup.customer_id, subject="VPN tunnel drops every hour", priority="low",
                     priority_rank=3, stage="closed"))
    view = await c.chat_views.ticket(tech, 8001)
    assert view.ai is not None
    [similar] = view.ai.similar
    assert similar.ref == "#7001" and similar.url is not None and similar.url.endswith("7001")
    assert similar.url in json.dumps(ticket_blocks(view)) and similar.url in render_ticket(view)[0]


async def test_deskbridge_ai_says_how_many_kb_articles_there_are(env, workspace_id, tech):
    from core.chat import grammar
    from core.chat.models import ChannelInfo, ChatUser

    c, _, _ = env
    user = ChatUser(platform="slack", team_id="T1", user_id="U1")

    async def status():
        return (await c.chat_commands.run(tech, user, ChannelInfo(), grammar.parse("/deskbridge", "ai"))).lines

    assert any("No KB articles yet" in line and "deskbridge ai kb-import" in line for line in await status())
    await c.ai.kb.refresh(workspace_id)
    assert "KB articles for links: 34 from Hudu" in await status()
