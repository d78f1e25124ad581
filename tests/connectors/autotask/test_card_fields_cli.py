"""`deskbridge connection card-fields NAME FIELD…` (an admin's choice of the Autotask UDFs technicians see on
ticket cards) against a loopback fake: names are checked against the UDFs the sync read, an unknown one is
refused naming the valid ones with nothing changed, `--clear` shows none, and `connection show` says it."""

from __future__ import annotations

from typer.testing import CliRunner

from bot.cli import app
from tests.connectors.autotask.test_cli import _args, _rows, env  # noqa: F401 - the `env` fixture
from tests.fakes.autotask import FakeAutotask

__all__ = ["env"]
runner = CliRunner()


def test_an_admin_chooses_which_udfs_cards_show(env: dict[str, str]) -> None:  # noqa: F811
    fake = FakeAutotask()
    with fake.serve() as root:
        assert runner.invoke(app, _args(fake, fake.discovery_url(root))).exit_code == 0
        early = runner.invoke(app, ["connection", "card-fields", "autotask", "Customer PO"])
        assert early.exit_code == 1 and "run `deskbridge sync run`" in early.output  # nothing read yet
        synced = runner.invoke(app, ["sync", "run", "autotask"])
        assert synced.exit_code == 0, synced.output
        bad = runner.invoke(app, ["connection", "card-fields", "autotask", "Customer PO", "Cost centre"])
        ok = runner.invoke(app, ["connection", "card-fields", "autotask", "customer po"])
        shown = runner.invoke(app, ["connection", "show", "autotask"])
        [row] = _rows(env["DESKBRIDGE_DATABASE_URL"])
        cleared = runner.invoke(app, ["connection", "card-fields", "autotask", "--clear"])
        nothing = runner.invoke(app, ["connection", "card-fields", "autotask"])
    assert bad.exit_code == 1 and "has no ticket field 'Cost centre'" in bad.output
    assert "Fields it has: Customer PO" in bad.output  # our own marker UDF is not offered
    assert ok.exit_code == 0 and "Cards show: Customer PO" in ok.output
    assert row.settings["card_fields"] == ["Customer PO"]  # as Autotask spells it
    assert "card_fields" in shown.output and "Customer PO" in shown.output
    assert cleared.exit_code == 0 and "none of the PSA's own fields" in cleared.output
    assert "card_fields" not in _rows(env["DESKBRIDGE_DATABASE_URL"])[0].settings
    assert nothing.exit_code == 1 and "--clear" in nothing.output
