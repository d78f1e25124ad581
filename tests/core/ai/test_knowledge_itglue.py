"""IT Glue as a knowledge-base source (connectors/itglue ItGlueDocs.articles -> core/ai/knowledge.py), end to end
through the real container against the loopback IT Glue fake over real HTTP: every organization's published
documents (in folders too), their text from the document sections, matched to our customers by PSA id then name,
linked on a technician's card with its source, never across customers; throttling honoured, a refused key keeps
what was there, and a refresh reads at most a capped number of documents, newest first."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from bot.main import build
from bot.settings import Settings
from bot.slack.blocks import ticket_blocks
from connectors.itglue import client as itglue
from core.context import Actor
from store.crypto import generate_key
from store.db import Scope
from store.tables import KbArticle, Ticket
from tests.factories import psa_backed
from tests.fakes.docs_platforms import FakeItGlue, itglue_section, seed_itglue

ACME, GLOBEX, STRANGER = "4242", "4343", "4444"


def _doc(g: FakeItGlue, org: str, rid: int, name: str, *, folder: int | None = None, updated: str = "2026-01-01",
         **flags: object) -> None:
    g.documents.setdefault(org, []).append({
        "id": str(rid), "type": "documents",
        "attributes": {"name": name, "organization-id": int(org), "resource-url": f"{g.url}/documents/{rid}",
                       "document-folder-id": folder, "archived": False, "published": True, "restricted": False,
                       "updated-at": f"{updated}T10:00:00.000Z", **flags}})


def seed_kb(g: FakeItGlue) -> None:
    """Acme (PSA id 250) and Globex (by name) with documents at the root and in folders, plus an organization that
    is none of our customers, drafts, archived and restricted documents."""
    seed_itglue(g)  # 120 organizations, Acme Corp among them (psa-id 250)
    g.documents.clear()
    for oid, name in ((GLOBEX, "Globex"), (STRANGER, "Stranger Ltd")):
        g.organizations.append({"id": oid, "type": "organizations",
                                "attributes": {"name": name, "psa-id": None, "resource-url": f"{g.url}/o/{oid}"}})
    _doc(g, ACME, 1, "VPN tunnel drops", folder=77, updated="2026-02-03")  # in a folder: read only with the filter
    itglue_section(g, 1, "Heading", "VPN troubleshooting", level=1)
    itglue_section(g, 1, "Text", "<p>Start with the client log.</p>")
    itglue_section(g, 1, "Gallery", "<img src='x.png'>")
    itglue_section(g, 1, "Heading", "<span>Tunnel drops every hour</span>", level=2)
    itglue_section(g, 1, "Step", "<p>When the tunnel drops every hour, raise the keepalive to 60 s on the Acme "
                                 "firewall.</p>")
    _doc(g, ACME, 2, "Printer mapping", updated="2026-01-10")
    itglue_section(g, 2, "Text", "<p>Map the office printer with the print server path.</p>")
    _doc(g, GLOBEX, 3, "Globex VPN tunnel drops", updated="2026-01-20")
    itglue_section(g, 3, "Text", "<p>When the Globex VPN tunnel drops every hour, reboot the Globex firewall.</p>")
    _doc(g, STRANGER, 4, "Stranger VPN tunnel drops")  # an organization that is none of our customers
    itglue_section(g, 4, "Text", "<p>VPN tunnel drops every hour at Stranger.</p>")
    _doc(g, ACME, 5, "Draft VPN", published=False)
    _doc(g, ACME, 6, "Old VPN", archived=True)
    _doc(g, ACME, 7, "Admins only VPN", restricted=True)
    for rid in (5, 6, 7):
        itglue_section(g, rid, "Text", "<p>VPN tunnel drops every hour.</p>")


@pytest.fixture
async def env(db_url, db, tmp_path, workspace_id):
    g = await FakeItGlue().start()
    seed_kb(g)
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k", run_scheduler=False, run_outbox_worker=False))
    c.default_workspace_id = workspace_id
    setup = await psa_backed(db, workspace_id)
    async with db.write(Scope.workspace(workspace_id)) as s:
        s.add(Ticket(workspace_id=workspace_id, number=8001, customer_id=setup.customer_id,
                     subject="VPN tunnel drops every hour",
                     description="The VPN tunnel drops on the hour since Monday.", priority="low", priority_rank=3,
                     stage="new"))
    await c.docs.configure(Actor.system(workspace_id), "itglue", g.url, g.api_key)
    yield c, g, setup
    await c.aclose()
    await g.stop()


async def _rows(db, ws):  # type: ignore[no-untyped-def]
    async with db.read(Scope.workspace(ws)) as s:
        return {r.external_id: r for r in (await s.exec(select(KbArticle))).all()}


async def test_documents_are_read_with_their_sections_and_matched_to_customers(env, db, workspace_id, monkeypatch):
    monkeypatch.setattr(itglue, "KB_PAGE_SIZE", 50)  # 122 organizations: three pages
    c, g, setup = env
    report = await c.ai.kb.refresh(workspace_id)
    assert report.sources == {"itglue": 3} and report.skipped == {}
    rows = await _rows(db, workspace_id)
    assert set(rows) == {"1", "2", "3"}  # drafts, archived, restricted and a stranger's documents left out
    assert rows["1"].customer_id == setup.customer_id and rows["2"].customer_id == setup.customer_id  # by PSA id
    assert rows["3"].customer_id == setup.other_customer_id  # by name
    assert rows["1"].source == "itglue" and rows["1"].url == f"{g.url}/documents/1"
    body = rows["1"].body  # sections in order, headings at their level, the gallery left out
    assert body.startswith("# VPN troubleshooting") and "## Tunnel drops every hour" in body
    assert body.index("client log") < body.index("## Tunnel drops") < body.index("keepalive to 60 s")
    assert "img" not in body and "x.png" not in body
    orgs = [q for p, q in g.requests if p == "/organizations" and q.get("page[size]") == "50"]  # not the key check
    assert [q.get("page[number]") for q in orgs] == [None, "2", "3"]
    docs = [q for p, q in g.requests if p.endswith("/relationships/documents")]
    assert docs and all(q.get("filter[document_folder_id]") == "null" for q in docs)
    assert not any(p == "/documents/5/relationships/sections" for p, _ in g.requests)  # a draft's text is not read


async def test_the_card_links_an_it_glue_article_and_never_another_customers(env, workspace_id, tech, monkeypatch):
    from core.chat import cards

    monkeypatch.setattr(cards, "AI_BUDGET_S", 60.0)
    c, _, _ = env
    await c.ai.kb.refresh(workspace_id)
    view = await c.chat_views.ticket(tech, 8001)
    assert view.ai is not None
    [vpn] = [a for a in view.ai.kb if a.title == "VPN tunnel drops"]
    assert vpn.source == "IT Glue" and vpn.heading == "Tunnel drops every hour"
    assert vpn.paragraph.startswith("When the tunnel drops every hour")
    assert all("Globex" not in a.title and "Stranger" not in a.title for a in view.ai.kb)
    assert "KB article (IT Glue, match" in json.dumps(ticket_blocks(view))


async def test_throttling_is_waited_out_and_a_refused_key_keeps_what_was_there(env, db, workspace_id):
    c, g, _ = env
    g.throttle(2, "0")  # 429 with Retry-After twice, then answers
    assert (await c.ai.kb.refresh(workspace_id)).sources == {"itglue": 3}
    g.api_key = "revoked-after-90-days"
    report = await c.ai.kb.refresh(workspace_id)
    assert report.sources == {} and "itglue" in report.skipped
    assert set(await _rows(db, workspace_id)) == {"1", "2", "3"}


async def test_a_refresh_reads_at_most_the_cap_newest_first(env, db, workspace_id, monkeypatch):
    monkeypatch.setattr(itglue, "MAX_KB_DOCUMENTS", 2)
    c, g, _ = env
    assert (await c.ai.kb.refresh(workspace_id)).sources == {"itglue": 2}
    assert set(await _rows(db, workspace_id)) == {"1", "3"}  # updated 3 Feb and 20 Jan; the 10 Jan one waits
    sections = [p for p, _ in g.requests if p.endswith("/relationships/sections")]
    assert sorted(sections) == ["/documents/1/relationships/sections", "/documents/3/relationships/sections"]
