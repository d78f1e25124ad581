"""What a PSA note, subject or name says reaches a Teams card exactly as written. Teams reads a TextBlock's text as
Markdown (`**bold**`, `_italic_`, `[label](url)` links, `1.` lists) and the host turns `{{DATE(…)}}` into a date, so
a customer's `[Reset your password](http://evil.example)` became a live link on the technician's card and `*` or `_`
vanished. Text someone else wrote now goes in RichTextBlock TextRuns, which the Adaptive Card schema documents as
not read as Markdown; a text longer than the card holds says how much is not shown instead of being cut silently.

Through the real Teams surface (fake Bot Connector, card refresh invoke); the card is validated against the
Adaptive Card 1.5 schema."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bot.teams import cards
from store.db import Scope
from store.tables import Ticket
from tests.bot.teams.test_card_cache import add_note, histories_read, ticket_id  # noqa: F401 - fixture
from tests.bot.teams.test_commands import assert_valid_card, invoke

TRICKY = [
    "Please **reset** my _password_ * now *",
    "[Reset your password](http://evil.example/login) or <http://evil.example>",
    "<at>Alex Admin</at> <b>bold?</b> <script>alert(1)</script> &amp; &lt;",
    "1. first\n2. second\n- bullet\n# not a header",
    "Due {{DATE(2017-02-13T20:46:30Z, Long)}} at {{TIME(2017-02-13T20:00:00Z)}}",
    "back\\slash `code` ~~strike~~ | pipe | table |",
]


def blocks(node: Any) -> list[dict[str, Any]]:
    """Every TextBlock and RichTextBlock in a card, in order."""
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") in ("TextBlock", "RichTextBlock"):
            out.append(node)
        for v in node.values():
            out += blocks(v)
    elif isinstance(node, list):
        for v in node:
            out += blocks(v)
    return out


def shown(block: dict[str, Any]) -> str:
    if block["type"] == "TextBlock":
        return str(block["text"])
    return "".join(r["text"] for r in block["inlines"])


async def open_card(h, number: int) -> dict[str, Any]:
    _, resp = await invoke(h, {"action": "open", "ref": str(number)})
    assert resp.status_code == 200, resp.text
    card: dict[str, Any] = resp.json()["value"]
    assert_valid_card(card)
    return card


async def test_notes_subjects_and_names_show_exactly_as_written_never_as_markdown(teams):
    tid = await ticket_id(teams, 5001)
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:
        await s.execute(sa.update(Ticket).where(Ticket.id == tid).values(
            subject="VPN *down* for [everyone](http://x.example)", description="_Since_ 9:00 **today**"))
    for text in TRICKY:
        await add_note(teams, 5001, "note_public", text)
    card = await open_card(teams, 5001)
    found = blocks(card)
    rich = [shown(b) for b in found if b["type"] == "RichTextBlock"]
    for text in TRICKY:
        assert text in rich, f"{text!r} not shown exactly: {rich}"
    assert "#5001 VPN *down* for [everyone](http://x.example)" in rich
    assert "_Since_ 9:00 **today**" in rich
    # no TextBlock (read as Markdown) carries any of their words
    markdown_read = " ".join(shown(b) for b in found if b["type"] == "TextBlock")
    for word in ("evil.example", "password", "Alex Admin", "DATE(", "everyone", "Since", "first"):
        assert word not in markdown_read, word
    # no link the author did not write: nothing in the card opens their URLs, no mention entities
    dumped = str(card)
    assert "'url': 'http://evil.example" not in dumped and "mention" not in dumped
    # the host's date function cannot match: every "{{" is split across two runs
    runs = [r["text"] for b in found if b["type"] == "RichTextBlock" for r in b["inlines"]]
    assert not any("{{" in r for r in runs)


async def test_a_long_note_says_how_much_is_not_on_the_card(teams):
    line = "word " * 80  # 400 characters, a long line without a break
    long = "\n".join(f"{i:02d} {line}" for i in range(10))  # ~4,000 characters
    await add_note(teams, 5001, "note_public", long)
    card = await open_card(teams, 5001)
    found = blocks(card)
    texts = [shown(b) for b in found]
    first = next(t for t in texts if t.startswith("00 word"))
    assert first.endswith(" …") and len(first) <= cards.NOTE_CHARS + 2
    assert long.startswith(first[:-2])  # the beginning exactly as written, cut at a line end
    rest = len(long[len(first) - 2:].strip())
    assert f"{rest:,} more characters are not shown on this card; the whole text is in the PSA." in texts


def test_a_long_single_line_is_cut_visibly_and_a_short_one_untouched() -> None:
    text = "x" * 5000
    parts = cards._plain_cut(text, cards.NOTE_CHARS)
    assert shown(parts[0]) == "x" * cards.NOTE_CHARS + " …"
    assert shown(parts[1]).startswith("3,500 more characters")
    assert [shown(p) for p in cards._plain_cut("short *one*", cards.NOTE_CHARS)] == ["short *one*"]
    assert cards._plain("{{a{{")["inlines"] == [{"type": "TextRun", "text": "{"}, {"type": "TextRun", "text": "{a{"},
                                              {"type": "TextRun", "text": "{"}]


async def test_the_text_beside_a_ticket_card_is_plain(teams):
    """Teams shows an activity's text with its card and reads it as Markdown unless told it is plain: the subject
    there must not become a link either."""
    tid = await ticket_id(teams, 5001)
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:
        await s.execute(sa.update(Ticket).where(Ticket.id == tid).values(subject="[Login](http://evil.example) *now*"))
    await teams.say("ticket 5001")
    [post] = [c for c in teams.fake.of("create") if c.body.get("attachments")][-1:]
    assert post.body["text"] == "#5001 [Login](http://evil.example) *now*"
    assert post.body.get("textFormat") == "plain", post.body.get("textFormat")


async def test_a_held_cards_notification_text_is_still_its_subject(teams):
    """The text beside a card updated after a hold (bot/teams/hold.py) is the card's first line: the subject, now
    a RichTextBlock, not the first of our own TextBlocks further down."""
    from bot.teams import hold
    from core.context import Actor

    view = await teams.c.chat_views.ticket(Actor.system(teams.ws), "5001")
    assert hold._fallback(cards.ticket_card(view)) == f"#5001 {view.summary.subject}"


def test_a_customer_is_not_sent_to_a_psa_they_cannot_open() -> None:
    tech = cards._plain_cut("y" * 2000, cards.NOTE_CHARS)
    customer = cards._plain_cut("y" * 2000, cards.NOTE_CHARS, customer=True)
    assert "the whole text is in the PSA" in shown(tech[1])
    assert "PSA" not in shown(customer[1]) and "ask us in this ticket's replies" in shown(customer[1])
