"""Every source row exactly once in the validated topics, across crashes, rebalances, duplicates
and poison, against the real broker: replays through a real collector, real validator processes,
and the reconciliation reading committed records only."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from devstack.collector import CollectorProcess
from devstack.kafka import Broker, read_topic
from devstack.proc import ManagedProcess, wait_until
from devstack.validator import ValidatorProcess, wait_caught_up
from producer.sample import write_samples
from tests.conftest import Topics, finish_replay, reconcile_topics, start_replay

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROWS = 400
RATE_PER_S = "150"


@pytest.fixture(scope="module")
def months(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_samples(tmp_path_factory.mktemp("months"), rows=ROWS, row_group_rows=150)


@dataclass(frozen=True)
class Stage:
    """The raw topics, the validated topics and the validator group of one test."""

    kafka: Broker
    raw: Topics
    validated: str
    dead_letter: str
    dedup: str
    group: str
    collector: CollectorProcess
    logs: Path

    def validator(self, validator_id: str) -> ValidatorProcess:
        return ValidatorProcess(
            self.kafka.bootstrap_servers,
            raw_topic=self.raw.raw,
            validated_topic=self.validated,
            dead_letter_topic=self.dead_letter,
            dedup_topic=self.dedup,
            group_id=self.group,
            validator_id=validator_id,
            log_path=self.logs / f"{validator_id}.log",
            # Small batches: many transactions, so a kill lands inside one.
            env={"VALIDATOR_BATCH_MAX_RECORDS": "50", "VALIDATOR_TRANSACTION_TIMEOUT_S": "10"},
        )

    def caught_up(self) -> None:
        wait_caught_up(self.kafka.bootstrap_servers, self.group, self.raw.raw, timeout_s=180)

    def reconcile(self, files: list[Path]) -> dict[str, Any]:
        """The validated topics against the files (committed records only)."""
        topic_pair = (self.validated, self.dead_letter)
        return reconcile_topics(files, self.kafka.bootstrap_servers, topic_pair, timeout_s=180)

    def dead_letter_codes(self) -> Counter[str]:
        return Counter(
            orjson.loads(m.value())["error"]["code"]
            for m in read_topic(self.kafka.bootstrap_servers, self.dead_letter, 120)
        )


@pytest.fixture
def stage(kafka: Broker, topics: Topics, tmp_path: Path) -> Iterator[Stage]:
    suffix = uuid.uuid4().hex[:10]
    validated, dead_letter = f"validated-events-{suffix}", f"validated-events-dlq-{suffix}"
    kafka.create_topics([validated, dead_letter])
    collector = CollectorProcess(
        kafka.bootstrap_servers,
        topics.raw,
        topics.dead_letter,
        log_path=tmp_path / "collector.log",
    )
    collector.start()
    try:
        yield Stage(
            kafka,
            topics,
            validated,
            dead_letter,
            f"dedup-{suffix}",
            f"validator-{suffix}",
            collector,
            tmp_path,
        )
    finally:
        collector.stop()


def replay(stage: Stage, files: list[Path], *extra: str) -> ManagedProcess:
    return start_replay(files, stage.collector.url, "--rate", RATE_PER_S, *extra)


def finish(process: ManagedProcess) -> dict[str, Any]:
    summary = finish_replay(process, 300)
    assert summary.pop("exit") == 0, process.errors[-3000:]
    assert summary["failed"] == 0
    assert isinstance(summary, dict)
    return summary


def exactly_once(report: dict[str, Any], files: list[Path], dead_letter: int = 0) -> None:
    assert report["expected"] == ROWS * len(files)
    assert (report["missing"], report["duplicates"], report["unexpected"]) == (0, 0, 0), report
    assert report["raw"] + report["dead_letter"] == report["expected"], report
    assert report["dead_letter"] == dead_letter, report
    assert report["exit"] == 0


def test_sigkill_mid_stream_then_restart_loses_and_repeats_nothing(
    stage: Stage, months: list[Path]
) -> None:
    first = stage.validator("validator-a")
    first.start()
    running = replay(stage, months[:2], "--concurrency", "4")
    # Kill while records flow: transactions are committing every 50 records.
    wait_until(
        lambda: first.metric("validator_transactions_total") >= 3,
        120,
        "first validator_transactions_total >= 3",
    )
    first.kill()
    time.sleep(1)  # more raw records arrive with no validator at all
    again = stage.validator("validator-a")  # same id: fences the dead one and aborts its txn
    again.start()
    finish(running)
    # The same rows once more: raw duplicates, dropped by the restored seen ids.
    finish(replay(stage, months[:1]))
    stage.caught_up()
    counts = again.stop()
    assert counts is not None
    assert counts["restored_ids"] > 0  # the seen ids came back from the changelog
    assert counts["duplicates"] >= ROWS
    exactly_once(stage.reconcile(months[:2]), months[:2])


def test_two_validators_and_a_rebalance_while_a_replay_runs(
    stage: Stage, months: list[Path]
) -> None:
    a, b = stage.validator("validator-a"), stage.validator("validator-b")
    a.start()
    running = replay(stage, months, "--concurrency", "4")
    wait_until(
        lambda: a.metric("validator_transactions_total") >= 3,
        120,
        "a validator_transactions_total >= 3",
    )
    b.start()  # a rebalance: some partitions move to b, which rebuilds their seen ids
    wait_until(
        lambda: b.metric("validator_assigned_partitions") >= 1,
        120,
        "b validator_assigned_partitions >= 1",
    )
    wait_until(
        lambda: b.metric("validator_transactions_total") >= 1,
        120,
        "b validator_transactions_total >= 1",
    )
    counts_a = a.stop()  # another: b takes every partition
    assert counts_a is not None
    assert counts_a["validated"] > 0
    finish(running)
    # Rows a validated, posted again: b must know them from the changelog.
    finish(replay(stage, months[:1]))
    stage.caught_up()
    counts_b = b.stop()
    assert counts_b is not None
    assert counts_b["restored_ids"] > 0
    assert counts_b["duplicates"] == ROWS
    assert counts_a["validated"] + counts_b["validated"] == 3 * ROWS
    exactly_once(stage.reconcile(months), months)


def test_duplicates_injected_on_the_raw_topic_are_dropped(stage: Stage, months: list[Path]) -> None:
    validator = stage.validator("validator-a")
    validator.start()
    # The same file three times at once: every event_id reaches the raw topic three times.
    runs = [replay(stage, months[:1]) for _ in range(3)]
    for run in runs:
        assert finish(run)["accepted"] == ROWS
    stage.caught_up()
    counts = validator.stop()
    assert counts is not None
    assert (counts["validated"], counts["duplicates"]) == (ROWS, 2 * ROWS)
    exactly_once(stage.reconcile(months[:1]), months[:1])


def test_poison_goes_to_the_dead_letter_topic_and_the_stream_goes_on(
    stage: Stage, months: list[Path]
) -> None:
    validator = stage.validator("validator-a")
    validator.start()
    first = replay(stage, months[:1])
    poison = Producer({"bootstrap.servers": stage.kafka.bootstrap_servers})
    for value in (b"\x00\xff not json", b"[1, 2, 3]", b'{"event_type": "YellowTaxiTripRecords"}'):
        poison.produce(stage.raw.raw, key=b"poison", value=value)
    assert poison.flush(30) == 0
    finish(first)
    # A month sent under a version no contract has: every row to the dead-letter topic.
    finish(replay(stage, months[1:2], "--schema-version", "9-9-9"))
    stage.caught_up()
    counts = validator.stop()
    assert counts is not None
    assert counts["by_reason"] == {"not_an_envelope": 3, "unknown_contract": ROWS}
    assert stage.dead_letter_codes() == {"not_an_envelope": 3, "unknown_contract": ROWS}
    report = stage.reconcile(months[:2])
    exactly_once(report, months[:2], dead_letter=ROWS)
    assert report["other_files"] == 3


def test_a_killed_validators_partitions_move_to_the_other_one(
    stage: Stage, months: list[Path]
) -> None:
    # A short session: the group notices the dead member in seconds, not the default 45 s.
    fast = {"VALIDATOR_KAFKA_PROPERTIES": '{"session.timeout.ms": 6000}'}
    a, b = stage.validator("validator-a"), stage.validator("validator-b")
    a.env.update(fast)
    b.env.update(fast)
    a.start()
    b.start()
    wait_until(
        lambda: b.metric("validator_assigned_partitions") >= 1,
        120,
        "b validator_assigned_partitions >= 1",
    )
    running = replay(stage, months[:2], "--concurrency", "4")
    wait_until(
        lambda: a.metric("validator_transactions_total") >= 3,
        120,
        "a validator_transactions_total >= 3",
    )
    # Killed, never restarted: its open transaction is aborted by Kafka's timeout, and b takes its
    # partitions from the committed offsets and the committed changelog only.
    a.kill()
    finish(running)
    finish(replay(stage, months[:1]))
    stage.caught_up()
    counts = b.stop()
    assert counts is not None
    assert counts["restored_ids"] > 0
    assert counts["duplicates"] >= ROWS
    exactly_once(stage.reconcile(months[:2]), months[:2])


def test_a_validator_started_before_its_raw_topic_waits_unready_then_runs(
    kafka: Broker, tmp_path: Path
) -> None:
    """On a fresh cluster the topics Job may still run: the validator waits instead of exiting."""
    suffix = uuid.uuid4().hex[:10]
    raw, validated, dead_letter = (f"{n}-{suffix}" for n in ("raw", "validated", "dlq"))
    kafka.create_topics([validated, dead_letter])
    validator = ValidatorProcess(
        kafka.bootstrap_servers,
        raw_topic=raw,
        validated_topic=validated,
        dead_letter_topic=dead_letter,
        dedup_topic=f"dedup-{suffix}",
        group_id=f"validator-{suffix}",
        validator_id="early",
        log_path=tmp_path / "v.log",
    )
    with pytest.raises(TimeoutError):
        validator.start(timeout_s=5)  # alive (wait_for raises RuntimeError on an exit), not ready
    try:
        assert validator.fetch("/healthz")[0] == 200
        assert validator.fetch("/readyz")[0] == 503
        assert "waiting for Kafka and the raw topic" in (tmp_path / "v.log").read_text()
        kafka.create_topics([raw])
        validator.wait_for("/readyz", timeout_s=60)
    finally:
        validator.kill()
