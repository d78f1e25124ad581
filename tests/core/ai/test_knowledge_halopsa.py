"""HaloPSA's own knowledge base as a KB source (connectors/halopsa/kb.py -> core/ai/psa_kb.py -> core/ai/knowledge.py),
end to end through the real container against the fake HaloPSA over HTTP (injected transport): active articles
read page by page with their full records, description and resolution chunked by heading, linked to the
article in Halo, an article limited to a client kept for that customer only, inactive ones and those of a
client that is none of this connection's customers left out; a failing read keeps what was there."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlmodel import select

from bot.main import build
from bot.settings import Settings
from connectors.halopsa import kb as halo_kb
from store.crypto import generate_key
from store.db import Scope
from store.enums import Priority, Stage
from store.tables import Customer, KbArticle, Ticket
from tests.fakes.halopsa import FakeHalo

ACME, GLOBEX, STRANGER = 12, 13, 77


@pytest.fixture
def fake() -> FakeHalo:
    f = FakeHalo()
    f.add_kb_article("VPN tunnel drops", "<p>The office VPN tunnel drops every hour.</p>",
                     resolution="<p>Raise the keepalive to 60 s on the firewall when the tunnel drops every hour.</p>")
    f.add_kb_article("Acme VPN tunnel drops", "<h2>Acme firewall</h2><p>The Acme VPN tunnel drops every hour.</p>",
                     resolution="<p>Reboot the Acme firewall when the VPN tunnel drops every hour.</p>",
                     clients=(ACME,))
    f.add_kb_article("Globex VPN tunnel drops", "<p>The Globex VPN tunnel drops every hour: call Globex IT.</p>",
                     clients=(GLOBEX,))
    f.add_kb_article("Old VPN tunnel drops", "<p>VPN tunnel drops every hour (old).</p>", inactive=True)
    f.add_kb_article("Stranger VPN tunnel drops", "<p>VPN tunnel drops every hour at Stranger.</p>",
                     clients=(STRANGER,))  # a client that is none of this connection's customers
    f.add_kb_article("Printer mapping", "Map the office printer with the print server path.", html=False)
    return f


@pytest.fixture
async def env(db_url, tmp_path, workspace_id, fake):  # type: ignore[no-untyped-def]
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k"), transport=fake.transport())
    c.default_workspace_id = workspace_id
    conn, _ = await c.connections.add(workspace_id, kind="halopsa", name="halo", settings=fake.settings(),
                                      credentials=fake.credentials())
    assert (await c.sync.run(int(conn.id))).ok  # customers from Halo's clients
    async with c.db.write(Scope.workspace(workspace_id)) as s:  # another PSA's customer with the same id and name
        s.add(Customer(workspace_id=workspace_id, name="Stranger Ltd", identifier="STRANGER", external_id=str(STRANGER)))
    yield c, int(conn.id)
    await c.aclose()


async def _customers(c, ws: int, cid: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    async with c.db.read(Scope.workspace(ws)) as s:
        return {str(r.external_id): int(r.id) for r in (await s.exec(
            select(Customer).where(Customer.connection_id == cid))).all()}


async def _rows(c, ws: int) -> dict[str, KbArticle]:  # type: ignore[no-untyped-def]
    async with c.db.read(Scope.workspace(ws)) as s:
        return {r.external_id: r for r in (await s.exec(select(KbArticle))).all()}


async def test_articles_are_read_page_by_page_and_scoped_to_customers(env, fake, workspace_id, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(halo_kb, "KB_PAGE_SIZE", 2)  # five active articles: three pages
    c, cid = env
    report = await c.ai.kb.refresh(workspace_id)
    rows = await _rows(c, workspace_id)
    customers = await _customers(c, workspace_id, cid)
    assert report.sources == {f"halo:{cid}": 4} and report.skipped == {}
    assert set(rows) == {"1", f"2:{ACME}", f"3:{GLOBEX}", "6"}  # inactive and another connection's customer's out
    assert rows["1"].customer_id is None and rows["6"].customer_id is None  # general
    assert rows[f"2:{ACME}"].customer_id == customers[str(ACME)]
    assert rows[f"3:{GLOBEX}"].customer_id == customers[str(GLOBEX)]
    assert rows["1"].url == f"{fake.public_root}/kb?id=1" and rows["1"].source == f"halo:{cid}"
    body = rows[f"2:{ACME}"].body  # description, then the resolution under its own heading
    assert body.index("## Acme firewall") < body.index("Acme VPN tunnel") < body.index("## Resolution") < \
        body.index("Reboot the Acme firewall")
    assert rows["6"].body.startswith("Map the office printer")  # a plain-text article
    lists = [r for r in fake.requests if r.key == "GET /api/KBArticle"]
    assert [r.params.get("page_no") for r in lists] == ["1", "2", "3"]
    assert all(r.params.get("includeinactive") == "false" and r.params.get("pageinate") == "true" for r in lists)
    details = sorted(int(r.path.rsplit("/", 1)[1]) for r in fake.requests if r.key == "GET /api/KBArticle/{id}")
    assert details == [1, 2, 3, 5, 6]  # the inactive article's record is never read


async def test_a_technician_sees_the_customers_own_article_linked_to_halo_and_never_another_customers(
        env, fake, workspace_id, tech, monkeypatch):  # type: ignore[no-untyped-def]
    from bot.slack.blocks import ticket_blocks
    from core.chat import cards

    monkeypatch.setattr(cards, "AI_BUDGET_S", 60.0)
    c, cid = env
    await c.ai.kb.refresh(workspace_id)
    customers = await _customers(c, workspace_id, cid)
    async with c.db.write(Scope.workspace(workspace_id)) as s:
        s.add(Ticket(workspace_id=workspace_id, number=8001, customer_id=customers[str(ACME)],
                     subject="VPN tunnel drops every hour", description="The VPN tunnel drops on the hour.",
                     priority=Priority.LOW.value, priority_rank=3, stage=Stage.NEW.value))
    view = await c.chat_views.ticket(tech, 8001)
    assert view.ai is not None and view.ai.kb
    titles = {a.title for a in view.ai.kb}
    assert "Acme VPN tunnel drops" in titles
    assert not any("Globex" in t or "Stranger" in t or "Old" in t for t in titles)
    acme = next(a for a in view.ai.kb if a.title == "Acme VPN tunnel drops")
    assert acme.source == "HaloPSA"
    assert dict(parse_qsl(urlsplit(acme.url or "").query)) == {"id": "2"}
    assert "KB article (HaloPSA, match" in json.dumps(ticket_blocks(view))


async def test_a_failing_read_keeps_what_was_there(env, fake, workspace_id):  # type: ignore[no-untyped-def]
    c, cid = env
    assert (await c.ai.kb.refresh(workspace_id)).sources == {f"halo:{cid}": 4}
    fake.fail_next(403, times=None, match="GET /api/KBArticle")
    report = await c.ai.kb.refresh(workspace_id)
    assert f"halo:{cid}" in report.skipped and report.sources == {}
    assert len(await _rows(c, workspace_id)) == 4
    fake.clear_faults()
    fake.kb[2]["inactive"] = True  # switched off in Halo: gone at the next complete read
    assert (await c.ai.kb.refresh(workspace_id)).sources == {f"halo:{cid}": 3}
    assert f"2:{ACME}" not in await _rows(c, workspace_id)


async def test_credentials_that_cannot_be_read_skip_the_source_and_keep_its_articles(env, workspace_id):  # type: ignore[no-untyped-def]
    from store.tables import PsaConnection

    c, cid = env
    assert (await c.ai.kb.refresh(workspace_id)).sources == {f"halo:{cid}": 4}
    async with c.db.write(Scope.workspace(workspace_id)) as s:
        row = await s.get(PsaConnection, cid)
        row.credentials_ciphertext = b"not a ciphertext"
        s.add(row)
    report = await c.ai.kb.refresh(workspace_id)  # no exception: other sources of the workspace still refresh
    assert report.skipped.keys() == {f"halo:{cid}"} and report.sources == {}
    assert len(await _rows(c, workspace_id)) == 4
