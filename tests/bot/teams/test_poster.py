"""Outbound: the poster paces per conversation, retries what Teams says to retry (honouring Retry-After), and
refuses loudly otherwise; conversation references live in our database and survive a restart."""

from __future__ import annotations

import pytest

from bot.main import build
from bot.teams.poster import Pacer, PostRefused, Target, TeamsPoster, message
from tests.bot.teams.conftest import CHANNEL, TEAM, TENANT, teams_settings


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, s: float) -> None:
        self.calls.append(s)


async def test_429_is_retried_after_retry_after_then_posted(teams):
    sleeps = Sleeps()
    poster = TeamsPoster(teams.c.teams.sdk.api, sleep=sleeps)
    teams.fake.fail("create", status=429, retry_after=2, times=2)
    aid = await poster.post(Target(CHANNEL, teams.fake.service_url), message("hello"))
    assert aid and teams.fake.conversations[CHANNEL][aid]["text"] == "hello"
    assert sleeps.calls == [2, 2]
    assert len(teams.fake.of("create")) == 1  # the refused attempts were not stored


@pytest.mark.parametrize("status", [412, 502, 504])
async def test_other_retryable_statuses(teams, status):
    sleeps = Sleeps()
    poster = TeamsPoster(teams.c.teams.sdk.api, sleep=sleeps)
    teams.fake.fail("create", status=status, retry_after=None)
    await poster.post(Target(CHANNEL, teams.fake.service_url), message("x"))
    assert len(sleeps.calls) == 1 and 0 <= sleeps.calls[0] <= 0.5  # full jitter on the first window


async def test_a_refusal_is_raised_never_dropped(teams):
    poster = TeamsPoster(teams.c.teams.sdk.api, sleep=Sleeps(), attempts=3)
    teams.fake.fail("create", status=403, retry_after=None)
    with pytest.raises(PostRefused) as err:
        await poster.post(Target(CHANNEL, teams.fake.service_url), message("x"))
    assert err.value.status == 403
    teams.fake.fail("create", status=429, retry_after=1, times=5)
    with pytest.raises(PostRefused, match="after 3 attempts"):
        await poster.post(Target(CHANNEL, teams.fake.service_url), message("x"))


async def test_update_and_delete_reach_the_connector(teams):
    poster = TeamsPoster(teams.c.teams.sdk.api, sleep=Sleeps())
    t = Target(CHANNEL, teams.fake.service_url)
    aid = await poster.post(t, message("one"))
    await poster.update(t, aid, message("two"))
    assert teams.fake.conversations[CHANNEL][aid]["text"] == "two"
    await poster.delete(t, aid)
    assert aid not in teams.fake.conversations[CHANNEL]
    with pytest.raises(PostRefused) as err:
        await poster.update(t, aid, message("three"))
    assert err.value.status == 404


def test_cards_over_80_kb_are_refused_before_sending():
    with pytest.raises(PostRefused, match="80 KB"):
        message("big", {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock",
                                                                             "text": "x" * 90_000}]})


async def test_pacer_keeps_teams_windows_per_conversation():
    now = [0.0]
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = Pacer(clock=lambda: now[0], sleep=sleep)
    for _ in range(7):
        await pacer.wait("a")
    assert slept == []  # 7 per second are allowed
    await pacer.wait("b")
    assert slept == []  # another conversation does not wait for "a"
    await pacer.wait("a")
    assert slept and abs(sum(slept) - 1.0) < 1e-6  # the 8th in the same second waits for the window
    start = now[0]
    for _ in range(60):
        await pacer.wait("c")
    assert now[0] - start < 30  # 8 per 2 s: 60 calls fit in 15 s
    await pacer.wait("c")
    assert now[0] - start >= 30.0 - 1e-6  # the 61st waits for the 30-second window


async def test_conversation_refs_survive_a_restart(teams, db_url, tmp_path):
    await teams.say("help")
    other = build(teams_settings(db_url, tmp_path, teams.fake))
    try:
        ref = await other.teams.refs.get(teams.ws, tenant_id=TENANT, conversation_id=CHANNEL)
        assert ref is not None and ref.service_url == teams.fake.service_url
        assert ref.team_id == TEAM and ref.conversation_type == "channel"
        assert await other.teams.refs.forget(teams.ws, tenant_id=TENANT, conversation_id=CHANNEL)
        assert await other.teams.refs.get(teams.ws, tenant_id=TENANT, conversation_id=CHANNEL) is None
    finally:
        await other.aclose()


async def test_uninstall_forgets_the_conversation_install_offers_linking(teams):
    added = teams.activity(kind="installationUpdate", action="add")
    assert (await teams.send(added)).status_code == 200
    assert "link" in teams.last_text()
    assert await teams.c.teams.refs.get(teams.ws, tenant_id=TENANT, conversation_id=CHANNEL) is not None
    removed = teams.activity(kind="installationUpdate", action="remove")
    assert (await teams.send(removed)).status_code == 200
    assert await teams.c.teams.refs.get(teams.ws, tenant_id=TENANT, conversation_id=CHANNEL) is None
