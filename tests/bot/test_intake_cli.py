"""`deskbridge intake ...`: a source's secret is shown once, settings and mappings are listed, the Datto
template is printed, and bad input says what to do."""

from __future__ import annotations

from typer.testing import CliRunner

from bot.cli import app

runner = CliRunner()


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_sources_secrets_settings_mappings_and_templates(env):
    out = ok("intake", "add-source", "ninja-main", "--kind", "ninjaone")
    [secret] = [line for line in out.splitlines() if line.startswith("dbwhsec_")]
    assert "/webhooks/alerts/ninjaone-" in out
    listed = ok("intake", "sources")
    assert "ninja-main" in listed and "/webhooks/alerts/ninjaone-" in listed and secret not in listed
    ok("intake", "set", "ninja-main", "on_resolve", "resolve")
    ok("intake", "set", "ninja-main", "severity.warning", "high")
    listed = ok("intake", "sources")
    assert "on_resolve=resolve" in listed and "'warning': 'high'" in listed
    rotated = ok("intake", "rotate-secret", "ninja-main")
    assert secret not in rotated and "dbwhsec_" in rotated

    bad = runner.invoke(app, ["intake", "set", "ninja-main", "on_resolve", "explode"])
    assert bad.exit_code == 1 and "note" in bad.output
    bad = runner.invoke(app, ["intake", "map", "org", "id", "7", "Nobody"])
    assert bad.exit_code == 1 and "No active customer" in bad.output
    bad = runner.invoke(app, ["intake", "add-source", "x", "--kind", "zabbix"])
    assert bad.exit_code == 1 and "events_v2" in bad.output

    assert "No mapping rules" in ok("intake", "mappings")
    assert "Triage is empty" in ok("intake", "triage")
    assert '"dedup_key": "datto:[alert_uid]"' in ok("intake", "template", "datto-trigger")
    assert '"event_action": "resolve"' in ok("intake", "template", "datto-resolve")


def test_mail_set_checks_first_polls_and_switches_off(env, monkeypatch):
    import asyncio
    import threading

    from tests.core.intake.test_mail import message
    from tests.fakes.imap_server import FakeImap

    server, loop = FakeImap(), asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)  # "eventually", on a loaded machine
    try:
        ok("workspace", "list")  # bootstraps the default workspace
        base = ["intake", "mail-set", "imap", "--host", "127.0.0.1", "--port", str(server.port), "--username",
                server.username, "--no-tls", "--secret-stdin"]
        bad = runner.invoke(app, base, input="wrong\n")
        assert bad.exit_code == 1 and "refused the login" in bad.output and "wrong" not in bad.output
        for test in (["intake", "mail-test"], ["intake", "mail", "test"]):  # both spellings
            bad = runner.invoke(app, test)
            assert bad.exit_code == 1 and "No mailbox is configured" in bad.output
        assert runner.invoke(app, base, input=server.password + "\n").exit_code == 0
        assert "can be read" in ok("intake", "mail-test")
        assert f"Mailbox {server.username}@127.0.0.1 can be read." in ok("intake", "mail", "test")
        server.password, old = "changed-by-the-mail-admin", server.password
        bad = runner.invoke(app, ["intake", "mail", "test"])
        assert bad.exit_code == 1 and "refused the login" in bad.output and "changed-by" not in bad.output
        server.password = old
        server.deliver(message(sender="nobody@unknown.example"))
        server.deliver(message(mid="<x2@x>", Auto_Submitted="auto-replied"))
        assert "2 message(s): 1 ignored, 1 triage." in ok("intake", "mail-poll")
        listed = ok("intake", "mail", "triage")
        assert "nobody@unknown.example" in listed and "(unknown sender)" in listed
        assert "triage: unknown sender." in ok("intake", "mail", "replay", listed.split("\t", 1)[0])
        assert "no longer polls" in ok("intake", "mail-psa-handles", "on")
        server.deliver(message(mid="<x3@x>"))
        assert "0 message(s): no new mail." in ok("intake", "mail-poll")
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)


def test_mail_triage_filters_assigns_and_discards(env):
    from sqlmodel import select

    from bot.cli.common import run_in
    from store.db import Scope
    from store.tables import Customer, MailReceipt
    from tests.core.intake.test_mail import message

    ok("workspace", "list")  # bootstraps the default workspace

    async def seed(c, ws):
        async with c.db.write(Scope.workspace(ws)) as s:
            s.add(Customer(workspace_id=ws, identifier="ACME", name="Acme Corp"))
        for i, sender in enumerate(("cara@newco.example", "spam@junk.example", "dan@else.example")):
            await c.mailboxes.intake.ingest(ws, message(sender=sender, subject=f"Mail {i}", mid=f"<cli{i}@x>"))

    run_in(None, seed)
    assert "No e-mail in triage matches." in ok("intake", "mail", "triage", "--why", "limit")
    bad = runner.invoke(app, ["intake", "mail", "triage", "--why", "later"])
    assert bad.exit_code == 1 and "not a reason mail waits" in bad.output
    listed = ok("intake", "mail", "triage", "--find", "newco")
    assert "cara@newco.example" in listed and "spam@" not in listed
    ids = {line.split("\t")[2]: line.split("\t")[0] for line in ok("intake", "mail", "triage").splitlines()}
    assert "a new ticket" in ok("intake", "mail", "assign", ids["cara@newco.example"], "--customer", "acme")
    neither = runner.invoke(app, ["intake", "mail", "assign", ids["dan@else.example"]])
    assert neither.exit_code == 1 and "customer or to a ticket" in neither.output
    assert "discarded" in ok("intake", "mail", "discard", ids["spam@junk.example"], "--reason", "spam")
    again = runner.invoke(app, ["intake", "mail", "discard", ids["spam@junk.example"]])
    assert again.exit_code == 1 and "not waiting in triage (it was discarded)" in again.output

    async def outcomes(c, ws):
        async with c.db.read(Scope.workspace(ws)) as s:
            return {r.sender: (r.outcome, r.reason) for r in (await s.exec(select(MailReceipt))).all()}

    got = run_in(None, outcomes)
    assert got["cara@newco.example"][0] == "created" and got["cara@newco.example"][1].startswith("assigned by cli:")
    assert got["spam@junk.example"][0] == "discarded" and got["dan@else.example"][0] == "triage"
    assert [line.split("\t")[2] for line in ok("intake", "mail", "triage").splitlines()] == ["dan@else.example"]


def test_mail_replay_anyway_takes_an_automatic_mail_a_person_wrote(env):
    from sqlmodel import select

    from bot.cli.common import run_in
    from store.db import Scope
    from store.tables import AuditLog, Contact, Customer, MailReceipt, Ticket
    from tests.core.intake.test_mail import message

    ok("workspace", "list")  # bootstraps the default workspace

    async def seed(c, ws):
        async with c.db.write(Scope.workspace(ws)) as s:
            acme = Customer(workspace_id=ws, identifier="ACME", name="Acme Corp")
            s.add(acme)
            await s.flush()
            s.add(Contact(workspace_id=ws, customer_id=acme.id, name="Ann Lee", email="ann@acme.example"))
        auto = await c.mailboxes.intake.ingest(ws, message(subject="Printer still jams", mid="<auto1@x>",
                                                           Auto_Submitted="auto-replied"))
        person = await c.mailboxes.intake.ingest(ws, message(sender="cara@newco.example", subject="Hi", mid="<p1@x>"))
        return auto.outcome, person.outcome

    assert run_in(None, seed) == ("ignored", "triage")

    async def receipts(c, ws):
        async with c.db.read(Scope.workspace(ws)) as s:
            return {r.message_id: r for r in (await s.exec(select(MailReceipt))).all()}

    ids = {k: str(v.id) for k, v in run_in(None, receipts).items()}
    listed = ok("intake", "mail", "triage", "--why", "automatic")
    assert ids["<auto1@x>"] in listed and "Auto-Submitted" in listed

    plain = runner.invoke(app, ["intake", "mail", "replay", ids["<auto1@x>"]])  # without --anyway: said what to do
    assert plain.exit_code == 1 and "automatic message" in plain.output
    assert f"deskbridge intake mail replay {ids['<auto1@x>']} --anyway" in plain.output
    wrong = runner.invoke(app, ["intake", "mail", "replay", ids["<p1@x>"], "--anyway"])  # not automatic
    assert wrong.exit_code == 1 and "not automatic mail" in wrong.output
    assert f"deskbridge intake mail replay {ids['<p1@x>']}`" in wrong.output

    out = ok("intake", "mail", "replay", ids["<auto1@x>"], "--anyway")
    assert f"E-mail {ids['<auto1@x>']} taken anyway: a new ticket (ticket id" in out
    twice = runner.invoke(app, ["intake", "mail", "replay", ids["<auto1@x>"], "--anyway"])
    assert twice.exit_code == 1 and "(it was created)" in twice.output

    async def after(c, ws):
        async with c.db.read(Scope.workspace(ws)) as s:
            tickets = (await s.exec(select(Ticket).where(Ticket.subject == "Printer still jams"))).all()
            audit = (await s.exec(select(AuditLog).where(AuditLog.action == "intake.mail.take_anyway"))).all()
            return [t.description for t in tickets], [(a.actor or "").split(":")[0] for a in audit]

    descriptions, actors = run_in(None, after)
    assert descriptions == ["It jams on every page.\n\nThanks, Ann"] and actors == ["cli"]
    assert run_in(None, receipts)["<p1@x>"].outcome == "triage"  # the refused --anyway changed nothing
