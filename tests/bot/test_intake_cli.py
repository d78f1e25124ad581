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
