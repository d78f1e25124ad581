"""The fake ConnectWise's list index answers exactly what filtering and sorting every record answered.

The index (tests/fakes/connectwise_index.py) exists so that keyset paging over 50,000 tickets costs a range
seek, as on ConnectWise's SQL Server, instead of a scan per page. These tests hold it to the definition:
`sort_records([r for r in records if predicate(r)], orderBy)`, for random records (duplicate stamps, odd
stamps, missing values) and the condition shapes the connectors send plus ones the index must not decide.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.connectwise.conditions import and_, cond, or_
from connectors.connectwise.connector import TICKET_ORDER, ConnectWiseConnector
from tests.fakes.connectwise import FakeClock, FakeConnectWise
from tests.fakes.connectwise_conditions import (
    ConditionError,
    compile_conditions,
    parse_conditions,
    sort_records,
)
from tests.fakes.connectwise_index import SortedIndex

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _stamp(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


_ODD_STAMPS = ("2026-01-05T12:00:03.500Z", "2026-01-05T13:00:03+01:00", "not a date", None)


@st.composite
def _records(draw: Any) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 40))
    ids = draw(st.lists(st.integers(1, 500), min_size=n, max_size=n, unique=True))
    odd = draw(st.booleans())
    out = []
    for tid in ids:
        stamp: Any = _stamp(draw(st.integers(0, 12)))  # few seconds: many ties on lastUpdated
        if odd and draw(st.integers(0, 9)) == 0:
            stamp = draw(st.sampled_from(_ODD_STAMPS))
        out.append({"id": tid, "summary": draw(st.sampled_from(["Printer", "VPN", "printer jam"])),
                    "closedFlag": draw(st.booleans()), "_info": {"lastUpdated": stamp}})
    return out


def _when(seconds: int, micro: bool) -> datetime:
    return T0 + timedelta(seconds=seconds, microseconds=500_000 if micro else 0)


@st.composite
def _conditions(draw: Any) -> str | None:
    """What ConnectWiseConnector sends (keyset with or without a since bound), and shapes around it."""
    naive, micro = draw(st.booleans()), draw(st.integers(0, 7)) == 0
    t, k = _when(draw(st.integers(-1, 13)), micro), draw(st.integers(0, 501))
    since = cond("lastUpdated", draw(st.sampled_from([">=", ">"])), _when(draw(st.integers(-1, 13)), micro),
                 naive=naive)
    tie_op = draw(st.sampled_from([">", ">="]))
    keyset = or_(cond("lastUpdated", ">", t, naive=naive),
                 and_(cond("lastUpdated", "=", t, naive=naive), cond("id", tie_op, k)))
    swapped = f"(lastUpdated=[{t:%Y-%m-%dT%H:%M:%S}Z] and id>{k}) or _info/LastUpdated>[{t:%Y-%m-%dT%H:%M:%S}Z]"
    extra = draw(st.sampled_from(["closedFlag=false", 'summary contains "print"', "id < 250", "id > 100",
                                  "not closedFlag=true", "id in (3, 50, 120)", "id != 7"]))
    shape = draw(st.integers(0, 9))
    return [None, since, keyset, and_(since, keyset), and_(keyset, extra), and_(since, keyset, extra),
            swapped, or_(since, extra), f"id >= {k}", f"id > {k}.0"][shape]


def _expected(records: list[dict[str, Any]], conditions: str | None, order: str) -> Any:
    try:
        pred = compile_conditions(conditions)
        return sort_records([r for r in records if pred(r)], order)
    except ConditionError as exc:
        return type(exc)


def _indexed(records: list[dict[str, Any]], conditions: str | None, order: str) -> Any:
    try:
        return SortedIndex(records, order).select(parse_conditions(conditions))
    except ConditionError as exc:
        return type(exc)


@settings(max_examples=400, deadline=None)
@given(_records(), _conditions(), st.sampled_from([TICKET_ORDER, "id asc", "lastUpdated asc, id asc",
                                                   "_info/lastUpdated desc, id asc", "summary asc, id asc",
                                                   "id desc"]))
def test_the_index_answers_what_filter_then_sort_answers(records: list[dict[str, Any]], conditions: str | None,
                                                         order: str) -> None:
    assert _indexed(records, conditions, order) == _expected(records, conditions, order)


def test_a_keyset_page_is_a_range_seek_not_a_scan() -> None:
    records = [{"id": i, "_info": {"lastUpdated": _stamp(i // 3)}} for i in range(1, 3001)]
    index = SortedIndex(records, TICKET_ORDER)
    t = T0 + timedelta(seconds=500)
    node = parse_conditions(and_(cond("lastUpdated", ">=", T0 + timedelta(seconds=10)),
                                 or_(cond("lastUpdated", ">", t),
                                     and_(cond("lastUpdated", "=", t), cond("id", ">", 1501)))))
    assert node is not None
    start, residual = index.plan(node)
    assert residual == []  # no predicate evaluated per record
    assert [r["id"] for r in index.rows[start:start + 3]] == [1502, 1503, 1504]
    # a condition the order cannot decide is evaluated, only from the seek position on
    start, residual = index.plan(parse_conditions(and_(cond("lastUpdated", ">", t), "closedFlag=false")))  # type: ignore[arg-type]
    assert (index.rows[start]["id"], len(residual)) == (1503, 1)


def test_a_record_with_an_odd_stamp_turns_the_index_off_for_that_column() -> None:
    records = [{"id": 1, "_info": {"lastUpdated": _stamp(5)}}, {"id": 2, "_info": {"lastUpdated": "2026-01-05T12:00:01.9Z"}}]
    index = SortedIndex(records, TICKET_ORDER)
    node = parse_conditions(cond("lastUpdated", ">", T0 + timedelta(seconds=1)))
    assert index.kinds == [] and index.plan(node) == (0, [node])  # type: ignore[arg-type]
    assert [r["id"] for r in index.select(node)] == [2, 1]


async def test_keyset_paging_over_http_sees_every_ticket_once_while_tickets_change() -> None:
    fake = FakeConnectWise(clock=FakeClock(T0, step=timedelta(seconds=0)))  # 0 s step: many equal stamps
    fake.bulk_tickets(120)
    fake.clock.advance(5)
    connector = ConnectWiseConnector(fake.config(page_size=25), transport=fake.transport())
    seen: list[str] = []
    cursor = None
    first = min(fake.tickets)
    while True:
        page = await connector.list_changed_tickets(None, cursor)
        seen += [t.external_id for t in page.items]
        if len(seen) == 50:
            fake.edit_ticket(first, summary="moved to the end")  # a new version: the index is rebuilt
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen[:-1]) == sorted(str(t) for t in fake.tickets)  # each once before the edit moved one
    assert seen[-1] == str(first) and seen.count(str(first)) == 2
