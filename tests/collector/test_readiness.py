"""The Kafka sink's readiness: what turns a replica unready at once, and what only after a while."""

from __future__ import annotations

import asyncio

import pytest

from collector import sinks
from collector.sinks import KafkaSink

pytestmark = pytest.mark.anyio

ISR_LOW = "raw partition 0: 1 of 3 replicas in sync, min.insync.replicas is 2"


def script(sink: KafkaSink, answers: list[str | None]) -> list[int]:
    """Make the sink's checks answer `answers` in turn, then repeat the last one; [checks made]."""
    left = iter(answers)
    last: list[str | None] = [None]
    made = [0]

    def check_once() -> str | None:
        last[0] = next(left, last[0])
        made[0] += 1
        return last[0]

    sink._check_once = check_once  # type: ignore[method-assign]
    return made


async def run_checks(sink: KafkaSink, made: list[int], checks: int) -> None:
    """Let the check loop run until it has made `checks` checks (and taken in their results)."""
    task = asyncio.create_task(sink._check_forever())
    async with asyncio.timeout(30):
        # Polled: the checks run in a worker thread. One more than asked: the last one's
        # result is applied before the next check starts.
        while made[0] < checks + 1:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def new_sink() -> KafkaSink:
    return KafkaSink({"bootstrap.servers": "127.0.0.1:1"}, ("raw",), readiness_interval_s=0.01)


async def test_checks_failing_within_the_grace_leave_a_ready_replica_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sinks, "_UNREACHABLE_GRACE_S", 10.0)
    sink = new_sink()
    made = script(sink, [None, None, sinks._UNREACHABLE])  # a timed-out request, repeated
    await run_checks(sink, made, 10)
    assert sink.ready
    assert sink.problem is None


async def test_failing_checks_past_the_grace_turn_it_unready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sinks, "_UNREACHABLE_GRACE_S", 0.05)
    sink = new_sink()
    made = script(sink, [None, sinks._UNREACHABLE])
    await run_checks(sink, made, 20)  # each at least 10 ms apart: well past the grace
    assert not sink.ready
    assert sink.problem == "kafka unreachable"


async def test_too_few_replicas_in_sync_turns_it_unready_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sinks, "_UNREACHABLE_GRACE_S", 10.0)
    sink = new_sink()
    made = script(sink, [None, ISR_LOW])
    await run_checks(sink, made, 2)
    assert not sink.ready
    assert sink.problem == ISR_LOW


async def test_never_reached_is_unready_without_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sinks, "_UNREACHABLE_GRACE_S", 10.0)
    sink = new_sink()
    assert not sink.ready  # before the first check
    made = script(sink, [sinks._UNREACHABLE])
    await run_checks(sink, made, 1)
    assert not sink.ready
    assert sink.problem == "kafka unreachable"
