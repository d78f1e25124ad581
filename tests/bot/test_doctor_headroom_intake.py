"""`deskbridge doctor` (issue 24), the rest: rate-limit headroom per PSA connection (429s of the last day from the
audit log and the sync runs; Autotask's hourly usage), e-mail intake (the mailbox read by the real IMAP and
Graph readers against loopback fakes, right and wrong credentials, mail in triage) and alert intake (sources'
secrets, public URL, events, triage). Real container, real HTTP to the fakes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.doctor import FAIL, OK, WARN, Check, diagnose, render
from bot.main import Deskbridge, bootstrap, build, settings_from_env
from core.rate_headroom import ADVICE
from store.crypto import generate_key
from tests.core.intake.conftest import events_v2
from tests.core.intake.test_mail import message
from tests.fakes.autotask import FakeAutotask
from tests.fakes.connectwise import FakeConnectWise
from tests.fakes.graph_mail import FakeGraphMail
from tests.fakes.imap_server import FakeImap


@asynccontextmanager
async def desk(db_url: str, tmp_path: Path, *, key: str | None = None, transport: Any = None,
               **kw: Any) -> AsyncIterator[Deskbridge]:
    settings = settings_from_env(database_url=db_url, sandbox="off", secret_key=key or generate_key(),
                                 secret_key_file=tmp_path / "k", run_scheduler=False, run_outbox_worker=False, **kw)
    container = build(settings, transport=transport)
    try:
        await bootstrap(container)
        yield container
    finally:
        await container.aclose()


def lines(checks: list[Check], area: str) -> list[tuple[str, str]]:
    return [(c.mark, c.text) for c in checks if c.area == area]


def fix_of(checks: list[Check], starts: str) -> str | None:
    return next(c.fix for c in checks if c.text.startswith(starts))


# ---------------------------------------------------------------- rate-limit headroom


async def test_connectwise_429s_of_the_last_day_are_counted_from_syncs_and_writes(db_url: str, tmp_path: Path) -> None:
    fake = FakeConnectWise()
    fake.add_ticket("Printer on fire")
    with fake.serve() as root:
        async with desk(db_url, tmp_path) as c:
            ws = c.default_workspace_id
            conn, _ = await c.connections.add(ws, kind="connectwise", name="cw", settings=fake.settings(root),
                                              credentials=fake.credentials())
            assert conn.id is not None
            await c.sync.run(conn.id)
            calm = lines(await diagnose(c), "psa:cw")
            assert (OK, "rate limits: no 429 (too many requests) answer in the last 24 h") in calm

            fake.fail_next(429, times=2, match="GET /service/tickets", retry_after=0)
            await c.sync.run(conn.id)  # retried after Retry-After: the sync still succeeds
            (ticket,) = (await c.queue.list(c.system_actor())).items
            await c.tickets.comment(c.system_actor(), ticket.ref, "Swapped the toner.", visibility="internal")
            fake.fail_next(429, times=1, match="POST /service/tickets", retry_after=0)
            await c.outbox_worker.drain(max_ops=1)
            checks = await diagnose(c)
    got = lines(checks, "psa:cw")
    hit = next(text for mark, text in got if text.startswith("rate limited"))
    assert hit.startswith("rate limited 3 time(s) in the last 24 h (2 during syncs, 1 on writes; last at ")
    assert (WARN, hit) in got and fix_of(checks, "rate limited") == ADVICE["connectwise"]
    assert fake.private_key not in render(checks)
    assert not any(c.mark == FAIL for c in checks if c.area == "psa:cw")  # slowed, not broken


async def test_autotask_usage_of_the_hour_against_the_pacing_and_stop_thresholds(db_url: str, tmp_path: Path) -> None:
    fake = FakeAutotask()
    fake.latency_scale = 0.0  # the fake's added latency above 50% is not what this test measures
    with fake.serve() as root:
        async with desk(db_url, tmp_path) as c:
            await c.connections.add(c.default_workspace_id, kind="autotask", name="at", settings=fake.settings(root),
                                    credentials=fake.credentials())
            readings = []
            for others in (1_000, 5_000, 1_000, 1_600):  # cumulative: 10%, 60%, 70%, 86% of 10,000 (+ our calls)
                fake.use_budget(others)
                checks = await diagnose(c)
                readings.append([ch for ch in checks if ch.area == "psa:at"])
    low, mid, _, high = (next((ch for ch in r if "API usage" in ch.text), r[0]) for r in readings)
    assert low.mark == OK and low.text.startswith("API usage this hour: 1,00") and "(10%)" in low.text
    assert "holds syncs at 80%" in low.text
    assert mid.mark == WARN and "(60%)" in mid.text and "Autotask slows every call" in mid.text
    assert mid.fix == ADVICE["autotask"]
    # Past the read stop Deskbridge's own throttle holds even the check: the line says so, with the way out.
    assert high.mark == FAIL and "rate limiting" in high.text and "86%" in high.text, high
    assert high.fix is not None and high.fix.endswith(ADVICE["autotask"])


# ---------------------------------------------------------------- e-mail intake


async def test_imap_mailbox_read_then_refused_after_a_password_change_and_mail_in_triage(db_url: str,
                                                                                         tmp_path: Path) -> None:
    imap = FakeImap()
    await imap.start()
    try:
        async with desk(db_url, tmp_path) as c:
            ws = c.default_workspace_id
            cfg = {"host": "127.0.0.1", "port": imap.port, "username": imap.username, "password": imap.password,
                   "tls": False}
            await c.mailboxes.configure(ws, "imap", cfg)
            imap.deliver(message(sender="Stranger <who@nowhere.example>"))  # no such contact: triage, kept
            assert (await c.mailboxes.poll(ws)).outcomes == {"triage": 1}
            good = await diagnose(c)
            old_password, imap.password = imap.password, "changed-by-the-mail-admin"
            bad = await diagnose(c)
    finally:
        await imap.stop()
    name = f"mailbox {imap.username}@127.0.0.1 (imap)"
    assert lines(good, "mail intake") == [
        (OK, f"{name} can be read; new mail becomes tickets each minute"),
        (WARN, "1 e-mail(s) of the last 30 days wait in triage (unknown sender, or refused)")]
    [(mark, text)] = [x for x in lines(bad, "mail intake") if x[0] != WARN]
    assert mark == FAIL and text.startswith(f"{name} cannot be read: ") and "refused the login" in text
    fix = fix_of(bad, f"{name} cannot be read") or ""
    assert "app password" in fix and fix.endswith("`deskbridge intake mail-set`, then `deskbridge intake mail-test`.")
    assert old_password not in render(bad) and "changed-by-the-mail-admin" not in render(bad)
    assert render(bad).splitlines()[-1] == "1 problem to fix before going live."


async def test_graph_mailbox_with_a_revoked_secret_fails_unless_the_psa_takes_the_mail(db_url: str,
                                                                                       tmp_path: Path) -> None:
    graph = FakeGraphMail()
    await graph.start()
    try:
        async with desk(db_url, tmp_path) as c:
            ws = c.default_workspace_id
            cfg = {"mailbox": graph.mailbox, "tenant": graph.tenant, "client_id": graph.client_id,
                   "client_secret": graph.client_secret, "graph_url": f"{graph.base}/v1.0",
                   "login_url": f"{graph.base}/login"}
            await c.mailboxes.configure(ws, "graph", cfg)
            good = lines(await diagnose(c), "mail intake")
            graph.client_secret = "a-new-secret-in-entra"  # the old one was revoked
            bad = await diagnose(c)
            await c.mailboxes.set_psa_handles_mail(ws, True)
            handed_over = lines(await diagnose(c), "mail intake")
    finally:
        await graph.stop()
    assert good == [(OK, "mailbox help@msp.example (graph) can be read; new mail becomes tickets each minute")]
    [(mark, text)] = lines(bad, "mail intake")
    assert mark == FAIL and text.startswith("mailbox help@msp.example (graph) cannot be read: ")
    assert cfg["client_secret"] not in render(bad)
    assert handed_over == [(OK, "mailbox help@msp.example (graph): the PSA's own mail connector takes the mail; "
                                "Deskbridge does not poll")]


async def test_no_mailbox_and_no_alert_source_means_no_intake_lines(db_url: str, tmp_path: Path) -> None:
    async with desk(db_url, tmp_path) as c:
        checks = await diagnose(c)
    assert not [ch for ch in checks if ch.area in ("mail intake", "alert intake")]


# ---------------------------------------------------------------- alert intake


async def test_alert_sources_secret_url_events_and_triage(db_url: str, tmp_path: Path) -> None:
    key = generate_key()
    async with desk(db_url, tmp_path, key=key) as c:
        ws = c.default_workspace_id
        info, secret = await c.alert_sources.add(ws, name="pd-main", kind="events_v2")
        fresh = await diagnose(c)
        body = json.dumps(events_v2(org_name="Initech")).encode()  # no such customer: triage
        await c.alert_intake.ingest(info.key, {"x-deskbridge-secret": secret}, body)
        await c.alert_sources.add(ws, name="ninja-old", kind="ninjaone")
        await c.alert_sources.set_option(ws, "ninja-old", "enabled", "off")
        later = await diagnose(c)
    public = "https://desk.example.com"
    async with desk(db_url, tmp_path, key=generate_key(), public_url=public) as other_key:  # the key was lost
        lost = await diagnose(other_key)

    assert lines(fresh, "alert intake") == [
        (OK, f"source pd-main (events_v2): secret set; posts to {{public url}}{info.path}; no event received yet"),
        (FAIL, "no DESKBRIDGE_PUBLIC_URL: senders cannot reach /webhooks/alerts/…")]
    assert lines(later, "alert intake") == [
        (WARN, "source ninja-old (ninjaone) is disabled: its alerts are refused"),
        (OK, f"source pd-main (events_v2): secret set; posts to {{public url}}{info.path}; last event 0 min ago"),
        (FAIL, "no DESKBRIDGE_PUBLIC_URL: senders cannot reach /webhooks/alerts/…"),
        (WARN, "1 alert(s) wait in triage: no rule placed them with a customer")]
    assert fix_of(later, "source ninja-old") == "`deskbridge intake set ninja-old enabled on` when it should take " \
                                                "alerts again."
    assert "`deskbridge intake triage` lists them" in (fix_of(later, "1 alert(s) wait in triage") or "")
    broken = [x for x in lines(lost, "alert intake") if x[0] == FAIL]
    assert broken == [(FAIL, "source ninja-old (ninjaone): its secret cannot be decrypted with this secret key"),
                      (FAIL, "source pd-main (events_v2): its secret cannot be decrypted with this secret key")]
    assert fix_of(lost, "source pd-main") == ("Give it a new secret with `deskbridge intake rotate-secret pd-main` "
                                              "and paste it into the sender's webhook.")
    assert secret not in render(later) and secret not in render(lost) and key not in render(lost)


async def test_halopsa_tenant_limit_429s_name_the_tenant_wide_budget(db_url: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from tests.fakes.halopsa import FakeHalo
    from tests.fakes.halopsa_http import HaloClock

    fake = FakeHalo(clock=HaloClock(datetime.now(UTC)))  # in-process transport: real httpx, the fake's answers
    fake.add_ticket("VPN drops every hour", client_id=12, user_id=501)
    async with desk(db_url, tmp_path, transport=fake.transport()) as c:
        conn, _ = await c.connections.add(c.default_workspace_id, kind="halopsa", name="halo",
                                          settings=fake.settings(), credentials=fake.credentials())
        assert conn.id is not None
        fake.fail_next(429, times=1, match="GET /api/Tickets", retry_after=0)
        assert (await c.sync.run(conn.id)).ok  # retried after Retry-After
        checks = await diagnose(c)
    hit = next(ch for ch in checks if ch.area == "psa:halo" and ch.text.startswith("rate limited"))
    assert hit.mark == WARN and hit.text.startswith("rate limited 1 time(s) in the last 24 h (1 during syncs; last at")
    assert hit.fix == ADVICE["halopsa"] and "300 requests per 5 minutes" in hit.fix
