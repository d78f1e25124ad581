"""The queue page's blocks (bot/slack/blocks.py `queue_blocks`): each row's Open button is written out inline (issue
20 item 4); it must stay the button the shared helper makes for the same action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.slack import blocks as bk
from core.views import QueueView, TicketSummary, ViewAction
from store.enums import Priority, Stage

NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def _row(i: int, **kw: object) -> TicketSummary:
    base = dict(id=i, number=5000 + i, subject=f"Printer <{i}> & co", customer_id=1, customer_name="Acme",
                priority=Priority.HIGH, stage=Stage.NEW, status_name="New", assignee_id=1, assignee_name="Ana",
                created_at=NOW - timedelta(hours=i), updated_at=NOW, sla_remaining_s=3600.0 - 4000 * i)
    return TicketSummary(**{**base, **kw})  # type: ignore[arg-type]


def test_each_rows_open_button_is_the_helpers_button():
    rows = (_row(1), _row(2, number=None, psa_name="cw-77"), _row(3, number=None), _row(4, sla_remaining_s=None))
    view = QueueView(title="Tickets", rows=rows, now=NOW, filters_text="mine", total=4)
    sections = [b for b in bk.queue_blocks(view) if b["type"] == "section"]
    assert [s["accessory"] for s in sections] == [bk._button(ViewAction(action="open", label="Open", value=r.ref))
                                                  for r in rows]
    assert [s["accessory"]["value"] for s in sections] == ["5001", "cw-77", "id:3", "5004"]
    assert sections[0]["text"]["text"].startswith("*#5001* Printer &lt;1&gt; &amp; co\n")
