"""RFC 9457 problem documents, the request size limit and per-key rate limiting."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.api.portal.limits import RateLimiter
from tests.bot.api.conftest import PREFIX, Api, assert_problem, make_api


async def test_problem_shape_and_media_type(api: Api):
    r = await api.get("/tickets/123")
    body = assert_problem(r, 404, kind="not-found")
    assert body["instance"] == f"{PREFIX}/tickets/123"
    assert set(body) <= {"type", "title", "status", "detail", "instance", "hint", "field", "suggestions", "errors",
                         "retry_after"}


async def test_unknown_route_and_method_under_the_prefix_are_problems(api: Api):
    assert_problem(await api.get("/nope"), 404)
    r = await api.client.delete(PREFIX + "/tickets/1", headers=api.auth())
    assert_problem(r, 405)


async def test_routes_outside_the_api_keep_their_own_error_bodies(api: Api):
    r = await api.client.get("/definitely-not-here")
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert r.json() == {"detail": "Not Found"}


async def test_body_over_the_limit_is_413(api: Api):
    big = {"subject": "x", "description": "y" * 1_100_000}
    body = assert_problem(await api.post("/tickets", big), 413)
    assert "1,048,576" in body["detail"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the bytes are counted as they arrive
        yield b'{"subject": "x", "description": "'
        for _ in range(20):
            yield b"z" * 60_000
        yield b'"}'

    r = await api.client.post(PREFIX + "/tickets", content=chunks(), headers={
        **api.auth(), "content-type": "application/json"})
    assert_problem(r, 413)
    assert (await api.get("/tickets?total=true")).json()["total"] == 0
    # Just under the limit is fine (the service then applies its own field limits).
    ok = await api.post("/tickets", {"subject": "x", "description": "y" * 90_000})
    assert ok.status_code == 201


@pytest.fixture
async def limited(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    made, _ = await make_api(db_url, tmp_path, api_rate_per_second=0.05, api_rate_burst=3)  # no refill within a slow machine's 4 requests
    try:
        yield made
    finally:
        await made.client.aclose()
        await made.container.aclose()


async def test_rate_limit_is_per_key_with_retry_after(limited: Api):
    codes = [(await limited.get("/tickets", "read")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = await limited.get("/tickets", "read")
    body = assert_problem(r, 429)
    assert int(r.headers["retry-after"]) >= 1 and body["retry_after"] == int(r.headers["retry-after"])
    assert (await limited.get("/tickets", "write")).status_code == 200  # another key has its own bucket


def test_token_bucket_refills_at_the_rate():
    now = [0.0]
    rl = RateLimiter(2.0, 2, clock=lambda: now[0])
    assert [rl.take("k"), rl.take("k")] == [0.0, 0.0]
    assert rl.take("k") == pytest.approx(0.5)
    now[0] += 0.5
    assert rl.take("k") == 0.0
    assert rl.take("k") > 0
    now[0] += 10
    assert [rl.take("k"), rl.take("k"), rl.take("k") > 0] == [0.0, 0.0, True]  # capped at the burst
    with pytest.raises(ValueError):
        RateLimiter(0, 1)


async def test_openapi_documents_routes_examples_and_problems(api: Api):
    spec = (await api.client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path, methods in {"/tickets": {"get", "post"}, "/tickets/{ticketId}": {"get", "put"},
                          "/tickets/{ticketId}/comments": {"post"}, "/customers": {"get"}, "/members": {"get"},
                          "/outbox": {"get"}, "/outbox/{opId}": {"get"}, "/outbox/{opId}/retry": {"post"},
                          "/outbox/{opId}/discard": {"post"}}.items():
        assert methods <= set(paths[PREFIX + path]), path
    create = paths[PREFIX + "/tickets"]["post"]
    assert "application/problem+json" in create["responses"]["422"]["content"]
    assert "application/problem+json" in create["responses"]["401"]["content"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    schemas = spec["components"]["schemas"]
    assert schemas["TicketCreate"]["examples"] and schemas["TicketOut"]["examples"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    docs = await api.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_unicode_digits_in_id_filters_are_filter_errors_not_crashes(api: Api):
    """'²'.isdigit() is True but int('²') raises: such filters must be an invalid-filter problem, not a 500."""
    for query in ("assignee=%C2%B2", "customer=%C2%B2", "assignee=%D9%A3"):
        assert_problem(await api.get(f"/tickets?{query}"), 422, kind="invalid-filter")
