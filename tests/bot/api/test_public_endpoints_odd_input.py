"""The public endpoints that are not the REST API (PSA webhooks, alert intake) on the real app: odd path values
and bodies are refused with the endpoint's own error and a next step, never a 500."""

from __future__ import annotations

import pytest

from tests.bot.api.conftest import Api

ODD_IDS = ["99999999999999999999999", "9223372036854775808", "2147483648", "0", "-1", "abc", "1e3", "%C2%B2", "٣"]


@pytest.mark.parametrize("conn", ODD_IDS)
async def test_a_psa_webhook_to_an_odd_connection_id_is_a_404_with_a_hint(api: Api, conn: str):
    r = await api.client.post(f"/webhooks/{conn}/cw", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 404, r.text
    body = r.json()
    assert body["status"] == "error" and "not found" in body["error"] and body["hint"]


async def test_a_body_too_large_for_the_api_says_a_way_the_api_offers(api: Api):
    """The REST API has no attachment endpoint: the 413 says how long the text may be instead."""
    big = {"subject": "Big", "description": "x" * 1_100_000}
    for send in (lambda: api.post("/tickets", big),
                 lambda: api.client.post("/api/msp-portal/tickets", content=b"{" + b" " * 1_100_000 + b"}",
                                         headers={**api.auth(), "content-type": "application/json"})):
        r = await send()
        assert r.status_code == 413, r.text
        hint = r.json()["hint"]
        assert "attachment" not in hint and "100,000 characters" in hint, hint
