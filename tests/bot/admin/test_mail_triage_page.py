"""Mail triage on the admin pages, through the real FastAPI app: mail the intake could not place is listed (paged,
filtered), read safely (an HTML mail's script, images and markup never reach the page live), and taken again,
assigned to a customer or a ticket, or discarded, each through core, CSRF-checked and audited."""

from __future__ import annotations

from email.message import EmailMessage

from sqlmodel import select

from core.context import Actor
from store.db import Scope
from store.enums import EntryKind
from store.tables import AuditLog, Contact, Customer, MailReceipt, Ticket, Workspace
from tests.bot.admin.helpers import sign_in
from tests.bot.api.conftest import Api

EVIL_HTML = """<html><head><style>body{background:url(https://evil.example/bg.png)}</style>
<script>alert('pwned')</script></head>
<body onload="alert(1)"><p>Our <b>printer</b> is on fire &amp; smoking.</p>
<img src="https://evil.example/track.png?u=cara" width="1" height="1">
<a href="javascript:alert(2)">click me</a><iframe src="https://evil.example/frame"></iframe>
<p>Literal text: &lt;script&gt;alert(3)&lt;/script&gt;</p></body></html>"""


def message(sender: str, subject: str, *, mid: str, body: str = "Please help.", html: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, "help@msp.example", subject, mid
    if html is not None:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(body)
    return bytes(msg)


async def _setup(api: Api) -> dict[str, int]:
    """Two standalone customers, one contact at ACME, and a sender limit of 1 new ticket an hour."""
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        acme = Customer(workspace_id=api.ws, identifier="ACME", name="Acme Corp")
        globex = Customer(workspace_id=api.ws, identifier="GLOBEX", name="Globex")
        s.add_all([acme, globex])
        await s.flush()
        s.add(Contact(workspace_id=api.ws, customer_id=acme.id, name="Ann Lee", email="ann@acme.example"))
        ws = await s.get(Workspace, api.ws)
        assert ws is not None
        ws.settings = {**ws.settings, "mail_tickets_per_sender_per_hour": 1}
        return {"acme": int(acme.id), "globex": int(globex.id)}  # type: ignore[arg-type]


async def _ingest(api: Api, raw: bytes) -> str:
    return (await api.container.mailboxes.intake.ingest(api.ws, raw)).outcome


async def _receipt(api: Api, ws: int | None = None, **where: str) -> MailReceipt:
    async with api.container.db.read(Scope.workspace(ws or api.ws)) as s:
        stmt = select(MailReceipt)
        for k, v in where.items():
            stmt = stmt.where(getattr(MailReceipt, k) == v)
        return (await s.exec(stmt)).one()


async def _mail_actions(api: Api) -> list[tuple[str, str]]:
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        rows = (await s.exec(select(AuditLog).where(AuditLog.action.startswith("intake.mail."))  # type: ignore[attr-defined]
                             .order_by(AuditLog.id))).all()
    return [(a.action, a.actor or "") for a in rows]


async def test_triage_lists_filters_and_pages_and_shows_an_html_mail_inert(api: Api):
    await _setup(api)
    assert await _ingest(api, message("Cara <cara@newco.example>", "<b>Help</b> printer", mid="<h1@x>",
                                      html=EVIL_HTML)) == "triage"
    assert await _ingest(api, message("ann@acme.example", "First", mid="<a1@x>")) == "created"
    assert await _ingest(api, message("ann@acme.example", "Second today", mid="<a2@x>")) == "triage"  # over 1/hour
    assert await _ingest(api, message("Out of office <ooo@else.example>", "Away", mid="<n1@x>",
                                      body="x")) == "triage"
    await sign_in(api)

    assert 'id="mail-waiting">3<' in (await api.client.get("/admin")).text  # the overview counts them
    page = await api.client.get("/admin/mail")
    assert page.status_code == 200 and 'id="mail-triage"' in page.text
    assert page.text.count('<tr><td><a href="/admin/mail/') == 3  # the created one is not waiting
    assert "ann@acme.example" in page.text and "over 1 new tickets from this sender within an hour" in page.text
    assert "&lt;b&gt;Help&lt;/b&gt; printer" in page.text and "<b>Help</b>" not in page.text
    unknown = await api.client.get("/admin/mail", params={"why": "unknown"})
    assert unknown.text.count('<tr><td><a href="/admin/mail/') == 2 and "Second today" not in unknown.text
    limit = await api.client.get("/admin/mail", params={"why": "limit"})
    assert limit.text.count('<tr><td><a href="/admin/mail/') == 1 and "Second today" in limit.text
    found = await api.client.get("/admin/mail", params={"q": "NEWCO"})
    assert found.text.count('<tr><td><a href="/admin/mail/') == 1 and "cara@newco.example" in found.text
    none = await api.client.get("/admin/mail", params={"q": "100%_"})
    assert "No e-mail in triage matches these filters." in none.text
    bad = await api.client.get("/admin/mail", params={"why": "because"})
    assert bad.status_code == 400 and "not a reason mail waits" in bad.text and "unknown, limit, refused" in bad.text
    broken = await api.client.get("/admin/mail", params={"after": "x1"})
    assert broken.status_code == 400 and "Start again from the first page" in broken.text

    evil = await _receipt(api, sender="cara@newco.example")
    shown = await api.client.get(f"/admin/mail/{evil.id}")
    assert shown.status_code == 200
    assert "default-src 'self'" in shown.headers["content-security-policy"]
    body = shown.text
    for live in ("<script", "<img", "<iframe", "onload=", "javascript:", "evil.example", "<style", "<b>printer"):
        assert live not in body, live
    assert "Our printer is on fire &amp; smoking." in body  # the text a reader sees, escaped
    assert "Literal text: &lt;script&gt;alert(3)&lt;/script&gt;" in body  # words about markup stay words
    assert "was HTML only" in body and "waiting in triage: unknown sender" in body
    assert 'id="mail-replay"' in body and 'id="mail-assign"' in body and 'id="mail-discard"' in body

    for i in range(50):  # 53 waiting: a page of 50, then the oldest three
        await _ingest(api, message(f"u{i}@nobody.example", f"Bulk {i}", mid=f"<b{i}@x>"))
    first = await api.client.get("/admin/mail", params={"why": "unknown"})
    assert first.text.count('<tr><td><a href="/admin/mail/') == 50 and "Bulk 49" in first.text
    more = first.text.split('id="more-mail" href="')[1].split('"')[0].replace("&amp;", "&")
    assert "why=unknown" in more
    rest = await api.client.get(more)
    assert rest.text.count('<tr><td><a href="/admin/mail/') == 2 and "cara@newco.example" in rest.text
    assert 'id="more-mail"' not in rest.text and "Bulk" not in rest.text


async def test_take_again_assign_and_discard_through_core_with_csrf_and_audit(api: Api):
    ids = await _setup(api)
    for sender, subject, mid in (("cara@newco.example", "New hire login", "<c1@x>"),
                                 ("dan@else.example", "Invoice question", "<d1@x>"),
                                 ("eve@else.example", "About ticket", "<e1@x>"),
                                 ("spam@else.example", "You won", "<s1@x>")):
        assert await _ingest(api, message(sender, subject, mid=mid, body=f"Words of {sender}.")) == "triage"
    cara, dan = await _receipt(api, sender="cara@newco.example"), await _receipt(api, sender="dan@else.example")
    eve, spam = await _receipt(api, sender="eve@else.example"), await _receipt(api, sender="spam@else.example")
    csrf = await sign_in(api)

    no_csrf = await api.client.post(f"/admin/mail/{cara.id}/replay", data={})
    assert no_csrf.status_code == 403 and (await _receipt(api, id=cara.id)).outcome == "triage"

    still = await api.client.post(f"/admin/mail/{cara.id}/replay", data={"csrf": csrf})
    assert still.status_code == 303 and still.headers["location"] == f"/admin/mail/{cara.id}?done=mail_still"
    told = await api.client.get(still.headers["location"])
    assert "still waits in triage" in told.text and "Add the sender as a contact" in told.text
    async with api.container.db.write(Scope.workspace(api.ws)) as s:  # the PSA sync brings her as ACME's contact
        s.add(Contact(workspace_id=api.ws, customer_id=ids["acme"], name="Cara Diaz", email="cara@newco.example"))
    taken = await api.client.post(f"/admin/mail/{cara.id}/replay", data={"csrf": csrf})
    assert taken.headers["location"].endswith("done=mail_created")
    row = await _receipt(api, id=cara.id)
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        ticket = await s.get(Ticket, row.ticket_id)
    assert row.outcome == "created" and ticket is not None and ticket.customer_id == ids["acme"]
    done_page = await api.client.get(taken.headers["location"])
    assert f"#{ticket.number}" in done_page.text and 'id="mail-replay"' not in done_page.text
    again = await api.client.post(f"/admin/mail/{cara.id}/replay", data={"csrf": csrf})
    assert again.status_code == 409 and "not waiting in triage" in again.text and 'id="problem"' in again.text

    both = await api.client.post(f"/admin/mail/{dan.id}/assign", data={"csrf": csrf, "customer": "GLOBEX",
                                                                      "ticket": "1"})
    assert both.status_code == 400 and "not both" in both.text
    nobody = await api.client.post(f"/admin/mail/{dan.id}/assign", data={"csrf": csrf, "customer": "Initech"})
    assert nobody.status_code == 404 and "No customer matches" in nobody.text and 'value="Initech"' in nobody.text
    no_ticket = await api.client.post(f"/admin/mail/{dan.id}/assign", data={"csrf": csrf, "ticket": "99999"})
    assert no_ticket.status_code == 404 and "#99999 was not found" in no_ticket.text
    assert (await _receipt(api, id=dan.id)).outcome == "triage"  # refusals change nothing
    to_customer = await api.client.post(f"/admin/mail/{dan.id}/assign", data={"csrf": csrf, "customer": "globex"})
    assert to_customer.headers["location"].endswith("done=mail_to_customer")
    dan_row = await _receipt(api, id=dan.id)
    system = Actor.system(api.ws)
    opened = await api.container.tickets.get(system, f"id:{dan_row.ticket_id}")
    assert dan_row.outcome == "created" and opened.summary.customer_id == ids["globex"]
    assert opened.summary.subject == "Invoice question" and opened.description == "Words of dan@else.example."
    [confirm] = [e for e in opened.timeline if e.kind == EntryKind.NOTE_INTERNAL]
    assert "dan@else.example, who is not a contact" in confirm.body and "Confirm who they are" in confirm.body

    to_ticket = await api.client.post(f"/admin/mail/{eve.id}/assign",
                                      data={"csrf": csrf, "ticket": f"#{opened.summary.number}"})
    assert to_ticket.headers["location"].endswith("done=mail_to_ticket")
    joined = await api.container.tickets.get(system, f"id:{dan_row.ticket_id}")
    [eve_note] = [e for e in joined.timeline if "eve@else.example" in e.body]
    assert eve_note.kind == EntryKind.NOTE_INTERNAL and "Words of eve@else.example." in eve_note.body
    assert not [e for e in joined.timeline if e.kind == EntryKind.NOTE_PUBLIC]  # nothing shown to the customer
    assert (await _receipt(api, id=eve.id)).ticket_id == dan_row.ticket_id

    dropped = await api.client.post(f"/admin/mail/{spam.id}/discard", data={"csrf": csrf, "reason": "  spam\n"})
    assert dropped.headers["location"].endswith("done=mail_discarded")
    spam_row = await _receipt(api, id=spam.id)
    assert spam_row.outcome == "discarded" and spam_row.reason and spam_row.reason.endswith(": spam")
    assert spam_row.raw  # kept
    twice = await api.client.post(f"/admin/mail/{spam.id}/discard", data={"csrf": csrf, "reason": "x"})
    assert twice.status_code == 409
    assert "No e-mail waits in triage." in (await api.client.get("/admin/mail")).text
    assert 'id="mail-waiting">0<' in (await api.client.get("/admin")).text

    actions = await _mail_actions(api)
    assert [a for a, _ in actions] == ["intake.mail.replay", "intake.mail.replay", "intake.mail.assign",
                                       "intake.mail.assign", "intake.mail.discard"]
    assert all(who.startswith("admin-page:") for _, who in actions)


async def test_another_workspaces_mail_is_not_found(api: Api):
    await _setup(api)
    out = await api.container.mailboxes.intake.ingest(api.other_ws, message("z@other.example", "Theirs", mid="<o@x>"))
    assert out.outcome == "triage"
    theirs = await _receipt(api, api.other_ws, sender="z@other.example")
    csrf = await sign_in(api)
    assert (await api.client.get(f"/admin/mail/{theirs.id}")).status_code == 404
    for action in ("replay", "discard"):
        r = await api.client.post(f"/admin/mail/{theirs.id}/{action}", data={"csrf": csrf, "reason": "x"})
        assert r.status_code == 404
    assert (await _receipt(api, api.other_ws, id=theirs.id)).outcome == "triage"
    assert "Theirs" not in (await api.client.get("/admin/mail")).text


async def test_a_known_contacts_held_mail_goes_under_their_contact_or_as_their_reply(api: Api):
    ids = await _setup(api)  # ann@acme.example is ACME's contact; one new ticket an hour per sender
    assert await _ingest(api, message("ann@acme.example", "Printer jams", mid="<k1@x>", body="It jams.")) == "created"
    for subject, mid in (("Scanner too", "<k2@x>"), ("And the fax", "<k3@x>")):
        assert await _ingest(api, message("ann@acme.example", subject, mid=mid, body=f"{subject}.")) == "triage"
    first = await _receipt(api, message_id="<k1@x>")
    scanner, fax = await _receipt(api, message_id="<k2@x>"), await _receipt(api, message_id="<k3@x>")
    assert "over 1 new tickets" in (scanner.reason or "")
    csrf = await sign_in(api)

    r = await api.client.post(f"/admin/mail/{scanner.id}/assign", data={"csrf": csrf, "customer": "ACME"})
    assert r.headers["location"].endswith("done=mail_to_customer")
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        ann = (await s.exec(select(Contact).where(Contact.email == "ann@acme.example"))).one()
        made = await s.get(Ticket, (await _receipt(api, id=scanner.id)).ticket_id)
    assert made is not None and made.contact_id == ann.id and made.customer_id == ids["acme"]
    detail = await api.container.tickets.get(Actor.system(api.ws), f"id:{made.id}")
    assert not [e for e in detail.timeline if e.kind == EntryKind.NOTE_INTERNAL]  # no "confirm who they are"

    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        number = (await s.get(Ticket, first.ticket_id)).number  # type: ignore[union-attr]
    r = await api.client.post(f"/admin/mail/{fax.id}/assign", data={"csrf": csrf, "ticket": str(number)})
    assert r.headers["location"].endswith("done=mail_to_ticket")
    joined = await api.container.tickets.get(Actor.system(api.ws), f"id:{first.ticket_id}")
    [reply] = [e for e in joined.timeline if "And the fax." in e.body]
    assert reply.kind == EntryKind.NOTE_PUBLIC and reply.body == "And the fax."  # her words, word for word


async def test_a_file_that_cannot_be_kept_is_said_on_the_ticket_and_never_makes_a_second_ticket(api: Api):
    ids = await _setup(api)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "zoe@new.example", "help@msp.example", "Scan", "<z@x>"
    msg.set_content("The scan is attached.")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="s" * 300 + ".pdf")
    assert await _ingest(api, bytes(msg)) == "triage"
    zoe = await _receipt(api, sender="zoe@new.example")
    csrf = await sign_in(api)
    r = await api.client.post(f"/admin/mail/{zoe.id}/assign", data={"csrf": csrf, "customer": "ACME"})
    assert r.headers["location"].endswith("done=mail_to_customer")
    assert (await _receipt(api, id=zoe.id)).outcome == "created"
    again = await api.client.post(f"/admin/mail/{zoe.id}/assign", data={"csrf": csrf, "customer": "ACME"})
    assert again.status_code == 409
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        made = (await s.exec(select(Ticket).where(Ticket.subject == "Scan"))).all()
    assert [t.customer_id for t in made] == [ids["acme"]]  # one ticket, the mail's words on it
    assert made[0].description == "The scan is attached."
    notes = [e.body for e in (await api.container.tickets.get(Actor.system(api.ws), f"id:{made[0].id}")).timeline
             if e.kind == EntryKind.NOTE_INTERNAL]
    assert any("Not kept from the e-mail of zoe@new.example" in n and "304 characters" in n for n in notes)
