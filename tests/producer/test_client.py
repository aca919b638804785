"""The producer's HTTP client on real sockets: keep-alive, `Connection: close`, a connection the
server closed under a request (sent again at once, not a failure), and every kind of failure."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import h11
import orjson
import pytest

from producer.client import CollectorClient, TransportError
from producer.replay import Summary, replay
from producer.sending import COLLECT_PATH
from producer.settings import ReplaySettings
from tests.collector.live import live_app
from tests.collector.memory_sink import MemorySink
from tests.producer.conftest import SAMPLE_ROWS

Reply = Callable[[int, int], Awaitable[bytes | None]]  # (connection no., request no. on it)


@dataclass
class Server:
    """An HTTP server whose answers a test scripts, keeping what it was sent."""

    reply: Reply
    port: int = 0
    connections: int = 0
    requests: list[tuple[int, str, dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        protocol = h11.Connection(h11.SERVER)
        on_this = 0
        try:
            while True:
                request, body = await _read_request(protocol, reader)
                if request is None:
                    return
                on_this += 1
                headers = {k.decode(): v.decode() for k, v in request.headers}
                self.requests.append((number, request.target.decode(), headers, body))
                answer = await self.reply(number, on_this)
                if answer is None:
                    return  # closed without an answer
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer.lower():
                    return
                protocol = h11.Connection(h11.SERVER)
        finally:
            writer.close()


async def _read_request(
    protocol: h11.Connection, reader: asyncio.StreamReader
) -> tuple[h11.Request | None, bytes]:
    request, chunks = None, []
    while True:
        event = protocol.next_event()
        if event is h11.NEED_DATA:
            protocol.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            chunks.append(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return request, b"".join(chunks)
        else:
            return None, b""


def ok(body: bytes = b'{"status":"accepted"}', *extra: bytes) -> bytes:
    head = b"HTTP/1.1 202 Accepted\r\ncontent-length: %d\r\n" % len(body)
    return head + b"".join(h + b"\r\n" for h in extra) + b"\r\n" + body


def run(
    reply: Reply, scenario: Callable[[CollectorClient, Server], Awaitable[None]], **kw: object
) -> Server:
    async def main() -> Server:
        server = Server(reply)
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        server.port = listening.sockets[0].getsockname()[1]
        options: dict[str, object] = {"max_connections": 1, "timeout_s": 5.0, **kw}
        base = str(options.pop("base", f"http://127.0.0.1:{server.port}"))
        async with listening, CollectorClient(base, **options) as client:  # type: ignore[arg-type]
            await scenario(client, server)
        return server

    return asyncio.run(main())


def test_requests_share_one_keep_alive_connection() -> None:
    async def reply(_conn: int, _n: int) -> bytes:
        return ok()

    async def scenario(client: CollectorClient, _server: Server) -> None:
        for _ in range(5):
            answer = await client.post(COLLECT_PATH, b"{}")
            assert (answer.status, answer.body) == (202, b'{"status":"accepted"}')
        assert client.reconnects == 0

    server = run(reply, scenario)
    assert server.connections == 1
    assert [conn for conn, *_ in server.requests] == [1] * 5


def test_requests_take_turns_over_every_connection() -> None:
    # One producer's requests spread over all its connections, so that behind a Service they
    # spread over the pods too, even when one connection could carry them all.
    async def reply(_conn: int, _n: int) -> bytes:
        return ok()

    async def scenario(client: CollectorClient, _server: Server) -> None:
        for _ in range(8):
            assert (await client.post(COLLECT_PATH, b"{}")).status == 202

    server = run(reply, scenario, max_connections=4)
    assert [conn for conn, *_ in server.requests] == [1, 2, 3, 4, 1, 2, 3, 4]


def test_connection_close_means_a_new_connection_next_time_not_an_error() -> None:
    async def reply(_conn: int, n: int) -> bytes:
        return ok(b"{}", b"connection: close") if n == 2 else ok(b"{}")

    async def scenario(client: CollectorClient, _server: Server) -> None:
        statuses = [(await client.post(COLLECT_PATH, b"{}")).status for _ in range(5)]
        assert statuses == [202] * 5
        assert client.reconnects == 2  # after the 2nd request of each of the first two

    server = run(reply, scenario)
    assert [conn for conn, *_ in server.requests] == [1, 1, 2, 2, 3]


def test_a_request_on_a_connection_closed_under_it_is_sent_again_at_once() -> None:
    # The race a maximum age or an idle timeout makes: the server closes a keep-alive
    # connection just as the next request goes out on it. Nothing was answered; the client sends
    # it again on a new connection, and nobody counts it as a retry or a failure.
    async def reply(_conn: int, n: int) -> bytes | None:
        return ok() if n == 1 else None

    async def scenario(client: CollectorClient, _server: Server) -> None:
        assert (await client.post(COLLECT_PATH, b"1")).status == 202
        assert (await client.post(COLLECT_PATH, b"2")).status == 202
        assert client.reconnects == 1

    server = run(reply, scenario)
    assert [(conn, body) for conn, _, _, body in server.requests] == [
        (1, b"1"),
        (1, b"2"),
        (2, b"2"),
    ]


def test_a_new_connection_closed_without_an_answer_is_an_error_not_sent_again() -> None:
    async def reply(_conn: int, _n: int) -> None:
        return None

    async def scenario(client: CollectorClient, _server: Server) -> None:
        with pytest.raises(TransportError) as caught:
            await client.post(COLLECT_PATH, b"{}")
        assert caught.value.kind == "RemoteProtocolError"

    server = run(reply, scenario)
    assert len(server.requests) == 1


def test_an_answer_cut_short_is_an_error_even_on_a_reused_connection() -> None:
    async def reply(_conn: int, n: int) -> bytes:
        # Headers promise 100 bytes, 3 come, then the server closes: part of an answer arrived.
        cut = b"HTTP/1.1 202 Accepted\r\ncontent-length: 100\r\nconnection: close\r\n\r\nabc"
        return ok() if n == 1 else cut

    async def scenario(client: CollectorClient, _server: Server) -> None:
        await client.post(COLLECT_PATH, b"{}")
        with pytest.raises(TransportError) as caught:
            await client.post(COLLECT_PATH, b"{}")
        assert caught.value.kind == "RemoteProtocolError"
        assert client.reconnects == 0

    server = run(reply, scenario)
    assert len(server.requests) == 2  # not sent a third time


def test_chunked_and_close_delimited_answers_are_read_whole() -> None:
    async def reply(_conn: int, n: int) -> bytes:
        if n == 1:
            return (
                b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n"
                b"Retry-After: 7\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            )
        # A proxy's error page: no length, the body ends when the connection does.
        return b"HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\n\r\nupstream down"

    async def scenario(client: CollectorClient, _server: Server) -> None:
        first = await client.post(COLLECT_PATH, b"{}")
        assert (first.status, first.body, first.retry_after) == (503, b"abcde", "7")
        second = await client.post(COLLECT_PATH, b"{}")
        assert (second.status, second.body, second.retry_after) == (502, b"upstream down", None)

    run(reply, scenario)


def test_base_path_host_and_extra_headers_are_sent() -> None:
    async def reply(_conn: int, _n: int) -> bytes:
        return ok()

    async def scenario(client: CollectorClient, server: Server) -> None:
        await client.post(COLLECT_PATH, b'{"a":1}')

    server = Server(reply)

    def check(srv: Server) -> None:
        _, target, headers, body = srv.requests[0]
        assert target == "/events" + COLLECT_PATH
        assert headers["host"] == f"127.0.0.1:{srv.port}"
        assert headers["content-type"] == "application/json"
        assert headers["authorization"] == "Bearer k"
        assert body == b'{"a":1}'

    async def main() -> None:
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        server.port = listening.sockets[0].getsockname()[1]
        async with (
            listening,
            CollectorClient(
                f"http://127.0.0.1:{server.port}/events/",
                max_connections=1,
                timeout_s=5.0,
                headers=[("authorization", "Bearer k")],
            ) as client,
        ):
            await scenario(client, server)

    asyncio.run(main())
    check(server)


def test_nothing_listening_is_a_connect_error() -> None:
    async def main() -> None:
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        async with CollectorClient(
            f"http://127.0.0.1:{port}", max_connections=1, timeout_s=5.0
        ) as client:
            with pytest.raises(TransportError) as caught:
                await client.post(COLLECT_PATH, b"{}")
            assert caught.value.kind == "ConnectError"

    asyncio.run(main())


def test_no_answer_in_time_is_a_read_timeout() -> None:
    async def reply(_conn: int, _n: int) -> bytes:
        await asyncio.sleep(30)
        return ok()

    async def scenario(client: CollectorClient, _server: Server) -> None:
        with pytest.raises(TransportError) as caught:
            await client.post(COLLECT_PATH, b"{}")
        assert caught.value.kind == "ReadTimeout"

    run(reply, scenario, timeout_s=0.2)


def test_at_most_max_connections_are_opened() -> None:
    async def reply(_conn: int, _n: int) -> bytes:
        await asyncio.sleep(0.01)
        return ok()

    async def scenario(client: CollectorClient, _server: Server) -> None:
        answers = await asyncio.gather(*(client.post(COLLECT_PATH, b"{}") for _ in range(40)))
        assert {a.status for a in answers} == {202}

    server = run(reply, scenario, max_connections=3)
    assert server.connections == 3
    assert len(server.requests) == 40


def test_a_replay_through_collectors_aging_their_connections_counts_no_retry(
    samples: list[Path],
) -> None:
    # The real collector, closing each connection after ~0.3 s: every row accepted once, the
    # connections replaced as they age, and not one retry or failure counted for it.
    sink = MemorySink()
    settings = ReplaySettings(rate_per_s=200, concurrency=4)
    with live_app(sink, limits=True, max_connection_age_s=0.3) as (url, app):

        async def main() -> Summary:
            async with CollectorClient(url, max_connections=4, timeout_s=10.0) as client:
                return await replay(
                    [(samples[0].name, samples[0])], settings, client, stderr=io.StringIO()
                )

        summary = asyncio.run(main())
        closed = app.metrics.connections_closed.labels("max_age")._value.get()
    result = summary.as_dict()
    assert (result["accepted"], result["failed"], result["retries"]) == (SAMPLE_ROWS, 0, 0)
    assert result["reconnects"] >= closed > 0
    ids = [orjson.loads(r.value)["event_id"] for r in sink.records]
    assert sorted(ids) == sorted(f"{samples[0].name}:{i}" for i in range(SAMPLE_ROWS))
