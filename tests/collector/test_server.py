"""The real `serve()` and a real SIGTERM: unready at once, in flight answered, exit code 0.

The in-memory sink stands in for Kafka (the same path against the broker is in test_kafka.py).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from typing import Any

import httpx
import pytest

from collector import server
from collector.front import CollectorApp
from collector.schemas import TAXI_EVENT
from devstack.proc import wait_until
from tests.collector.conftest import make_settings
from tests.collector.memory_sink import MemorySink


def test_sigterm_drains_through_serve_and_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = MemorySink(hold=True)  # a request stays in flight until its ack timeout
    apps: list[CollectorApp] = []

    def create_app(*args: Any, **kwargs: Any) -> CollectorApp:
        apps.append(real_create_app(*args, **kwargs))
        return apps[-1]

    real_create_app = server.create_app
    monkeypatch.setattr(server, "kafka_sink", lambda _settings: sink)
    monkeypatch.setattr(server, "create_app", create_app)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    seen: dict[str, Any] = {}

    def in_flight() -> None:
        seen["held"] = httpx.post(url + "/api/v1/collect", json=TAXI_EVENT, timeout=30)

    def drive() -> None:
        try:
            wait_until(lambda: _status(url + "/readyz") == 200, 30, "readiness")
            request = threading.Thread(target=in_flight)
            request.start()
            wait_until(lambda: sink.queue_depth() == 1, 30, "a request held in flight")
            os.kill(os.getpid(), signal.SIGTERM)
            wait_until(lambda: apps[0].service.draining, 10, "draining")
            # Readiness went off on the signal, while the request was still in flight: the
            # lifespan's shutdown (which also sets it) only runs after in-flight work is done.
            seen["in_flight_when_draining"] = "held" not in seen and not sink.closed
            request.join(60)
        except BaseException as exc:  # reported by the main thread
            seen["error"] = exc
            os.kill(os.getpid(), signal.SIGTERM)

    driver = threading.Thread(target=drive)
    driver.start()
    code = server.serve(make_settings(ack_timeout_s=1.0, drain_timeout_s=10.0), sock)
    driver.join(60)
    assert "error" not in seen, seen.get("error")
    assert code == 0  # the signal is not re-raised: a drained collector exits 0
    assert seen["in_flight_when_draining"] is True
    assert seen["held"].status_code == 503  # answered, not cut off, by the draining server
    assert seen["held"].json()["error"]["code"] == "ack_timeout"
    assert sink.closed


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.TransportError:
        return 0
