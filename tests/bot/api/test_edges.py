"""Smaller edges of the REST API: 405 names every method of a path, an unreadable body is a documented problem,
failed authentications have a per-address budget, revocation reaches every instance within the documented
5 s, the docs page needs no CDN, and hints name API calls."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

from bot.main import build
from core.apikeys import AUTH_CACHE_TTL
from tests.bot.api.conftest import PREFIX, Api, api_settings, assert_problem


async def test_405_allow_names_every_method_of_the_path(api: Api):
    r = await api.client.delete(PREFIX + "/tickets", headers=api.auth())
    assert_problem(r, 405)
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "POST"}
    r = await api.client.patch(PREFIX + "/tickets/1", headers=api.auth())
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "PUT"}
    assert "PUT" in r.json()["hint"]


async def test_an_unreadable_body_is_a_documented_problem(api: Api):
    r = await api.client.post(PREFIX + "/tickets", content=b'{"subject": ', headers={
        **api.auth(), "content-type": "application/json"})
    assert r.status_code in (400, 422)
    assert_problem(r, r.status_code)
    doc = (await api.client.get("/openapi.json")).json()
    assert str(r.status_code) in doc["paths"][PREFIX + "/tickets"]["post"]["responses"]
    subject = doc["components"]["schemas"]["TicketCreate"]["properties"]["subject"]
    assert subject["maxLength"] == 255 and "ConnectWise 100" in subject["description"]


async def test_failed_authentications_have_a_budget_per_address(api: Api):
    good = await api.get("/tickets")  # a key this instance has verified keeps working
    assert good.status_code == 200
    codes = []
    for i in range(25):
        r = await api.client.get(PREFIX + "/tickets", headers={"Authorization": f"Bearer dbk_{i:012x}_{'x' * 43}"})
        codes.append(r.status_code)
    assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}
    limited = assert_problem(r, 429)
    assert int(r.headers["retry-after"]) >= 1 and "failed authentications" in limited["detail"]
    assert (await api.get("/tickets")).status_code == 200


async def test_revoke_reaches_every_instance_within_the_cache_ttl(api: Api, db_url: str, tmp_path: Path):
    assert AUTH_CACHE_TTL == timedelta(seconds=5)  # what the README promises
    api.container.apikeys._ttl = timedelta(seconds=0.3)
    assert (await api.get("/tickets")).status_code == 200
    other = build(api_settings(db_url, tmp_path / "b"))  # another instance (or the CLI) revokes
    try:
        await other.apikeys.revoke(api.ws, "read-key")
    finally:
        await other.aclose()
    await asyncio.sleep(0.35)
    assert_problem(await api.get("/tickets"), 401)


async def test_docs_need_no_cdn(api: Api):
    page = await api.client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls and not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
    for u in urls:
        assert (await api.client.get(u)).status_code == 200, u


async def test_hints_name_api_calls(api: Api):
    body = assert_problem(await api.post("/tickets", {"subject": "x", "customer_id": 424242}), 404)
    assert "GET /customers" in body["hint"]


async def test_filter_words_are_the_chat_words_and_documented(api: Api):
    await api.ticket("Urgent one", priority="critical")
    params = {p["name"]: p.get("description", "") for p in
              (await api.client.get("/openapi.json")).json()["paths"][PREFIX + "/tickets"]["get"]["parameters"]}
    assert "p1" in params["priority"] and "urgent" in params["priority"]
    assert "pending" in params["stage"] and ">1w2d" in params["age"]
    for query in ("priority=p1", "priority=urgent", "stage=pending,new", "age=<1w2d", "stage=waiting_on_customer"):
        r = await api.get(f"/tickets?{query}")
        assert r.status_code == 200, (query, r.text)
    assert [t["subject"] for t in (await api.get("/tickets?priority=p1")).json()["items"]] == ["Urgent one"]
