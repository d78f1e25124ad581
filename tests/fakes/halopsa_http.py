"""Plumbing of the fake HaloPSA server: clock, request/response records, Halo's error shapes, faults, and the
two ways to reach it (an httpx transport in-process, a ThreadingHTTPServer on loopback).

See tests/fakes/halopsa.py for the documented API; tests do not use this module directly.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import httpx

EMPTY_DATE = "1900-01-01T00:00:00"  # Halo's "no date"


def halo_date(value: datetime | None) -> str:
    """A datetime as Halo writes it: UTC without a zone, up to 7 fraction digits; None -> 1900-01-01."""
    if value is None:
        return EMPTY_DATE
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}0".rstrip("0")
    return text


def parse_date(value: str) -> datetime:
    """A date a client sent (ISO, `Z`, offset or zone-less = UTC, any fraction digits); ValueError if not."""
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}" if digits else head + zone
    dt = datetime.fromisoformat(text)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


class HaloClock:
    """Injectable clock: `now` is read freely; `stamp()` returns it and steps, so changes get distinct times."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self.step = step

    def stamp(self) -> datetime:
        """The current time, then step."""
        value = self.now
        self.now = self.now + self.step
        return value

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        """Set the clock."""
        self.now = when

    def epoch(self) -> float:
        """Seconds since the epoch (what the connector's token clock reads in tests)."""
        return self.now.timestamp()


@dataclass
class FakeRequest:
    """One request as the fake sees it."""
    method: str
    path: str
    query: dict[str, str]  # lower-cased names: Halo (ASP.NET) reads them case-insensitively
    raw_query: list[tuple[str, str]]  # as sent
    headers: dict[str, str]  # lower-cased names
    body: bytes
    url: str

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body) if self.body else None


@dataclass
class FakeResponse:
    """One answer, with the fault flags the transports act on."""
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    lose: bool = False  # the write was applied but the client never sees an answer
    delay: float = 0.0  # seconds before the answer


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> FakeResponse:
    """A JSON answer."""
    return FakeResponse(status, json.dumps(data).encode(), {"content-type": "application/json; charset=utf-8",
                                                           **(headers or {})})


class HaloHttpError(Exception):
    """Raised by handlers; `body` is sent as JSON (any shape), or as plain text when `text` is set."""

    def __init__(self, status: int, body: Any = None, *, text: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.body, self.text = status, body, text
        self.headers = headers or {}

    def response(self) -> FakeResponse:
        """The error as an HTTP answer."""
        if self.text is not None:
            return FakeResponse(self.status, self.text.encode(), {"content-type": "text/plain; charset=utf-8",
                                                                  **self.headers})
        if self.body is None:
            return FakeResponse(self.status, b"", dict(self.headers))
        return json_response(self.body, self.status, self.headers)


def exception_error(status: int, message: str, class_name: str = "System.Exception") -> HaloHttpError:
    """.NET exception style: {"ClassName", "Message"} (business validation, server faults)."""
    return HaloHttpError(status, {"ClassName": class_name, "Message": message})


def string_error(status: int, message: str) -> HaloHttpError:
    """A bare JSON string body (e.g. "You do not have access to this Action at the moment")."""
    return HaloHttpError(status, message)


def binding_error(errors: dict[str, str]) -> HaloHttpError:
    """ASP.NET Core problem details for values that do not bind (a string where an int belongs)."""
    return HaloHttpError(400, {"type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
                               "title": "One or more validation errors occurred.", "status": 400,
                               "errors": {k: [v] for k, v in errors.items()}})


def oauth_error(error: str, description: str, status: int = 400) -> HaloHttpError:
    """The token endpoint's OAuth error shape."""
    return HaloHttpError(status, {"error": error, "error_description": description})


@dataclass
class Fault:
    """One switchable misbehaviour; `match` is a prefix of "METHOD /route" (None = every request but token
    calls unless it names them, "WRITE" = every non-GET API request)."""

    kind: str  # "status" | "lose" | "delay"
    times: int | None  # None = until cleared
    match: str | None = None
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0

    def applies(self, key: str) -> bool:
        """Whether this fault hits "METHOD /route"."""
        token_call = key.endswith("/token") or key.endswith("/authinfo")
        if self.match == "WRITE":
            return not key.startswith("GET ") and not token_call
        if self.match is None:
            return not token_call
        return key.lower().startswith(self.match.lower())

    def use(self) -> None:
        """Count one use."""
        if self.times is not None:
            self.times -= 1


@dataclass
class RecordedRequest:
    """What the fake saw: Authorization stripped, `client_secret` redacted from token forms."""

    method: str
    route: str  # "GET /api/Tickets/{id}"
    path: str
    query: list[tuple[str, str]]  # names as sent
    headers: dict[str, str]
    body: bytes
    status: int = 0

    @property
    def key(self) -> str:
        """"METHOD /route"."""
        return f"{self.method} {self.route}"

    @property
    def params(self) -> dict[str, str]:
        """The query as a dict (names as sent)."""
        return dict(self.query)

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body) if self.body else None

    def form(self) -> dict[str, str]:
        """The body as a form."""
        return dict(parse_qsl(self.body.decode()))


class Handles(Protocol):
    """What the transports need from a fake."""
    public_root: str

    def handle(self, req: FakeRequest) -> FakeResponse:
        """Answer one request."""
        ...


# ---------------------------------------------------------------- in-process transport


class FakeTransport(httpx.AsyncBaseTransport):
    """httpx transport answering from the fake; honours the client's read timeout for slow answers."""

    def __init__(self, fake: Handles) -> None:
        self.fake = fake

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one httpx request from the fake."""
        body = await request.aread()
        items = list(request.url.params.multi_items())
        req = FakeRequest(method=request.method, path=request.url.path,
                          query={k.lower(): v for k, v in items}, raw_query=items,
                          headers={k.lower(): v for k, v in request.headers.items()}, body=body,
                          url=str(request.url))
        resp = self.fake.handle(req)
        if resp.delay:
            read_timeout = (request.extensions.get("timeout") or {}).get("read")
            if read_timeout is not None and resp.delay > read_timeout:
                await asyncio.sleep(read_timeout)
                raise httpx.ReadTimeout("fake HaloPSA: no answer in time", request=request)
            await asyncio.sleep(resp.delay)
        if resp.lose:
            raise httpx.ReadTimeout("fake HaloPSA: response lost after the write was applied", request=request)
        return httpx.Response(resp.status, headers=resp.headers, content=resp.body, request=request)


# ---------------------------------------------------------------- loopback HTTP server


def _handler_for(fake: Handles) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without TCP_NODELAY a kept-alive connection waits ~40 ms
        # for the delayed ACK on every answer (Nagle), which no real PSA front end does.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            items = parse_qsl(parts.query, keep_blank_values=True)
            host = self.headers.get("host", "127.0.0.1")
            req = FakeRequest(method=self.command, path=parts.path, query={k.lower(): v for k, v in items},
                              raw_query=items, headers={k.lower(): v for k, v in self.headers.items()},
                              body=body, url=f"http://{host}{self.path}")
            resp = fake.handle(req)
            if resp.delay:
                time.sleep(resp.delay)
            if resp.lose:
                self.close_connection = True
                self.connection.close()  # the write happened; the client sees a dropped connection
                return
            self.send_response(resp.status)
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(resp.body)))
            self.end_headers()
            self.wfile.write(resp.body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler


class _QuietServer(ThreadingHTTPServer):
    """A client killed mid-request (the crash tests SIGKILL workers) is not an error of the fake."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serve_loopback(fake: Handles, port: int = 0) -> Iterator[str]:
    """Serve the fake on 127.0.0.1 in a thread; yields its root URL ("http://127.0.0.1:PORT")."""
    server = _QuietServer(("127.0.0.1", port), _handler_for(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-halopsa", daemon=True)
    thread.start()
    root = f"http://127.0.0.1:{server.server_address[1]}"
    previous = fake.public_root
    fake.public_root = root
    try:
        yield root
    finally:
        fake.public_root = previous
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
