"""IMAP reader (stdlib imaplib, run in a worker thread): new messages by UID after a watermark.

Watermark "uidvalidity:last_uid". A changed UIDVALIDITY means the server renumbered the folder: the
folder is read again from the start (Message-IDs keep that from doubling tickets). `UID SEARCH UID n:*`
always returns the highest UID even when it is below n (RFC 3501), so results are filtered here.
Messages are fetched with BODY.PEEK[] (never marked read by us).
"""

from __future__ import annotations

import asyncio
import imaplib
import re

from connectors.mailbox import MailBatch, MailboxError, MailItem

_FETCH_UID = re.compile(rb"UID (\d+)")


class ImapReader:
    def __init__(self, *, host: str, port: int = 993, username: str, password: str, folder: str = "INBOX",
                 tls: bool = True, timeout: float = 30.0) -> None:
        self.host, self.port, self.username, self._password = host, port, username, password
        self.folder, self.tls, self.timeout = folder, tls, timeout

    async def fetch(self, watermark: str | None, limit: int) -> MailBatch:
        return await asyncio.to_thread(self._fetch, watermark, limit)

    async def aclose(self) -> None:
        return None

    def _connect(self) -> imaplib.IMAP4:
        try:
            if self.tls:
                return imaplib.IMAP4_SSL(self.host, self.port, timeout=self.timeout)
            return imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
        except (TimeoutError, OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"Could not reach the IMAP server {self.host}:{self.port} ({type(exc).__name__}).",
                               "Check the host, port and TLS setting, and that this server may connect out.") from None

    def _fetch(self, watermark: str | None, limit: int) -> MailBatch:
        conn = self._connect()
        try:
            try:
                conn.login(self.username, self._password)
            except imaplib.IMAP4.error:
                raise MailboxError("The IMAP server refused the login.",
                                   "Check the user name and password (an app password where MFA is on).",
                                   auth=True) from None
            status, _ = conn.select(self._quoted(self.folder), readonly=True)
            if status != "OK":
                raise MailboxError(f"The folder '{self.folder}' could not be opened.", "Check the folder name.")
            validity = (conn.response("UIDVALIDITY")[1] or [b"0"])[0]
            validity_text = validity.decode() if isinstance(validity, bytes) else str(validity)
            last = 0
            if watermark and watermark.split(":", 1)[0] == validity_text:
                last = int(watermark.split(":", 1)[1])
            status, data = conn.uid("SEARCH", f"UID {last + 1}:*")
            uids = sorted(int(u) for u in (data[0] or b"").split() if int(u) > last) if status == "OK" else []
            todo, items, failed = uids[:limit], [], False
            for uid in todo:
                status, parts = conn.uid("FETCH", str(uid), "(UID BODY.PEEK[])")
                raw = next((p[1] for p in parts if isinstance(p, tuple)), None)
                if status != "OK" or raw is None:  # stop this poll: the watermark stays before it, read next time
                    failed = True
                    break
                items.append(MailItem(str(uid), raw))
                last = uid
            return MailBatch(tuple(items), f"{validity_text}:{last}", more=not failed and len(uids) > len(items))
        except (OSError, imaplib.IMAP4.abort) as exc:
            raise MailboxError(f"The IMAP connection failed ({type(exc).__name__}).", "It is retried at the next poll.") from None
        finally:
            try:
                conn.logout()
            except Exception:  # noqa: S110 - closing a connection that may already be gone
                pass

    @staticmethod
    def _quoted(folder: str) -> str:
        return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
