"""Hostile requests against a real collector process on a real broker: huge or many headers,
stacked codings, trickled bodies on every route, replies that would amplify, refused keys. Each
is answered with its code, /healthz stays answered within its probe timeout, memory stays bounded,
and the topics hold exactly what was answered 202, 400 or 422."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import zlib

import httpx
import orjson
import pytest

from devstack.collector import CollectorProcess
from devstack.kafka import Broker
from tests.conftest import Topics
from tests.e2e.conftest import Replicas
from tests.e2e.hostile import Ledger, LivenessWatch

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

KEY = "hostile-key"
BODY_TIMEOUT_S = 2.0
EVENT = b'{"event_type":"Hostile","schema_version":"1","payload":{"n":1}}'


@pytest.fixture
def replica(replicas: Replicas) -> CollectorProcess:
    env = {"COLLECTOR_API_KEYS": KEY, "COLLECTOR_REQUEST_TIMEOUT_S": str(BODY_TIMEOUT_S)}
    return replicas.start(1, env=env)[0]


def _exchange(port: int, request: bytes, wait_s: float = 20.0) -> bytes:
    """Send `request` on a new connection; all the server said before it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        with contextlib.suppress(OSError):  # closed while we still send: the answer counts
            sock.sendall(request)
        received = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                received += chunk
        return received


def _status_and_code(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), orjson.loads(body)["error"]["code"]


def _head(*lines: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _huge_headers(port: int) -> list[tuple[int, str]]:
    """One 64 MB header, then four 48 MB headers at once: all before the API key is looked at."""
    one = _head(b"POST /api/v1/collect HTTP/1.1", b"Host: t", b"X-Big: " + b"a" * 64_000_000)
    answers = [_exchange(port, one)]
    four = _head(b"POST /api/v1/collect HTTP/1.1", b"Host: t", b"X-Big: " + b"b" * 48_000_000)
    threads = [
        threading.Thread(target=lambda: answers.append(_exchange(port, four))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    fields = [b"X-%d: 1" % i for i in range(101)]
    answers.append(_exchange(port, _head(b"GET /healthz HTTP/1.1", b"Host: t", *fields)))
    return [_status_and_code(answer) for answer in answers]


def _trickled_bodies_cut_off(port: int, each: int = 20) -> int:
    """Connections that trickle a body nobody reads (405, 404, a chunked GET): how many are still
    open after three body timeouts."""
    heads = [
        _head(b"POST /healthz HTTP/1.1", b"Host: t", b"Content-Length: 100000"),
        _head(b"POST /nope HTTP/1.1", b"Host: t", b"Transfer-Encoding: chunked"),
        _head(b"GET /api/v1/collect HTTP/1.1", b"Host: t", b"Transfer-Encoding: chunked"),
    ]
    socks = []
    for head in heads:
        for _ in range(each):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(head)
            socks.append((sock, b"1\r\nx\r\n" if b"chunked" in head else b"x"))
    open_ = set(range(len(socks)))
    deadline = time.monotonic() + 3 * BODY_TIMEOUT_S + 2
    while open_ and time.monotonic() < deadline:
        for index in list(open_):
            sock, piece = socks[index]
            try:
                sock.sendall(piece)
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    while sock.recv(65536):
                        pass
                    open_.discard(index)  # b"": the server closed it
                sock.setblocking(True)
            except OSError:
                open_.discard(index)
        time.sleep(0.25)
    for sock, _ in socks:
        sock.close()
    return len(open_)


def _deflated(body: bytes, layers: int) -> bytes:
    for _ in range(layers):
        body = zlib.compress(body)
    return body


def test_hostile_requests_are_answered_with_their_codes_and_liveness_holds(
    kafka: Broker, topics: Topics, replica: CollectorProcess
) -> None:
    port, auth = replica.port, {"authorization": f"bearer {KEY}"}  # the scheme in lower case
    ledger = Ledger()
    with (
        LivenessWatch(replica.url, replica.pid) as watch,
        httpx.Client(base_url=replica.url, timeout=30) as client,
    ):
        assert _huge_headers(port) == [(431, "headers_too_large")] * 6
        assert _trickled_bodies_cut_off(port) == 0
        # Stacked codings: two are undone, three are refused unread, 27,000 do not fit the head.
        for layers, status in [(2, 202), (3, 415), (27_000, 431)]:
            answer = client.post(
                "/api/v1/collect",
                content=_deflated(EVENT, min(layers, 3)),
                headers={**auth, "content-encoding": ", ".join(["deflate"] * layers)},
            )
            assert answer.status_code == status, (layers, answer.text[:200])
            ledger.note(answer)
        # Amplification: a thousand invalid events (under 1 MB), each with long unknown field names.
        names = {f"{'n' * 140}{i}": i for i in range(5)}
        body = orjson.dumps([{"event_type": "t", "payload": {}, **names}] * 1000)
        answer = client.post("/api/v1/collect/batch", content=body, headers=auth)
        assert (answer.status_code, answer.json()["rejected"]) == (202, 1000)
        assert len(answer.content) < 2 * len(body)
        ledger.note(answer)
        # Refused keys: answered 401 unread, counted by reason.
        for authorization in [None, "Basic x", "Bearer wrong", "Bearer wrong"]:
            headers = {"authorization": authorization} if authorization else {}
            answer = client.post("/api/v1/collect", content=EVENT, headers=headers)
            assert answer.status_code == 401
        metrics = client.get("/metrics").text
    assert 'collector_requests_unauthorized_total{reason="missing"} 1.0' in metrics
    assert 'collector_requests_unauthorized_total{reason="malformed"} 1.0' in metrics
    assert 'collector_requests_unauthorized_total{reason="wrong_key"} 2.0' in metrics
    watch.assert_healthy()
    print(f"/healthz slowest {watch.slowest_s:.2f}s; RSS +{watch.rss_growth / 2**20:.0f} MiB")
    assert ledger.reconcile(kafka.bootstrap_servers, topics) == {"raw": 1, "dead_letter": 1000}
