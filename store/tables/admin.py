"""One-time admin sign-in links (`deskbridge admin link`): only a SHA-256 of the link's token is kept."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field

from store.tables.base import WorkspaceOwned, created_field
from store.types import UTCDateTime


class AdminLoginLink(WorkspaceOwned, table=True):
    """A bootstrap link to the admin pages: single use (`used_at`), short-lived (`expires_at`)."""

    __tablename__ = "admin_login_link"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)  # hex SHA-256 of the token in the link
    created_by: str = Field(default="cli", max_length=200)
    created_at: datetime = created_field()
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AdminSession(WorkspaceOwned, table=True):
    """A signed-in admin-page session. The cookie carries a random id; only its SHA-256 is kept here, so
    signing out (`revoked_at`) ends the session on every instance even for a copied cookie."""

    __tablename__ = "admin_session"

    id: int | None = Field(default=None, primary_key=True)
    sid_hash: str = Field(max_length=64, unique=True)  # hex SHA-256 of the id in the cookie
    who: str = Field(max_length=200)  # how the admin signed in: "link", "slack:U123 <e-mail>", "microsoft:…"
    member_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = created_field()
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
