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
