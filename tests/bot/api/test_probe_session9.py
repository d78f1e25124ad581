"""Session 9 probes of /api/msp-portal/tickets as an integrator sees it (standalone desk: no PSA), each asserting what
the caller gets back: huge or nonsense page sizes and tampered cursors are a 422 that says what to send instead;
paging returns every ticket exactly once, also while tickets are being opened; Unicode subjects are found as typed
(composed or decomposed accents, emoji, right-to-left text); and a ticket's whole life (open, work, public and
internal comments, resolve, reopen, close) reads back exactly as written."""

from __future__ import annotations

import base64
import unicodedata
from urllib.parse import quote

import pytest

from tests.bot.api.conftest import Api


@pytest.mark.parametrize("limit", ["1000", "101", "0", "-1", "abc", "1e3", "99999999999999999999"])
async def test_a_page_size_out_of_range_names_the_range(api: Api, limit: str):
    r = await api.get(f"/tickets?limit={limit}")
    assert r.status_code == 422, (limit, r.status_code)
    body = r.json()
    words = (body.get("detail", "") + " " + str(body.get("hint", "")) + " " + str(body.get("errors", ""))).lower()
    assert "limit" in words and "from 1 to 100" in words and "next_cursor" in words, body


@pytest.mark.parametrize("cursor", [
    "garbage", "%25%25%25", base64.urlsafe_b64encode(b'{"v":1,"id":"x"}').decode(), "A" * 1999,
    base64.urlsafe_b64encode(b"\x00\xff" * 30).decode(), quote("🔥" * 10), "e30",
])
async def test_a_tampered_cursor_says_to_start_again(api: Api, cursor: str):
    await api.ticket()
    r = await api.get(f"/tickets?stage=all&cursor={cursor}")
    assert r.status_code == 422, (cursor, r.status_code, r.text[:200])
    assert r.json().get("hint"), r.text


async def test_a_cursor_of_another_sort_is_refused_not_misread(api: Api):
    for i in range(4):
        await api.ticket(f"T{i}")
    first = (await api.get("/tickets?stage=all&limit=2&sort=newest")).json()
    assert first["next_cursor"]
    r = await api.get(f"/tickets?stage=all&limit=2&sort=priority&cursor={quote(first['next_cursor'])}")
    if r.status_code == 200:  # accepted only if it pages the same list: never a skipped or repeated ticket
        seen = [t["subject"] for t in first["items"]] + [t["subject"] for t in r.json()["items"]]
        assert len(seen) == len(set(seen)), seen
    else:
        assert r.status_code == 422 and r.json().get("hint"), r.text


async def test_paging_returns_every_ticket_once_while_tickets_are_opened(api: Api):
    made = {(await api.ticket(f"Ticket {i:02d}"))["id"] for i in range(23)}
    seen: list[int] = []
    cursor = None
    for page in range(20):
        url = "/tickets?stage=all&limit=5" + (f"&cursor={quote(cursor)}" if cursor else "")
        r = await api.get(url)
        assert r.status_code == 200, r.text
        seen += [t["id"] for t in r.json()["items"]]
        if page == 1:  # a new ticket arrives while the caller pages (oldest first: it comes at the end)
            made.add((await api.ticket("Arrived while paging"))["id"])
        cursor = r.json().get("next_cursor")
        if not cursor:
            break
    assert len(seen) == len(set(seen)), "a ticket came twice"
    assert set(seen) == made, "a ticket was skipped"


@pytest.mark.parametrize(("subject", "query"), [
    ("Café printer ☕ jammed", "Café"),
    ("Café printer ☕ jammed", unicodedata.normalize("NFD", "Café")),  # typed with a combining accent
    (unicodedata.normalize("NFD", "Résumé upload fails"), "Résumé"),
    ("שרת הדפסה לא עובד", "הדפסה"),
    ("🔥 Server room hot 🔥", "🔥"),
    ("Zürich office VPN", "zürich"),
    ("École fermée: imprimante", "ÉCOLE"),  # SQLite's own lower() folds A-Z only
    ("ÉCOLE primaire wifi", "école"),
    ("Принтер не печатает", "ПРИНТЕР"),
])
async def test_unicode_subjects_are_found_as_typed(api: Api, subject: str, query: str):
    made = await api.ticket(subject)
    assert made["subject"] == subject  # stored exactly as written; the search looks for both Unicode forms
    r = await api.get(f"/tickets?stage=all&q={quote(query)}")
    assert r.status_code == 200, r.text
    assert [t["id"] for t in r.json()["items"]] == [made["id"]], (subject, query, r.json()["items"])


async def test_a_standalone_ticket_lifecycle_reads_back_exactly(api: Api):
    text = "Line one *as typed*\n\n<b>not html</b> & [x](http://y) {{DATE(2017-02-13T20:46:30Z)}}\n    indented"
    t = await api.ticket("Laptop won't boot", description=text, priority="high")
    ref = f"id:{t['id']}"
    assert t["stage"] == "new" and t["priority"] == "high"
    r = await api.get(f"/tickets/{ref}")
    assert r.json()["description"] == text
    steps = [({"status": "in progress"}, "in_progress"), ({"status": "waiting on customer"}, "waiting"),
             ({"status": "resolved"}, "resolved"), ({"status": "in progress"}, "in_progress"),
             ({"status": "closed"}, "closed")]
    r = await api.post(f"/tickets/{ref}/comments", {"body": "Public: we are on it 🙂", "visibility": "public"})
    assert r.status_code == 201, r.text
    r = await api.post(f"/tickets/{ref}/comments", {"body": "internal: BIOS pw is in the vault", "visibility": "internal"})
    assert r.status_code == 201, r.text
    for change, stage in steps:
        r = await api.put(f"/tickets/{ref}", change)
        assert r.status_code == 200, (change, r.text)
        assert r.json()["stage"] == stage, (change, r.json()["stage"])
    got = (await api.get(f"/tickets/{ref}")).json()
    comments = {c["body"]: c["visibility"] for c in got["comments"]}
    assert comments == {"Public: we are on it 🙂": "public", "internal: BIOS pw is in the vault": "internal"}
    # a comment on a closed ticket: refused with a next step, or accepted, never lost silently
    r = await api.post(f"/tickets/{ref}/comments", {"body": "After close", "visibility": "public"})
    if r.status_code == 201:
        got = (await api.get(f"/tickets/{ref}")).json()
        assert "After close" in [c["body"] for c in got["comments"]]
    else:
        assert r.status_code in (409, 422) and r.json().get("hint"), r.text


@pytest.mark.parametrize("body", ["", " ", "\u200b\u200b", "\x00", "x" * 30_001])
async def test_an_empty_or_oversized_comment_is_refused_with_what_to_do(api: Api, body: str):
    t = await api.ticket()
    r = await api.post(f"/tickets/id:{t['id']}/comments", {"body": body, "visibility": "public"})
    assert r.status_code == 422, (repr(body[:10]), r.status_code, r.text[:200])
    j = r.json()
    assert j.get("hint") or j.get("errors"), j
    got = (await api.get(f"/tickets/id:{t['id']}")).json()
    assert got["comments"] == []
