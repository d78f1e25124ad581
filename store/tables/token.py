"""Short-lived PSA access tokens shared by every instance (HaloPSA: a new token may invalidate the old one)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from store.tables.base import created_field
from store.types import UTCDateTime


class PsaToken(SQLModel, table=True):
    """One bearer token per (tenant, API application): `key` is a hash of the connector's cache key, the token
    is encrypted (bound to its key), and minting is serialised by a `Lease` named after the key."""

    __tablename__ = "psa_token"

    key: str = Field(primary_key=True, max_length=64)
    ciphertext: bytes = Field(sa_type=sa.LargeBinary)
    key_id: str = Field(max_length=32)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = created_field()
