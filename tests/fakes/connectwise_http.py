"""Plumbing of the fake ConnectWise server: request/response records, CW-shaped errors, faults, and the two
ways to reach it (an httpx transport in-process, a ThreadingHTTPServer on loopback).

See tests/fakes/connectwise.py for the documented API; nothing here is used directly by tests.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import httpx

if TYPE_CHECKING:
    from tests.fakes.connectwise import FakeConnectWise


@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict[str, str]  # lower-cased names (ConnectWise reads them case-insensitively)
    headers: dict[str, str]  # lower-cased names
    body: bytes
    url: str


@dataclass
class FakeResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    lose: bool = False  # the write was applied but the client never sees an answer
    delay: float = 0.0  # seconds before the answer


class HttpError(Exception):
    """Raised by handlers; becomes an error response with ConnectWise's body shape."""

    def __init__(self, status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.errors = errors or []
        self.headers = headers or {}

    def response(self) -> FakeResponse:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return FakeResponse(self.status, json.dumps(body).encode(),
                            {"content-type": "application/json", **self.headers})


def invalid(resource: str, field_name: str, message: str, code: str = "InvalidField") -> HttpError:
    """A 400 InvalidObject with one field error, as ConnectWise sends for validation failures."""
    return HttpError(400, "InvalidObject", f"{resource} object is invalid",
                     [{"code": code, "message": message, "resource": resource, "field": field_name}])


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> FakeResponse:
    return FakeResponse(status, json.dumps(data).encode(), {"content-type": "application/json", **(headers or {})})


@dataclass
class Fault:
    """One switchable misbehaviour; `match` is a prefix of "METHOD /route" (None = every request,
    "WRITE" = every request but GETs)."""

    kind: str  # "status" | "lose" | "delay"
    times: int | None  # None = until cleared
    match: str | None = None
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0
    after: int = 0  # let this many matching requests through first

    def applies(self, key: str) -> bool:
        if self.match == "WRITE":
            hit = not key.startswith("GET ")
        else:
            hit = self.match is None or key.startswith(self.match)
        if hit and self.after > 0:
            self.after -= 1
            return False
        return hit

    def use(self) -> None:
        if self.times is not None:
            self.times -= 1


@dataclass
class RecordedRequest:
    """What the fake saw (Authorization stripped)."""

    method: str
    route: str  # "GET /service/tickets/{id}"
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def key(self) -> str:
        return f"{self.method} {self.route}"

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


# ---------------------------------------------------------------- in-process transport


class FakeTransport(httpx.AsyncBaseTransport):
    """httpx transport answering from the fake; honours the client's read timeout for slow answers."""

    def __init__(self, fake: FakeConnectWise) -> None:
        self.fake = fake

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        req = FakeRequest(
            method=request.method,
            path=request.url.path,
            query={k.lower(): v for k, v in request.url.params.multi_items()},
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            url=str(request.url),
        )
        resp = self.fake.handle(req)
        if resp.delay:
            read_timeout = (request.extensions.get("timeout") or {}).get("read")
            if read_timeout is not None and resp.delay > read_timeout:
                await asyncio.sleep(read_timeout)
                raise httpx.ReadTimeout("fake ConnectWise: no answer in time", request=request)
            await asyncio.sleep(resp.delay)
        if resp.lose:
            raise httpx.ReadTimeout("fake ConnectWise: response lost after the write was applied", request=request)
        return httpx.Response(resp.status, headers=resp.headers, content=resp.body, request=request)


# ---------------------------------------------------------------- loopback HTTP server


def _handler_for(fake: FakeConnectWise) -> type[BaseHTTPRequestHandler]:
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
            host = self.headers.get("host", "127.0.0.1")
            req = FakeRequest(
                method=self.command,
                path=parts.path,
                query={k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)},
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                url=f"http://{host}{self.path}",
            )
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

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    return Handler


@contextmanager
def serve_loopback(fake: FakeConnectWise, port: int = 0) -> Iterator[str]:
    """Serve the fake on 127.0.0.1 in a thread; yields its root URL ("http://127.0.0.1:PORT")."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-connectwise", daemon=True)
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
