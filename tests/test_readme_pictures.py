"""The README's Slack and Teams pictures come from the real card builders and cannot drift from them silently
(scripts/readme_pictures.py); none of these tests needs a browser."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from bot.slack import blocks as bk
from bot.teams import cards
from core.views import (
    ExternalLink,
    FormField,
    FormView,
    MessageView,
    QueueView,
    SlaWarningView,
    TicketView,
    ViewAction,
)
from scripts import readme_pictures as rp
from scripts.blockkit_html import BLOCKS, ELEMENTS, EMOJI, Unsupported, message_html, mrkdwn, types_in
from scripts.view_codec import decode, encode

ROOT = Path(__file__).resolve().parents[1]
PICTURES = ROOT / "docs" / "pictures"
REGENERATE = ("the card builders changed, so the README pictures are stale: run `.venv/bin/python "
              "scripts/readme_pictures.py --from-data` (same ticket; needs node, npm and chromium, see the script) "
              "and commit docs/pictures/")
# Types only modals and App Home use: never part of a message card, so not drawn.
NOT_IN_MESSAGES = {"modal", "home", "input", "plain_text_input", "static_select", "external_select", "checkboxes"}


def _kept(name: str) -> object:
    return json.loads((PICTURES / f"{name}.json").read_text())


def _rich(view: TicketView) -> TicketView:
    """The kept view with every optional part of a ticket card switched on."""
    detail = dataclasses.replace(view.detail, dead_writes=2, contact_name="Rosa <Jensen> & co")
    link = ExternalLink(kind="device", label="Device", ref="LAPTOP-17", url="https://rmm.example.com/d/17")
    return dataclasses.replace(view, detail=detail, notice="Queued: reply (public).", links=(*view.links, link),
                               status_history=view.time_entries, conversation=view.conversation * 4)


def test_the_kept_card_json_is_what_todays_builders_return_for_the_kept_view() -> None:
    view = rp.kept_view()
    assert rp.slack_json(view) == _kept("slack-ticket"), REGENERATE
    assert rp.teams_json(view) == _kept("teams-ticket"), REGENERATE
    assert rp.slack_json(view) == bk.ticket_blocks(view) and rp.teams_json(view) == cards.ticket_card(view)


def test_the_teams_page_hands_the_renderer_exactly_the_builders_card() -> None:
    view = rp.kept_view()
    page = rp.teams_page(view, renderer_js="/* renderer */")
    embedded = re.search(r'<script type="application/json" id="card-json">(.*?)</script>', page, re.S)
    assert embedded is not None and json.loads(embedded.group(1)) == cards.ticket_card(view)
    host = json.loads((rp.HERE / "teams-host-config.json").read_text())
    assert host["actions"]["maxActions"] >= cards.MAX_ACTIONS  # the renderer would drop buttons Teams shows


def test_the_slack_page_draws_the_builders_blocks_in_order() -> None:
    view = rp.kept_view()
    page = rp.slack_page(view)
    assert message_html(bk.ticket_blocks(view)) in page
    drawn = re.findall(r'<div class="b-(\w+)"', page)
    assert drawn == [b["type"] for b in bk.ticket_blocks(view)]
    buttons = re.findall(r'<span class="btn (\w+)">([^<]*)</span>', page)
    assert [label for _, label in buttons] == [a.label for a in view.actions]
    assert f"{view.summary.display_number} {view.summary.subject}" in page


def test_the_slack_drawing_covers_every_block_and_element_the_slack_cards_emit() -> None:
    view = _rich(rp.kept_view())
    q = QueueView(title="Tickets", rows=(view.summary,) * 3, now=view.now, filters_text="mine",
                  scope_note="Customer channel: Hooli", next_cursor="abc", total=40)
    sla = SlaWarningView(ticket_number=1296, subject="Laptop", customer_name="Hooli", priority="high",
                         metric="resolution", threshold=100, remaining_s=-60, due_at=view.now,
                         psa_url="https://psa.example.com/t/1296")
    outputs = [bk.ticket_blocks(view), bk.queue_blocks(q), bk.queue_blocks(dataclasses.replace(q, rows=())),
               bk.sla_blocks(sla), bk.psa_note_blocks("Ana", "internal", "*done*"), bk.home_view(q)["blocks"],
               bk.message_blocks(MessageView(text="Nope", kind="error", lines=("a",), hint="try", suggestions=("x",)))]
    seen: set[tuple[str, str]] = set()
    for blocks in outputs:
        message_html(blocks)  # raises Unsupported for anything it cannot draw
        seen |= types_in(blocks)
    assert {t for kind, t in seen if kind == "block"} >= {"header", "section", "context", "divider", "actions"}
    assert {t for kind, t in seen if kind == "element"} >= {"button", "mrkdwn", "plain_text"}
    # And every type literal any Slack code writes is either drawn or belongs only to modals / App Home.
    literals = set()
    for path in (ROOT / "bot" / "slack").rglob("*.py"):
        literals |= set(re.findall(r'"type": "([a-z_]+)"', path.read_text()))
    assert literals - BLOCKS - ELEMENTS - NOT_IN_MESSAGES == set(), "teach scripts/blockkit_html.py the new type"


def test_an_unknown_block_or_element_fails_the_picture_instead_of_vanishing() -> None:
    with pytest.raises(Unsupported, match="rich_text"):
        message_html([{"type": "rich_text", "elements": []}])
    with pytest.raises(Unsupported, match="overflow"):
        message_html([{"type": "actions", "elements": [{"type": "overflow", "options": []}]}])


def test_mrkdwn_is_drawn_as_slack_draws_it() -> None:
    assert mrkdwn("*Customer*\nHooli &amp; Co &lt;b&gt;") == "<b>Customer</b><br>Hooli &amp; Co &lt;b&gt;"
    assert mrkdwn("_queued_ · ~old~ · `outbox`") == "<i>queued</i> · <s>old</s> · <code>outbox</code>"
    assert mrkdwn("<https://psa.example.com/t?a=1&amp;b=2|#1296> by <@U123|ana>") == (
        '<a href="https://psa.example.com/t?a=1&amp;b=2">#1296</a> by <span class="mention">@ana</span>')
    assert mrkdwn(":rotating_light: exceeded by 2h :unknown_thing:") == "🚨 exceeded by 2h :unknown_thing:"
    assert mrkdwn("snake_case_name and 2*3*4") == "snake_case_name and 2*3*4"  # no formatting inside words
    assert mrkdwn("```a *not bold*\n<x>```") == "<pre>a *not bold*\n&lt;x&gt;</pre>"
    assert mrkdwn("*<https://x.example|bold link>*") == '<b><a href="https://x.example">bold link</a></b>'


def test_every_emoji_the_slack_surface_writes_is_drawn() -> None:
    used = set()
    for path in (ROOT / "bot" / "slack").rglob("*.py"):
        # not a key like f"slack:{channel}:cmd:{id}" (a placeholder before the colon is no emoji)
        used |= set(re.findall(r"(?<![\w/}]):([a-z0-9_]+):", path.read_text()))
    assert {"rotating_light", "lock", "speech_balloon"} <= used  # the scan finds them
    assert used - set(EMOJI) == set()


def test_a_kept_view_that_no_longer_fits_the_views_says_how_to_redraw(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    data = json.loads((PICTURES / "ticket-view.json").read_text())
    del data["detail"]["summary"]["subject"]  # as if core.views had gained a required field
    (tmp_path / "ticket-view.json").write_text(json.dumps(data))
    monkeypatch.setattr(rp, "OUT", tmp_path)
    with pytest.raises(ValueError, match=r"no longer fits core.views .*scripts/readme_pictures.py"):
        rp.kept_view()


def test_the_view_codec_round_trips_and_refuses_unknown_fields() -> None:
    view = _rich(rp.kept_view())
    assert decode(TicketView, json.loads(json.dumps(encode(view)))) == view
    form = FormView(form="reply", title="Reply", submit_label="Send", ticket_ref="1296",
                    fields=(FormField(name="text", label="Text", kind="textarea", required=True),))
    assert decode(FormView, encode(form)) == form
    data = encode(view)
    data["detail"]["summary"]["colour"] = "red"
    with pytest.raises(ValueError, match="colour"):
        decode(TicketView, data)


def test_the_readme_shows_both_pictures_on_its_first_screen() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- pictures:start -->", 1)[1].split("<!-- pictures:end -->", 1)[0]
    assert readme.index("<!-- pictures:start -->") < readme.index("## Quick start")
    for name in ("slack-ticket", "teams-ticket"):
        assert f"docs/pictures/{name}.png" in block
        png = (PICTURES / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert 1000 <= width <= 1600 and 600 <= height <= 2400, (name, width, height)  # 2x of a ~680 px post


def test_without_chromium_the_script_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DESKBRIDGE_CHROMIUM", raising=False)
    monkeypatch.setattr(rp.shutil, "which", lambda _name: None)
    with pytest.raises(SystemExit, match="apt-get install -y chromium"):
        rp.chromium()


@pytest.mark.slow
async def test_the_script_picks_a_believable_ticket_from_a_fresh_desk() -> None:
    view = await rp.pick_view()
    assert view.summary.assignee_name and view.summary.stage.is_open
    assert 3 <= len(view.conversation) <= 5 and (view.sla_remaining_s or 0) > 3600
    assert any(a.action == "reply" for a in view.actions)
    assert decode(TicketView, json.loads(json.dumps(encode(view)))) == view
    message_html(bk.ticket_blocks(view))
    assert view.now - view.summary.created_at < timedelta(days=60)


def test_view_actions_keep_their_labels_in_both_pictures() -> None:
    view = rp.kept_view()
    teams_titles = [a["title"] for a in cards.ticket_card(view).get("actions", [])]
    slack_labels = [b["text"]["text"] for b in bk.ticket_blocks(view)[-1]["elements"]]
    assert teams_titles and set(teams_titles) <= set(slack_labels)
    assert ViewAction(action="reply", label="Reply").label in slack_labels
