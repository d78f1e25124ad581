"""AiService over the database: versioned training off the event loop, status, settings, and customer
isolation of every suggestion."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.ai.service import AiService
from core.context import Actor
from core.errors import InvalidInput, NotFound, PermissionDenied
from store.db import Database, Scope
from store.enums import EntryKind, Origin, Priority, Stage
from store.tables import Customer, Ticket, TimelineEntry
from tests.core.ai.test_categorize import corpus

T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def seed(db: Database, ws: int, n_per_class: int = 110) -> tuple[int, int]:
    texts, labels = corpus(n_per_class)
    async with db.write(Scope.workspace(ws)) as s:
        a = Customer(workspace_id=ws, identifier="ACME", name="Acme")
        b = Customer(workspace_id=ws, identifier="GLOBEX", name="Globex")
        s.add_all([a, b])
        await s.flush()
        for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
            s.add(Ticket(workspace_id=ws, number=i + 1, subject=text, customer_id=a.id if i % 2 else b.id,
                         priority=Priority.MEDIUM.value, stage=Stage.CLOSED.value, type_name=label,
                         closed_at=T0 + timedelta(minutes=i)))
        vpn_a = Ticket(workspace_id=ws, number=9001, subject="VPN tunnel drops hourly", customer_id=a.id,
                       priority="medium", stage=Stage.CLOSED.value, closed_at=T0)
        vpn_b = Ticket(workspace_id=ws, number=9002, subject="VPN tunnel drops hourly", customer_id=b.id,
                       priority="medium", stage=Stage.CLOSED.value, closed_at=T0)
        open_a = Ticket(workspace_id=ws, number=9003, subject="VPN tunnel drops hourly again",
                        customer_id=a.id, priority="medium", stage=Stage.NEW.value)
        s.add_all([vpn_a, vpn_b, open_a])
        await s.flush()
        s.add(TimelineEntry(workspace_id=ws, ticket_id=vpn_a.id, kind=EntryKind.NOTE_RESOLUTION.value,
                            origin="psa", body="Raised the VPN keepalive to 60 s.", author_name="Ana"))
        s.add(TimelineEntry(workspace_id=ws, ticket_id=vpn_b.id, kind=EntryKind.NOTE_RESOLUTION.value,
                            origin="psa", body="GLOBEX-ONLY: rebooted their firewall fw01.", author_name="Bo"))
        return a.id, open_a.id  # type: ignore[return-value]


@pytest.fixture
def ai(db: Database) -> AiService:
    return AiService(db)


async def test_training_stores_a_new_version_each_run_and_status_reports_it(ai, workspace_id):
    await seed(ai.db, workspace_id)
    assert await ai.status(workspace_id) is None
    first = await ai.train(workspace_id)
    assert first.version == 1 and first.trained_on == 330
    assert first.metrics["holdout_accuracy"] > 0.9 and first.metrics["cold"] is False
    second = await ai.train(workspace_id)
    assert second.version == 2
    status = await ai.status(workspace_id)
    assert status is not None and status.version == 2 and status.metrics["sklearn"]


async def test_training_runs_off_the_event_loop(ai, workspace_id):
    await seed(ai.db, workspace_id)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    t = asyncio.create_task(ticker())
    await ai.train(workspace_id)
    t.cancel()
    assert ticks >= 5  # the loop kept answering while the model was fitted


async def test_a_second_training_at_once_is_refused(ai, workspace_id):
    await seed(ai.db, workspace_id)
    first = asyncio.create_task(ai.train(workspace_id))
    await asyncio.sleep(0.05)
    with pytest.raises(InvalidInput, match="already under way"):
        await ai.train(workspace_id)
    assert (await first).version == 1


async def test_no_labelled_tickets_says_what_to_do(ai, workspace_id):
    with pytest.raises(InvalidInput, match="Close more tickets"):
        await ai.train(workspace_id)


async def test_models_of_one_workspace_never_serve_another(ai, workspace_id, other_workspace_id):
    await seed(ai.db, workspace_id)
    await ai.train(workspace_id)
    assert await ai.status(other_workspace_id) is None


async def test_categorise_gates_on_settings_and_is_for_technicians_only(ai, workspace_id, tech):
    customer, open_id = await seed(ai.db, workspace_id)
    assert await ai.categorise(tech, open_id) is None  # no model yet: nothing, not a guess
    await ai.train(workspace_id)
    d = await ai.categorise(tech, open_id)
    assert d is not None and len(d.top) == 3 and d.action == "suggest" and "off" in d.reason
    admin = Actor.system(workspace_id)
    await ai.set_setting(admin, "auto_apply", "on")
    await ai.set_setting(admin, "fill_threshold", "1.0")
    d = await ai.categorise(tech, open_id)
    assert d is not None and d.action == "suggest" and "below the threshold 1.00" in d.reason
    with pytest.raises(PermissionDenied):
        await ai.categorise(tech.scoped_to_customer(customer), open_id)


async def test_settings_are_admin_only_and_validated(ai, workspace_id, tech):
    with pytest.raises(PermissionDenied):
        await ai.set_setting(tech, "cross_customer", "on")
    admin = Actor.system(workspace_id)
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        await ai.set_setting(admin, "fill_threshold", "lots")
    with pytest.raises(InvalidInput, match="no AI setting"):
        await ai.set_setting(admin, "telepathy", "on")
    assert (await ai.set_setting(admin, "fill_threshold", "90%"))["fill_threshold"] == 0.9


async def test_similar_tickets_stay_within_the_customer_unless_the_workspace_allows(ai, workspace_id, tech):
    customer, open_id = await seed(ai.db, workspace_id)
    answer = await ai.similar(tech, ticket_id=open_id)
    assert answer.hits and {h.doc.number for h in answer.hits} >= {9001}
    assert 9002 not in {h.doc.number for h in answer.hits} and not answer.cross_customer
    assert answer.resolutions.items[0].text == "Raised the VPN keepalive to 60 s."
    assert answer.resolutions.items[0].attribution.startswith("from #9001")
    assert all("GLOBEX" not in r.text for r in answer.resolutions.items)

    # A customer's own scope: never another customer's ticket, even by free text.
    as_customer = Actor(workspace_id=workspace_id, origin=Origin.SLACK, is_member=False,
                        customer_scope_id=customer)
    hits = (await ai.similar(as_customer, text="vpn tunnel drops hourly")).hits
    assert hits and all(h.doc.customer_id == customer for h in hits)

    await ai.set_setting(Actor.system(workspace_id), "cross_customer", "on")
    answer = await ai.similar(tech, ticket_id=open_id)
    assert {9001, 9002} <= {h.doc.number for h in answer.hits} and answer.cross_customer
    hits = (await ai.similar(as_customer, text="vpn tunnel drops hourly")).hits  # still the customer's own
    assert all(h.doc.customer_id == customer for h in hits)


async def test_a_customer_cannot_ask_about_another_customers_ticket(ai, workspace_id):
    customer, open_id = await seed(ai.db, workspace_id)
    other = Actor(workspace_id=workspace_id, origin=Origin.SLACK, is_member=False, customer_scope_id=customer + 1)
    with pytest.raises(NotFound):
        await ai.similar(other, ticket_id=open_id)


async def test_the_index_grows_as_tickets_close(ai, workspace_id, tech):
    _, open_id = await seed(ai.db, workspace_id)
    assert (await ai.similar(tech, ticket_id=open_id)).hits  # the index is built now
    async with ai.db.write(Scope.workspace(workspace_id)) as s:
        t = await s.get(Ticket, open_id)
        cust = t.customer_id
        s.add(Ticket(workspace_id=workspace_id, number=9100, subject="Fire drill alarm panel fault",
                     customer_id=cust, priority="low", stage=Stage.CLOSED.value, closed_at=T0 + timedelta(days=9)))
    hits = (await ai.similar(tech, ticket_id=open_id, k=3)).hits
    assert 9100 not in {h.doc.number for h in hits}  # unrelated text
    as_customer = Actor(workspace_id=workspace_id, origin=Origin.SLACK, is_member=False, customer_scope_id=cust)
    hits = (await ai.similar(as_customer, text="alarm panel fault fire drill")).hits
    assert hits and hits[0].doc.number == 9100


async def test_drafts_are_off_by_default_and_never_carry_another_customers_resolution(db, workspace_id, tech):
    import json

    import httpx

    from core.ai.drafts import LlmConfig

    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.content.decode())
        return httpx.Response(200, json={"choices": [{"message": {"content": "Hi, see #9001."}}]})

    ai = AiService(db, llm=LlmConfig(base_url="http://llm.test/v1", model="m"),
                   llm_transport=httpx.MockTransport(handler))
    customer, open_id = await seed(db, workspace_id)
    with pytest.raises(InvalidInput, match="off in this workspace"):
        await ai.draft(tech, open_id)
    admin = Actor.system(workspace_id)
    await ai.set_setting(admin, "drafts", "on")
    draft = await ai.draft(tech, open_id, requester="Sam")
    assert draft.kind == "template" and not sent  # remote LLM not allowed yet: nothing left the building
    assert "Raised the VPN keepalive to 60 s." in draft.text and "GLOBEX" not in draft.text
    await ai.set_setting(admin, "remote_llm", "on")
    draft = await ai.draft(tech, open_id)
    assert draft.kind == "llm" and len(sent) == 1
    assert "GLOBEX" not in json.dumps(sent) and "#9001" in sent[0]
    with pytest.raises(PermissionDenied):
        await ai.draft(tech.scoped_to_customer(customer), open_id)


async def test_scheduled_retrain_follows_the_growth_of_each_workspace(ai, workspace_id, other_workspace_id):
    await seed(ai.db, workspace_id)
    assert await ai.retrain_due() == [workspace_id]  # other_workspace has nothing to learn from
    assert await ai.retrain_due() == []  # nothing new since
    texts, labels = corpus(7, seed=5)
    async with ai.db.write(Scope.workspace(workspace_id)) as s:
        for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
            s.add(Ticket(workspace_id=workspace_id, number=20_000 + i, subject=text, priority="low",
                         stage=Stage.CLOSED.value, type_name=label))
    assert await ai.retrain_due() == [workspace_id]
    status = await ai.status(workspace_id)
    assert status is not None and status.version == 2 and status.trained_on == 351
    await ai.set_setting(Actor.system(workspace_id), "categorize", "off")
    async with ai.db.write(Scope.workspace(workspace_id)) as s:
        for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
            s.add(Ticket(workspace_id=workspace_id, number=30_000 + i, subject=text, priority="low",
                         stage=Stage.CLOSED.value, type_name=label))
    assert await ai.retrain_due() == []  # categorisation off: no training
