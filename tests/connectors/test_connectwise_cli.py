"""`deskbridge connection add connectwise …` checks the keys against (a loopback fake) ConnectWise first."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import app
from store.crypto import generate_key
from store.db import Database, Scope
from store.tables import PsaConnection
from tests.fakes.connectwise import FakeConnectWise

runner = CliRunner()


@pytest.fixture
def env(db_url: str, tmp_path, monkeypatch) -> dict[str, str]:  # type: ignore[no-untyped-def]
    values = {"DESKBRIDGE_DATABASE_URL": db_url, "DESKBRIDGE_SANDBOX": "off",
              "DESKBRIDGE_SECRET_KEY": generate_key(), "DESKBRIDGE_SECRET_KEY_FILE": str(tmp_path / "k")}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    return values


def _rows(db_url: str) -> list[PsaConnection]:
    async def read() -> list[PsaConnection]:
        db = Database(db_url)
        try:
            async with db.read(Scope.system_wide()) as s:  # test inspection across the one workspace
                return list((await s.exec(select(PsaConnection))).all())
        finally:
            await db.dispose()

    return asyncio.run(read())


def _args(fake: FakeConnectWise, root: str, private_key: str) -> list[str]:
    return ["connection", "add", "connectwise", "--name", "cw", "--set", f"site={root}",
            "--set", f"company_id={fake.company_id}", "--set", f"client_id={fake.client_id}",
            "--secret", f"public_key={fake.public_key}", "--secret", f"private_key={private_key}"]


def test_bad_keys_are_refused_with_the_psa_reason_and_nothing_saved(env: dict[str, str]) -> None:
    fake = FakeConnectWise()
    with fake.serve() as root:
        result = runner.invoke(app, _args(fake, root, "not-the-key"))
    assert result.exit_code == 1
    assert "Authentication failed: invalid API member keys" in result.output and "Nothing was saved" in result.output
    assert "not-the-key" not in result.output
    assert fake.count("GET /system/info") == 1
    assert _rows(env["DESKBRIDGE_DATABASE_URL"]) == []


def test_good_keys_are_saved_encrypted(env: dict[str, str]) -> None:
    fake = FakeConnectWise()
    with fake.serve() as root:
        result = runner.invoke(app, _args(fake, root, fake.private_key))
    assert result.exit_code == 0, result.output
    assert "Connected to Deskbridge Test MSP" in result.output
    [row] = _rows(env["DESKBRIDGE_DATABASE_URL"])
    assert row.kind == "connectwise" and row.settings["company_id"] == fake.company_id
    assert row.credentials_ciphertext and fake.private_key not in str(row.credentials_ciphertext)
    assert fake.private_key not in str(row.settings)


def test_a_missing_setting_and_an_unreachable_host_are_told_as_what_they_are(env: dict[str, str]) -> None:
    import socket

    fake = FakeConnectWise()
    missing = runner.invoke(app, ["connection", "add", "connectwise", "--name", "cw", "--set", "site=example.com",
                                  "--secret", "public_key=a", "--secret", "private_key=b"])
    assert missing.exit_code == 1
    assert "incomplete or invalid (client_id, company_id)" in missing.output
    assert "refused these credentials" not in missing.output
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    unreachable = runner.invoke(app, _args(fake, closed, fake.private_key))
    assert unreachable.exit_code == 1
    assert "Could not reach the connectwise server" in unreachable.output and "host name" in unreachable.output
    assert _rows(env["DESKBRIDGE_DATABASE_URL"]) == []


def test_connection_add_registers_the_psa_callbacks_itself(env: dict[str, str], monkeypatch) -> None:
    fake = FakeConnectWise()
    monkeypatch.setenv("DESKBRIDGE_PUBLIC_URL", "https://deskbridge.msp.example")
    with fake.serve() as root:
        # a stale callback to our host from an earlier install, and the MSP's own to another host
        fake.callbacks[1] = {"id": 1, "url": "https://deskbridge.msp.example/webhooks/9/old", "type": "ticket",
                             "level": "owner", "objectId": 1}
        fake.callbacks[2] = {"id": 2, "url": "https://other-tool.example/hook", "type": "ticket", "level": "owner",
                             "objectId": 1}
        added = runner.invoke(app, _args(fake, root, fake.private_key))
        assert added.exit_code == 0, added.output
        assert "PSA callbacks point at https://deskbridge.msp.example/webhooks/" in added.output
        [conn] = _rows(env["DESKBRIDGE_DATABASE_URL"])
        token = conn.settings["webhook_token"]
        ours = [c for c in fake.callbacks.values() if "deskbridge.msp.example" in c["url"]]
        assert ours and all(c["url"] == f"https://deskbridge.msp.example/webhooks/{conn.id}/{token}" for c in ours)
        assert 1 not in fake.callbacks and 2 in fake.callbacks  # stale one removed, the MSP's own untouched
        again = runner.invoke(app, ["connection", "callbacks", "cw"])  # idempotent housekeeping
        assert again.exit_code == 0 and "0 added" in again.output and "0 stale removed" in again.output


def test_without_a_public_url_the_admin_is_told_how(env: dict[str, str]) -> None:
    fake = FakeConnectWise()
    with fake.serve() as root:
        added = runner.invoke(app, _args(fake, root, fake.private_key))
        assert added.exit_code == 0 and "DESKBRIDGE_PUBLIC_URL" in added.output
        refused = runner.invoke(app, ["connection", "callbacks", "cw"])
    assert refused.exit_code == 1 and "DESKBRIDGE_PUBLIC_URL" in refused.output
    assert fake.callbacks == {}
