"""What Teams tells an end user whose words were kept because no ticket could be opened for them (core's
`kept` outcome; the Slack path is driven end to end in tests/bot/slack/test_end_user_ticket_words.py)."""

from __future__ import annotations

from core.chat.text import over_limit_text


def test_kept_words_are_told_as_kept_not_as_a_limit():
    line = over_limit_text("kept", None, 0)
    assert "kept for a technician" in line and "last hour" not in line and "0 tickets" not in line
    assert "last hour" in over_limit_text("held", None, 5)
