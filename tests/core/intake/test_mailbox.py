"""Polling a mailbox end to end: the real IMAP and Graph readers against loopback fakes, the watermark, a
failed fetch, a renumbered IMAP folder, credentials checked before saving, and the PSA-owns-mail switch."""

from __future__ import annotations

import pytest

from connectors.mail import build_reader
from core.errors import ConnectionProblem, NotFound
from core.intake.mail import MailIntake
from core.intake.mailbox import MailboxService
from store.crypto import CredentialCipher, generate_key
from tests.core.intake.test_mail import mail as mail  # noqa: F401 - fixture
from tests.core.intake.test_mail import message
from tests.fakes.graph_mail import FakeGraphMail
from tests.fakes.imap_server import FakeImap


@pytest.fixture
async def imap():
    server = FakeImap()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def graph():
    server = FakeGraphMail()
    await server.start()
    yield server
    await server.stop()


def _service(m) -> MailboxService:
    return MailboxService(m.db, cipher=CredentialCipher.from_keys([generate_key()]),
                          intake=MailIntake(m.db, tickets=m.tickets, clock=m.clock), readers=build_reader)


def imap_config(server: FakeImap, **kw) -> dict:
    return {"host": "127.0.0.1", "port": server.port, "username": server.username, "password": server.password,
            "tls": False, **kw}


async def test_imap_poll_takes_each_message_once_and_survives_a_failed_fetch(mail, imap):  # noqa: F811
    service = _service(mail)
    assert await service.configure(mail.ws, "imap", imap_config(imap)) == "help@msp.example@127.0.0.1"
    imap.deliver(message(mid="<i1@acme.example>"))
    imap.deliver(message(subject="VPN down", mid="<i2@acme.example>"))
    first = await service.poll(mail.ws)
    assert first.outcomes == {"created": 2} and len(await mail.tickets_()) == 2
    assert (await service.poll(mail.ws)).taken == 0  # `UID 3:*` returns UID 2 again; it is filtered out
    u3 = imap.deliver(message(subject="Mail slow", mid="<i3@acme.example>"))
    imap.deliver(message(subject="New laptop", mid="<i4@acme.example>"))
    imap.fail_fetch.add(u3)
    stopped = await service.poll(mail.ws)
    assert stopped.taken == 0 and len(await mail.tickets_()) == 2  # nothing skipped past the failed one
    again = await service.poll(mail.ws)
    assert again.outcomes == {"created": 2} and len(await mail.tickets_()) == 4
    imap.renumber()  # new UIDVALIDITY: everything is read again and recognised by Message-ID
    assert (await service.poll(mail.ws)).outcomes == {"duplicate": 4}
    assert len(await mail.tickets_()) == 4


async def test_imap_credentials_are_checked_before_they_are_saved(mail, imap):  # noqa: F811
    service = _service(mail)
    with pytest.raises(ConnectionProblem, match="refused the login") as err:
        await service.configure(mail.ws, "imap", imap_config(imap, password="wrong"))
    assert "app password" in (err.value.hint or "")
    with pytest.raises(NotFound):
        await service.test(mail.ws)  # nothing was stored
    with pytest.raises(ConnectionProblem, match="Could not reach"):
        await service.configure(mail.ws, "imap", imap_config(imap, port=1))


async def test_graph_delta_poll_pages_keeps_its_delta_link_and_ignores_removed(mail, graph):  # noqa: F811
    service = _service(mail)
    cfg = {"mailbox": graph.mailbox, "tenant": graph.tenant, "client_id": graph.client_id,
           "client_secret": graph.client_secret, "graph_url": f"{graph.base}/v1.0", "login_url": f"{graph.base}/login"}
    with pytest.raises(ConnectionProblem, match="400"):
        await service.configure(mail.ws, "graph", {**cfg, "client_secret": "nope"})
    await service.configure(mail.ws, "graph", cfg)
    for i in range(30):  # more than one page (25)
        graph.deliver(message(subject=f"Issue {i}", mid=f"<g{i}@acme.example>"))
    graph.removed.append("AAMk-gone")
    r = await service.poll(mail.ws)
    assert r.outcomes == {"created": 30} and len(await mail.tickets_()) == 30
    graph.deliver(message(subject="Auto", mid="<g-auto@acme.example>", Auto_Submitted="auto-replied"))
    graph.deliver(message(subject="From us", sender="help@msp.example", mid="<g-own@msp.example>"))
    r = await service.poll(mail.ws)
    assert r.outcomes == {"ignored": 2} and len(await mail.tickets_()) == 30  # own address: the mailbox itself
    graph.throttle = 1
    graph.deliver(message(subject="Later", mid="<g-late@acme.example>"))
    with pytest.raises(ConnectionProblem, match="429"):
        await service.poll(mail.ws)
    assert (await service.poll(mail.ws)).outcomes == {"created": 1}


async def test_psa_handles_mail_switch_stops_polling(mail, imap):  # noqa: F811
    service = _service(mail)
    await service.configure(mail.ws, "imap", imap_config(imap))
    await service.set_psa_handles_mail(mail.ws, True)
    imap.deliver(message())
    assert (await service.poll(mail.ws)).taken == 0 and await mail.tickets_() == []
    await service.set_psa_handles_mail(mail.ws, False)
    assert (await service.poll_all()) == 1
