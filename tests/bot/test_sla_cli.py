"""`deskbridge sla ...`: policies, calendars, holidays, explain, sweep, and errors a person can act on."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bot.cli import app

runner = CliRunner()




def ok(*args: str) -> str:
    result = runner.invoke(app, ["sla", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_policy_and_calendar_commands(env):
    shown = ok("policy", "show")
    assert "critical               15m           4h" in shown and "low                    24h          72h" in shown
    ok("calendar", "set", "west", "--tz", "America/Los_Angeles", "--hours", "mon-fri 07:00-18:00; sat 22:00-04:00",
       "--country", "US", "--subdiv", "CA", "--holiday", "2026-12-24")
    out = ok("policy", "set", "--target", "critical.resolution=3h", "--calendar", "west", "--thresholds", "50,100",
             "--state", "first_response.waiting=running", "--status-name", "Waiting on Vendor.resolution=running",
             "--reopen", "new_cycle")
    assert "critical               15m           3h" in out and "thresholds: 50%, 100%; reopen: new_cycle" in out
    assert "status 'waiting on vendor': resolution=running" in out and "(calendar 'west')" in out
    cal = ok("calendar", "show", "west")
    assert "mon-fri 07:00-18:00; sat 22:00-04:00" in cal and "US-CA" in cal and "2026-12-24" in cal
    hols = ok("calendar", "holidays", "west", "--year", "2026")
    assert "2026-03-31  Tue  Cesar Chavez Day" in hols and "2026-12-24  Thu  custom holiday" in hols
    assert "Evaluated 0 clocks" in ok("sweep")
    assert "No tickets breaching." in ok("breaching")


@pytest.mark.parametrize("args, message", [
    (["calendar", "set", "x", "--tz", "Mars/Base"], "is not an IANA time zone"),
    (["calendar", "set", "x", "--hours", "9-5"], "is not like 'mon-fri 08:00-17:00'"),
    (["policy", "set", "--calendar", "nope"], "There is no SLA calendar named 'nope'"),
    (["policy", "set", "--target", "critical=4h"], "is not like critical.resolution=4h"),
    (["policy", "set", "--target", "critical.resolution=soon"], "is not a duration"),
    (["policy", "set"], "Nothing to change."),
    (["explain", "42"], "Ticket #42 was not found."),
])
def test_errors_say_what_to_do(env, args, message):
    result = runner.invoke(app, ["sla", *args])
    assert result.exit_code != 0 and message in result.output
