"""A deeply nested JSON body at /api/messages (no token needed to send one) is refused, never a 500."""

from __future__ import annotations


async def test_deeply_nested_json_without_a_token_is_refused(teams):
    r = await teams.send(b"[" * 5000 + b"]" * 5000, token=None)
    assert r.status_code == 401, (r.status_code, r.text[:200])


async def test_deeply_nested_json_with_a_token_is_a_400(teams):
    body = teams.activity("tickets")
    token = teams.fake.sign(body)
    r = await teams.send(b"[" * 5000 + b"]" * 5000, token=token)
    assert r.status_code in (400, 401), (r.status_code, r.text[:200])
