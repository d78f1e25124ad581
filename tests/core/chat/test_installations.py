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
