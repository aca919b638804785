"""The producer against the real collector app (in process, on the in-memory sink): every answer
the collector gives, single and batch, becomes the outcome the contract says."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import orjson
import pytest

from collector.app import create_app
from collector.problems import Problem
from collector.schemas import TAXI_EVENT
from collector.sinks import Delivery, Record
from producer.sending import EncodedEvent, Outcome, RetryPolicy, Sender, Stats
from tests.collector.conftest import PartialSink, make_settings, serving
from tests.collector.memory_sink import MemorySink
from tests.producer.conftest import AsgiCollector

GOOD = orjson.dumps(TAXI_EVENT)
NOT_JSON = b'{"event_type": NaN}'
NOT_AN_EVENT = b'{"event_type": "T"}'
FAST_GIVE_UP = RetryPolicy(max_attempts=3, base_s=0.0, cap_s=0.0)


class FlakySink(MemorySink):
    """Fails the first `failures` publishes with `failure`, then acknowledges."""

    def __init__(self, failure: Problem, failures: int) -> None:
        super().__init__()
        self._failure = failure
        self._left = failures

    def publish(self, records: Sequence[Record], timeout_s: float) -> Delivery:
        self.failure = self._failure if self._left > 0 else None
        self._left -= 1
        return super().publish(records, timeout_s)


async def _no_sleep(_seconds: float) -> None:
    return None


def replay(
    sink: MemorySink, bodies: list[bytes], *, batch: bool, draining: bool = False, **settings: Any
) -> tuple[list[Outcome], Stats]:
    """Send `bodies` through a real Sender to the real collector app; outcomes and counts."""

    async def main() -> tuple[list[Outcome], Stats]:
        app = create_app(make_settings(**settings), sink)
        stats = Stats()
        async with serving(app) as client:
            app.service.draining = draining
            sender = Sender(
                AsgiCollector(client), stats, FAST_GIVE_UP, sleep=_no_sleep, rng=random.Random(1)
            )
            events = [EncodedEvent(f"f.parquet:{i}", body) for i, body in enumerate(bodies)]
            if batch:
                return await sender.send_batch(events), stats
            return [await sender.send(e) for e in events], stats

    return asyncio.run(main())


A, R, F = Outcome.ACCEPTED, Outcome.REJECTED, Outcome.FAILED


CASES = [
    # id, sink, collector settings, bodies sent, outcomes
    ("202-422", MemorySink, {}, [GOOD, NOT_AN_EVENT, GOOD], [A, R, A]),
    ("400", MemorySink, {}, [NOT_JSON], [R]),
    ("401-final", MemorySink, {"api_keys": ("k",)}, [GOOD], [F]),
    ("413-body", MemorySink, {"max_body_bytes": len(GOOD) - 1}, [GOOD, GOOD], [R, R]),
    ("413-record", partial(MemorySink, Problem.RECORD_TOO_LARGE), {}, [GOOD], [R]),
    ("413-batch-split", MemorySink, {"max_batch_events": 2}, [GOOD] * 5, [A] * 5),
    ("503-queue-full", partial(MemorySink, Problem.QUEUE_FULL), {}, [GOOD, GOOD], [F, F]),
    ("503-ack", partial(MemorySink, hold=True), {"ack_timeout_s": 0.01}, [GOOD], [F]),
    ("503-then-202", partial(FlakySink, Problem.KAFKA_ERROR, 2), {}, [GOOD, GOOD], [A, A]),
]


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
@pytest.mark.parametrize(
    ("make_sink", "settings", "bodies", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_each_collector_answer_becomes_its_outcome(
    make_sink: Callable[[], MemorySink],
    settings: dict[str, Any],
    bodies: list[bytes],
    expected: list[Outcome],
    batch: bool,
) -> None:
    sink = make_sink()
    outcomes, stats = replay(sink, bodies, batch=batch, **settings)
    assert outcomes == expected
    assert (stats.accepted, stats.rejected, stats.failed) == (
        expected.count(A),
        expected.count(R),
        expected.count(F),
    )
    assert len(sink.on("raw-test")) == expected.count(A)


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_a_draining_collector_is_retried_until_the_budget_is_spent(batch: bool) -> None:
    outcomes, stats = replay(MemorySink(), [GOOD, GOOD], batch=batch, draining=True)
    assert outcomes == [F, F]
    assert stats.retries == (2 * (FAST_GIVE_UP.max_attempts - 1))


def test_a_partly_acknowledged_batch_resends_only_the_retry_elements() -> None:
    outcomes, stats = replay(PartialSink(), [GOOD] * 4, batch=True, ack_timeout_s=0.01)
    # 4 sent: 0 and 2 acknowledged; 1 and 3 resent: 1 acknowledged; 3 resent alone: acknowledged.
    assert outcomes == [A, A, A, A]
    assert stats.retries == 3
