"""Mailbox readers: IMAP (stdlib imaplib in a worker thread) and Microsoft Graph (httpx, delta query)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from connectors.mail.graph import GraphReader
from connectors.mail.imap import ImapReader
from connectors.mailbox import MailboxError, MailboxReader

KINDS = ("imap", "graph")


def build_reader(kind: str, config: Mapping[str, Any], *,
                 transport: httpx.AsyncBaseTransport | None = None) -> MailboxReader:
    """A reader for a stored mailbox configuration (the composition root hands this to core)."""
    if kind == "imap":
        return ImapReader(host=str(config["host"]), port=int(config.get("port") or 993),
                          username=str(config["username"]), password=str(config["password"]),
                          folder=str(config.get("folder") or "INBOX"), tls=bool(config.get("tls", True)))
    if kind == "graph":
        return GraphReader(mailbox=str(config["mailbox"]), tenant=str(config["tenant"]),
                           client_id=str(config["client_id"]), client_secret=str(config["client_secret"]),
                           graph_url=str(config.get("graph_url") or "https://graph.microsoft.com/v1.0"),
                           login_url=str(config.get("login_url") or "https://login.microsoftonline.com"),
                           transport=transport)
    raise MailboxError(f"'{kind}' is not a mailbox kind.", "Use imap or graph.")


__all__ = ["KINDS", "build_reader"]
