"""The exactly-once loop: consume a batch, judge it, produce it, commit it all in one transaction.

One Kafka transaction per consumed batch holds the validated and dead-letter records, the
seen-ids changelog records and the consumer offsets (KIP-447: fenced by the group generation), so
a crash anywhere leaves either all of a batch or none of it for `read_committed` readers.
Transactions never stay open across `consume()`, so a rebalance never revokes a partition with
work in flight. Written on confluent-kafka directly: see docs/validator.md for the measurement.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from console.timestamps import rfc3339_at
from kafkaconn.reading import read_to_end
from kafkaconn.reasons import KafkaUnavailable, ReasonWatch, TopicReadError
from validator.contracts import Registry
from validator.dedup import SeenIds, decode_seen, encode_seen
from validator.settings import Settings
from validator.sizes import (
    BATCH_BYTES,
    chain_problems,
    record_room,
    record_size,
    topic_max_bytes,
)
from validator.topics import RawTopicMissing, ValidatorError, ensure_dedup_topic, kafka_config
from validator.verdict import Invalid, Problem, Source, Verdict, dead_letter, judge

log = logging.getLogger("validator")

_EXPIRE_EVERY_S = 60.0
_RESTORE_TIMEOUT_S = 300.0


@dataclass
class Counts:
    """What this process did since it started (read by the metrics endpoint)."""

    consumed: int = 0
    validated: int = 0
    dead_letter: int = 0
    duplicates: int = 0
    transactions: int = 0
    aborted: int = 0
    restored_ids: int = 0
    assigned_partitions: int = 0
    # Seconds spent sending offsets and committing: the price of exactly once over at least once.
    commit_s: float = 0.0
    by_reason: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.__dict__.items()}


class Validator:
    """Consumes the raw topic and writes each record exactly once to validated or dead-letter."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        clock: Callable[[], float] = time.time,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.clock = clock
        self.stop = stop or threading.Event()
        self.counts = Counts()
        self.ready = threading.Event()
        self._seen: dict[int, SeenIds] = {}
        self._window_ms = int(settings.dedup_window_s * 1000)
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        # Per output topic, the largest record it takes (record_room of its max.message.bytes).
        self._room: dict[str, int] = {}
        # A batch whose transaction keeps aborting is retried in halves, down to one record; a
        # record that still cannot be written is replaced by a bare dead letter (`_unwritable`).
        self._batch_cap: int | None = None
        self._capped_left = 0
        self._abort_at: tuple[int, int] | None = None
        self._aborts_here = 0
        self._unwritable: dict[tuple[int, int], str] = {}

    # ------------------------------------------------------------ set-up and rebalances

    def _restore(self, partitions: list[int]) -> None:
        """Rebuild the seen ids of `partitions` from their committed changelog."""
        for partition in partitions:
            self._seen[partition] = SeenIds(self._window_ms)
        config = kafka_config(self.settings, **{"group.id": f"{self.settings.group_id}-restore"})
        restored = 0
        try:
            for message in read_to_end(
                config, self.settings.dedup_topic, _RESTORE_TIMEOUT_S, partitions=partitions
            ):
                seen = self._seen[_where(message)[0]]
                for event_id, first_seen_ms in decode_seen(message.value()):
                    seen.restore(event_id, first_seen_ms)
                    restored += 1
        except (KafkaUnavailable, TopicReadError) as exc:
            raise ValidatorError(f"could not restore the seen ids: {exc}") from None
        for partition in partitions:
            self._seen[partition].expire()
        self.counts.restored_ids += restored
        log.info(
            "seen ids restored",
            extra={"partitions": partitions, "records": restored,
                   "ids": sum(len(self._seen[p]) for p in partitions)},
        )  # fmt: skip

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        # Committed offsets are fetched as "stable": this waits for a transaction of the
        # partition's previous owner that already holds offsets, so the changelog read next
        # includes everything that transaction wrote.
        consumer.committed(partitions, timeout=_RESTORE_TIMEOUT_S)
        self._restore([tp.partition for tp in partitions])
        self.counts.assigned_partitions += len(partitions)
        log.info("partitions assigned", extra={"partitions": [tp.partition for tp in partitions]})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._seen.pop(tp.partition, None)
        self.counts.assigned_partitions = max(0, self.counts.assigned_partitions - len(partitions))
        log.info("partitions revoked", extra={"partitions": [tp.partition for tp in partitions]})

    # ------------------------------------------------------------ the loop

    def _wait_for_topics(self) -> bool:
        """Wait, not ready, for Kafka and the raw topic; exiting instead would only earn the pod
        restarts and a crash-loop back-off while a fresh cluster's topics Job runs."""
        delay_s, said = 0.5, ""
        watch = ReasonWatch(self.settings.kafka.bootstrap_servers)
        while not self.stop.is_set():
            try:
                ensure_dedup_topic(self.settings, watch)
                return True
            except (RawTopicMissing, KafkaException, KafkaUnavailable) as exc:
                # Said once per reason: a refused password is one line, not one per retry.
                if str(exc) != said:
                    log.warning("waiting for Kafka and the raw topic", extra={"error": str(exc)})
                    said = str(exc)
            self.stop.wait(delay_s)
            delay_s = min(2 * delay_s, 5.0)
        return False

    def _check_chain(self) -> dict[str, Any]:
        """Read the topics' limits; say where the size chain breaks; the producer's size settings.

        The producer takes any record an output topic takes (librdkafka's default 1,000,000-byte
        message.max.bytes stopped the validator for good on a raw record the collector had
        written); a record over its topic's room is dead-lettered instead (`_fit`).
        """
        settings = self.settings
        outputs = [settings.validated_topic, settings.dead_letter_topic, settings.dedup_topic]
        limits = topic_max_bytes(
            kafka_config(settings, log_level=3), [settings.raw_topic, *outputs]
        )
        self._room = {topic: record_room(limits[topic]) for topic in outputs}
        log.info("size limits (max.message.bytes)", extra={"topics": limits})
        for problem in chain_problems(settings, limits):
            log.error("size chain broken", extra={"problem": problem})
        return {
            "message.max.bytes": max(BATCH_BYTES, *(limits[topic] for topic in outputs)),
            "batch.size": max(1024, min(BATCH_BYTES, *(self._room.values()))),
        }

    def run(self) -> None:
        settings = self.settings
        if not self._wait_for_topics():
            return
        sizes = self._check_chain()
        producer = Producer(
            kafka_config(
                settings,
                **{
                    "transactional.id": settings.transactional_id,
                    "enable.idempotence": True,
                    "transaction.timeout.ms": int(settings.transaction_timeout_s * 1000),
                    # Batches leave as soon as the commit asks; a short linger fills them meanwhile.
                    "linger.ms": 5,
                    "compression.type": "lz4",
                    "log_level": 3,
                    **sizes,
                },
            )
        )
        # Fences an older process with the same transactional id and aborts what it left open.
        producer.init_transactions(60)
        consumer = Consumer(
            kafka_config(
                settings,
                **{
                    "group.id": settings.group_id,
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "earliest",
                    "isolation.level": "read_committed",
                    # Keeps the partitions a member already has through a rebalance (and their
                    # seen ids): only moved partitions are rebuilt from the changelog.
                    "partition.assignment.strategy": "cooperative-sticky",
                    "log_level": 3,
                },
            )
        )
        self._producer, self._consumer = producer, consumer
        consumer.subscribe(
            [settings.raw_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        self.ready.set()
        log.info("validator started", extra={"transactional_id": settings.transactional_id})
        next_expiry = time.monotonic() + _EXPIRE_EVERY_S
        try:
            while not self.stop.is_set():
                messages = consumer.consume(settings.batch_max_records, settings.batch_wait_s)
                batch = [m for m in messages if self._usable(m)]
                if batch:
                    self._transact(batch)
                if time.monotonic() > next_expiry:
                    for seen in self._seen.values():
                        seen.expire()
                    next_expiry = time.monotonic() + _EXPIRE_EVERY_S
        finally:
            self.ready.clear()
            consumer.close()
            producer.flush(10)
            log.info("validator stopped", extra=self.counts.as_dict())

    @staticmethod
    def _usable(message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.fatal():
            raise KafkaException(error)
        log.warning("consumer error", extra={"error": str(error)})
        return False

    def _transact(self, batch: list[Message]) -> None:
        """Process one batch in one transaction; on an abortable error, rewind and let it rerun."""
        assert self._producer is not None
        assert self._consumer is not None
        producer, consumer = self._producer, self._consumer
        if self._batch_cap is not None and len(batch) > self._batch_cap:
            batch = self._keep_first(batch, self._batch_cap)
        starts: dict[int, int] = {}
        for message in batch:
            partition, offset = _where(message)
            starts.setdefault(partition, offset)
        try:
            producer.begin_transaction()
            tally = self._produce_batch(producer, batch)
            offsets = [
                TopicPartition(self.settings.raw_topic, p, offset + 1)
                for p, offset in tally.positions.items()
            ]
            committing = time.perf_counter()
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 60)
            self._commit(producer)
            self.counts.commit_s += time.perf_counter() - committing
        except KafkaException as exc:
            error = exc.args[0]
            if not (isinstance(error, KafkaError) and error.txn_requires_abort()):
                raise
            log.warning("transaction aborted; the batch is read again", extra={"error": str(error)})
            producer.abort_transaction(60)
            for seen in self._seen.values():
                seen.abort()
            self.counts.aborted += 1
            self._aborted(batch, str(error))
            for partition, offset in starts.items():
                try:
                    consumer.seek(TopicPartition(self.settings.raw_topic, partition, offset))
                except KafkaException:
                    # No longer ours: its next owner starts from the committed offset anyway.
                    log.info("partition moved while aborting", extra={"partition": partition})
            return
        for seen in self._seen.values():
            seen.commit()
        self._committed(batch)
        counts = self.counts
        counts.transactions += 1
        counts.consumed += len(batch)
        counts.validated += tally.validated
        counts.dead_letter += tally.dead_letter
        counts.duplicates += tally.duplicates
        for reason, n in tally.by_reason.items():
            counts.by_reason[reason] = counts.by_reason.get(reason, 0) + n

    def _keep_first(self, batch: list[Message], count: int) -> list[Message]:
        """The first `count` records; the consumer is rewound to read the others again."""
        assert self._consumer is not None
        rewind: dict[int, int] = {}
        for message in batch[count:]:
            partition, offset = _where(message)
            rewind[partition] = min(offset, rewind.get(partition, offset))
        for partition, offset in rewind.items():
            self._consumer.seek(TopicPartition(self.settings.raw_topic, partition, offset))
        return batch[:count]

    def _aborted(self, batch: list[Message], error: str) -> None:
        """After an abort: twice in a row at the same record, retry in halves; a lone record
        aborted three times is written as a bare dead letter (the stream never stalls on it)."""
        first = _where(batch[0])
        self._aborts_here = self._aborts_here + 1 if first == self._abort_at else 1
        self._abort_at = first
        if len(batch) > 1 and self._aborts_here >= 2:
            self._batch_cap = len(batch) // 2
            self._capped_left = max(self._capped_left, len(batch))
            self._aborts_here = 0
        elif len(batch) == 1 and self._aborts_here >= 3:
            log.error(
                "record cannot be written; dead-lettered without it",
                extra={"partition": first[0], "offset": first[1], "error": error},
            )
            self._unwritable[first] = error

    def _committed(self, batch: list[Message]) -> None:
        self._abort_at, self._aborts_here = None, 0
        for message in batch:
            self._unwritable.pop(_where(message), None)
        if self._batch_cap is not None:
            self._capped_left -= len(batch)
            if self._capped_left <= 0:
                self._batch_cap = None

    def _fit(
        self, verdict: Verdict, message: Message, source: Source, now_text: str
    ) -> tuple[str, Verdict, Any]:
        """Where the verdict goes, as what, with which headers: a record over its topic's room
        becomes a dead letter (`record_too_large`) holding what fits."""
        settings = self.settings
        headers = message.headers()
        topic = (
            settings.dead_letter_topic if isinstance(verdict, Invalid) else settings.validated_topic
        )
        if record_size(verdict.value, verdict.key, headers) <= self._room.get(topic, BATCH_BYTES):
            return topic, verdict, headers
        raw = message.value() or b""
        problem = verdict.problem if isinstance(verdict, Invalid) else Problem.RECORD_TOO_LARGE
        too_large = problem is Problem.RECORD_TOO_LARGE
        kind = "validated" if too_large else f"{problem.value} dead-letter"
        written = record_size(verdict.value, verdict.key, headers)
        text = f"the {kind} record ({written:,} bytes) is larger than {topic} takes"
        fitted = dead_letter(
            message.key(), raw, verdict.event_id, source, problem, text, [],
            validator_id=settings.validator_id, now_text=now_text,
            max_bytes=self._room.get(settings.dead_letter_topic, BATCH_BYTES),
        )  # fmt: skip
        return settings.dead_letter_topic, fitted, None

    @staticmethod
    def _commit(producer: Producer) -> None:
        while True:
            try:
                producer.commit_transaction(60)
                return
            except KafkaException as exc:
                error = exc.args[0]
                if isinstance(error, KafkaError) and error.retriable():
                    continue
                raise

    def _judge(self, message: Message, source: Source, now_text: str) -> Verdict:
        """The verdict on one raw record, whatever it holds: an exception while judging it, or a
        record that could not be written three times, is its own dead letter."""
        settings = self.settings
        key, value = message.key(), message.value() or b""
        unwritable = self._unwritable.get((source.partition, source.offset))
        if unwritable is not None:
            return dead_letter(
                key, value, None, source, Problem.UNWRITABLE,
                f"its records could not be written: {unwritable}"[:1000], [],
                validator_id=settings.validator_id, now_text=now_text, max_bytes=0,
            )  # fmt: skip
        try:
            return judge(
                key, value, source,
                registry=self.registry, validator_id=settings.validator_id, now_text=now_text,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - one record's failure never stops the stream
            log.warning("record could not be judged", extra={"error": repr(exc)[:500]})
            return dead_letter(
                key, value, None, source, Problem.UNPROCESSABLE,
                f"{type(exc).__name__}: {exc}"[:1000], [],
                validator_id=settings.validator_id, now_text=now_text,
                max_bytes=self._room.get(settings.dead_letter_topic, BATCH_BYTES),
            )  # fmt: skip

    def _produce_batch(self, producer: Producer, batch: list[Message]) -> _Tally:
        settings = self.settings
        tally = _Tally()
        now_text = rfc3339_at(self.clock())
        raw_topic = settings.raw_topic
        # The ids let through, per partition: one changelog record each, not one per id.
        changelog: dict[int, list[tuple[str, int]]] = {}
        for message in batch:
            partition, offset = _where(message)
            tally.positions[partition] = offset
            timestamp_ms = message.timestamp()[1]
            if timestamp_ms <= 0:
                timestamp_ms = int(self.clock() * 1000)
            source = Source(raw_topic, partition, offset, timestamp_ms)
            verdict = self._judge(message, source, now_text)
            event_id = verdict.event_id
            if event_id is not None:
                seen = self._seen.get(partition)
                if seen is None:  # a record of a partition never assigned: never expected
                    raise ValidatorError(f"record of unassigned partition {partition}")
                if not seen.first_time(event_id, timestamp_ms):
                    tally.duplicates += 1
                    continue
                changelog.setdefault(partition, []).append((event_id, timestamp_ms))
            topic, verdict, headers = self._fit(verdict, message, source, now_text)
            if isinstance(verdict, Invalid):
                tally.dead_letter += 1
                tally.by_reason[verdict.problem.value] = (
                    tally.by_reason.get(verdict.problem.value, 0) + 1
                )
            else:
                tally.validated += 1
            _produce(producer, topic, verdict.value, verdict.key, headers)
        for partition, entries in changelog.items():
            newest_ms = max(ts for _, ts in entries)
            room = min(524_288, self._room.get(settings.dedup_topic, BATCH_BYTES))
            for value in encode_seen(entries, room):
                _produce(producer, settings.dedup_topic, value, None, None,
                         partition=partition, timestamp_ms=newest_ms)  # fmt: skip
        return tally


def _where(message: Message) -> tuple[int, int]:
    """(partition, offset) of a consumed record, which always has both."""
    partition, offset = message.partition(), message.offset()
    assert partition is not None
    assert offset is not None
    return partition, offset


@dataclass
class _Tally:
    """What one batch came to: the next offsets to commit and what went where."""

    positions: dict[int, int] = field(default_factory=dict)
    validated: int = 0
    dead_letter: int = 0
    duplicates: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


def _produce(
    producer: Producer,
    topic: str,
    value: bytes,
    key: bytes | None,
    headers: Any,
    *,
    partition: int | None = None,
    timestamp_ms: int = 0,
) -> None:
    kwargs: dict[str, Any] = {"key": key, "value": value}
    if headers:
        kwargs["headers"] = headers
    if partition is not None:
        kwargs["partition"] = partition
    if timestamp_ms:
        kwargs["timestamp"] = timestamp_ms
    while True:
        try:
            producer.produce(topic, **kwargs)
            return
        except BufferError:
            # The local queue is full: let librdkafka send some, then try again.
            producer.poll(0.05)
