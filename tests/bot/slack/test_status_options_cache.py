"""A board's statuses in the status form are cached (issue 20 item 4) and a picklist refresh written in this
process (the sync's own statement shape: a Core upsert on picklist_item) is in the next form at once."""

from __future__ import annotations

from datetime import UTC, datetime

from core.sync.upsert import dialect_insert, table_of
from store.db import Scope
from store.tables import PicklistItem
from tests.bot.slack.conftest import SlackHarness
from tests.factories import BOARD


def _status_options(view: dict) -> list[str]:
    for block in view["blocks"]:
        el = block.get("element") or {}
        if el.get("action_id") == "status" or block.get("block_id") == "status":
            return [o["value"] for o in el.get("options", [])]
    raise AssertionError(f"no status field in {view['blocks']}")


async def test_a_refreshed_picklist_is_in_the_next_status_form(slack: SlackHarness):
    await slack.interactive(slack.action_payload("status", "5001"))
    first = _status_options(slack.last_view())
    assert "Escalated" not in first and "In Progress" in first
    loads = slack.c.chat_views.forms.statuses.loads
    await slack.interactive(slack.action_payload("status", "5003"))  # same board: from memory
    assert _status_options(slack.last_view()) == first and slack.c.chat_views.forms.statuses.loads == loads
    t = table_of(PicklistItem)
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:  # what the picklist refresh of a sync writes
        await s.execute(dialect_insert(s, t).values([{
            "workspace_id": slack.ws, "connection_id": slack.setup.connection_id, "kind": "status",
            "parent_external_id": BOARD, "external_id": "99", "name": "Escalated", "active": True, "sort_order": 99,
            "data": {"closed": False, "default": False}, "fetched_at": datetime.now(UTC)}]))
    await slack.interactive(slack.action_payload("status", "5001"))
    assert _status_options(slack.last_view()) == [*first, "Escalated"]
