"""Slow and stalled clients hold up nobody else and are cut off after a documented timeout.

Where the time limits live:
- HAProxy (devstack.balancer, standing in for the Service): a whole request, headers and body,
  must arrive within `request_timeout_s` (10 s by default) or the client gets 408 and is cut off;
  a connection that sends nothing is closed after the same time. The request reaches a replica
  only once it is complete, so a trickling client never occupies a collector.
- The collector itself, for when nothing stands in front of it: a request's headers must arrive
  within `COLLECTOR_REQUEST_TIMEOUT_S` (10 s by default) of the connection or of the request's
  first byte, and its body within the same time once the headers are in; otherwise 408 and the
  connection is closed. An idle keep-alive connection is closed after uvicorn's
  `timeout_keep_alive` (5 s). Its event loop serves other clients while one trickles.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from devstack.balancer import Balancer
from devstack.collector import CollectorProcess
from tests.e2e.conftest import Replicas

EVENT = b'{"event_type": "Probe", "schema_version": "1", "payload": {"n": 1}}'
UVICORN_KEEP_ALIVE_S = 5.0


def _timed_posts(url: str, count: int) -> list[tuple[int, float]]:
    """Status and seconds of `count` ordinary requests, one after another."""
    results = []
    with httpx.Client(timeout=10) as client:
        for _ in range(count):
            started = time.monotonic()
            status = client.post(
                url + "/api/v1/collect",
                content=EVENT,
                headers={"content-type": "application/json"},
            ).status_code
            results.append((status, time.monotonic() - started))
    return results


def _closed_within(sock: socket.socket, timeout_s: float) -> tuple[bytes, float]:
    """What the server sent before closing `sock`, and when it closed (seconds from now)."""
    sock.settimeout(timeout_s)
    started = time.monotonic()
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received, time.monotonic() - started


class Trickler:
    """A client sending a request's body one byte at a time, until cut off or told to stop."""

    def __init__(self, port: int, interval_s: float = 0.2, headers_too: bool = False) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.interval_s = interval_s
        self.headers_too = headers_too
        self.cut_off_after_s: float | None = None
        self.answer = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        head = (
            b"POST /api/v1/collect HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(EVENT)}\r\n\r\n".encode()
        )
        if self.headers_too:
            pending = list(head + EVENT[:-1])
        else:
            self.sock.sendall(head)
            pending = list(EVENT[:-1])  # never the last byte: the request never completes
        try:
            while not self._stop.is_set():
                # Before each byte, look whether the server has answered (or closed) meanwhile.
                readable, _, _ = select.select([self.sock], [], [], self.interval_s)
                if readable:
                    self.answer = self.sock.recv(4096)
                    self.cut_off_after_s = time.monotonic() - started
                    return
                if pending:
                    self.sock.sendall(bytes([pending.pop(0)]))
        except OSError:
            self.cut_off_after_s = time.monotonic() - started

    def __enter__(self) -> Trickler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sock.close()

    def wait(self, timeout_s: float) -> None:
        self._thread.join(timeout=timeout_s)


@pytest.fixture
def replica(replicas: Replicas) -> CollectorProcess:
    return replicas.start(1)[0]


@pytest.mark.kafka
@pytest.mark.slow
def test_collector_serves_others_while_clients_trickle_or_idle(replica: CollectorProcess) -> None:
    idle = [socket.create_connection(("127.0.0.1", replica.port)) for _ in range(20)]
    try:
        with Trickler(replica.port), Trickler(replica.port):
            time.sleep(0.5)
            results = _timed_posts(replica.url, 50)
        assert [status for status, _ in results] == [202] * 50
        assert max(seconds for _, seconds in results) < 1.0
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.kafka
@pytest.mark.slow
def test_collector_closes_idle_keep_alive_connections(replica: CollectorProcess) -> None:
    with socket.create_connection(("127.0.0.1", replica.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/collect HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(EVENT)}\r\n\r\n".encode()
            + EVENT
        )
        answer, closed_after_s = _closed_within(sock, UVICORN_KEEP_ALIVE_S + 5)
    assert answer.startswith(b"HTTP/1.1 202")
    assert UVICORN_KEEP_ALIVE_S - 1 <= closed_after_s <= UVICORN_KEEP_ALIVE_S + 2


@pytest.mark.kafka
@pytest.mark.slow
def test_balancer_cuts_off_trickling_and_idle_clients(
    replicas: Replicas, balancer: Callable[..., Balancer]
) -> None:
    front = balancer(replicas.start(2), request_timeout_s=2.0)
    idle = socket.create_connection(("127.0.0.1", front.port))
    with Trickler(front.port) as slow:
        time.sleep(0.3)
        results = _timed_posts(front.url, 30)
        slow.wait(timeout_s=6)
        assert slow.cut_off_after_s is not None, "the trickling client was never cut off"
        assert 1.5 <= slow.cut_off_after_s <= 4.0
        assert slow.answer.startswith(b"HTTP/1.1 408")
    _, idle_closed_after_s = _closed_within(idle, 6)
    idle.close()
    assert idle_closed_after_s <= 3.0
    assert [status for status, _ in results] == [202] * 30
    assert max(seconds for _, seconds in results) < 1.0


@pytest.mark.kafka
@pytest.mark.slow
def test_collector_cuts_off_trickling_and_silent_clients_itself(replicas: Replicas) -> None:
    (replica,) = replicas.start(1, env={"COLLECTOR_REQUEST_TIMEOUT_S": "2"})
    silent = socket.create_connection(("127.0.0.1", replica.port))
    with Trickler(replica.port) as body, Trickler(replica.port, headers_too=True) as headers:
        results = _timed_posts(replica.url, 30)
        body.wait(timeout_s=6)
        headers.wait(timeout_s=6)
    answer, silent_closed_after_s = _closed_within(silent, 6)
    silent.close()
    for slow in (body, headers):
        assert slow.cut_off_after_s is not None, "a trickling client was never cut off"
        assert 1.5 <= slow.cut_off_after_s <= 4.5
        assert slow.answer.startswith(b"HTTP/1.1 408")
    assert answer.startswith(b"HTTP/1.1 408")
    assert silent_closed_after_s <= 4.0
    assert [status for status, _ in results] == [202] * 30
