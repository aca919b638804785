"""The HTTP client the producer posts with: keep-alive connections to one collector.

HTTP/1.1 itself is h11's (framing, chunked and close-delimited bodies, `Connection: close`); the
connection pool is written here, for two reasons measured or needed on this project:
- CPU per request, one event per request, 16 connections, on this 2-core machine: httpx's
  `AsyncClient` about 1,500 µs (its pool and models; with httpx the producer sent single events
  at ~700/s), aiohttp about 105 µs, h11 on asyncio streams about 90-120 µs.
- Telling "the collector closed this idle keep-alive connection" from a failed request. A
  collector closes connections after their maximum age (`Connection: close`, which h11 honours)
  and when draining or idle; a POST that meets a connection closed under it has not been
  answered, and is sent again at once on a new connection, counted in `reconnects`, never as a
  retry or a failure. aiohttp resends only idempotent methods there, so a POST would surface as
  an error like any other.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import h11
import httpx

_READ_BYTES = 65_536
# An idle connection older than this is not reused: the collector (uvicorn) closes idle
# keep-alive connections after 5 s, and reusing one just then would race its close.
IDLE_EXPIRY_S = 4.0


class TransportError(Exception):
    """No answer: the connection failed, timed out, or the answer was not HTTP.

    `kind` names it the way the summary's reasons always have (httpx's exception names):
    `ConnectError`, `ConnectTimeout`, `ReadTimeout`, `ReadError`, `WriteError`,
    `RemoteProtocolError`.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete answer: status, body, and the `Retry-After` header when there was one."""

    status: int
    body: bytes
    retry_after: str | None = None


class Poster(Protocol):
    """What the sender needs: POST a body to a path under the collector's base URL."""

    reconnects: int

    async def post(self, path: str, body: bytes) -> Answer: ...


class _Stale(Exception):
    """A reused connection was found closed before any byte of the answer arrived."""


class _Connection:
    __slots__ = ("answered", "closed", "idle_since_s", "protocol", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = h11.Connection(h11.CLIENT)
        self.idle_since_s = 0.0
        self.answered = 0  # requests answered on it so far
        self.closed = False

    def send(self, *events: h11.Event) -> None:
        for event in events:
            data = self.protocol.send(event)
            if data:
                self.writer.write(data)


Connect = Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class CollectorClient:
    """Keep-alive HTTP/1.1 connections to the collector behind `base_url`, at most
    `max_connections` at once (the sender never has more requests in flight).

    Requests take turns over all `max_connections` connections (a new one is opened while there
    are fewer, the longest idle one is reused after that) rather than crowding onto the fewest:
    behind a Kubernetes Service each connection lands on a pod of its own choosing, so many
    connections spread one producer's events over the collectors, where one would pin them all
    to a single pod.
    """

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int,
        timeout_s: float,
        headers: Iterable[tuple[str, str]] = (),
        connect: Connect = asyncio.open_connection,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http(s) URL")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        # The same trust as httpx (certifi, or SSL_CERT_FILE / SSL_CERT_DIR when set).
        self._ssl: ssl.SSLContext | None = (
            httpx.create_ssl_context() if parts.scheme == "https" else None
        )
        self._prefix = parts.path.rstrip("/")
        self._headers = [
            ("host", parts.netloc.rsplit("@", 1)[-1]),
            ("content-type", "application/json"),
            *headers,
        ]
        self._timeout_s = timeout_s
        self._connect = connect
        self._slots = asyncio.Semaphore(max_connections)
        self._max_connections = max_connections
        self._live = 0  # connections open, idle or busy
        self._idle: collections.deque[_Connection] = collections.deque()
        self.reconnects = 0

    async def post(self, path: str, body: bytes) -> Answer:
        """POST `body`; the answer, or TransportError when none came."""
        async with self._slots:
            connection = self._reusable()
            if connection is not None:
                try:
                    return await self._exchange(connection, path, body)
                except _Stale:
                    self.reconnects += 1  # closed by the collector while idle: not a failure
            try:
                return await self._exchange(await self._open(), path, body)
            except _Stale:
                raise TransportError(
                    "RemoteProtocolError", "Server disconnected without sending a response."
                ) from None

    async def aclose(self) -> None:
        while self._idle:
            self._close(self._idle.popleft())

    async def __aenter__(self) -> CollectorClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    def _reusable(self) -> _Connection | None:
        """The longest idle connection, once all `max_connections` are open; else None."""
        now_s = asyncio.get_running_loop().time()
        while self._idle:
            connection = self._idle[0]
            if connection.reader.at_eof():  # closed by the collector while idle
                self.reconnects += 1
            elif now_s - connection.idle_since_s <= IDLE_EXPIRY_S:
                if self._live < self._max_connections:
                    return None  # open another one first
                return self._idle.popleft()
            self._close(self._idle.popleft())
        return None

    def _close(self, connection: _Connection) -> None:
        if not connection.closed:
            connection.closed = True
            connection.writer.close()
            self._live -= 1

    async def _open(self) -> _Connection:
        try:
            async with asyncio.timeout(self._timeout_s):
                reader, writer = await self._connect(
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None,
                )
        except TimeoutError:
            raise TransportError(
                "ConnectTimeout", f"no connection within {self._timeout_s:g}s"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise TransportError("ConnectError", str(exc) or type(exc).__name__) from exc
        self._live += 1
        return _Connection(reader, writer)

    async def _exchange(self, connection: _Connection, path: str, body: bytes) -> Answer:
        """One request and its answer on `connection`; it goes back to the pool when reusable."""
        protocol = connection.protocol
        request = h11.Request(
            method="POST",
            target=self._prefix + path,
            headers=[*self._headers, ("content-length", str(len(body)))],
        )
        received = False
        try:
            async with asyncio.timeout(self._timeout_s):
                connection.send(request, h11.Data(data=body), h11.EndOfMessage())
                await connection.writer.drain()
                status, retry_after, chunks = 0, None, []
                while True:
                    event = protocol.next_event()
                    if event is h11.NEED_DATA:
                        data = await connection.reader.read(_READ_BYTES)
                        received = received or bool(data)
                        protocol.receive_data(data)
                    elif isinstance(event, h11.Response):
                        status = event.status_code
                        retry_after = next(
                            (v.decode("latin-1") for k, v in event.headers if k == b"retry-after"),
                            None,
                        )
                    elif isinstance(event, h11.Data):
                        chunks.append(event.data)
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    elif isinstance(event, h11.ConnectionClosed):
                        raise h11.RemoteProtocolError("the connection closed before the answer")
        except TimeoutError:
            self._close(connection)
            raise TransportError("ReadTimeout", f"no answer within {self._timeout_s:g}s") from None
        except (OSError, h11.RemoteProtocolError, h11.LocalProtocolError) as exc:
            self._close(connection)
            if connection.answered and not received:
                raise _Stale from exc
            kind = "RemoteProtocolError" if isinstance(exc, h11.ProtocolError) else "ReadError"
            if not received and isinstance(exc, h11.RemoteProtocolError):
                exc = h11.RemoteProtocolError("Server disconnected without sending a response.")
            raise TransportError(kind, str(exc) or type(exc).__name__) from exc
        except BaseException:
            self._close(connection)  # cancelled mid-exchange: the connection's state is unknown
            raise
        connection.answered += 1
        self._release(connection)
        return Answer(status, b"".join(chunks), retry_after)

    def _release(self, connection: _Connection) -> None:
        protocol = connection.protocol
        if protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
            protocol.start_next_cycle()
            connection.idle_since_s = asyncio.get_running_loop().time()
            self._idle.append(connection)
        else:
            # `Connection: close` (the collector's age limit, or draining): a new one next time.
            self._close(connection)
            self.reconnects += 1
