"""The `deskbridge` command: version, db, workspaces, settings, errors a person can act on."""

from __future__ import annotations

from typer.testing import CliRunner

from bot.cli import app

runner = CliRunner()




def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("deskbridge ")


def test_db_upgrade_and_current(env):
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout
    current = runner.invoke(app, ["db", "current"])
    applied, latest = current.stdout.splitlines()
    assert applied.split(":")[1].strip() == latest.split(":")[1].strip()


def test_workspace_lifecycle_and_errors(env):
    created = runner.invoke(app, ["workspace", "create", "acme-it", "--name", "Acme IT", "--timezone",
                                  "Europe/Berlin"])
    assert created.exit_code == 0, created.output
    listed = runner.invoke(app, ["workspace", "list"])
    assert "acme-it" in listed.stdout and "Europe/Berlin" in listed.stdout
    assert "default" in listed.stdout  # created by bootstrap
    dup = runner.invoke(app, ["workspace", "create", "acme-it", "--name", "again"])
    assert dup.exit_code == 1 and "already exists" in dup.output
    bad_tz = runner.invoke(app, ["workspace", "create", "x-it", "--name", "X", "--timezone", "Mars/Base"])
    assert bad_tz.exit_code == 1 and "IANA" in bad_tz.output
    bad_slug = runner.invoke(app, ["workspace", "create", "Bad Slug!", "--name", "X"])
    assert bad_slug.exit_code == 1 and "lowercase letters" in bad_slug.output
    setting = runner.invoke(app, ["workspace", "set", "first_reply_moves_to_in_progress", "on", "--workspace",
                                  "acme-it"])
    assert setting.exit_code == 0 and '"first_reply_moves_to_in_progress": true' in setting.stdout
    unknown = runner.invoke(app, ["workspace", "set", "colour", "blue"])
    assert unknown.exit_code == 1 and "Known settings" in unknown.output


def test_connection_add_unknown_kind_saves_nothing(env):
    result = runner.invoke(app, ["connection", "add", "nosuchpsa", "--name", "x", "--secret", "k=v"])
    assert result.exit_code == 1 and "Unknown PSA kind" in result.output
    listed = runner.invoke(app, ["connection", "list"])
    assert listed.exit_code == 0 and listed.stdout.strip() == ""


def test_secret_key_is_a_valid_key():
    from store.crypto import decode_key

    result = runner.invoke(app, ["secret-key"])
    assert result.exit_code == 0 and len(decode_key(result.stdout.strip())) == 32


def test_a_bad_environment_value_is_one_line_naming_the_variable(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "DESKBRIDGE_PORT": "99999", "DESKBRIDGE_OUTBOX_CONCURRENCY": "many",
           "DESKBRIDGE_SECRET_KEY": "should-never-be-printed", "DESKBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "sync", "status"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr and len(lines) == 2
    assert any(line.startswith("Error: DESKBRIDGE_PORT: got '99999'") and "65535" in line for line in lines)
    assert any(line.startswith("Error: DESKBRIDGE_OUTBOX_CONCURRENCY: got 'many'") for line in lines)
    assert "should-never-be-printed" not in done.stderr
