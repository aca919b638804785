"""HAProxy as configured by devstack.balancer, in front of small stand-in HTTP servers."""

from __future__ import annotations

import http.client
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from devstack.balancer import Backend, Balancer, ensure_haproxy, haproxy_config

pytestmark = pytest.mark.tools


class _Replica(ThreadingHTTPServer):
    """Answers /readyz with `ready_status` and POST with `post_status` and its own name."""

    daemon_threads = True

    def __init__(self, name: str, ready_status: int = 200, post_status: int = 202) -> None:
        self.name, self.ready_status, self.post_status = name, ready_status, post_status
        self.posts = 0
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: _Replica

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if status == 503:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(self.server.ready_status if self.path == "/readyz" else 404, b"")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.posts += 1
        self._answer(self.server.post_status, self.server.name.encode())


@pytest.fixture
def stand_ins() -> Iterator[list[_Replica]]:
    made = [_Replica("a"), _Replica("b")]
    threads = [threading.Thread(target=r.serve_forever, daemon=True) for r in made]
    for thread in threads:
        thread.start()
    try:
        yield made
    finally:
        for replica in made:
            replica.shutdown()
            replica.server_close()


def _post(url_port: int, body: bytes = b'{"x": 1}', timeout_s: float = 10) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", url_port, timeout=timeout_s)
    try:
        conn.request("POST", "/api/v1/collect", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_config_is_accepted_by_haproxy(tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        haproxy_config(
            [Backend("collector-1", 8001), Backend("collector-2", 8002)],
            8080,
            tmp_path / "haproxy.sock",
            request_timeout_s=2.5,
        )
    )
    text = config.read_text()
    assert "timeout http-request 2500ms" in text
    assert "option httpchk GET /readyz" in text
    haproxy = ensure_haproxy()  # installs it with apt-get on a fresh machine (as root)
    check = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_round_robin_over_ready_replicas(tmp_path: Path, stand_ins: list[_Replica]) -> None:
    balancer = Balancer(tmp_path, [Backend(r.name, r.port) for r in stand_ins])
    balancer.start()
    try:
        balancer.wait_until({"a": "UP", "b": "UP"})
        served = Counter(_post(balancer.port)[1] for _ in range(20))
        assert served == {"a": 10, "b": 10}
    finally:
        balancer.stop()


def test_unready_replica_gets_no_traffic(tmp_path: Path, stand_ins: list[_Replica]) -> None:
    a, b = stand_ins
    balancer = Balancer(tmp_path, [Backend(r.name, r.port) for r in stand_ins])
    balancer.start()
    try:
        balancer.wait_until({"a": "UP", "b": "UP"})
        b.ready_status = 503
        balancer.wait_until({"b": "DOWN"}, timeout_s=5)
        served = Counter(_post(balancer.port)[1] for _ in range(10))
        assert served == {"a": 10}
        a.ready_status = 503
        balancer.wait_until({"a": "DOWN"}, timeout_s=5)
        conn = http.client.HTTPConnection("127.0.0.1", balancer.port, timeout=10)
        conn.request("POST", "/api/v1/collect", b"{}")
        refused = conn.getresponse()
        assert refused.status == 503
        assert refused.getheader("Retry-After") == "1"
        assert b'"code": "unavailable"' in refused.read()
        conn.close()
        b.ready_status = 200
        balancer.wait_until({"b": "UP"}, timeout_s=5)
    finally:
        balancer.stop()


def test_a_503_is_retried_on_another_replica(tmp_path: Path, stand_ins: list[_Replica]) -> None:
    a = stand_ins[0]
    a.post_status = 503  # still ready, but refusing (e.g. its send queue is full)
    balancer = Balancer(tmp_path, [Backend(r.name, r.port) for r in stand_ins])
    balancer.start()
    try:
        balancer.wait_until({"a": "UP", "b": "UP"})
        answers = [_post(balancer.port) for _ in range(10)]
        assert answers == [(202, "b")] * 10
        assert a.posts >= 5  # it was asked, said 503, and the request went to b instead
    finally:
        balancer.stop()


def test_dead_replica_is_routed_around(tmp_path: Path, stand_ins: list[_Replica]) -> None:
    a = stand_ins[0]
    balancer = Balancer(tmp_path, [Backend(r.name, r.port) for r in stand_ins])
    balancer.start()
    try:
        balancer.wait_until({"a": "UP", "b": "UP"})
        a.shutdown()
        a.server_close()
        answers = [_post(balancer.port) for _ in range(10)]
        assert answers == [(202, "b")] * 10
        balancer.wait_until({"a": "DOWN"}, timeout_s=5)
    finally:
        balancer.stop()


def test_slow_body_is_cut_off_and_does_not_reach_replicas(
    tmp_path: Path, stand_ins: list[_Replica]
) -> None:
    balancer = Balancer(
        tmp_path, [Backend(r.name, r.port) for r in stand_ins], request_timeout_s=1.5
    )
    balancer.start()
    try:
        balancer.wait_until({"a": "UP", "b": "UP"})
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", balancer.port), timeout=10) as slow:
            slow.sendall(
                b"POST /api/v1/collect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            # Meanwhile other clients are served at once.
            assert _post(balancer.port, timeout_s=1)[0] == 202
            answer = slow.recv(4096)
        waited_s = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
        assert b"request_timeout" in answer
        assert 1.0 <= waited_s < 5.0
        assert sum(r.posts for r in stand_ins) == 1  # only the fast client's request got through
    finally:
        balancer.stop()
