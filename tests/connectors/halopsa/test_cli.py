"""`deskbridge connection add halopsa …` checks the API application against (a loopback fake) Halo first:
refused keys, a missing outcome and an unreachable host are told as what they are, and nothing is saved."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import app
from store.crypto import generate_key
from store.db import Database, Scope
from store.tables import PsaConnection, PsaToken
from tests.fakes.halopsa import FakeHalo

runner = CliRunner()


@pytest.fixture
def env(db_url: str, tmp_path, monkeypatch) -> dict[str, str]:  # type: ignore[no-untyped-def]
    values = {"DESKBRIDGE_DATABASE_URL": db_url, "DESKBRIDGE_SANDBOX": "off",
              "DESKBRIDGE_SECRET_KEY": generate_key(), "DESKBRIDGE_SECRET_KEY_FILE": str(tmp_path / "k")}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    return values


def _rows(db_url: str) -> tuple[list[PsaConnection], list[PsaToken]]:
    async def read() -> tuple[list[PsaConnection], list[PsaToken]]:
        db = Database(db_url)
        try:
            async with db.read(Scope.system_wide()) as s:
                return (list((await s.exec(select(PsaConnection))).all()),
                        list((await s.exec(select(PsaToken))).all()))
        finally:
            await db.dispose()

    return asyncio.run(read())


def _args(root: str, secret: str, *extra: str, name: str = "halo") -> list[str]:
    return ["connection", "add", "halopsa", "--name", name, "--set", f"url={root}", "--set", "tenant=acme",
            "--secret", "client_id=deskbridge-client-id", "--secret", f"client_secret={secret}", *extra]


def test_good_keys_are_saved_encrypted_and_the_token_shared(env: dict[str, str]) -> None:
    fake = FakeHalo()
    with fake.serve() as root:
        result = runner.invoke(app, _args(root, fake.client_secret, "--set", "time_mode=timesheet"))
    assert result.exit_code == 0, result.output
    assert "Connected to 127.0.0.1 (HaloPSA, acting as Deskbridge API)" in result.output
    [row], tokens = _rows(env["DESKBRIDGE_DATABASE_URL"])
    assert row.kind == "halopsa" and row.settings == {"url": root, "tenant": "acme", "time_mode": "timesheet"}
    assert row.credentials_ciphertext and fake.client_secret.encode() not in row.credentials_ciphertext
    # the token minted by the check is kept (encrypted) for every instance to use
    assert len(tokens) == 1 and fake.token_history[-1].encode() not in tokens[0].ciphertext


def test_refused_keys_a_missing_outcome_and_a_dead_host_are_told_apart(env: dict[str, str]) -> None:
    import socket

    fake = FakeHalo()
    with fake.serve() as root:
        refused = runner.invoke(app, _args(root, "not-the-secret"))
        fake.outcomes[7]["outcome"] = "Agent Only"  # a tenant whose internal note outcome has another name
        no_outcome = runner.invoke(app, _args(root, fake.client_secret))
        named = runner.invoke(app, _args(root, fake.client_secret, "--set", "internal_outcome_id=7"))
    assert refused.exit_code == 1 and "refused these credentials" in refused.output
    assert "Invalid client" in refused.output and "not-the-secret" not in refused.output
    assert no_outcome.exit_code == 1 and "internal_outcome_id" in no_outcome.output
    assert "Nothing was saved" in no_outcome.output
    assert named.exit_code == 0, named.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    unreachable = runner.invoke(app, _args(closed, fake.client_secret, name="halo2"))
    assert unreachable.exit_code == 1 and "Could not reach the halopsa server" in unreachable.output
    rows, _ = _rows(env["DESKBRIDGE_DATABASE_URL"])
    assert [r.name for r in rows] == ["halo"]


def test_with_a_public_url_the_webhook_is_registered_at_once(env: dict[str, str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DESKBRIDGE_PUBLIC_URL", "https://deskbridge.example")
    fake = FakeHalo()
    with fake.serve() as root:
        added = runner.invoke(app, _args(root, fake.client_secret, "--secret", "webhook_secret=hook-secret"))
        again = runner.invoke(app, ["connection", "callbacks", "halo"])
    assert added.exit_code == 0, added.output
    assert "PSA callbacks point at https://deskbridge.example/webhooks/" in added.output and "1 added" in added.output
    assert again.exit_code == 0 and "0 added, 1 kept, 0 stale removed" in again.output
    [hook] = fake.webhooks.values()
    assert hook["url"].startswith("https://deskbridge.example/webhooks/") and hook["name"] == "Deskbridge deskbridge.example"
    assert (hook["authentication_type"], hook["basic_password"]) == (3, "hook-secret")
    assert sorted(n["eventno"] for n in fake.notifications.values()) == [3, 61]
    assert "hook-secret" not in added.output + again.output
