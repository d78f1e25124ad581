"""Setting Deskbridge up from Slack alone (issue 18 item 6): the Slack admin becomes the first Deskbridge
admin with /deskbridge link, help is for everyone, confirmations mention people properly, and every refusal
says what to do next."""

from __future__ import annotations

from sqlmodel import select

from core.chat import ChatUser
from store.db import Scope
from store.tables import Member, MemberChatIdentity
from tests.bot.slack.conftest import ADMIN, STRANGER, TECH


def _said(slack) -> str:
    hook = slack.fake.webhooks[-1]
    return hook["text"] + " " + str(hook.get("blocks"))


async def test_the_slack_admin_becomes_the_first_admin_and_links_the_others(slack):
    ws = slack.ws
    async with slack.c.db.write(Scope.workspace(ws)) as s:  # her PSA address is not her Slack address
        s.add(Member(workspace_id=ws, name="Ada Admin", email="ada@psa.example"))
        s.add(Member(workspace_id=ws, name="Carl Tech", email="carl@psa.example"))
    await slack.slash("/deskbridge", "link", user=ADMIN)  # her Slack e-mail matches no technician
    assert "No technician in your PSA" in _said(slack) and "/deskbridge link you@" in _said(slack)
    await slack.slash("/deskbridge", "link ada@psa.example", user=ADMIN)
    assert "first admin" in _said(slack) and "Next:" in _said(slack)
    async with slack.c.db.read(Scope.workspace(ws)) as s:
        ada = (await s.exec(select(Member).where(Member.email == "ada@psa.example"))).one()
        linked = (await s.exec(select(MemberChatIdentity).where(MemberChatIdentity.user_id == ADMIN))).one()
    assert ada.is_admin and linked.member_id == ada.id
    # now a Deskbridge admin herself, she links a colleague; the confirmation mentions them, never &lt;@…&gt;
    await slack.slash("/deskbridge", f"link <@{STRANGER}|stranger> carl@psa.example", user=ADMIN)
    hook = slack.fake.webhooks[-1]
    text = hook["blocks"][0]["text"]["text"]
    assert f"<@{STRANGER}>" in text and "&lt;@" not in text and "Carl Tech" in text


async def test_help_is_for_everyone_and_says_how_to_start(slack):
    await slack.slash("/deskbridge", "help", user=STRANGER, channel="C_NOWHERE")
    said = _said(slack)
    assert "Deskbridge commands" in said and "/deskbridge link" in said and "does not know you" not in said


async def test_an_unknown_user_is_told_how_to_set_up_while_there_is_no_admin(slack):
    await slack.slash("/tickets", "mine", user=STRANGER, channel="C_NOWHERE")
    assert "does not know you yet" in _said(slack) and "first admin" in _said(slack)


async def test_only_admins_link_themselves_to_another_address(slack):
    await slack.slash("/deskbridge", "link someone.else@psa.example", user=TECH)
    assert "only link yourself with the e-mail of your own chat profile" in _said(slack)


async def test_a_standalone_workspace_gets_its_first_technician_from_the_chat_profile(db, workspace_id):
    from core.chat import ChatService
    from core.workspaces import DirectoryService, WorkspaceService
    from store.crypto import CredentialCipher, generate_key

    chat = ChatService(db, cipher=CredentialCipher.from_keys([generate_key()]), workspaces=WorkspaceService(db),
                       directory=DirectoryService(db))
    user = ChatUser(platform="slack", team_id="T1", user_id="U_OWNER", channel_id="C1", name="Olga Owner")
    member, created = await chat.link_first_admin(workspace_id, user, "olga@msp.example")
    assert created and member.is_admin and member.name == "Olga Owner"
    assert await chat.has_admin(workspace_id)
    actor = await chat.member_actor(workspace_id, "slack", "T1", "U_OWNER")
    assert actor is not None and actor.is_admin and actor.member_id == member.id
