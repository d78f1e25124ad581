"""REST refusals speak REST: the endpoint or field to use, never a chat command or a channel (the service's hint is
chat's; the API words the refusals whose reason it knows itself: bot/api/problems.py API_HINTS)."""

from __future__ import annotations

import re

import pytest

from core.chat.text import error_view
from core.errors import DeskbridgeError
from core.ticket_lookup import not_found
from tests.bot.api.conftest import Api

CHAT_WORDS = re.compile(r"(?<![\w/])(?<!GET )(?<!PUT )(?<!POST )/(tickets?|deskbridge)\b|channel|card|button", re.IGNORECASE)


def _rest_hint(r) -> str:
    body = r.json()
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    assert body["hint"], body
    assert not CHAT_WORDS.search(body["hint"]), body["hint"]
    return str(body["hint"])


@pytest.mark.parametrize("ref", ["99999", "id:99999", "2147483648"])
async def test_a_missing_ticket_is_a_404_that_names_the_list_endpoint(api: Api, ref: str):
    r = await api.get(f"/tickets/{ref}")
    assert r.status_code == 404
    assert "GET /tickets" in _rest_hint(r)
    for write in (await api.put(f"/tickets/{ref}", {"priority": "high"}),
                  await api.post(f"/tickets/{ref}/comments", {"body": "hi", "visibility": "internal"})):
        assert write.status_code == 404 and "GET /tickets" in _rest_hint(write)


async def test_unknown_customer_and_technician_ids_name_the_endpoints_and_fields(api: Api):
    r = await api.post("/tickets", {"subject": "Printer jams", "customer_id": 999_999})
    assert r.status_code == 404
    hint = _rest_hint(r)
    assert "GET /customers" in hint and "customer_id" in hint
    ticket = await api.ticket()
    r = await api.put(f"/tickets/{ticket['number']}", {"assignee_id": 999_999})
    assert r.status_code == 404
    hint = _rest_hint(r)
    assert "GET /members" in hint and "assignee_id" in hint


async def test_chat_keeps_its_own_words_for_the_same_refusal():
    """The same error, shown in chat: the chat hint (core's words), so the translation lives in the API alone."""
    exc = not_found(99999)
    assert isinstance(exc, DeskbridgeError) and exc.reason == "ticket-not-found"
    view = error_view(exc)
    assert view.hint is not None and "/tickets" in view.hint and "GET /" not in view.hint


@pytest.mark.parametrize("query", ["priorty=high", "stage=open&custmer=ACME", "older=2d", "page=2"])
async def test_an_unknown_query_parameter_is_refused_not_ignored(api: Api, query: str):
    """A misspelt filter used to be ignored: the client got every ticket and took it for the filtered list."""
    await api.ticket()
    r = await api.get(f"/tickets?{query}")
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "query" and "is not a parameter of GET /tickets" in body["detail"]
    assert "priority" in body["hint"] and "customer" in body["hint"] and "cursor" in body["hint"]
    _rest_hint(r)
    assert (await api.get("/tickets?priority=high&stage=open")).status_code == 200  # known ones still work
    assert (await api.get("/customers?priorty=high")).status_code == 422  # every list endpoint


async def test_an_unknown_filter_value_reads_well(api: Api):
    r = await api.get("/tickets?assignee=nobody")
    assert r.status_code == 422 and r.json()["detail"] == "'nobody' is not an assignee."


@pytest.mark.parametrize("text", ["\u200b", "\u200b\u200d \ufeff", "\u2060\n\u00ad"])
async def test_text_of_invisible_characters_only_is_empty(api: Api, text: str):
    """A subject or a public reply of zero-width characters only (pasted from a chat or a web page) looks blank
    everywhere it is shown; it is refused as empty, and nothing is written."""
    r = await api.post("/tickets", {"subject": text})
    assert r.status_code == 422 and r.json()["detail"] == "The subject is empty." and r.json()["hint"]
    ticket = await api.ticket()
    r = await api.post(f"/tickets/{ticket['number']}/comments", {"body": text, "visibility": "public"})
    assert r.status_code == 422 and r.json()["detail"] == "The note is empty."
    page = (await api.get("/tickets?stage=all")).json()
    assert [t["id"] for t in page["items"]] == [ticket["id"]]
    assert (await api.post("/tickets", {"subject": "Printer\u200b jams"})).status_code == 201  # inside words: kept
