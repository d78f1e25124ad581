"""Files a technician drops into a ticket's Slack thread become PSA attachments (the real bolt app, real HTTP
to the fake Slack's file server, real SQLite): size checked before and during the download, nothing lost."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from sqlmodel import select

from core.chat import ChatFile
from core.context import Actor
from store.db import Scope
from store.enums import Origin
from store.tables import AttachmentBlob, OutboxOp
from tests.bot.slack.conftest import ADMIN, CHANNEL, STRANGER, TECH

MB = 1024 * 1024
TOKEN = "xoxb-test-token"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


async def ops(h):
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return list((await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all())


async def blob(h, blob_id):
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return await s.get(AttachmentBlob, blob_id)


async def card_thread(h, channel=CHANNEL, number="5001"):
    await h.slash("/ticket", number, channel=channel)
    post = h.fake.of("chat.postMessage")[-1]
    assert post.args["channel"] == channel
    return f"{h.fake._ts}.000100"


async def file_share(h, files, *, text="", event_id, thread_ts, user=TECH, channel=CHANNEL, extra=None, **kw):
    return await h.event({"type": "message", "subtype": "file_share", "channel": channel, "user": user,
                          "text": text, "files": files, "upload": True, "display_as_bot": False,
                          "ts": f"{time.time():.6f}", "thread_ts": thread_ts, "channel_type": "channel"},
                         event_id=event_id, extra=extra, **kw)


def thread_posts(h, thread_ts):
    return [c.args["text"] for c in h.fake.of("chat.postMessage") if c.args.get("thread_ts") == thread_ts]


def ephemerals(h):
    return [c.args for c in h.fake.of("chat.postEphemeral")]


async def test_file_share_becomes_a_note_and_attachments_with_the_right_bytes(slack):
    thread_ts = await card_thread(slack)
    log = b"2026-12-04 disk0: I/O error\n" * 100
    files = [slack.fake.add_file("event.log", log, mimetype="text/plain"),
             slack.fake.add_file("screen.png", PNG, mimetype="image/png")]
    resp = await file_share(slack, files, text="disk errors, see log", event_id="EvF1", thread_ts=thread_ts)
    assert resp.status_code == 200
    got = await ops(slack)
    assert [o.kind for o in got] == ["add_note", "upload_attachment", "upload_attachment"]
    assert (got[0].payload["visibility"], got[0].payload["text"]) == ("internal", "disk errors, see log")
    uploads = [o.payload for o in got[1:]]
    assert [(u["filename"], u["content_type"], u["size"]) for u in uploads] == [
        ("event.log", "text/plain", len(log)), ("screen.png", "image/png", len(PNG))]
    assert [u["visibility"] for u in uploads] == ["internal", "internal"]  # shared in an internal thread
    assert (await blob(slack, uploads[0]["blob_id"])).data == log
    assert (await blob(slack, uploads[1]["blob_id"])).data == PNG
    # downloaded with the bot token, from the Slack base URL (the fake), once each
    assert [(d.file_id, d.authorized, d.status) for d in slack.fake.downloads] == [
        (files[0]["id"], True, 200), (files[1]["id"], True, 200)]
    # one confirmation in the thread saying what was queued; no complaint
    confirms = thread_posts(slack, thread_ts)
    assert len(confirms) == 1 and "Internal note and 2 files: queued for the PSA" in confirms[0]
    assert ephemerals(slack) == []


async def test_a_file_without_text_and_a_public_marker(slack):
    thread_ts = await card_thread(slack)
    await file_share(slack, [slack.fake.add_file("a.txt", b"hello")], event_id="EvF2", thread_ts=thread_ts)
    await file_share(slack, [slack.fake.add_file("b.txt", b"world")], text="!public", event_id="EvF3",
                     thread_ts=thread_ts)
    got = await ops(slack)
    assert [(o.kind, o.payload["filename"], o.payload["visibility"]) for o in got] == [
        ("upload_attachment", "a.txt", "internal"), ("upload_attachment", "b.txt", "public")]
    assert ["1 file: queued for the PSA" in c for c in thread_posts(slack, thread_ts)] == [True, True]
    # `!skip` means "not for the ticket": neither text nor file is written, nothing is downloaded
    await file_share(slack, [slack.fake.add_file("c.txt", b"x")], text="!skip look at this", event_id="EvF4",
                     thread_ts=thread_ts)
    assert len(await ops(slack)) == 2 and len(slack.fake.downloads) == 2


async def test_oversize_by_declared_size_is_never_downloaded_and_the_text_is_still_written(slack):
    thread_ts = await card_thread(slack)
    big = slack.fake.add_file("capture.pcap", b"small really", size=32 * MB)
    await file_share(slack, [big], text="packet capture attached", event_id="EvF5", thread_ts=thread_ts)
    assert slack.fake.downloads == []  # the declared size was checked before any download
    got = await ops(slack)
    assert [(o.kind, o.payload.get("text")) for o in got] == [("add_note", "packet capture attached")]
    [eph] = ephemerals(slack)
    assert (eph["user"], eph["channel"], eph["thread_ts"]) == (TECH, CHANNEL, thread_ts)
    assert "capture.pcap is 32 MB; the PSA accepts files up to 10 MB" in eph["text"]
    assert "Attach it in the PSA directly" in eph["text"]
    assert ["Internal note: queued for the PSA" in c for c in thread_posts(slack, thread_ts)] == [True]


async def test_a_lying_size_is_stopped_at_the_cap(slack):
    thread_ts = await card_thread(slack)
    content = b"\0" * (13 * MB)
    # declares 2 KB; streams 13 MB without a Content-Length, slowly enough that the server cannot run ahead
    liar = slack.fake.add_file("tiny.bin", content, size=2048, chunked=True, chunk_size=256 * 1024,
                               chunk_delay_s=0.005)
    honest_header = slack.fake.add_file("other.bin", content, size=4096, chunk_size=256 * 1024,
                                        chunk_delay_s=0.005)  # its Content-Length says 13 MB: not read at all
    await file_share(slack, [liar, honest_header], text="two dumps", event_id="EvF6", thread_ts=thread_ts)
    first, second = slack.fake.downloads
    assert first.aborted and 10 * MB <= first.sent < len(content)  # stopped just past the 10 MB cap
    assert second.aborted and second.sent < 2 * MB
    got = await ops(slack)
    assert [o.kind for o in got] == ["add_note"]
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        assert (await s.exec(select(AttachmentBlob))).all() == []
    [eph] = ephemerals(slack)
    assert "tiny.bin is larger than the 10 MB the PSA accepts" in eph["text"]
    assert "other.bin is larger than the 10 MB" in eph["text"]


async def test_download_failures_are_told_and_the_note_and_other_files_are_kept(slack):
    thread_ts = await card_thread(slack)
    broken = slack.fake.add_file("broken.txt", b"never arrives")
    fine = slack.fake.add_file("fine.txt", b"arrives")
    slack.fake.fail_download(broken["id"], status=503)
    await file_share(slack, [broken, fine], text="logs", event_id="EvF7", thread_ts=thread_ts)
    got = await ops(slack)
    assert [(o.kind, o.payload.get("text") or o.payload.get("filename")) for o in got] == [
        ("add_note", "logs"), ("upload_attachment", "fine.txt")]
    [eph] = ephemerals(slack)
    assert "Slack did not hand over broken.txt (HTTP 503)" in eph["text"] and "attach it in the PSA" in eph["text"]
    assert ["Internal note and 1 file: queued" in c for c in thread_posts(slack, thread_ts)] == [True]


async def test_missing_files_read_scope_is_recognised_as_the_sign_in_page(slack):
    thread_ts = await card_thread(slack)
    slack.fake.file_readers = set()  # the bot token lacks files:read: Slack redirects to its sign-in page
    f = slack.fake.add_file("report.pdf", b"%PDF-1.7", mimetype="application/pdf")
    await file_share(slack, [f], event_id="EvF8", thread_ts=thread_ts)
    assert [(d.authorized, d.status) for d in slack.fake.downloads] == [(False, 302)]
    assert await ops(slack) == []  # the HTML sign-in page was not attached as report.pdf
    [eph] = ephemerals(slack)
    assert "sign-in page" in eph["text"] and "files:read" in eph["text"]
    assert thread_posts(slack, thread_ts) == []  # nothing was written, so nothing is confirmed


async def test_external_deleted_and_foreign_host_files_get_a_clear_message_and_no_download(slack):
    thread_ts = await card_thread(slack)
    gdrive = slack.fake.add_file("budget.xlsx", b"", mode="external")
    gone = slack.fake.add_file("old.txt", b"", mode="tombstone")
    foreign = slack.fake.add_file("x.txt", b"x", url_private_download="https://evil.example/files-pri/T-F/x.txt")
    await file_share(slack, [gdrive, gone, foreign], text="see files", event_id="EvF9", thread_ts=thread_ts)
    assert slack.fake.downloads == []  # the bot token never left for another host
    assert [o.kind for o in await ops(slack)] == ["add_note"]
    [eph] = ephemerals(slack)
    lines = eph["text"]
    assert "budget.xlsx is a link to a file stored outside the chat" in lines
    assert "is no longer available (it was deleted)" in lines
    assert "x.txt is not on a Slack file server" in lines


async def test_a_customers_file_share_in_their_channel_is_their_public_reply(slack):
    """A customer's words and files in their own (shared) channel's ticket thread are theirs: a public reply
    and a public attachment; they alone are told it was added (nothing posted in the shared thread)."""
    cust = "C_ACME"
    await slack.slash("/deskbridge", "bind customer ACME shared", user=ADMIN, channel=cust)
    thread_ts = await card_thread(slack, channel=cust)
    slack.fake.clear()
    f = slack.fake.add_file("invoice.pdf", b"%PDF-1.7", mimetype="application/pdf")
    await file_share(slack, [f], text="here is the invoice", event_id="EvF10", thread_ts=thread_ts, user=STRANGER,
                     channel=cust)
    written = await ops(slack)
    assert [(o.kind, o.payload.get("visibility")) for o in written] == [("add_note", "public"),
                                                                         ("upload_attachment", "public")]
    assert written[0].payload["text"] == "here is the invoice" and len(slack.fake.downloads) == 1
    assert thread_posts(slack, thread_ts) == [] and ephemerals(slack)[0]["user"] == STRANGER


async def test_a_strangers_file_share_in_an_internal_channel_writes_and_downloads_nothing(slack):
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME_INTERNAL")
    thread_ts = await card_thread(slack, channel="C_ACME_INTERNAL")
    slack.fake.clear()
    f = slack.fake.add_file("invoice.pdf", b"%PDF-1.7", mimetype="application/pdf")
    await file_share(slack, [f], text="here is the invoice", event_id="EvF11", thread_ts=thread_ts, user=STRANGER,
                     channel="C_ACME_INTERNAL")
    assert await ops(slack) == [] and slack.fake.downloads == []


async def test_core_refuses_non_members_before_any_download(slack):
    """The rule lives in core, so every surface (Teams too) gets it: a contact's message is not the ticket's."""
    async def must_not_fetch(limit):
        raise AssertionError("downloaded for a non-member")

    contact = Actor(workspace_id=slack.ws, origin=Origin.SLACK, display="customer", is_member=False,
                    customer_scope_id=slack.setup.customer_id)
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        from store.tables import Ticket

        ticket = (await s.exec(select(Ticket).where(Ticket.number == 5001))).one()
    got = await slack.c.chat_commands.thread_message(
        contact, ticket.id, "!public hello", files=[ChatFile("a.txt", "text/plain", 3, must_not_fetch)])
    assert got is None and await ops(slack) == []


async def test_a_retry_during_a_slow_download_is_not_duplicated(slack):
    thread_ts = await card_thread(slack)
    slow = slack.fake.add_file("slow.log", b"y" * (64 * 1024 * 8), mimetype="text/plain", chunk_delay_s=0.1)
    await file_share(slack, [slow], text="slow one", event_id="EvF11", thread_ts=thread_ts, settle=False)
    # Slack did not see our ack in time and retries the same event while the download is running
    await file_share(slack, [slow], text="slow one", event_id="EvF11", thread_ts=thread_ts,
                     extra={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    got = await ops(slack)
    assert [o.kind for o in got] == ["add_note", "upload_attachment"]
    assert len(slack.fake.downloads) == 1 and (await blob(slack, got[1].payload["blob_id"])).size == 64 * 1024 * 8
    assert len(thread_posts(slack, thread_ts)) == 1


async def test_the_bot_token_never_appears_in_logs_or_messages(slack, caplog):
    thread_ts = await card_thread(slack)
    caplog.set_level(logging.DEBUG)
    ok = slack.fake.add_file("ok.txt", b"fine")
    broken = slack.fake.add_file("broken.txt", b"no")
    slack.fake.fail_download(broken["id"], status=500)
    liar = slack.fake.add_file("liar.bin", b"\0" * (11 * MB), size=10, chunked=True)
    await file_share(slack, [ok, broken, liar], text="files", event_id="EvF12", thread_ts=thread_ts)
    slack.fake.file_readers = set()
    await file_share(slack, [slack.fake.add_file("signin.txt", b"z")], event_id="EvF13", thread_ts=thread_ts)
    assert [d.authorized for d in slack.fake.downloads] == [True, True, True, False]  # the token was sent ...
    assert len(ephemerals(slack)) == 2 and caplog.records  # ... failures were told and logged ...
    everything = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    everything += "".join(str(c.args) for c in slack.fake.calls)
    assert TOKEN not in everything  # ... and it is in no log line, log field or message


async def test_redirects_keep_the_token_on_slack_and_never_take_it_elsewhere(slack):
    thread_ts = await card_thread(slack)
    target = slack.fake.add_file("real.txt", b"the bytes")
    hop = slack.fake.add_file("hop.txt", b"", redirect_to=target["url_private_download"], size=9)
    away = slack.fake.add_file("away.txt", b"", size=9,
                               redirect_to=f"http://localhost:{slack.fake.port}/files-pri/T-F0001/real.txt")
    await file_share(slack, [hop, away], event_id="EvF14", thread_ts=thread_ts)
    # the Slack-to-Slack hop was followed with the token; the hop to another host was not taken at all
    assert [(d.file_id, d.authorized, d.status) for d in slack.fake.downloads] == [
        (hop["id"], True, 302), (target["id"], True, 200), (away["id"], True, 302)]
    got = await ops(slack)
    assert [(o.kind, o.payload["filename"]) for o in got] == [("upload_attachment", "hop.txt")]
    assert (await blob(slack, got[0].payload["blob_id"])).data == b"the bytes"
    [eph] = ephemerals(slack)
    assert "away.txt is not on a Slack file server" in eph["text"]


async def test_a_refused_text_part_does_not_lose_the_files(slack):
    thread_ts = await card_thread(slack)
    empty = slack.fake.add_file("empty.txt", b"")
    await file_share(slack, [slack.fake.add_file("notes.txt", b"n"), empty], text="!time soon what I did",
                     event_id="EvF15", thread_ts=thread_ts)
    got = await ops(slack)
    assert [(o.kind, o.payload["filename"]) for o in got] == [("upload_attachment", "notes.txt")]
    [eph] = ephemerals(slack)
    assert "30m" in eph["text"]  # the time entry's error says how to write a duration
    assert "empty.txt is empty" in eph["text"]
    assert ["1 file: queued for the PSA" in c for c in thread_posts(slack, thread_ts)] == [True]


async def test_a_psa_without_attachments_gets_the_text_and_a_clear_refusal(slack):
    from connectors.base import Capabilities, Feature
    from core.chat import ChatCommands
    from core.tickets import TicketService

    c = slack.c
    no_files = TicketService(c.db, capabilities=lambda kind: Capabilities(features=frozenset({Feature.TIME_ENTRIES})))
    commands = ChatCommands(c.db, chat=c.chat, views=c.chat_views, queue=c.queue, tickets=no_files,
                            directory=c.directory, workspaces=c.workspaces, alerts=c.alert_webhooks)

    async def must_not_fetch(limit):
        raise AssertionError("downloaded a file the PSA cannot take")

    tech = Actor(workspace_id=slack.ws, origin=Origin.SLACK, display="bob", member_id=slack.setup.member_id)
    async with c.db.read(Scope.workspace(slack.ws)) as s:
        from store.tables import Ticket

        ticket = (await s.exec(select(Ticket).where(Ticket.number == 5001))).one()
    got = await commands.thread_message(tech, ticket.id, "see the attached",
                                        files=[ChatFile("a.txt", "text/plain", 3, must_not_fetch)])
    assert got is not None and got.view is not None
    assert got.confirmation.startswith("Internal note: queued for the PSA")
    [problem] = got.problems
    assert "a.txt was not attached" in problem.message and "does not accept attachments" in problem.message
    assert problem.hint == "Attach it in the PSA directly."
    assert [o.kind for o in await ops(slack)] == ["add_note"]


async def test_production_hosts_get_the_token_only_on_slack():
    """Against Slack's real host names (httpx's transport seam, no network): files.slack.com gets the bearer,
    Slack's CDN hop gets none, plain HTTP or another host is refused before any request."""
    import httpx

    from bot.slack.files import DownloadFailed, SlackFiles

    seen = []

    def slack(request):
        seen.append((str(request.url), request.headers.get("authorization")))
        if request.url.host == "files.slack.com":
            return httpx.Response(302, headers={"location": "https://files-edge.slack-edge.com/T1-F1/a.txt?sig=1"})
        return httpx.Response(200, content=b"abc", headers={"content-type": "text/plain"})

    async with SlackFiles("https://slack.com/api/", "xoxb-real", transport=httpx.MockTransport(slack)) as files:
        got = await files.download("https://files.slack.com/files-pri/T1-F1/download/a.txt", name="a.txt", limit=10)
        assert got == b"abc"
        assert seen == [("https://files.slack.com/files-pri/T1-F1/download/a.txt", "Bearer xoxb-real"),
                        ("https://files-edge.slack-edge.com/T1-F1/a.txt?sig=1", None)]
        for url in ("http://files.slack.com/files-pri/T1-F1/a.txt", "https://files.slack.com.evil.example/a.txt",
                    "https://evil.example/files-pri/T1-F1/a.txt"):
            with pytest.raises(DownloadFailed, match="not on a Slack file server"):
                await files.download(url, name="a.txt", limit=10)
        assert len(seen) == 2


async def test_slow_downloads_never_hold_up_a_modal(slack):
    """Downloads run on their own pool: with more slow files in flight than there are post-ack workers, a
    technician's click still opens its modal at once (its trigger lives 3 s)."""
    thread_ts = await card_thread(slack)
    # Every transfer stalls until the test lets it go, so the downloads are in flight for as long as it takes
    # (a stopwatch on the modal, with 2 s downloads, failed on a loaded machine).
    slack.fake.file_gate = asyncio.Event()
    for i in range(6):
        slow = slack.fake.add_file(f"slow{i}.log", b"y" * (64 * 1024 * 20), mimetype="text/plain")
        await file_share(slack, [slow], text=f"log {i}", event_id=f"EvSlow{i}", thread_ts=thread_ts, settle=False)
    t0 = time.monotonic()
    while not slack.fake.downloads:  # the download workers are busy with stalled transfers
        assert time.monotonic() - t0 < 60, "no download started"
        await asyncio.sleep(0.01)
    assert slack.c.slack.context.slow_work.backlog > 0  # downloads are still waiting their turn
    await slack.interactive(slack.action_payload("time", "5001", message_ts=thread_ts), settle=False)
    t0 = time.monotonic()
    while not slack.fake.of("views.open"):  # behind the downloads, it would never open: they wait for the gate
        assert time.monotonic() - t0 < 60, "the modal waited behind the downloads"
        await asyncio.sleep(0.01)
    assert all(d.sent == 0 for d in slack.fake.downloads)  # it opened while every transfer was still stalled
    slack.fake.file_gate.set()
    await slack.settle()
    assert [o.kind for o in await ops(slack)].count("upload_attachment") == 6
