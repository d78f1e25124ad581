"""Control characters (BEL, ESC, backspace, DEL, C1) are not text anyone wrote on purpose: they come from pasted
terminal output, e-mail bodies and broken clients. No PSA documents accepting them (ConnectWise, Autotask and
HaloPSA store text for web pages and e-mail, where XML 1.0 forbids them and a reader sees nothing or a box), and a
customer must see exactly the words. So they are dropped everywhere; tabs and line breaks stay in bodies, and a
subject (a one-line field in every PSA) gets a space for a line break or tab. Emoji, accents, Markdown and < > &
are words and stay as written."""

from __future__ import annotations

import pytest

from tests.bot.api.conftest import Api

WORDS = "Café 🔥 *bold* _x_ `code` <b>&amp; ~strike~ > quote"


@pytest.mark.parametrize("raw, kept", [
    ("Printer\x07 jams", "Printer jams"),
    ("\x1b[31mDisk full\x1b[0m", "[31mDisk full[0m"),
    ("Back\x08space\x7f and\x85 C1\x9b", "Backspace and C1"),
    ("VPN down\r\nagain\tnow", "VPN down again now"),
    (WORDS, WORDS),
])
async def test_a_subject_keeps_the_words_and_loses_control_characters(api: Api, raw: str, kept: str):
    ticket = await api.ticket(subject=raw)
    assert ticket["subject"] == kept
    assert (await api.get(f"/tickets/{ticket['number']}")).json()["subject"] == kept


async def test_a_subject_of_control_characters_only_is_empty(api: Api):
    r = await api.post("/tickets", {"subject": "\x07\x1b\x7f\r\n"})
    assert r.status_code == 422 and r.json()["detail"] == "The subject is empty." and r.json()["hint"]


async def test_bodies_keep_lines_and_tabs_and_lose_control_characters(api: Api):
    ticket = await api.ticket(description="Line 1\x07\n\tLine 2\x00\r\nLine 3\x1b")
    detail = (await api.get(f"/tickets/{ticket['number']}")).json()
    assert detail["description"] == "Line 1\n\tLine 2\r\nLine 3"
    r = await api.post(f"/tickets/{ticket['number']}/comments",
                       {"body": f"Fixed\x07 it\n\n{WORDS}\x9b", "visibility": "public"})
    assert r.status_code == 201, r.text
    assert r.json()["body"] == f"Fixed it\n\n{WORDS}"
    r = await api.post(f"/tickets/{ticket['number']}/comments", {"body": "\x07\x08", "visibility": "public"})
    assert r.status_code == 422 and r.json()["detail"] == "The note is empty."
