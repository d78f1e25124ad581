"""No input makes the API answer 5xx: a property test over every query parameter of GET /tickets and over
hand-made page cursors (any JSON a client could base64 into one). Every refusal is a 4xx problem document with
a hint. In-process (ASGI) on the real app and database; bounded to a few hundred cases."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bot.api.conftest import PREFIX, Api, make_api

PARAMS = ["stage", "status", "customer", "assignee", "priority", "age", "q", "sort", "limit", "cursor", "total"]
# Characters that trip parsers: digits int() refuses (², ①), other scripts' digits, signs, NUL, separators.
TRICKY = "0123456789²³①٣۵०#<>+-_,.: \x00\u00a0\u2028%\\'\"wdhmabcdefghijklmnopqrstuvwxyzé𝟘"
text = st.text(alphabet=st.sampled_from(TRICKY), max_size=12) | st.text(max_size=12)


def _cursor(raw: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


scalars = (st.integers(min_value=-(10**25), max_value=10**25) | st.floats(allow_nan=False, allow_infinity=False)
           | st.booleans() | st.none() | text
           | st.datetimes().map(datetime.isoformat)
           | st.datetimes(timezones=st.timezones()).map(datetime.isoformat))
cursors = (st.lists(scalars, max_size=4).map(lambda v: _cursor(v))
           | st.tuples(st.sampled_from(["oldest", "newest", "priority", "updated"]),
                       st.lists(scalars, min_size=1, max_size=3)).map(lambda t: _cursor([t[0], *t[1]]))
           | text)


@pytest.fixture
def loop_and_api(db_url: str, tmp_path: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, Api]]:
    loop = asyncio.new_event_loop()
    api, _ = loop.run_until_complete(make_api(db_url, tmp_path))

    async def seed() -> None:
        for i in range(3):
            await api.ticket(f"Seed {i}")

    loop.run_until_complete(seed())
    try:
        yield loop, api
    finally:
        loop.run_until_complete(api.client.aclose())
        loop.run_until_complete(api.container.aclose())
        loop.close()


def _check(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json"), r.text
        assert r.json()["hint"], r.text


@pytest.mark.slow
def test_no_query_string_or_cursor_makes_a_5xx(loop_and_api: tuple[asyncio.AbstractEventLoop, Api]):
    loop, api = loop_and_api
    headers = api.auth("read")

    @given(query=st.lists(st.tuples(st.sampled_from(PARAMS), text), max_size=4))
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def any_query(query: list[tuple[str, str]]) -> None:
        _check(loop.run_until_complete(api.client.get(PREFIX + "/tickets", params=query, headers=headers)))

    @given(cursor=cursors, sort=st.sampled_from(["oldest", "newest", "priority", "updated"]))
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def any_cursor(cursor: str, sort: str) -> None:
        r = loop.run_until_complete(api.client.get(PREFIX + "/tickets", params={"cursor": cursor, "sort": sort},
                                                   headers=headers))
        _check(r)

    any_query()
    any_cursor()


async def test_the_inputs_that_used_to_crash_are_4xx(api: Api):
    for q in ("²", "#²", "①", "#" + "9" * 30):
        r = await api.get("/tickets", params={"q": q})
        assert r.status_code == 200, (q, r.text)  # free text that matches nothing, not a number
    naive = _cursor(["oldest", (datetime(2026, 1, 1)).isoformat(), 1])
    huge = _cursor(["oldest", "2026-01-01T00:00:00+00:00", 10**19])
    for cursor in (naive, huge):
        r = await api.get("/tickets", params={"cursor": cursor})
        assert r.status_code == 422 and r.json()["hint"] == "Start again from the first page.", r.text
    far = await api.get("/tickets", params={"age": ">999999w"})  # older than the calendar: refused, not a crash
    assert far.status_code == 422 and far.json()["hint"], far.text


async def test_cursor_instants_at_the_edges_of_the_calendar(api: Api):
    for when in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+00:00"):
        r = await api.get("/tickets", params={"cursor": _cursor(["oldest", when, 1])})
        assert r.status_code in (200, 422), (when, r.text)
