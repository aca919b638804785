"""The collector's HTTP protocol bounds every request before the app sees it: header bytes and
fields (431), a body deadline on every route, requests in flight (503 + Retry-After)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from collector.schemas import TAXI_EVENT
from tests.collector.live import live_collector
from tests.collector.memory_sink import MemorySink

TAXI = orjson.dumps(TAXI_EVENT)
BODY_TIMEOUT_S = 2.0


@pytest.fixture
def url() -> Iterator[str]:
    with live_collector(
        limits=True, request_timeout_s=BODY_TIMEOUT_S, api_keys=("k",), max_body_bytes=2_000_000
    ) as (base, _):
        yield base


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _exchange(url: str, request: bytes, wait_s: float = 15.0) -> bytes:
    """Send `request`, read until the server closes (or `wait_s` passes): all it said."""
    with socket.create_connection(("127.0.0.1", _port(url)), timeout=wait_s) as sock:
        # Closed while still sending is fine: the answer is what counts.
        with contextlib.suppress(OSError):
            sock.sendall(request)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return received


def _head(lines: list[bytes]) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _problem(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), orjson.loads(body)["error"]["code"]


def test_one_huge_header_is_431_before_the_key_is_checked(url: str) -> None:
    request = _head([b"POST /api/v1/collect HTTP/1.1", b"Host: t", b"X-Big: " + b"a" * 8_000_000])
    answer = _exchange(url, request)
    assert _problem(answer) == (431, "headers_too_large")
    assert b"connection: close" in answer
    assert httpx.get(url + "/healthz").status_code == 200


def test_too_many_header_fields_is_431(url: str) -> None:
    fields = [b"X-%d: 1" % i for i in range(101)]
    answer = _exchange(url, _head([b"GET /healthz HTTP/1.1", b"Host: t", *fields]))
    assert _problem(answer) == (431, "headers_too_large")


def test_a_large_body_in_the_same_packets_as_its_headers_is_not_counted_as_headers(
    url: str,
) -> None:
    body = orjson.dumps({**TAXI_EVENT, "payload": {"s": "x" * 1_500_000}})
    answer = httpx.post(
        url + "/api/v1/collect", content=body, headers={"authorization": "bearer k"}
    )
    assert answer.status_code == 202


@pytest.mark.parametrize(
    "head",
    [
        [b"POST /healthz HTTP/1.1", b"Host: t", b"Content-Length: 1000"],
        [b"POST /nope HTTP/1.1", b"Host: t", b"Transfer-Encoding: chunked"],
        [b"GET /api/v1/collect HTTP/1.1", b"Host: t", b"Transfer-Encoding: chunked"],
        [b"POST /api/v1/collect HTTP/1.1", b"Host: t", b"Content-Length: 1000",
         b"Authorization: Bearer k"],
    ],
)  # fmt: skip
def test_a_body_nobody_reads_is_cut_off_after_the_timeout(url: str, head: list[bytes]) -> None:
    piece = b"1\r\nx\r\n" if b"Transfer-Encoding: chunked" in head else b"1"
    with socket.create_connection(("127.0.0.1", _port(url)), timeout=5) as sock:
        sock.sendall(_head(head))
        started = time.monotonic()
        received, closed = b"", False
        while time.monotonic() - started < 6 * BODY_TIMEOUT_S:
            try:
                sock.sendall(piece)
            except OSError:
                closed = True
                break
            sock.settimeout(0.2)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
            received += chunk
            if not chunk:
                closed = True
                break
    assert closed, "a trickled body kept its connection open"
    if not received.startswith((b"HTTP/1.1 404", b"HTTP/1.1 405")):
        assert _problem(received) == (408, "request_timeout")


def test_requests_over_the_concurrency_limit_get_503_and_probes_are_answered() -> None:
    sink = MemorySink(hold=True)  # collect requests stay in flight until their ack timeout
    with live_collector(sink, limits=True, max_concurrency=2, ack_timeout_s=5.0) as (url, _):
        held = [
            threading.Thread(
                target=httpx.post,
                args=(url + "/api/v1/collect",),
                kwargs={"content": TAXI, "timeout": 30},
            )
            for _ in range(2)
        ]
        for thread in held:
            thread.start()
        deadline = time.monotonic() + 10
        while sink.queue_depth() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.queue_depth() == 2
        answer = httpx.post(url + "/api/v1/collect", content=TAXI)
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["error"]["code"] == "overloaded"
        assert httpx.get(url + "/healthz").status_code == 200
        for thread in held:
            thread.join(30)
