"""A connection's maximum age and draining: `Connection: close` on a complete answer, then a new
connection, through the protocol `serve()` uses, on a real socket (the in-memory sink for Kafka)."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest

from collector.connections import connection_age_s
from collector.front import CollectorApp
from collector.schemas import TAXI_EVENT
from tests.collector.live import live_app
from tests.collector.memory_sink import MemorySink

BODY = orjson.dumps(TAXI_EVENT)


def test_age_limit_is_drawn_within_the_jitter() -> None:
    assert connection_age_s(30.0, 0.1, lambda: 0.0) == pytest.approx(27.0)
    assert connection_age_s(30.0, 0.1, lambda: 0.5) == pytest.approx(30.0)
    assert connection_age_s(30.0, 0.1, lambda: 0.999999) == pytest.approx(33.0, abs=1e-3)
    assert connection_age_s(30.0, 0.0, lambda: 0.9) == 30.0
    assert connection_age_s(0.0, 0.1, lambda: 0.5) == float("inf")  # 0: no limit


@contextmanager
def collector(sink: MemorySink, **overrides: Any) -> Iterator[tuple[int, CollectorApp]]:
    """The app served on a real socket; its port and the app."""
    with live_app(sink, limits=True, **overrides) as (url, app):
        yield int(url.rsplit(":", 1)[1]), app


def closed_by_age(app: CollectorApp, reason: str) -> float:
    return app.metrics.connections_closed.labels(reason)._value.get()  # type: ignore[no-any-return]


@contextmanager
def connect(port: int) -> Iterator[http.client.HTTPConnection]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        yield connection
    finally:
        connection.close()


def post(connection: http.client.HTTPConnection) -> tuple[int, str | None, bytes]:
    connection.request("POST", "/api/v1/collect", BODY, {"content-type": "application/json"})
    answer = connection.getresponse()
    return answer.status, answer.getheader("connection"), answer.read()


def test_past_its_age_a_connection_is_closed_after_a_complete_answer() -> None:
    sink = MemorySink()
    age_s = 1.0
    with (
        collector(sink, max_connection_age_s=age_s, max_connection_age_jitter=0.0) as (port, app),
        connect(port) as connection,
    ):
        opened_s = time.monotonic()
        answers = []
        while True:
            status, close, body = post(connection)
            answers.append((status, close, orjson.loads(body)["status"], connection.sock))
            if close is not None:
                break
            time.sleep(0.05)
        elapsed_s = time.monotonic() - opened_s
        assert elapsed_s >= age_s  # never before its age
        assert len(answers) > 1
        first_sock = answers[0][3]
        # Every answer before the last kept the connection, and every answer was complete.
        assert all(sock is first_sock for *_, sock in answers[:-1])
        assert [(s, c, st) for s, c, st, _ in answers] == [(202, None, "accepted")] * (
            len(answers) - 1
        ) + [(202, "close", "accepted")]
        assert connection.sock is None  # http.client closed it, as the answer asked
        assert len(sink.records) == len(answers)  # nothing lost, nothing cut
        assert closed_by_age(app, "max_age") == 1
        # The next request goes out on a new connection, and is answered as usual.
        assert post(connection)[:2] == (202, None)
        assert connection.sock is not None
        assert connection.sock is not first_sock


def test_no_age_limit_keeps_the_connection() -> None:
    with (
        collector(MemorySink(), max_connection_age_s=0.0) as (port, app),
        connect(port) as connection,
    ):
        first = None
        for _ in range(20):
            assert post(connection)[:2] == (202, None)
            first = first or connection.sock
            assert connection.sock is first
        assert closed_by_age(app, "max_age") == 0


def test_a_draining_collector_closes_every_connection_after_its_next_answer() -> None:
    with (
        collector(MemorySink(), max_connection_age_s=600.0) as (port, app),
        connect(port) as connection,
    ):
        connection.request("GET", "/healthz")
        first = connection.getresponse()
        first.read()
        assert first.getheader("connection") is None
        app.service.draining = True
        status, close, body = post(connection)
        # The answer is complete (503 draining, retry elsewhere) and says the connection ends.
        assert (status, close, orjson.loads(body)["error"]["code"]) == (503, "close", "draining")
        assert connection.sock is None
        assert closed_by_age(app, "draining") == 1
        assert closed_by_age(app, "max_age") == 0
