"""Per-API-key rate limits: 429 with Retry-After, counted, off by default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from collector.ratelimit import RateLimiter, retry_after_s
from collector.schemas import TAXI_EVENT
from tests.collector.memory_sink import MemorySink

Serve = Callable[..., Any]
TAXI = orjson.dumps(TAXI_EVENT)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=clock)
    assert [limiter.take(b"k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take(b"k") == pytest.approx(0.5)
    assert limiter.take(b"other") == 0.0  # each key has its own bucket
    clock.now += 0.5
    assert limiter.take(b"k") == 0.0
    assert limiter.take(b"k") == pytest.approx(0.5)
    clock.now += 60
    assert [limiter.take(b"k") for _ in range(4)][-1] > 0  # refilled to the burst, no further


def test_the_default_burst_is_one_second_of_requests() -> None:
    assert RateLimiter(rate_per_s=10).burst == 10
    assert RateLimiter(rate_per_s=0.2).burst == 1


def test_retry_after_is_whole_seconds_never_early() -> None:
    assert [retry_after_s(w) for w in (0.01, 1.0, 1.2)] == [1, 1, 2]


@pytest.mark.anyio
async def test_off_by_default(serve: Serve) -> None:
    async with serve(MemorySink()) as (client, _):
        answers = [await client.post("/api/v1/collect", content=TAXI) for _ in range(30)]
    assert {a.status_code for a in answers} == {202}


@pytest.mark.anyio
async def test_each_api_key_has_its_own_limit_answered_429_and_counted(serve: Serve) -> None:
    sink = MemorySink()
    settings = {"api_keys": ("k1", "k2"), "rate_limit_per_s": 0.01, "rate_limit_burst": 2}
    async with serve(sink, **settings) as (client, _):
        one = {"authorization": "Bearer k1"}
        two = {"authorization": "Bearer k2"}
        first = [await client.post("/api/v1/collect", content=TAXI, headers=one) for _ in range(3)]
        batch = await client.post("/api/v1/collect/batch", content=b"[" + TAXI + b"]", headers=one)
        other = await client.post("/api/v1/collect", content=TAXI, headers=two)
        wrong = await client.post("/api/v1/collect", content=TAXI, headers={"authorization": "x"})
        metrics = (await client.get("/metrics")).text
    assert [a.status_code for a in first] == [202, 202, 429]
    limited = first[2]
    assert limited.json()["status"] == "retry"
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 100
    assert batch.status_code == 429
    assert other.status_code == 202
    assert wrong.status_code == 401  # the key is checked first; a wrong key spends nothing
    assert len(sink.records) == 3
    assert "collector_requests_rate_limited_total 2.0" in metrics
    assert 'collector_http_requests_total{route="/api/v1/collect",status="429"} 1.0' in metrics
