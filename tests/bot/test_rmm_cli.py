"""`deskbridge rmm ...` and the link templates from `deskbridge workspace set|settings`: the webhook secret is
generated and shown once, or read from stdin or the environment, and never echoed or shown again."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from bot.cli import app
from core.alert_webhooks import AlertWebhookService
from core.workspaces import WorkspaceService
from store.crypto import CredentialCipher
from store.db import Database

runner = CliRunner()
URL = "https://bridge.example.com/deskbridge?sig=url-signature-123"


def ok(*args: str, **kw) -> str:
    result = runner.invoke(app, list(args), **kw)
    assert result.exit_code == 0, result.output
    return result.stdout


def _stored(env) -> tuple[str, str]:
    """The URL and secret as stored (decrypted with the instance's key)."""

    async def read() -> tuple[str, str]:
        db = Database(env["DESKBRIDGE_DATABASE_URL"])
        try:
            service = AlertWebhookService(db, cipher=CredentialCipher.from_keys([env["DESKBRIDGE_SECRET_KEY"]]))
            [ws] = await WorkspaceService(db).list()
            target = await service._target(ws.id)
            assert target is not None
            return target
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_set_webhook_generates_reads_and_never_echoes_the_secret(env, monkeypatch):
    assert "(not set" in ok("rmm", "show")
    out = ok("rmm", "set-webhook", "--url", URL)
    [secret] = [line for line in out.splitlines() if line.startswith("dbwhsec_")]  # generated, shown once
    assert len(secret) > 40 and "https://bridge.example.com/deskbridge?…" in out and "url-signature" not in out
    assert _stored(env) == (URL, secret)
    shown = ok("rmm", "show")
    assert "bridge.example.com/deskbridge?…" in shown and secret not in shown and "url-signature" not in shown

    mine = "my-own-webhook-secret-from-a-vault-0001"
    out = ok("rmm", "set-webhook", "--url", URL, "--secret-stdin", input=mine + "\n")
    assert mine not in out and "dbwhsec_" not in out
    assert _stored(env) == (URL, mine)

    monkeypatch.setenv("DESKBRIDGE_RMM_WEBHOOK_SECRET", "secret-from-the-environment-0002")
    out = ok("rmm", "set-webhook", "--url", URL)
    assert "secret-from-the-environment" not in out and "dbwhsec_" not in out
    assert (_stored(env))[1] == "secret-from-the-environment-0002"

    bad = runner.invoke(app, ["rmm", "set-webhook", "--url", "http://bridge.example.com/x"])
    assert bad.exit_code == 1 and "must use https://" in bad.output
    empty = runner.invoke(app, ["rmm", "set-webhook", "--url", URL, "--secret-stdin"], input="\n")
    assert empty.exit_code == 1 and "No secret on stdin" in empty.output
    assert "Alert action webhook removed." in ok("rmm", "clear-webhook")
    assert "(not set" in ok("rmm", "show")


def test_link_templates_are_set_shown_and_refused_from_the_cli(env):
    ok("workspace", "set", "rmm_device_url", "https://rmm.example.com/devices/{ref}")
    shown = ok("workspace", "settings")
    assert "https://rmm.example.com/devices/{ref}" in shown and "runbook_url" in shown
    assert "https://rmm.example.com/devices/{ref}" in ok("rmm", "show")
    bad = runner.invoke(app, ["workspace", "set", "runbook_url", "https://wiki.example.com/{site}"])
    assert bad.exit_code == 1 and "unknown placeholder {site}" in bad.output and "e.g. https://" in bad.output
    ok("workspace", "set", "rmm_device_url", "off")
    assert "https://rmm.example.com/devices/{ref}" not in ok("workspace", "settings")


def test_workspace_admin_marks_a_technician_and_refuses_unknown_addresses(env):
    from core.workspaces import DirectoryService

    async def add() -> None:
        db = Database(env["DESKBRIDGE_DATABASE_URL"])
        try:
            [ws] = await WorkspaceService(db).list()
            await DirectoryService(db).add_member(ws.id, name="Ana Tech", email="ana@acme-msp.example")
        finally:
            await db.dispose()

    ok("workspace", "list")  # creates the default workspace
    asyncio.run(add())
    assert '"is_admin": true' in ok("workspace", "admin", "ana@acme-msp.example")
    assert '"is_admin": false' in ok("workspace", "admin", "ana@acme-msp.example", "--off")
    bad = runner.invoke(app, ["workspace", "admin", "nobody@example.com"])
    assert bad.exit_code != 0 and "No technician has the e-mail" in bad.output


def test_test_webhook_without_one_says_how_to_set_it(env):
    bad = runner.invoke(app, ["rmm", "test-webhook"])
    assert bad.exit_code != 0 and "No alert action webhook" in bad.output and "rmm set-webhook" in bad.output
