"""The "Get help" message the bot pins in a customer channel (issue 21): what it says, and which one it is.

When a channel is bound to a customer (and the workspace takes requests from chat), the surface posts one
message there with a "Get help" button and pins it; the button opens a short form whose words become the
person's request (core/intake/requests.py, one ticket per form). One message per channel:
- the post is recorded (`chat_post`, kind `help`, the customer's audience, so sharing the channel never
  redacts it);
- binding again finds it and updates it in place (`current`); after a re-bind to another customer it
  is recorded as that customer's (`moved`);
- two binds at once may each post one: `remember` keeps the oldest, and the newer poster deletes its own;
- a message someone deleted is forgotten (`gone`) and posted again on the next bind;
- unbinding the customer deletes it (the surface) and forgets it.
The surface only posts, pins, updates and deletes; the words are here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select

from store.db import Database, Scope
from store.tables import ChatPost
from store.types import utcnow

KIND = "help"
TEXT = ("*Need help from IT?* Press *Get help*, tell us what is wrong, and we open a ticket for you. "
        "Its thread in this channel keeps you posted, and you can reply there.")
FALLBACK = "Need help from IT? Press Get help to open a ticket."
BUTTON = "Get help"
FORM_TITLE = "Get help"
FORM_LABEL = "What do you need help with?"
FORM_PLACEHOLDER = "For example: Outlook keeps asking for my password since this morning"
FORM_SUBMIT = "Send"
MAX_CHARS = 3000
EMPTY = "Write what you need help with."
EMPTY_HINT = "A sentence is enough; a technician will ask if they need more."
ONLY_END_USERS = "This button is for the customer's people to ask for help."
ONLY_END_USERS_HINT = "Technicians: open a ticket with /ticket new, it knows this channel's customer."
NOT_BOUND = "This channel no longer takes help requests."
NOT_BOUND_HINT = "Ask your IT provider where to ask for help now, or write to their support address."
REQUESTS_OFF = "Help requests from chat are turned off."
REQUESTS_OFF_HINT = "Write to your IT provider's support address, or ask them to turn requests on."
NOT_PINNED = ("The Get help message is posted here but could not be pinned ({error}). Pin it yourself "
              "(its ⋮ menu, Pin to channel), or give the app the pins:write scope and bind again.")


@dataclass(frozen=True, slots=True)
class HelpMessage:
    post_id: int
    message_ts: str
    customer_id: int | None


class HelpPosts:
    """The record of each channel's Get help message (table `chat_post`, kind `help`)."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self._clock = db, clock

    @staticmethod
    def _where(platform: str, team_id: str, channel_id: str) -> list[sa.ColumnElement[bool]]:
        return [col(ChatPost.platform) == platform, col(ChatPost.team_id) == team_id,
                col(ChatPost.channel_id) == channel_id, col(ChatPost.kind) == KIND,
                col(ChatPost.redacted_at).is_(None)]

    async def current(self, workspace_id: int, platform: str, team_id: str, channel_id: str) -> HelpMessage | None:
        """The channel's live Get help message (the oldest, should two binds have raced)."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            row = (await session.exec(select(ChatPost).where(*self._where(platform, team_id, channel_id))
                                      .order_by(col(ChatPost.id)).limit(1))).first()
        return HelpMessage(int(row.id), row.message_ts, row.customer_id) if row and row.id else None

    async def remember(self, workspace_id: int, platform: str, team_id: str, channel_id: str, message_ts: str,
                       customer_id: int | None) -> bool:
        """Record a message just posted; False when another bind's message was recorded first (the caller
        deletes its own, so the channel keeps one)."""
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            session.add(ChatPost(workspace_id=workspace_id, platform=platform, team_id=team_id, channel_id=channel_id,
                                 message_ts=message_ts, customer_id=customer_id, kind=KIND, audience="customer"))
            await session.flush()
            first = (await session.exec(select(ChatPost.message_ts).where(
                *self._where(platform, team_id, channel_id)).order_by(col(ChatPost.id)).limit(1))).first()
            if first != message_ts:
                await session.execute(sa.update(ChatPost).where(
                    col(ChatPost.platform) == platform, col(ChatPost.channel_id) == channel_id,
                    col(ChatPost.message_ts) == message_ts).values(redacted_at=self._clock()))
        return first == message_ts

    async def moved(self, workspace_id: int, post_id: int, customer_id: int | None) -> None:
        """The channel was bound again (maybe to another customer): the message is now that customer's."""
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            await session.execute(sa.update(ChatPost).where(col(ChatPost.id) == post_id)
                                  .values(customer_id=customer_id))

    async def gone(self, workspace_id: int, post_id: int) -> None:
        """The message was deleted (by us on unbind, or by someone in the channel): forget it."""
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            await session.execute(sa.update(ChatPost).where(col(ChatPost.id) == post_id)
                                  .values(redacted_at=self._clock()))
