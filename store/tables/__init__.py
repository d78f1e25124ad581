"""All tables; importing this module registers them on SQLModel.metadata (for Alembic and tests)."""

from store.tables.admin import AdminLoginLink, AdminSession
from store.tables.ai import AiCategoryApply, AiDraft, AiModel, AiRisk, AiRiskAlert, KbArticle
from store.tables.api import ApiKey, IdempotencyKey
from store.tables.base import WorkspaceOwned
from store.tables.connection import PicklistItem, PriorityMapping, PsaConnection, StatusMapping
from store.tables.conversation import ChatConversation, HomeView
from store.tables.intake import Alert, AlertMapping, AlertReceipt, AlertSource, EndUserRequest, MailReceipt
from store.tables.m365 import CustomerM365Tenant, DocPlatform, M365ActionGrant, TicketM365Subject
from store.tables.outbox import AuditLog, OutboxOp
from store.tables.sla import SlaCalendar, SlaClock, SlaPolicy, SlaWarning
from store.tables.sync import (
    JobTick,
    JournaledEvent,
    Lease,
    PendingRefresh,
    ProcessedEvent,
    SyncCursor,
    SyncRun,
    WebAddress,
)
from store.tables.ticket import AttachmentBlob, ChatLink, ChatPost, Ticket, TimelineEntry
from store.tables.token import PsaToken
from store.tables.workspace import (
    ChannelBinding,
    ChatInstallation,
    Contact,
    Customer,
    Member,
    MemberChatIdentity,
    Workspace,
)

__all__ = [
    "AdminLoginLink",
    "AdminSession",
    "AiCategoryApply",
    "AiDraft",
    "AiModel",
    "AiRisk",
    "AiRiskAlert",
    "Alert",
    "AlertMapping",
    "AlertReceipt",
    "AlertSource",
    "ApiKey",
    "AttachmentBlob",
    "AuditLog",
    "ChannelBinding",
    "ChatConversation",
    "ChatInstallation",
    "ChatLink",
    "ChatPost",
    "Contact",
    "Customer",
    "CustomerM365Tenant",
    "DocPlatform",
    "EndUserRequest",
    "HomeView",
    "M365ActionGrant",
    "TicketM365Subject",
    "IdempotencyKey",
    "KbArticle",
    "JobTick",
    "JournaledEvent",
    "Lease",
    "MailReceipt",
    "Member",
    "MemberChatIdentity",
    "OutboxOp",
    "PendingRefresh",
    "PicklistItem",
    "PriorityMapping",
    "ProcessedEvent",
    "PsaConnection",
    "PsaToken",
    "SlaCalendar",
    "SlaClock",
    "SlaPolicy",
    "SlaWarning",
    "StatusMapping",
    "SyncCursor",
    "SyncRun",
    "Ticket",
    "TimelineEntry",
    "WebAddress",
    "Workspace",
    "WorkspaceOwned",
]
