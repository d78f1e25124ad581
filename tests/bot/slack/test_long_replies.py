"""A technician's long public reply, mirrored into the customer's Slack thread: every word of it, as written. A
section's text holds 3,000 characters (reference/chat-platforms.md 2.5), so the body spans several sections; the
notification text shows the characters as written too (escaped, so `<!channel>` is text, not a mention)."""

from __future__ import annotations

import html
import json

from core.context import Actor
from store.enums import Origin
from tests.bot.slack.conftest import ADMIN, STRANGER

BODY = "".join(f"Step {i}: open <Settings> & choose `Accounts` > *Sync* now, then reboot. 😀\n" for i in range(160))


async def test_a_long_public_reply_reaches_the_customer_whole(slack):
    assert len(BODY) > 10_000
    await slack.slash("/deskbridge", "bind customer ACME shared", user=ADMIN, channel="C_ACME")
    await slack.slash("/ticket", "5001", user=STRANGER, channel="C_ACME")
    slack.fake.clear()
    api = Actor(workspace_id=slack.ws, origin=Origin.API, display="Ana Tech")
    await slack.c.tickets.comment(api, 5001, BODY, visibility="public")
    await slack.settle()
    (post,) = [c.args for c in slack.fake.of("chat.postMessage") if c.args.get("channel") == "C_ACME"
               and "Step 0" in json.dumps(c.args)]
    sections = [b["text"]["text"] for b in post["blocks"] if b["type"] == "section"]
    assert len(post["blocks"]) <= 50 and all(len(s) <= 3000 for s in sections)
    shown = "".join(sections).split("\n", 1)[1]  # after the heading line (where from, visibility, who)
    assert html.unescape(shown) == BODY.strip()
    assert "Step 159" in shown and "…" not in shown


async def test_the_notification_text_shows_mentions_and_links_as_written(slack):
    await slack.slash("/deskbridge", "bind customer ACME shared", user=ADMIN, channel="C_ACME")
    await slack.slash("/ticket", "5001", user=STRANGER, channel="C_ACME")
    slack.fake.clear()
    api = Actor(workspace_id=slack.ws, origin=Origin.API, display="Ana Tech")
    await slack.c.tickets.comment(api, 5001, "Fixed <!channel> see <https://x.example|here> & <@U1>", visibility="public")
    await slack.settle()
    (post,) = [c.args for c in slack.fake.of("chat.postMessage") if c.args.get("channel") == "C_ACME"
               and "Fixed" in json.dumps(c.args)]
    assert "<!channel>" not in post["text"] and "<https" not in post["text"] and "<@U1>" not in post["text"]
    assert html.unescape(post["text"]).endswith("Fixed <!channel> see <https://x.example|here> & <@U1>")


def test_an_alert_titles_notification_text_cannot_mention_the_channel():
    """An RMM alert's title is a vendor's text: in the offer's notification text `<!channel>` stays text."""
    from bot.slack.alert_blocks import alert_offer_fallback
    from core.views import AlertOfferView

    text = alert_offer_fallback(AlertOfferView(alert_id=1, title="Disk <!channel> full on <https://x|srv> & more"))
    assert "<" not in text and html.unescape(text) == "Disk <!channel> full on <https://x|srv> & more"
