"""A chat team installing over OAuth never inherits an existing MSP workspace unless an admin reserved it."""

from __future__ import annotations

import pytest

from bot.main import bootstrap, build, settings_from_env
from core.errors import Conflict
from store.crypto import generate_key


@pytest.fixture
async def container(db_url, tmp_path):
    c = build(settings_from_env(database_url=db_url, sandbox="off", secret_key=generate_key(),
                                secret_key_file=tmp_path / "k", run_scheduler=False))
    await bootstrap(c)
    yield c
    await c.aclose()


async def test_unknown_team_gets_a_new_empty_workspace(container):
    default_ws = container.default_workspace_id
    inst = await container.chat.save_installation(platform="slack", team_id="T_OUTSIDER", bot_token="xoxb-1",
                                                  team_name="Outsider Inc")
    assert inst.workspace_id != default_ws
    slugs = {w.slug for w in await container.workspaces.list()}
    assert "slack-t-outsider" in slugs


async def test_reserved_team_installs_into_its_workspace(container):
    default_ws = container.default_workspace_id
    await container.chat.preauthorize("slack", "T_MSP", default_ws)
    reserved = await container.chat.installation("slack", "T_MSP")
    assert reserved is not None and reserved.bot_token is None  # not usable until installed
    inst = await container.chat.save_installation(platform="slack", team_id="T_MSP", bot_token="xoxb-2")
    assert inst.workspace_id == default_ws and inst.bot_token == "xoxb-2"
    other = await container.workspaces.create(slug="second-msp", name="Second")
    with pytest.raises(Conflict, match="another workspace"):
        await container.chat.preauthorize("slack", "T_MSP", other.id)



async def test_simultaneous_first_contacts_of_one_team_record_it_once(container, db_url, tmp_path):
    """Activities of a new Teams tenant at once on two instances (Teams refreshes a card for every viewer): one
    installation, every caller answered with it (on PostgreSQL a loser's insert hits the unique constraint and
    updates the winner's row instead)."""
    import asyncio

    from sqlmodel import select

    from store.db import Scope
    from store.tables import ChatInstallation

    other = build(settings_from_env(database_url=db_url, sandbox="off", secret_key=container.settings.secret_key,
                                    secret_key_file=tmp_path / "k2", run_scheduler=False, auto_migrate=False))
    ws, team = container.default_workspace_id, "11111111-2222-4333-8444-555555555555"
    try:
        got = await asyncio.gather(*[c.chat.save_installation(platform="teams", team_id=team, bot_token=None,
                                                              bot_user_id="bot", workspace_id=ws)
                                     for _ in range(10) for c in (container, other)])
    finally:
        await other.aclose()
    assert {i.workspace_id for i in got} == {ws} and {i.team_id for i in got} == {team}
    async with container.db.read(Scope.system_wide()) as s:
        rows = (await s.exec(select(ChatInstallation).where(ChatInstallation.platform == "teams"))).all()
    assert len(rows) == 1


async def test_the_cached_answer_is_the_loaded_one_and_goes_with_a_change(container):
    """`cached` (the Slack request path's no-task lookup) answers only what `installation` loaded and cached, and
    a change's answer once an installation changed."""
    chat = container.chat
    first = await chat.save_installation(platform="slack", team_id="T_CACHED", bot_token="xoxb-c1")
    assert chat.cached_installation("slack", "T_CACHED") == (True, first)  # the save re-read it
    chat.invalidate()
    assert chat.cached_installation("slack", "T_CACHED") == (False, None)
    loaded = await chat.installation("slack", "T_CACHED")
    assert loaded == first and chat.cached_installation("slack", "T_CACHED") == (True, loaded)
    assert chat.cached_installation("slack", "T_NONE") == (False, None)
    assert await chat.installation("slack", "T_NONE") is None
    assert chat.cached_installation("slack", "T_NONE") == (True, None)  # "not installed" is an answer too
    second = await chat.save_installation(platform="slack", team_id="T_CACHED", bot_token="xoxb-c2")
    hit, now = chat.cached_installation("slack", "T_CACHED")
    assert hit and now == second and now is not None and now.bot_token == "xoxb-c2"
    assert chat.cached_installation("slack", "T_NONE") == (False, None)  # a change clears every entry
