"""What both composition roots build the same way: the app's (bot/main.py) and the callback refresh worker
process's (bot/refresh_worker.py). Like them, it may import store/ and connectors/ (pyproject's import contracts)."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

from bot.settings import Settings
from connectors.halopsa.budget import RequestBudgets
from core.psa_tokens import DatabaseTokenCache
from store.crypto import CredentialCipher, generate_key
from store.db import Database


def _load_keys(settings: Settings) -> tuple[CredentialCipher, str | None, bytes]:
    """The credential cipher (creating a local key file, and a note saying so, when no key is configured) and
    the admin session signing key: an HMAC of the primary secret key with a fixed label, never the key itself."""
    note = None
    if settings.secret_key is not None:
        primary = settings.secret_key.get_secret_value()
    else:
        path = Path(settings.secret_key_file)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(generate_key())
            note = (f"No DESKBRIDGE_SECRET_KEY set: generated a local key in {path} to encrypt PSA credentials. "
                    "Back it up, or set DESKBRIDGE_SECRET_KEY in production.")
        primary = path.read_text().strip()
    old = [k.get_secret_value() for k in settings.secret_keys_old]
    session_key = hmac.new(primary.encode(), b"deskbridge admin session v1", hashlib.sha256).digest()
    return CredentialCipher.from_keys([primary, *old]), note, session_key


def connector_options(settings: Settings, db: Database, cipher: CredentialCipher) -> dict[str, dict[str, Any]]:
    """What each connector kind gets beside its connection: the request timeout; for HaloPSA the token cache
    every instance shares (a new Halo token may invalidate the old one) and this process's request budget
    per tenant (sync, outbox and webhooks' re-reads draw on one budget)."""
    timeout = settings.psa_request_timeout_seconds
    return {"connectwise": {"timeout": timeout}, "autotask": {"timeout": timeout},
            "halopsa": {"timeout": timeout, "budgets": RequestBudgets(),
                        "token_cache": DatabaseTokenCache(db, cipher, holder=settings.instance_id)}}
