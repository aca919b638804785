"""Sending: status codes to outcomes, retries with backoff and Retry-After, the batch endpoint."""

from __future__ import annotations

import asyncio
import email.utils
import random
from collections.abc import Callable

import httpx
import orjson
import pytest

from producer.sending import (
    BATCH_PATH,
    COLLECT_PATH,
    EncodedEvent,
    Outcome,
    RetryPolicy,
    Sender,
    Stats,
    outcome_of,
    retry_after_s,
)
from tests.producer.conftest import MockCollector

Handler = Callable[[httpx.Request], httpx.Response]


class Sleeps:
    """A fake clock whose sleeps are recorded and advance it."""

    def __init__(self) -> None:
        self.now_s = 0.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now_s += seconds


def run_sender(
    handler: Handler, action: Callable[[Sender], object], policy: RetryPolicy | None = None
) -> tuple[Stats, Sleeps, object]:
    stats, sleeps = Stats(), Sleeps()

    async def main() -> object:
        client = MockCollector(handler, "http://collector")
        sender = Sender(
            client, stats, policy, sleep=sleeps.sleep, clock=sleeps.clock,
            rng=random.Random(7),
        )  # fmt: skip
        result = action(sender)
        assert asyncio.iscoroutine(result)
        return await result

    return stats, sleeps, asyncio.run(main())


def event(n: int = 0) -> EncodedEvent:
    return EncodedEvent(f"f.parquet:{n}", orjson.dumps({"event_id": f"f.parquet:{n}"}))


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (202, Outcome.ACCEPTED),
        (200, Outcome.ACCEPTED),
        (400, Outcome.REJECTED),
        (413, Outcome.REJECTED),
        (422, Outcome.REJECTED),
        (429, Outcome.RETRY),
        (503, Outcome.RETRY),
        (502, Outcome.RETRY),
        (500, Outcome.RETRY),
        (401, Outcome.FAILED),
        (404, Outcome.FAILED),
    ],
)
def test_status_codes_map_to_outcomes(status: int, outcome: Outcome) -> None:
    assert outcome_of(status) is outcome


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_s("3") == 3.0
    assert retry_after_s(None) is None
    assert retry_after_s("soon") is None
    date = email.utils.formatdate(1_000_010.0, usegmt=True)
    assert retry_after_s(date, now=lambda: 1_000_000.0) == pytest.approx(10.0)
    assert retry_after_s(date, now=lambda: 2_000_000.0) == 0.0


def test_backoff_is_full_jitter_capped_and_never_below_retry_after() -> None:
    policy = RetryPolicy(base_s=0.1, cap_s=2.0)
    rng = random.Random(1)
    for attempt in range(1, 12):
        ceiling = min(2.0, 0.1 * 2 ** (attempt - 1))
        delays = [policy.delay_s(attempt, None, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # spread over the whole range, not a fixed step
    assert policy.delay_s(1, 7.0, rng) == 7.0


def test_503s_then_202_is_accepted_after_retries_honouring_retry_after() -> None:
    answers = iter([503, 503, 429, 202])

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == COLLECT_PATH
        status = next(answers)
        return httpx.Response(status, headers={"retry-after": "1"} if status != 202 else {})

    stats, sleeps, outcome = run_sender(handler, lambda s: s.send(event()))
    assert outcome is Outcome.ACCEPTED
    assert (stats.records, stats.accepted, stats.failed, stats.retries) == (1, 1, 0, 3)
    assert len(sleeps.pauses) == 3
    assert all(p >= 1.0 for p in sleeps.pauses)


def test_connection_errors_and_timeouts_are_retried() -> None:
    failures: list[Exception] = [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("reset"),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if failures:
            raise failures.pop(0)
        return httpx.Response(202)

    stats, _, outcome = run_sender(handler, lambda s: s.send(event()))
    assert outcome is Outcome.ACCEPTED
    assert stats.retries == 3
    assert stats.statuses == {
        "ConnectError": 1,
        "ReadTimeout": 1,
        "RemoteProtocolError": 1,
        "202": 1,
    }


@pytest.mark.parametrize("status", [400, 413, 422])
def test_input_errors_are_final_and_counted_rejected(status: int) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status)

    stats, sleeps, outcome = run_sender(handler, lambda s: s.send(event()))
    assert outcome is Outcome.REJECTED
    assert (len(calls), stats.rejected, stats.retries, sleeps.pauses) == (1, 1, 0, [])


def test_the_attempt_budget_ends_in_failed() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    policy = RetryPolicy(max_attempts=4, max_elapsed_s=1000)
    stats, _, outcome = run_sender(handler, lambda s: s.send(event()), policy)
    assert outcome is Outcome.FAILED
    assert (len(calls), stats.failed, stats.retries) == (4, 1, 3)


def test_the_time_budget_ends_in_failed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"retry-after": "30"})

    policy = RetryPolicy(max_attempts=100, max_elapsed_s=60)
    stats, sleeps, outcome = run_sender(handler, lambda s: s.send(event()), policy)
    assert outcome is Outcome.FAILED
    assert sum(sleeps.pauses) <= 60
    assert stats.retries == 2


def test_draining_stops_retries() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"retry-after": "5"})

    async def drained(sender: Sender) -> Outcome:
        sender.give_up_after(12)
        return await sender.send(event())

    _, sleeps, outcome = run_sender(handler, drained)
    assert outcome is Outcome.FAILED
    assert sum(sleeps.pauses) <= 12


def test_auth_failures_are_not_retried() -> None:
    stats, sleeps, outcome = run_sender(lambda r: httpx.Response(401), lambda s: s.send(event()))
    assert (outcome, stats.failed, sleeps.pauses) == (Outcome.FAILED, 1, [])


def collector_batch_answer(statuses: list[str]) -> httpx.Response:
    """The collector's batch answer: 503 when any element must be resent, else 202."""
    retry = "retry" in statuses
    body = {
        "status": "retry" if retry else "settled",
        "results": [{"index": i, "status": s} for i, s in enumerate(statuses)],
    }
    return httpx.Response(503 if retry else 202, json=body, headers={"retry-after": "1"})


def test_batch_resends_only_the_events_marked_retry() -> None:
    seen: list[list[str]] = []
    plans = iter(
        [
            ["accepted", "retry", "rejected", "retry"],
            ["retry", "accepted"],
            ["accepted"],
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == BATCH_PATH
        seen.append([e["event_id"] for e in orjson.loads(request.content)])
        return collector_batch_answer(next(plans))

    events = [event(i) for i in range(4)]
    stats, _, outcomes = run_sender(handler, lambda s: s.send_batch(events))
    assert outcomes == [Outcome.ACCEPTED, Outcome.ACCEPTED, Outcome.REJECTED, Outcome.ACCEPTED]
    assert seen == [
        ["f.parquet:0", "f.parquet:1", "f.parquet:2", "f.parquet:3"],
        ["f.parquet:1", "f.parquet:3"],
        ["f.parquet:1"],
    ]
    assert (stats.records, stats.accepted, stats.rejected, stats.retries) == (4, 3, 1, 3)


def test_batch_without_per_event_results_is_all_or_nothing() -> None:
    answers = iter([httpx.Response(503), httpx.ConnectError("down"), httpx.Response(202)])

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    stats, _, outcomes = run_sender(handler, lambda s: s.send_batch([event(0), event(1)]))
    assert outcomes == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    assert (stats.records, stats.accepted, stats.retries) == (2, 2, 4)


def test_a_batch_too_large_is_split_not_rejected() -> None:
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        size = len(orjson.loads(request.content))
        sizes.append(size)
        return httpx.Response(413) if size > 2 else collector_batch_answer(["accepted"] * size)

    events = [event(i) for i in range(5)]
    stats, _, outcomes = run_sender(handler, lambda s: s.send_batch(events))
    assert outcomes == [Outcome.ACCEPTED] * 5
    assert (stats.records, stats.accepted) == (5, 5)
    assert sizes[0] == 5
    assert sum(s for s in sizes if s <= 2) == 5
