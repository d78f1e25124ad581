"""Queue filters, keyset pagination and scoping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from core.context import Actor
from core.errors import InvalidFilter
from core.queue import UNASSIGNED, QueueFilter, QueueService, QueueSort
from store.db import Database, Scope
from store.enums import Priority, Stage
from store.tables import Customer, Ticket

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


async def _seed(db: Database, ws: int, member_id: int, n: int = 30) -> tuple[int, int]:
    async with db.write(Scope.workspace(ws)) as s:
        a = Customer(workspace_id=ws, identifier="ACME", name="Acme Corp")
        b = Customer(workspace_id=ws, identifier="GLOBEX", name="Globex")
        s.add_all([a, b])
        await s.flush()
        stages = [Stage.NEW, Stage.IN_PROGRESS, Stage.WAITING, Stage.CLOSED]
        prios = list(Priority)
        for i in range(n):
            p = prios[i % 4]
            s.add(Ticket(workspace_id=ws, number=i + 1, subject=f"Ticket {i} {'printer' if i % 5 == 0 else 'vpn'}",
                         customer_id=a.id if i % 2 == 0 else b.id, priority=p.value, priority_rank=p.rank,
                         stage=stages[i % 4].value, psa_status_name=stages[i % 4].label,
                         assignee_member_id=member_id if i % 3 == 0 else None,
                         created_at=NOW - timedelta(hours=n - i), updated_at=NOW - timedelta(minutes=i)))
        return a.id, b.id  # type: ignore[return-value]


@pytest.fixture
def queue(db: Database) -> QueueService:
    return QueueService(db, clock=lambda: NOW)


async def _all_pages(queue: QueueService, actor: Actor, f: QueueFilter, limit: int) -> list[int]:
    seen, cursor = [], None
    while True:
        page = await queue.list(actor, f, limit=limit, cursor=cursor)
        seen.extend(t.number for t in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return seen


@pytest.mark.parametrize("sort", list(QueueSort))
async def test_keyset_pages_cover_everything_once_in_order(queue, tech, db, workspace_id, sort):
    await _seed(db, workspace_id, tech.member_id)
    f = QueueFilter(sort=sort, include_closed=True)
    paged = await _all_pages(queue, tech, f, limit=7)
    whole = [t.number for t in (await queue.list(tech, f, limit=100)).items]
    assert paged == whole and len(whole) == 30 and len(set(whole)) == 30
    if sort == QueueSort.PRIORITY:
        ranks = [Priority(t.priority).rank for t in (await queue.list(tech, f, limit=100)).items]
        assert ranks == sorted(ranks)


async def test_filters(queue, tech, db, workspace_id):
    acme, globex = await _seed(db, workspace_id, tech.member_id)
    default = (await queue.list(tech, limit=100, with_total=True))
    assert default.total == 23 - 0 and all(t.stage.is_open for t in default.items)  # 30 minus 7 closed
    stage = await queue.list(tech, QueueFilter(stages=(Stage.WAITING,)), limit=100)
    assert {t.stage for t in stage.items} == {Stage.WAITING}
    cust = await queue.list(tech, QueueFilter(customer_id=acme), limit=100)
    assert {t.customer_name for t in cust.items} == {"Acme Corp"}
    mine = await queue.mine(tech, limit=100)
    assert mine.items and all(t.assignee_id == tech.member_id for t in mine.items)
    unassigned = await queue.list(tech, QueueFilter(assignee=UNASSIGNED), limit=100)
    assert unassigned.items and all(t.assignee_id is None for t in unassigned.items)
    crit = await queue.list(tech, QueueFilter(priorities=(Priority.CRITICAL,), include_closed=True), limit=100)
    assert {t.priority for t in crit.items} == {Priority.CRITICAL}
    old = await queue.list(tech, QueueFilter(min_age=timedelta(hours=25), include_closed=True), limit=100)
    assert sorted(t.number for t in old.items) == [1, 2, 3, 4, 5, 6]  # at least 25 h old
    text = await queue.list(tech, QueueFilter(text="PRINTER", include_closed=True), limit=100)
    assert sorted(t.number for t in text.items) == [1, 6, 11, 16, 21, 26]
    by_number = await queue.list(tech, QueueFilter(text="#17", include_closed=True), limit=100)
    assert [t.number for t in by_number.items] == [17]
    status = await queue.list(tech, QueueFilter(statuses=("waiting on customer",)), limit=100)
    assert status.items and {t.stage for t in status.items} == {Stage.WAITING}


@pytest.mark.parametrize("odd", ["%", "_", "\\", "'; DROP TABLE ticket; --", "100%_done", "\u202e\u0000"])
async def test_odd_filter_text_is_literal(queue, tech, db, workspace_id, odd):
    await _seed(db, workspace_id, tech.member_id)
    page = await queue.list(tech, QueueFilter(text=odd, include_closed=True), limit=100)
    assert page.items == ()


async def test_customer_scope_cannot_be_widened_by_a_filter(queue, tech, db, workspace_id):
    acme, globex = await _seed(db, workspace_id, tech.member_id)
    scoped = tech.scoped_to_customer(acme)
    own = await queue.list(scoped, QueueFilter(include_closed=True), limit=100)
    assert own.items and {t.customer_id for t in own.items} == {acme}
    sneaky = await queue.list(scoped, QueueFilter(customer_id=globex, include_closed=True), limit=100)
    assert sneaky.items == ()


async def test_other_workspace_sees_nothing(queue, tech, db, workspace_id, other_workspace_id):
    await _seed(db, workspace_id, tech.member_id)
    page = await queue.list(Actor.system(other_workspace_id), QueueFilter(include_closed=True), limit=100)
    assert page.items == ()


async def test_bad_cursor_and_page_size(queue, tech, db, workspace_id):
    await _seed(db, workspace_id, tech.member_id)
    with pytest.raises(InvalidFilter, match="page link is invalid"):
        await queue.list(tech, cursor="garbage!!")
    page = await queue.list(tech, QueueFilter(sort=QueueSort.NEWEST), limit=2)
    with pytest.raises(InvalidFilter, match="different sort"):
        await queue.list(tech, QueueFilter(sort=QueueSort.OLDEST), cursor=page.next_cursor)
    with pytest.raises(InvalidFilter, match="out of range"):
        await queue.list(tech, limit=0)
    with pytest.raises(InvalidFilter, match="not linked"):
        await queue.mine(Actor.system(workspace_id))


async def test_cached_page_query_stays_scoped_when_workspaces_alternate(queue, tech, db, workspace_id,
                                                                        other_workspace_id):
    from core.workspaces import DirectoryService

    await _seed(db, workspace_id, tech.member_id, n=8)
    other_member = await DirectoryService(db).add_member(other_workspace_id, name="Zed")
    await _seed(db, other_workspace_id, other_member.id, n=5)
    other = Actor.system(other_workspace_id)
    for _ in range(3):  # the same statement object serves both workspaces, never mixing them
        mine = await queue.list(tech, QueueFilter(include_closed=True), limit=100)
        theirs = await queue.list(other, QueueFilter(include_closed=True), limit=100)
        assert len(mine.items) == 8 and len(theirs.items) == 5
        assert not {t.id for t in mine.items} & {t.id for t in theirs.items}


async def test_letters_beyond_ascii_match_in_any_case_on_both_databases(queue, tech, db, workspace_id):
    """SQLite's own lower() folds A-Z only: ÉCOLE must still find école (PostgreSQL's lower() folds every letter),
    through the page read the REST API uses and the one-hop read the chat's /tickets uses (list_with)."""
    import unicodedata

    subjects = {1: "École fermée: imprimante", 2: "ÉCOLE primaire wifi", 3: "ecole sans accent",
                4: "Принтер не печатает", 5: unicodedata.normalize("NFD", "Écran noir à l'accueil"),
                6: "ÄRGER mit Outlook", 7: "Printer (ASCII)"}
    async with db.write(Scope.workspace(workspace_id)) as s:
        for number, subject in subjects.items():
            s.add(Ticket(workspace_id=workspace_id, number=number, subject=subject, priority=Priority.MEDIUM.value,
                         priority_rank=Priority.MEDIUM.rank, stage=Stage.NEW.value, created_at=NOW,
                         updated_at=NOW - timedelta(minutes=number)))
    cases = {"ÉCOLE": [1, 2], "école": [1, 2], "École FERMÉE": [1], "ПРИНТЕР": [4], "принтер": [4],
             "ÉCRAN": [5], unicodedata.normalize("NFD", "écran NOIR"): [5], "ärger": [6], "Ärger": [6],
             "PRINTER": [7], "ecole": [3]}
    for query, want in cases.items():
        page = await queue.list(tech, QueueFilter(text=query), limit=100)
        assert sorted(t.number for t in page.items) == want, (query, [t.subject for t in page.items])
        with_page, _ = await queue.list_with(tech, QueueFilter(text=query), None, limit=100)
        assert sorted(t.number for t in with_page.items) == want, ("chat read", query)
    async with db.read(Scope.workspace(workspace_id)) as s:  # stored exactly as written
        stored = {t.number: t.subject for t in (await s.exec(select(Ticket))).all()}
    assert stored == subjects


async def test_the_total_counts_the_filters_rows_in_the_workspace_only(queue, tech, db, workspace_id, other_workspace_id):
    """The count runs without the page's joins (core/queue.py `_counted`): for every filter shape it is the number
    of rows the pages hold, scoped like them (another workspace's tickets, a customer channel's denial)."""
    from dataclasses import replace

    from core.workspaces import DirectoryService

    acme, globex = await _seed(db, workspace_id, tech.member_id)
    other = await DirectoryService(db).add_member(other_workspace_id, name="Zed")
    await _seed(db, other_workspace_id, other.id, n=9)
    filters = [QueueFilter(), QueueFilter(include_closed=True), QueueFilter(customer_id=acme),
               QueueFilter(assignee=tech.member_id), QueueFilter(assignee=UNASSIGNED, sort=QueueSort.PRIORITY),
               QueueFilter(stages=(Stage.NEW, Stage.CLOSED)), QueueFilter(text="printer", include_closed=True),
               QueueFilter(priorities=(Priority.HIGH,), min_age=timedelta(hours=10)), QueueFilter(ticket_ids=(1, 2, 3))]
    in_acme = replace(tech, customer_scope_id=acme)
    for actor in (tech, in_acme):
        for f in filters:
            page = await queue.list(actor, f, limit=100, with_total=True)
            assert page.total == len(page.items), (actor.customer_scope_id, f)
    assert (await queue.list(in_acme, QueueFilter(customer_id=globex), limit=5, with_total=True)).total == 0
    assert (await queue.list(tech, QueueFilter(include_closed=True), limit=5, with_total=True)).total == 30
