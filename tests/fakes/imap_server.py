"""A loopback IMAP4rev1 server, enough for a mail reader: LOGIN, SELECT/EXAMINE (with UIDVALIDITY), UID
SEARCH, UID FETCH BODY.PEEK[], NOOP, LOGOUT. Behaves like real servers where readers go wrong: `UID n:*`
always includes the highest UID even below n; a wrong password is `NO [AUTHENTICATIONFAILED]`; UIDVALIDITY
can be changed (a renumbered folder); `fail_fetch` makes one UID FETCH answer NO.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class FakeImap:
    username: str = "help@msp.example"
    password: str = "imap-password-1"
    uidvalidity: int = 1
    messages: dict[int, bytes] = field(default_factory=dict)  # uid -> raw
    next_uid: int = 1
    fail_fetch: set[int] = field(default_factory=set)
    logins: int = 0
    port: int = 0
    _server: asyncio.AbstractServer | None = None

    def deliver(self, raw: bytes) -> int:
        uid = self.next_uid
        self.messages[uid] = raw
        self.next_uid += 1
        return uid

    def renumber(self) -> None:
        """The server rebuilt the folder: new UIDVALIDITY, new UIDs."""
        self.uidvalidity += 1
        old = [self.messages[u] for u in sorted(self.messages)]
        self.messages, self.next_uid = {}, 100
        for raw in old:
            self.deliver(raw)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def send(line: bytes) -> None:
            writer.write(line + b"\r\n")

        send(b"* OK [CAPABILITY IMAP4rev1] fake ready")
        authed = selected = False
        try:
            while line := await reader.readline():
                tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
                cmd, _, args = rest.partition(b" ")
                cmd = cmd.upper()
                if cmd == b"CAPABILITY":
                    send(b"* CAPABILITY IMAP4rev1")
                    send(tag + b" OK CAPABILITY completed")
                elif cmd == b"LOGIN":
                    user, pw = [a.strip(b'"').decode() for a in args.split(b" ", 1)]
                    authed = (user, pw) == (self.username, self.password)
                    self.logins += 1
                    send(tag + (b" OK LOGIN completed" if authed else b" NO [AUTHENTICATIONFAILED] Invalid credentials"))
                elif cmd in (b"SELECT", b"EXAMINE"):
                    if not authed:
                        send(tag + b" BAD not authenticated")
                        continue
                    selected = args.strip(b'"').upper() == b"INBOX"
                    if not selected:
                        send(tag + b" NO [NONEXISTENT] no such mailbox")
                        continue
                    send(b"* %d EXISTS" % len(self.messages))
                    send(b"* OK [UIDVALIDITY %d] UIDs valid" % self.uidvalidity)
                    send(b"* OK [UIDNEXT %d] next" % self.next_uid)
                    send(tag + b" OK [READ-ONLY] EXAMINE completed")
                elif cmd == b"UID" and selected:
                    sub, _, spec = args.partition(b" ")
                    if sub.upper() == b"SEARCH":
                        lo = int(spec.split(b" ")[-1].split(b":")[0])
                        uids = sorted(u for u in self.messages if u >= lo)
                        if not uids and self.messages:
                            uids = [max(self.messages)]  # n:* includes the highest UID (RFC 3501)
                        send(b"* SEARCH" + b"".join(b" %d" % u for u in uids))
                        send(tag + b" OK SEARCH completed")
                    elif sub.upper() == b"FETCH":
                        uid = int(spec.split(b" ")[0])
                        if uid in self.fail_fetch or uid not in self.messages:
                            self.fail_fetch.discard(uid)
                            send(tag + b" NO fetch failed")
                            continue
                        raw = self.messages[uid]
                        seq = sorted(self.messages).index(uid) + 1
                        writer.write(b"* %d FETCH (UID %d BODY[] {%d}\r\n" % (seq, uid, len(raw)) + raw + b")\r\n")
                        send(tag + b" OK FETCH completed")
                    else:
                        send(tag + b" BAD unknown UID command")
                elif cmd == b"NOOP":
                    send(tag + b" OK NOOP")
                elif cmd == b"LOGOUT":
                    send(b"* BYE")
                    send(tag + b" OK LOGOUT completed")
                    await writer.drain()
                    break
                else:
                    send(tag + b" BAD unknown command")
                await writer.drain()
        finally:
            writer.close()
