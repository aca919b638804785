"""Why events did not get through: reasons by status and code, early stop, the rate warning."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from collector.app import create_app
from devstack.proc import free_port
from producer import reasons
from producer.replay import Summary, replay
from producer.settings import ReplaySettings
from tests.collector.conftest import make_settings
from tests.collector.memory_sink import MemorySink
from tests.producer.conftest import MockCollector
from tests.producer.test_cli import producer, summary_of

Handler = Callable[[httpx.Request], httpx.Response]
KEY = "producer-test-key"


def run(
    samples: list[Path],
    handler: Handler,
    *,
    stderr: io.StringIO | None = None,
    rate_check_s: float = 3.0,
    **overrides: Any,
) -> Summary:
    settings = ReplaySettings(
        collector_url="http://collector", backoff_base_s=0.01, backoff_cap_s=0.02, **overrides
    )

    async def main() -> Summary:
        client = MockCollector(handler, settings.collector_url)
        return await replay(
            [(p.name, p) for p in samples], settings, client,
            stderr=stderr or io.StringIO(), rate_check_s=rate_check_s,
        )  # fmt: skip

    return asyncio.run(main())


def row_of(request: httpx.Request) -> int:
    return int(orjson.loads(request.content)["event_id"].rsplit(":", 1)[1])


def test_answers_become_status_and_code_with_their_message() -> None:
    collector = orjson.dumps(
        {"status": "rejected", "root_id": "r", "error": {"code": "invalid_event",
         "message": "'schema_version' is required", "details": []}}
    )  # fmt: skip
    assert reasons.of_answer(422, collector) == (
        "422 invalid_event",
        "'schema_version' is required",
    )
    assert reasons.of_answer(404, b'{"detail":"Not Found"}') == ("404 not_found", "Not Found")
    assert reasons.of_answer(405, b"") == ("405 method_not_allowed", "Method Not Allowed")
    assert reasons.of_answer(502, b"<html>bad gateway</html>") == (
        "502 bad_gateway",
        "<html>bad gateway</html>",
    )
    assert reasons.of_answer(0, b"ConnectError: [Errno 111] refused") == (
        "ConnectError",
        "ConnectError: [Errno 111] refused",
    )
    assert len(reasons.of_answer(400, b"x" * 5000)[1]) <= 200


def test_batch_elements_carry_their_own_codes() -> None:
    body = orjson.dumps(
        {"status": "settled", "accepted": 1, "rejected": 1, "retry": 0, "results": [
            {"index": 0, "status": "accepted", "root_id": "a"},
            {"index": 1, "status": "rejected", "root_id": "b",
             "error": {"code": "invalid_event", "message": "no payload", "details": []}},
        ]}
    )  # fmt: skip
    assert reasons.of_batch(202, body, 2) == [
        ("202 accepted", "Accepted"),
        ("invalid_event", "no payload"),
    ]
    assert reasons.of_batch(401, b"{}", 3) == [("401 unauthorized", "Unauthorized")] * 3


def test_summary_and_progress_count_rejections_and_failures_by_reason(
    samples: list[Path],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        row = row_of(request)
        if row % 10 == 0:
            error = {"code": "invalid_event", "message": f"bad row {row}", "details": []}
            return httpx.Response(422, json={"status": "rejected", "root_id": "r", "error": error})
        if row % 10 == 1:
            return httpx.Response(409, text="conflict")
        return httpx.Response(202, json={"status": "accepted", "root_id": "r"})

    stderr = io.StringIO()
    summary = run(samples[:1], handler, stderr=stderr, progress_interval_s=0.05)
    assert (summary.stats.rejected, summary.stats.failed) == (30, 30)
    found = summary.as_dict()["reasons"]
    assert list(found) == ["422 invalid_event", "409 conflict"] or list(found) == [
        "409 conflict",
        "422 invalid_event",
    ]
    assert found["409 conflict"] == {"outcome": "failed", "count": 30, "message": "conflict"}
    rejected = found["422 invalid_event"]
    assert (rejected["outcome"], rejected["count"]) == ("rejected", 30)
    assert rejected["message"] in {f"bad row {row}" for row in range(0, 300, 10)}
    last = [line for line in stderr.getvalue().splitlines() if line.startswith("progress:")][-1]
    assert '| 422 invalid_event 30 "bad row ' in last
    assert '409 conflict 30 "conflict"' in last
    assert summary.error is None


def test_batch_rejections_are_counted_by_element_code(samples: list[Path]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        events = orjson.loads(request.content)
        results = [
            {"index": i, "status": "rejected", "root_id": "r",
             "error": {"code": "invalid_event", "message": "m", "details": []}}
            if int(e["event_id"].rsplit(":", 1)[1]) % 2 else
            {"index": i, "status": "accepted", "root_id": "r"}
            for i, e in enumerate(events)
        ]  # fmt: skip
        return httpx.Response(202, json={"status": "settled", "results": results})

    summary = run(samples[:1], handler, batch_size=20)
    assert summary.stats.rejected == 150
    assert summary.as_dict()["reasons"] == {
        "invalid_event": {"outcome": "rejected", "count": 150, "message": "m"}
    }


def test_a_spent_retry_budget_names_the_last_answer(samples: list[Path]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        error = {"code": "ack_timeout", "message": "Kafka too slow", "details": []}
        return httpx.Response(
            503, json={"status": "retry", "error": error}, headers={"retry-after": "0"}
        )

    summary = run(samples[:1], handler, max_records=6, max_attempts=2)
    assert summary.as_dict()["reasons"] == {
        "503 ack_timeout": {"outcome": "failed", "count": 6, "message": "Kafka too slow"}
    }


@pytest.mark.parametrize("status", [401, 404])
def test_all_404_or_401_stops_early_in_process(samples: list[Path], status: int) -> None:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(row_of(request))
        return httpx.Response(status, json={"detail": "nope"})

    summary = run(samples, handler, concurrency=4)
    assert summary.stopped
    assert summary.error is not None
    assert summary.error.startswith("stopped early: the first ")
    assert len(seen) < 20  # of 900 rows
    assert summary.stats.failed == len(seen) == summary.stats.records


def test_one_accepted_request_means_no_early_stop(samples: list[Path]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(202 if row_of(request) == 0 else 404)

    summary = run(samples[:1], handler, concurrency=1)
    assert not summary.stopped
    assert (summary.stats.accepted, summary.stats.failed) == (1, 299)


def test_an_unreachable_rate_warns_once_suggesting_batches(samples: list[Path]) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        # At least 1 ms an answer: the replay outlasts the 0.3 s rate check on any machine.
        time.sleep(0.001)
        return httpx.Response(202)

    stderr = io.StringIO()
    summary = run(
        samples * 10, slow, stderr=stderr, rate_check_s=0.3,
        rate_per_s=10_000_000, concurrency=2, max_records=1000,
    )  # fmt: skip
    assert summary.stats.accepted == 1000
    warnings = [line for line in stderr.getvalue().splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "--rate 1e+07 events/s is out of reach" in warnings[0]
    assert "--batch-size 100" in warnings[0]
    assert "with no retries" in warnings[0]


def test_a_reachable_rate_gives_no_warning(samples: list[Path]) -> None:
    stderr = io.StringIO()
    run(
        samples[:1], lambda r: httpx.Response(202), stderr=stderr, rate_check_s=0.3,
        rate_per_s=40, max_records=30,
    )  # fmt: skip
    assert "warning:" not in stderr.getvalue()


@pytest.fixture(scope="module")
def collector_url() -> Iterator[str]:
    """The real collector app on the in-memory sink, served by uvicorn; API keys on."""
    app = create_app(make_settings(api_keys=(KEY,)), MemorySink())
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        assert server.started
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_wrong_path_stops_early_with_one_line(samples: list[Path], collector_url: str) -> None:
    wrong = collector_url + "/events/api/v1/collect"  # no such prefix on this collector
    result = producer("replay", *map(str, samples), "--collector-url", wrong, "--api-key", KEY)
    assert result.returncode == 1
    summary = summary_of(result.stdout)
    assert summary["stopped"] is True
    assert 0 < summary["failed"] < 100
    assert summary["reasons"] == {
        "404 not_found": {"outcome": "failed", "count": summary["failed"], "message": "Not Found"}
    }
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "all answered 404 not_found" in errors[0]
    assert collector_url + "/events" in errors[0]


def test_a_missing_key_stops_early_with_one_line(samples: list[Path], collector_url: str) -> None:
    result = producer("replay", *map(str, samples), "--collector-url", collector_url)
    assert result.returncode == 1
    summary = summary_of(result.stdout)
    assert 0 < summary["failed"] < 100
    (reason,) = summary["reasons"]
    assert reason == "401 unauthorized"
    assert "Bearer" in summary["reasons"][reason]["message"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "--api-key" in errors[0]
    right = producer(
        "replay", str(samples[0]), "--collector-url", collector_url + "/api/v1/collect/",
        "--api-key", KEY,
    )  # fmt: skip
    assert right.returncode == 0, right.stderr
    assert summary_of(right.stdout)["accepted"] == 300
    assert summary_of(right.stdout)["reasons"] == {}
