"""`@Deskbridge m365 grant @Someone` in Teams: the mention carries the person's `29:` id, technicians are linked
by their AAD id, so the conversation's roster (GET /v3/conversations/{id}/members/{29:id} on the Bot Connector)
names them: linked, by their AAD id; otherwise by the e-mail the roster gives. Someone the roster does not know
is refused with what to do instead; nothing is granted."""

from __future__ import annotations

from core.context import Actor
from store.db import Scope
from store.tables import Member
from tests.bot.teams.conftest import ADMIN, STRANGER, TECH


def grant(h, who_id: str, who_name: str, action: str = "grant") -> dict:
    body = h.activity(f"m365 {action} <at>{who_name}</at>", user=ADMIN)
    body["entities"].append({"type": "mention", "text": f"<at>{who_name}</at>",
                             "mentioned": {"id": who_id, "name": who_name}})
    return body


async def granted(h) -> list[str]:
    rows = await h.c.quick_actions.grants(Actor.system(h.ws))
    return sorted(str(m.email) for m, _ in rows)


async def add_admin(h) -> None:
    async with h.c.db.write(Scope.workspace(h.ws)) as s:  # Ada: a Deskbridge admin (linked by her Teams e-mail)
        s.add(Member(workspace_id=h.ws, name="Ada Admin", email="admin@acme-msp.example", is_admin=True))
    h.c.chat.invalidate()


async def test_an_admin_grants_and_revokes_by_mentioning_a_linked_technician(teams):
    await teams.say("help")  # Bob has used Deskbridge: linked by his AAD id
    await add_admin(teams)
    await teams.send(grant(teams, f"29:{TECH}", "Bob Tech"))
    assert "may now run Microsoft 365 quick actions" in teams.last_text()
    assert await granted(teams) == ["bob@acme-msp.example"]
    await teams.send(grant(teams, f"29:{TECH}", "Bob Tech", action="revoke"))
    assert "may no longer run" in teams.last_text()
    assert await granted(teams) == []


async def test_a_mentioned_person_who_never_linked_is_found_by_their_e_mail(teams):
    await add_admin(teams)
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:  # a technician account, never used in Teams
        s.add(Member(workspace_id=teams.ws, name="Stan Tech", email="someone@customer.example"))
    await teams.send(grant(teams, f"29:{STRANGER}", "Stranger"))
    assert "Stan Tech may now run" in teams.last_text()
    assert "someone@customer.example" in await granted(teams)


async def test_a_mention_the_roster_does_not_know_is_refused_with_what_to_do(teams):
    await add_admin(teams)
    await teams.send(grant(teams, "29:aad-ghost", "Ghost"))
    said = teams.last_text()
    assert "I could not look up Ghost in this conversation" in said and "m365 grant ana@msp.example" in said
    assert await granted(teams) == []


async def test_a_mentioned_person_without_a_technician_account_is_named_by_e_mail(teams):
    await add_admin(teams)
    await teams.send(grant(teams, f"29:{STRANGER}", "Stranger"))
    said = teams.last_text()
    assert "No technician 'someone@customer.example'" in said and "29:" not in said
    assert await granted(teams) == []
