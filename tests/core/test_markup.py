"""Chat markup becomes what a person reads before it reaches the PSA (issue 18 item 8)."""

from __future__ import annotations

import pytest

from core.markup import slack_plain, slack_user_ids, teams_plain

NAMES = {"W222": "Ana Tech", "U1": "Bob"}


@pytest.mark.parametrize(("raw", "plain"), [
    ("thanks <@W222>, I'll call", "thanks @Ana Tech, I'll call"),
    ("<@U9|carla> will check", "@carla will check"),  # old-style label when the id is unknown
    ("<@U404> knows", "@someone knows"),  # never the raw id
    ("see <https://status.example.com/inc/42|the status page>", "see the status page (https://status.example.com/inc/42)"),
    ("see <https://example.com>", "see https://example.com"),
    ("see <https://example.com|example.com>", "see https://example.com"),
    ("mail <mailto:help@acme.example|help@acme.example>", "mail help@acme.example"),
    ("in <#C123|it-ops> please", "in #it-ops please"),
    ("in <#C123> please", "in #channel please"),
    ("<!here> server down", "@here server down"),
    ("<!subteam^S1|@oncall> look", "@oncall look"),
    ("<!date^1392734382^{date}|Feb 18, 2014> works", "Feb 18, 2014 works"),
    ("R&amp;D &lt;prod&gt; a&amp;lt;b", "R&D <prod> a&lt;b"),  # decoded once, as Slack encoded once
    ("<https://x.example/?a=1&amp;b=2|q&amp;a>", "q&a (https://x.example/?a=1&b=2)"),
    ("no markup at all", "no markup at all"),
    ("", ""),
])
def test_slack_markup_reads_as_the_sender_saw_it(raw, plain):
    assert slack_plain(raw, NAMES) == plain


def test_slack_mentioned_ids_are_listed_once_for_lookup():
    assert slack_user_ids("<@W222> and <@U1|bob> and <@W222> in <#C1|x> <!here>") == ["W222", "U1"]


@pytest.mark.parametrize(("raw", "plain"), [
    ("<p>Thanks <at>Ana Tech</at>, rebooting now</p>", "Thanks @Ana Tech, rebooting now"),
    ('<p>see <a href="https://status.example.com">the status page</a></p>', "see the status page (https://status.example.com)"),
    ('<a href="https://example.com">https://example.com</a>', "https://example.com"),
    ("<p>line one</p><p>line&nbsp;two &amp; three</p>", "line one\nline two & three"),
    ("first<br>second", "first\nsecond"),
    ("<ul><li>a</li><li>b</li></ul>", "- a\n- b"),
    ("plain &lt;text&gt;", "plain <text>"),
])
def test_teams_html_reads_as_the_sender_saw_it(raw, plain):
    assert teams_plain(raw) == plain


def test_teams_plain_text_format_is_only_unescaped():
    assert teams_plain("R&amp;D 5 > 3", "plain") == "R&D 5 > 3"
