"""`deskbridge ai train|status|settings|set|similar` against a real database."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from bot.cli import app
from core.workspaces import WorkspaceService
from store.db import Database
from tests.core.ai.test_service import seed

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def _seed(env) -> None:
    async def go() -> None:
        db = Database(env["DESKBRIDGE_DATABASE_URL"])
        try:
            [ws] = await WorkspaceService(db).list()
            await seed(db, ws.id)
        finally:
            await db.dispose()

    asyncio.run(go())


def test_status_train_settings_and_similar(env):
    first = invoke("ai", "status")
    assert first.exit_code == 0 and "No category model yet" in first.stdout
    assert "Similar tickets: hybrid (lexical + wordllama" in first.stdout  # the packaged dense model runs
    refused = invoke("ai", "train")
    assert refused.exit_code == 1 and "Close more tickets" in refused.output
    _seed(env)
    trained = invoke("ai", "train")
    assert trained.exit_code == 0, trained.output
    assert "Category model v1" in trained.stdout and "on 330 tickets, 3 categories" in trained.stdout
    assert "held-out accuracy: " in trained.stdout
    assert "Category model v2" in invoke("ai", "train").stdout
    assert "Category model v2" in invoke("ai", "status").stdout

    bad = invoke("ai", "set", "fill_threshold", "2")
    assert bad.exit_code == 1 and "at most 1" in bad.output
    assert "fill_threshold is now 0.9" in invoke("ai", "set", "fill_threshold", "0.9").stdout
    assert "fill_threshold: 0.9" in invoke("ai", "settings").stdout

    # A workspace-wide text search needs cross-customer on; a customer's own search does not.
    off = invoke("ai", "similar", "vpn tunnel drops")
    assert off.exit_code == 1 and "cross_customer" in off.output
    own = invoke("ai", "similar", "vpn tunnel drops", "--customer", "GLOBEX")
    assert own.exit_code == 0 and "#9002" in own.stdout and "#9001" not in own.stdout
    assert "GLOBEX-ONLY: rebooted their firewall fw01." in own.stdout
    invoke("ai", "set", "cross_customer", "on")
    both = invoke("ai", "similar", "vpn tunnel drops")
    assert "#9001" in both.stdout and "#9002" in both.stdout and "disagree" in both.stdout


def test_train_risk_and_at_risk(env):
    from tests.core.ai.test_risk import seed as seed_risk

    assert invoke("ai", "status").exit_code == 0  # creates the default workspace
    none = invoke("ai", "at-risk")
    assert none.exit_code == 0 and "No open ticket is at or above the risk threshold" in none.output

    async def go() -> None:
        db = Database(env["DESKBRIDGE_DATABASE_URL"])
        try:
            [ws] = await WorkspaceService(db).list()
            await seed_risk(db, ws.id)
        finally:
            await db.dispose()

    asyncio.run(go())
    trained = invoke("ai", "train-risk")
    assert trained.exit_code == 0 and "Escalation model v1: trained on 240 closed tickets" in trained.stdout
    listed = invoke("ai", "at-risk")
    assert listed.exit_code == 0
    lines = listed.stdout.strip().splitlines()
    assert lines[0].startswith("#1001 ") and "critical" in lines[0] and "Globex" in lines[0]
    assert not any(line.startswith("#1002 ") for line in lines)


def test_kb_import_search_and_refresh(env, tmp_path):
    empty = invoke("ai", "kb-refresh")
    assert empty.exit_code == 0 and "No KB articles yet" in empty.output and "kb-import" in empty.output
    missing = invoke("ai", "kb-import", str(tmp_path / "nope"))
    assert missing.exit_code == 1 and "is not a folder" in missing.output and "nothing was imported" in missing.output
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "printer.md").write_text("# Printer queue stuck\n\nRestart the print spooler service, then clear "
                                       "the spool folder.\n")
    imported = invoke("ai", "kb-import", str(folder))
    assert imported.exit_code == 0 and "Imported 1 Markdown article" in imported.output
    found = invoke("ai", "kb", "printer queue stuck again")
    assert found.exit_code == 0 and "Printer queue stuck" in found.output and "print spooler" in found.output
    none = invoke("ai", "kb", "new laptop for the intern")
    assert none.exit_code == 0 and "No KB article matches" in none.output
    refreshed = invoke("ai", "kb-refresh")
    assert refreshed.exit_code == 0 and "In the KB now: markdown 1" in refreshed.output
