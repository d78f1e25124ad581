"""Chat: everything every chat surface (Slack, Teams, the console) shares, and nothing that knows a platform.

Modules, bottom to top (the import-linter layers contract in pyproject.toml keeps this order):
- models.py: ChatUser, Installation, ChannelInfo, ThreadPost; cache.py: the short-lived lookup cache.
- visibility.py: who may see what (audience, may_post_ticket, note_visible_in, for_customer, ...).
- grammar.py: the one command grammar (`/tickets ...`, `/ticket N`, `/deskbridge ...`, thread messages).
- text.py: user-facing wording shared by surfaces (help, confirmations, errors).
- installations.py, bindings.py, identity.py, threads.py: the chat state (tables chat_installation,
  channel_binding, member_chat_identity, chat_link); posts.py: what the bot posted (chat_post), redactions.
- home_views.py: whose App Home / personal view is open and the page it shows (home_view), shared by every
  app instance.
- sla_info.py, cards.py, forms.py: the ticket card and the forms; files.py: files dropped into threads.
- service.py: the facades surfaces hold, ChatService (state) and ChatViews (cards and forms).
- admin.py, writes.py, runner.py: running commands, forms, thread messages and card actions.

`from core.chat import X` is how other layers use it.
"""

from core.chat import grammar
from core.chat.files import ChatFile
from core.chat.models import ChannelInfo, ChatUser, Installation, ThreadPost
from core.chat.posts import ChatPosts, PostRecord, Redaction, RedactionPlan
from core.chat.runner import ChatCommands, ChatRunner, View
from core.chat.service import ChatService, ChatViews
from core.chat.sla_info import PsaDueDates, SlaInfo
from core.chat.text import error_view
from core.chat.visibility import (
    CUSTOMER_CARD,
    DELETE,
    audience,
    card_audience,
    customer_author,
    failures_visible_in,
    for_customer,
    may_post_ticket,
    may_show_tickets,
    note_visible_in,
    redaction_for,
    require_admin,
    seen_with,
    with_scope,
)
from core.chat.writes import Submitted, ThreadWrite

__all__ = [
    "CUSTOMER_CARD", "DELETE", "ChannelInfo", "ChatCommands", "ChatFile", "ChatPosts", "ChatRunner", "ChatService",
    "ChatUser", "ChatViews", "Installation", "PostRecord", "PsaDueDates", "Redaction", "RedactionPlan", "SlaInfo",
    "Submitted", "ThreadPost", "ThreadWrite", "View", "audience", "card_audience", "error_view",
    "customer_author", "failures_visible_in", "for_customer", "grammar", "may_post_ticket", "may_show_tickets", "note_visible_in",
    "redaction_for", "require_admin", "seen_with", "with_scope",
]
