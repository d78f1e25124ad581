"""Plumbing of the fake Autotask server: request/response records, Autotask-shaped errors, faults, and the two
ways to reach it (an httpx transport in-process, a ThreadingHTTPServer on loopback).

See tests/fakes/autotask.py for the documented API; nothing here is used directly by tests.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import httpx

if TYPE_CHECKING:
    from tests.fakes.autotask import FakeAutotask


@dataclass
class FakeRequest:
    method: str
    host: str  # lower-cased netloc
    path: str
    query: dict[str, str]  # lower-cased names
    headers: dict[str, str]  # lower-cased names
    body: bytes
    url: str  # as the client sent it

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class FakeResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    lose: bool = False  # the write was applied but the client never sees an answer
    delay: float = 0.0  # seconds before the answer (slow fault plus threshold latency)
    release: Callable[[], None] | None = None  # ends the request's thread-limit slot once answered


class AtError(Exception):
    """Raised by handlers; becomes Autotask's error body `{"errors": [...]}` with the given status."""

    def __init__(self, status: int, *messages: str, headers: dict[str, str] | None = None,
                 shape: str = "errors") -> None:
        super().__init__("; ".join(messages))
        self.status, self.messages, self.headers, self.shape = status, list(messages), headers or {}, shape

    def response(self) -> FakeResponse:
        if self.shape == "message":  # ASP.NET's own answers (405, 404 route misses, unhandled 500s)
            body: Any = {"Message": self.messages[0] if self.messages else "An error has occurred."}
        elif self.shape == "empty":
            return FakeResponse(self.status, b"", dict(self.headers))
        else:
            body = {"errors": self.messages}
        return FakeResponse(self.status, json.dumps(body).encode(),
                            {"content-type": "application/json; charset=utf-8", **self.headers})


def rejected(*messages: str) -> AtError:
    """A refused write or query: Autotask answers these with HTTP 500 and `{"errors": [...]}`."""
    return AtError(500, *messages)


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> FakeResponse:
    return FakeResponse(status, json.dumps(data).encode(),
                        {"content-type": "application/json; charset=utf-8", **(headers or {})})


@dataclass
class Fault:
    """One switchable misbehaviour; `match` is a prefix of "METHOD /Route" (None = every API request,
    "WRITE" = every create/update/delete; queries are reads even though they are POSTs)."""

    kind: str  # "status" | "lose" | "delay"
    times: int | None  # None = until cleared
    match: str | None = None
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0
    message: str | None = None  # an Autotask error text (answered as {"errors": [message]})

    def applies(self, key: str, write: bool) -> bool:
        if self.match == "WRITE":
            return write
        if self.match is None:
            return not key.startswith("GET /zoneInformation")
        return key.lower().startswith(self.match.lower())

    def use(self) -> None:
        if self.times is not None:
            self.times -= 1


@dataclass
class RecordedRequest:
    """What the fake saw (the Secret header value replaced by `***`)."""

    method: str
    route: str  # "POST /Tickets/{id}/Notes"
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    zone: int | None  # the zone host it reached (None = the discovery host)

    @property
    def key(self) -> str:
        return f"{self.method} {self.route}"

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


# ---------------------------------------------------------------- in-process transport


class FakeTransport(httpx.AsyncBaseTransport):
    """httpx transport answering from the fake; honours the client's read timeout for slow answers."""

    def __init__(self, fake: FakeAutotask) -> None:
        self.fake = fake

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        req = FakeRequest(method=request.method, host=request.url.netloc.decode().lower(), path=request.url.path,
                          query={k.lower(): v for k, v in request.url.params.multi_items()},
                          headers={k.lower(): v for k, v in request.headers.items()}, body=body, url=str(request.url))
        resp = self.fake.handle(req)
        try:
            if resp.delay:
                read_timeout = (request.extensions.get("timeout") or {}).get("read")
                if read_timeout is not None and resp.delay > read_timeout:
                    await asyncio.sleep(read_timeout)
                    raise httpx.ReadTimeout("fake Autotask: no answer in time", request=request)
                await asyncio.sleep(resp.delay)
            if resp.lose:
                raise httpx.ReadTimeout("fake Autotask: response lost after the write was applied", request=request)
        finally:
            if resp.release:
                resp.release()
        return httpx.Response(resp.status, headers=resp.headers, content=resp.body, request=request)


# ---------------------------------------------------------------- loopback HTTP server


def _handler_for(fake: FakeAutotask) -> type[BaseHTTPRequestHandler]:
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
            host = (self.headers.get("host") or "127.0.0.1").lower()
            req = FakeRequest(method=self.command, host=host, path=parts.path,
                              query={k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)},
                              headers={k.lower(): v for k, v in self.headers.items()}, body=body,
                              url=f"http://{host}{self.path}")
            resp = fake.handle(req)
            try:
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
            finally:
                if resp.release:
                    resp.release()

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    return Handler


@contextmanager
def serve_loopback(fake: FakeAutotask, port: int = 0) -> Iterator[str]:
    """Serve the fake on 127.0.0.1 in a thread; yields its root URL ("http://127.0.0.1:PORT")."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-autotask", daemon=True)
    thread.start()
    root = f"http://127.0.0.1:{server.server_address[1]}"
    previous = fake.loopback_root
    fake.loopback_root = root
    try:
        yield root
    finally:
        fake.loopback_root = previous
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
