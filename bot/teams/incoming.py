"""What an activity says about where it came from: the sender, tenant, conversation, reply chain, and the text
as a person reads it. Pure functions of the activity (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.teams.poster import Target
from core.chat import ChatUser
from core.markup import teams_plain

PLATFORM = "teams"


@dataclass(frozen=True, slots=True)
class Incoming:
    """What one activity tells us about where it came from."""

    tenant: str
    user: ChatUser
    aad_id: str
    service_url: str
    conversation_id: str  # as received (a channel reply chain ends with ;messageid=<root>)
    base_conversation: str  # the channel/chat itself
    thread_root: str | None  # the reply chain's root activity id, in channels
    conversation_type: str  # personal | groupChat | channel
    team_id: str | None  # the team (channels only)
    shared: bool  # a shared channel (people of other organisations may read it)
    user_mri: str = ""  # the sender's Teams id (`29:…`), as a mention or a new 1:1 conversation names them

    @property
    def target(self) -> Target:
        return Target(self.conversation_id, self.service_url)


def message_text(activity: dict[str, Any]) -> str:
    """What the sender wrote, as a person reads it: the bot's own @mention removed (only the bot's: other
    people's mentions stay, as `@Name`), Teams' HTML turned into text (core.markup)."""
    text = str(activity.get("text") or "")
    bot_id = str((activity.get("recipient") or {}).get("id") or "")
    for entity in activity.get("entities") or []:
        if not isinstance(entity, dict) or entity.get("type") != "mention":
            continue
        if str((entity.get("mentioned") or {}).get("id") or "") == bot_id and entity.get("text"):
            text = text.replace(str(entity["text"]), "", 1)
    return teams_plain(text, str(activity.get("textFormat") or "plain")).strip()


def mentioned_people(activity: dict[str, Any]) -> list[tuple[str, str]]:
    """(id, name) of each person the message @mentions, in order; the bot's own mention is not one. Teams gives
    the mentioned user's `29:` id (the conversation's roster maps it to their AAD id and e-mail)."""
    bot_id = str((activity.get("recipient") or {}).get("id") or "")
    out = []
    for entity in activity.get("entities") or []:
        if not isinstance(entity, dict) or entity.get("type") != "mention":
            continue
        who = entity.get("mentioned") or {}
        uid = str(who.get("id") or "") if isinstance(who, dict) else ""
        if uid and uid != bot_id:
            out.append((uid, str(who.get("name") or "someone")))
    return out


def incoming(activity: dict[str, Any]) -> Incoming:
    conv = activity.get("conversation") or {}
    data = activity.get("channelData") or {}
    sender = activity.get("from") or {}
    cid = str(conv.get("id") or "")
    base, _, root = cid.partition(";messageid=")
    ctype = str(conv.get("conversationType") or ("channel" if data.get("channel") else "personal"))
    channel = str((data.get("channel") or {}).get("id") or base)
    tenant = str(conv.get("tenantId") or (data.get("tenant") or {}).get("id") or "")
    aad = str(sender.get("aadObjectId") or sender.get("id") or "")
    sender_tenant = str(sender.get("tenantId") or "") or None
    membership = str((data.get("channel") or {}).get("membershipType") or "")
    user = ChatUser(platform=PLATFORM, team_id=tenant, user_id=aad, channel_id=channel,
                    user_team_id=sender_tenant if sender_tenant and sender_tenant != tenant else None,
                    name=sender.get("name"), is_dm=ctype == "personal")
    return Incoming(tenant=tenant, user=user, aad_id=aad, service_url=str(activity.get("serviceUrl") or ""),
                    conversation_id=cid, base_conversation=base, thread_root=root or None, conversation_type=ctype,
                    team_id=str((data.get("team") or {}).get("id") or "") or None, shared=membership == "shared",
                    user_mri=str(sender.get("id") or "") or f"29:{aad}")
