"""`deskbridge connection add autotask …` checks the API user against (a loopback fake) Autotask first: refused
keys, an unknown API user, a missing setting and an unreachable zone lookup are told as what they are, nothing
is saved, and no secret is ever echoed; with a public URL the webhooks are registered at once."""

from __future__ import annotations

import asyncio
import socket

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import app
from store.crypto import generate_key
from store.db import Database, Scope
from store.tables import PsaConnection
from tests.fakes.autotask import FakeAutotask

runner = CliRunner()


@pytest.fixture
def env(db_url: str, tmp_path, monkeypatch) -> dict[str, str]:  # type: ignore[no-untyped-def]
    values = {"DESKBRIDGE_DATABASE_URL": db_url, "DESKBRIDGE_SANDBOX": "off",
              "DESKBRIDGE_SECRET_KEY": generate_key(), "DESKBRIDGE_SECRET_KEY_FILE": str(tmp_path / "k")}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("DESKBRIDGE_PUBLIC_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return values


def _rows(db_url: str) -> list[PsaConnection]:
    async def read() -> list[PsaConnection]:
        db = Database(db_url)
        try:
            async with db.read(Scope.system_wide()) as s:
                return list((await s.exec(select(PsaConnection))).all())
        finally:
            await db.dispose()

    return asyncio.run(read())


def _args(fake: FakeAutotask, lookup: str, *, secret: str | None = None, user: str | None = None,
          name: str = "autotask", code: bool = True) -> list[str]:
    args = ["connection", "add", "autotask", "--name", name, "--set", f"username={user or fake.username}",
            "--set", f"zone_lookup_url={lookup}", "--secret", f"secret={secret or fake.secret}"]
    return args + (["--secret", f"integration_code={fake.integration_code}"] if code else [])


def test_good_keys_are_checked_then_saved_encrypted(env: dict[str, str]) -> None:
    fake = FakeAutotask()
    with fake.serve() as root:
        result = runner.invoke(app, _args(fake, fake.discovery_url(root)))
    assert result.exit_code == 0, result.output
    assert "Connected to Test Zone 2 (Autotask, acting as Deskbridge API;" in result.output
    assert "workflow rule" in result.output  # what the API cannot do (e-mail contacts) is said when connecting
    assert "DESKBRIDGE_PUBLIC_URL" in result.output  # told how to get webhooks
    [row] = _rows(env["DESKBRIDGE_DATABASE_URL"])
    assert row.kind == "autotask" and row.settings == {"username": fake.username,
                                                        "zone_lookup_url": fake.discovery_url(root)}
    assert fake.secret.encode() not in row.credentials_ciphertext  # type: ignore[operator]
    assert fake.count("GET /ThresholdInformation") == 1  # the check read the tenant's usage


def test_connection_show_says_what_the_msp_must_configure_and_never_a_secret(env: dict[str, str]) -> None:
    fake = FakeAutotask()
    with fake.serve() as root:
        assert runner.invoke(app, _args(fake, fake.discovery_url(root))).exit_code == 0
        shown = runner.invoke(app, ["connection", "show", "autotask"])
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert "autotask (autotask, id 1, default)" in out and "tickets named at-<id>" in out
    assert f"username = {fake.username}" in out and "credentials: integration_code, secret" in out
    assert fake.secret not in out and fake.integration_code not in out
    assert "no sync has run yet" in out
    assert "note: Autotask's API cannot send its notification e-mails" in out and "Workflow Rules" in out
    missing = runner.invoke(app, ["connection", "show", "nope"])
    assert missing.exit_code != 0 and "nope" in missing.output


def test_each_failure_is_told_as_what_it_is_and_nothing_is_saved(env: dict[str, str]) -> None:
    fake = FakeAutotask()
    with fake.serve() as root:
        lookup = fake.discovery_url(root)
        refused = runner.invoke(app, _args(fake, lookup, secret="not-the-secret"))
        knocked = [r.key for r in fake.requests if r.zone is not None]
        unknown = runner.invoke(app, _args(fake, lookup, user="someone@msp.example"))
        missing = runner.invoke(app, _args(fake, lookup, code=False))
        malformed = runner.invoke(app, _args(fake, lookup, user="deskbridge-api"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/atservicesrest/v1.0/zoneInformation"
    unreachable = runner.invoke(app, _args(fake, closed))
    assert refused.exit_code == 1 and "refused these credentials" in refused.output
    assert "not-the-secret" not in refused.output and fake.secret not in refused.output
    assert unknown.exit_code == 1 and "does not know the API user 'someone@msp.example'" in unknown.output
    assert missing.exit_code == 1 and "integration_code" in missing.output and "--secret" in missing.output
    assert malformed.exit_code == 1 and "e-mail address" in malformed.output
    assert unreachable.exit_code == 1 and "Could not reach the autotask server" in unreachable.output
    assert all("Nothing was saved" in r.output for r in (refused, unknown, missing, unreachable))
    assert _rows(env["DESKBRIDGE_DATABASE_URL"]) == []
    assert knocked == ["GET /ThresholdInformation"]  # a refused API user is asked once, never hammered


def test_with_a_public_url_the_webhooks_are_registered_at_once(env: dict[str, str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DESKBRIDGE_PUBLIC_URL", "https://deskbridge.example")
    fake = FakeAutotask()
    with fake.serve() as root:
        added = runner.invoke(app, _args(fake, fake.discovery_url(root)) + ["--secret", "webhook_secret=hook-secret"])
        again = runner.invoke(app, ["connection", "callbacks", "autotask"])
    assert added.exit_code == 0, added.output
    assert "PSA callbacks point at https://deskbridge.example/webhooks/" in added.output and "2 added" in added.output
    assert again.exit_code == 0 and "0 added, 2 kept, 0 stale removed" in again.output
    for table in fake.webhooks.values():
        [hook] = table.values()
        assert hook["webhookUrl"].startswith("https://deskbridge.example/webhooks/") and hook["secretKey"] == "hook-secret"
        assert [r["resourceID"] for r in hook["excluded"]] == [fake.api_resource_id]
    assert "hook-secret" not in added.output + again.output
