"""Admin changes made from the CLI are in the audit log, as the shell user; a refused change leaves no row.
(The pages' changes: tests/bot/admin; chat's: tests/bot/slack/test_admin_audit_chat.py.)"""

from __future__ import annotations

import getpass
import json

import sqlalchemy as sa
from typer.testing import CliRunner

from bot.cli import app
from store.db import sync_url

runner = CliRunner()


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def changes(db_url: str) -> list[tuple[str, str, str]]:
    engine = sa.create_engine(sync_url(db_url))
    try:
        with engine.connect() as conn:
            return [(r.action, r.actor, r.request if isinstance(r.request, str) else json.dumps(r.request))
                    for r in conn.execute(sa.text(
                "SELECT action, actor, request FROM audit_log WHERE outcome = 'changed' ORDER BY id"))]
    finally:
        engine.dispose()


def test_cli_changes_are_audited_as_the_shell_user(env, db_url):
    ok("sla", "calendar", "set", "west", "--tz", "America/Los_Angeles", "--hours", "mon-fri 07:00-18:00")
    ok("sla", "policy", "set", "--target", "critical.resolution=3h", "--calendar", "west")
    refused = runner.invoke(app, ["sla", "policy", "set", "--calendar", "nope"])
    assert refused.exit_code != 0 and "There is no SLA calendar named 'nope'" in refused.output
    out = ok("apikey", "create", "billing-sync", "--scope", "read")
    key = next(w for w in out.split() if w.startswith("dbk_"))
    ok("apikey", "revoke", "billing-sync")
    out = ok("intake", "add-source", "ninja-main", "--kind", "ninjaone")
    secret = next(line for line in out.splitlines() if line.startswith("dbwhsec_"))
    ok("intake", "set", "ninja-main", "on_resolve", "resolve")
    rotated = ok("intake", "rotate-secret", "ninja-main")
    new_secret = next(line for line in rotated.splitlines() if line.startswith("dbwhsec_"))
    ok("ai", "set", "fill_threshold", "0.9")
    rows = changes(db_url)
    assert [a for a, _, _ in rows] == ["sla.calendar", "sla.policy", "apikey.create", "apikey.revoke",
                                       "intake.source.add", "intake.source.set", "intake.source.rotate", "ai.setting"]
    assert {who for _, who, _ in rows} == {f"cli:{getpass.getuser()}"}
    assert json.loads(rows[1][2]) == {"scope": "workspace", "replace": False, "settings": {
        "targets": {"critical": {"resolution": 10800}}, "calendar": "west"}}  # what was set, as stored
    text = " ".join(r for _, _, r in rows)
    for secret_value in (key, key.split("_", 2)[2], secret, new_secret):
        assert secret_value not in text


def test_cli_connection_add_is_audited_without_its_keys(env, db_url):
    """`connection add` goes through the same ConnectionService.add as the admin page: one row, key names only."""
    ok("connection", "add", "sandbox", "--name", "sb-audit", "--secret", "api_key=sandbox", "--no-default")
    refused = runner.invoke(app, ["connection", "add", "sandbox", "--name", "sb-audit"])
    assert refused.exit_code != 0 and "already exists" in refused.output and "connection reauth" in refused.output
    rows = [r for r in changes(db_url) if r[0] == "connection.add"]
    assert len(rows) == 1 and rows[0][1] == f"cli:{getpass.getuser()}"
    assert json.loads(rows[0][2]) == {"kind": "sandbox", "name": "sb-audit", "default": False, "settings": [],
                                      "stored_encrypted": ["api_key"]}  # the key's name, not its value
