"""The connectors' HTTP client (connectors/http.py make_client) answers the pool's idle-connection check with one poll
of the socket (`_Stream`): kept-alive connections are reused, and one the server closed while idle is noticed and
replaced before a request is sent on it, over real sockets on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from connectors.http import _Stream, make_client


class Server:
    """HTTP/1.1 on loopback answering `GET /n` with the number of the connection it came on; after answering, the
    connection stays open (keep-alive) unless `close_after` is set, then the server closes it while the client
    keeps it idle in its pool."""

    def __init__(self, close_after: bool) -> None:
        self.close_after = close_after
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    return
                body = str(number).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s"
                             % (len(body), body))
                await writer.drain()
                if self.close_after:
                    await asyncio.sleep(0.05)
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    @property
    def root(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def serve() -> AsyncIterator[type[Server]]:
    started: list[Server] = []

    class Started(Server):
        def __init__(self, close_after: bool) -> None:
            super().__init__(close_after)
            started.append(self)

    yield Started
    for s in started:
        if s.server is not None:
            s.server.close()


async def start(server: Server) -> Server:
    server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    return server


async def test_kept_alive_connections_are_reused_through_the_cheap_idle_check(serve):
    server = await start(serve(close_after=False))
    client = make_client(server.root)
    try:
        answers = [(await client.get("/n")).text for _ in range(5)]
        pool = client._transport._pool  # type: ignore[attr-defined]
        streams = [c._connection._network_stream for c in pool.connections]  # type: ignore[attr-defined]
    finally:
        await client.aclose()
    assert answers == ["1"] * 5 and server.connections == 1  # one connection, asked idle-or-closed four times
    assert streams and all(isinstance(s, _Stream) for s in streams)


async def test_a_connection_the_server_closed_while_idle_is_replaced_not_used(serve):
    server = await start(serve(close_after=True))
    client = make_client(server.root)
    try:
        first = (await client.get("/n")).text
        await asyncio.sleep(0.2)  # the server has closed it; the client still holds it as idle
        second = (await client.get("/n")).text  # on a dead connection this would be RemoteProtocolError
    finally:
        await client.aclose()
    assert (first, second) == ("1", "2") and server.connections == 2


async def test_a_transport_given_is_used_as_it_is():
    import httpx

    given = httpx.MockTransport(lambda request: httpx.Response(200, text="mock"))
    client = make_client("http://psa.example", transport=given)
    try:
        assert (await client.get("/x")).text == "mock"
        assert client._transport is given  # type: ignore[attr-defined]
    finally:
        await client.aclose()
