"""An e-mail sent as HTML only (Outlook, phones, web forms): the ticket holds the words the customer wrote, not
the markup: entities decoded (&amp; is &), the style sheet and scripts of the <head> gone, paragraphs and line
breaks as line breaks."""

from __future__ import annotations

from email.message import EmailMessage

from tests.core.intake.test_mail import _tickets, mail  # noqa: F401 - the fixture

HTML = """<html><head><meta charset="utf-8"><title>Ticket</title>
<style>p.MsoNormal { margin: 0cm; font-family: "Calibri", sans-serif; }</style>
<script>var tracking = 1;</script></head>
<body><div class=WordSection1><p class=MsoNormal>Hi&nbsp;team,</p>
<p class=MsoNormal>The printer shows &quot;Paper jam&quot; &amp; won&#39;t print &lt;3 pages.<br>Caf&eacute; floor &#x1F525;</p>
</div></body></html>"""


def html_message(html: str, mid: str = "<h1@acme.example>") -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = ("Ann Lee <ann@acme.example>", "help@msp.example",
                                                                  "Printer", mid)
    msg.set_content(html, subtype="html")
    return bytes(msg)


async def test_an_html_only_message_becomes_the_customers_words(mail):  # noqa: F811
    r = await mail.mail.ingest(mail.ws, html_message(HTML))
    assert r.outcome == "created", r
    [t] = await _tickets(mail)
    lines = [line.strip() for line in t.description.splitlines() if line.strip()]
    assert lines[:3] == ["Hi team,", "The printer shows \"Paper jam\" & won't print <3 pages.", "Café floor 🔥"]
    for markup in ("MsoNormal", "font-family", "tracking", "&amp;", "&nbsp;", "<p", "Ticket"):
        assert markup not in t.description, markup
