"""The producer against a real collector process and the real broker."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from devstack.collector import CollectorProcess
from devstack.kafka import Broker, read_topic
from devstack.proc import ManagedProcess, free_port
from producer.sample import write_samples
from tests.conftest import (
    Topics,
    finish_replay,
    producer_retries,
    reconcile_topics,
    start_replay,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROWS = 600
# Modest, so that a collector sharing two busy cores with the broker keeps up; the pacer's own
# accuracy at higher rates is shown in process (test_replay).
RATE_PER_S = 50


@pytest.fixture(scope="module")
def months(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_samples(tmp_path_factory.mktemp("months"), rows=ROWS, row_group_rows=250)


def finish(process: ManagedProcess, timeout_s: float = 120) -> dict[str, Any]:
    summary = finish_replay(process, timeout_s)
    assert summary.pop("exit") == 0, (process.errors or process.log_tail(60))[-3000:]
    return summary


def reconcile(files: list[Path], kafka: Broker, topics: Topics) -> dict[str, Any]:
    topic_pair = (topics.raw, topics.dead_letter)
    return reconcile_topics(files, kafka.bootstrap_servers, topic_pair, "--check-payloads")


def as_source(value: Any, expected: Any) -> Any:
    """A payload value read back in the source's Python type, for a value-for-value compare."""
    if isinstance(expected, dt.datetime):
        assert isinstance(value, str)
        assert "T" in value
        return dt.datetime.fromisoformat(value)
    return value


def source_value(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


@pytest.fixture
def collector(kafka: Broker, topics: Topics, tmp_path: Path) -> Iterator[CollectorProcess]:
    """A real collector process on the session's broker, stopped (drained) after the test."""
    process = CollectorProcess(
        kafka.bootstrap_servers, topics.raw, topics.dead_letter,
        log_path=tmp_path / "collector.log",
    )  # fmt: skip
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_three_parallel_replays_arrive_complete_and_exact(
    kafka: Broker, topics: Topics, months: list[Path], collector: CollectorProcess
) -> None:
    replays = [start_replay([m], collector.url, "--concurrency", "8") for m in months]
    summaries = [finish(p) for p in replays]
    for summary in summaries:
        assert (summary["records"], summary["accepted"], summary["failed"]) == (ROWS, ROWS, 0)

    report = reconcile(months, kafka, topics)
    assert report == {
        "expected": 3 * ROWS, "raw": 3 * ROWS, "dead_letter": 0, "missing": 0,
        "duplicates": 0, "unexpected": 0, "other_files": 0, "redriven": 0, "payload_mismatches": 0,
        "exit": 0,
    }  # fmt: skip

    # Independently of the producer's own converter: each payload equals its source row.
    payloads: dict[str, dict[str, Any]] = {}
    for message in read_topic(kafka.bootstrap_servers, topics.raw):
        envelope = orjson.loads(message.value())
        assert message.key().decode() == envelope["event_id"]
        payloads[envelope["event_id"]] = envelope["payload"]
    for month in months:
        for row, expected in enumerate(pq.read_table(month).to_pylist()):
            got = payloads[f"{month.name}:{row}"]
            assert list(got) == list(expected)
            assert {k: as_source(got[k], v) for k, v in expected.items()} == {
                k: source_value(v) for k, v in expected.items()
            }


def test_a_collector_that_comes_up_late_still_gets_everything(
    kafka: Broker, topics: Topics, months: list[Path], tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "producer.log"
    replay = start_replay(
        months[:1], f"http://127.0.0.1:{port}", "--batch-size", "50", "--backoff-cap-s", "0.5",
        "--progress-interval-s", "0.2", log=log,
    )  # fmt: skip
    # The producer meets refused connections and keeps retrying meanwhile.
    replay.wait_ready(lambda: producer_retries(log) >= 5, 60, "the producer's retries")
    collector = CollectorProcess(
        kafka.bootstrap_servers, topics.raw, topics.dead_letter, port=port,
        log_path=tmp_path / "collector.log",
    )  # fmt: skip
    collector.start()
    try:
        summary = finish(replay)
    finally:
        collector.stop()
    assert (summary["accepted"], summary["failed"]) == (ROWS, 0)
    assert summary["retries"] > 0
    report = reconcile(months[:1], kafka, topics)
    assert (report["missing"], report["unexpected"], report["exit"]) == (0, 0, 0)
    assert report["raw"] == ROWS


def test_rate_against_the_real_collector(
    kafka: Broker, topics: Topics, months: list[Path], collector: CollectorProcess
) -> None:
    events = 4 * RATE_PER_S  # several seconds' worth
    replay = start_replay(
        months[:1], collector.url, "--rate", str(RATE_PER_S), "--max-records", str(events),
        "--concurrency", "32",
    )  # fmt: skip
    summary = finish(replay)
    assert (summary["accepted"], summary["failed"]) == (events, 0)
    # The rate at which events landed, from the collector's own acceptance times.
    landed = sorted(
        dt.datetime.fromisoformat(orjson.loads(m.value())["collector_timestamp"])
        for m in read_topic(kafka.bootstrap_servers, topics.raw)
    )
    assert len(landed) == events
    rate_per_s = (events - 1) / (landed[-1] - landed[0]).total_seconds()
    # Never faster than asked: load can only slow it (how close it gets is `make bench`'s figure).
    assert rate_per_s <= RATE_PER_S * 1.05, (rate_per_s, summary)
