"""Microsoft 365 quick-action grants on the admin page (/admin/m365): granted by e-mail, taken back, an unknown
e-mail refused with what to type, each change in the audit log; what the page grants is what QuickActions allows."""

from __future__ import annotations

import html

from sqlmodel import select

from core.context import Actor
from store.db import Scope
from store.enums import Origin
from store.tables import AuditLog
from tests.bot.admin.helpers import sign_in
from tests.bot.api.conftest import Api
from tests.factories import psa_backed


async def test_grant_and_take_back_quick_actions_on_the_page(api: Api):
    setup = await psa_backed(api.container.db, api.ws)
    bob = Actor(workspace_id=api.ws, origin=Origin.SLACK, member_id=setup.member_id, display="slack:U1 (Bob)")
    csrf = await sign_in(api)
    page = await api.client.get("/admin/m365")
    assert page.status_code == 200 and "No technician is granted yet" in page.text and 'href="/admin/m365"' in page.text
    bad = await api.client.post("/admin/m365/grant", data={"csrf": csrf, "email": "nobody@acme-msp.example"})
    assert bad.status_code == 400 and "No technician with the e-mail 'nobody@acme-msp.example'" in html.unescape(bad.text)
    assert "technician account" in bad.text and not await api.container.quick_actions.allowed(bob)
    r = await api.client.post("/admin/m365/grant", data={"csrf": csrf, "email": "BOB@acme-msp.example"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/m365?done=m365_granted"
    page = await api.client.get(r.headers["location"])
    assert "Quick actions granted." in page.text and "Bob Tech" in page.text and "bob@acme-msp.example" in page.text
    assert await api.container.quick_actions.allowed(bob)
    forged = await api.client.post("/admin/m365/revoke", data={"csrf": "wrong", "member": str(setup.member_id)})
    assert forged.status_code == 403 and await api.container.quick_actions.allowed(bob)
    r = await api.client.post("/admin/m365/revoke", data={"csrf": csrf, "member": str(setup.member_id)})
    assert r.status_code == 303 and not await api.container.quick_actions.allowed(bob)
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        actions = [a.action for a in (await s.exec(select(AuditLog).where(AuditLog.outcome == "changed")
                                                   .order_by(AuditLog.id))).all()]
    assert [a for a in actions if a.startswith("m365.")] == ["m365.grant", "m365.revoke"]  # not the forged one
