"""Admin changes made in chat (through the real Slack app) are in the audit log as the person who made them."""

from __future__ import annotations

from sqlmodel import col, select

from store.db import Scope
from store.tables import AuditLog, Member
from tests.bot.slack.conftest import ADMIN, TECH


async def _changes(h) -> list[AuditLog]:
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return list((await s.exec(select(AuditLog).where(AuditLog.outcome == "changed")
                                  .order_by(col(AuditLog.id)))).all())


async def test_bind_unbind_and_ai_settings_from_chat_are_audited(slack):
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:  # a Deskbridge admin with the Slack admin's e-mail
        s.add(Member(workspace_id=slack.ws, name="Ada Admin", email="admin@acme-msp.example", is_admin=True))
    before = len(await _changes(slack))
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_AUDIT")
    await slack.slash("/deskbridge", "ai set fill_threshold 0.85", user=ADMIN, channel="C_TECHS")
    await slack.slash("/deskbridge", "unbind", user=ADMIN, channel="C_AUDIT")
    await slack.slash("/deskbridge", "bind sla", user=TECH, channel="C_AUDIT")  # refused: not an admin
    await slack.slash("/deskbridge", "ai set fill_threshold 7", user=ADMIN, channel="C_TECHS")  # refused: out of range
    await slack.settle()
    rows = (await _changes(slack))[before:]
    assert [r.action for r in rows] == ["binding.add", "ai.setting", "binding.remove"]
    assert all(r.actor.startswith(f"slack:{ADMIN}") for r in rows), [r.actor for r in rows]
    assert rows[0].request["channel"] == "C_AUDIT" and rows[0].request["kind"] == "customer"
    assert rows[0].request["customer"] == "ACME"
    assert rows[1].request == {"name": "fill_threshold", "value": 0.85}
    assert rows[2].request["removed"] == 1
