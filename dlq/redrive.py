"""Re-driving parked records exactly once, even when killed and run again, and beside the stages.

Why a rerun adds nothing: every write goes through a transactional producer whose id is fixed per
dead-letter topic, and each re-driven record names its origin (`redriven_from` header,
`<topic>/<partition>/<offset>`). A run first calls `init_transactions`, which fences any other run
on the same topic and aborts what a killed one left open; only then does it read the target topic
(`read_committed`) for the origins already re-driven and the keys already there (the validator's
dedup key, `event_id`), and it skips both. Records leave in transactions of `DLQ_BATCH_RECORDS`, so
a kill loses at most the open one, which the next run writes again. The stages themselves never
write a parked `event_id` again (the validator's seen ids hold the ids it dead-lettered).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from dlq.decide import Judges, Out, Stay
from dlq.reading import headers_of, read_to_end
from dlq.records import REDRIVEN_FROM, Filters, Parked, parse
from dlq.settings import Settings, kafka_config


@dataclass(frozen=True)
class Route:
    """A dead-letter topic and where its records go when re-driven."""

    stage: str
    dead_letter_topic: str
    target_topic: str

    @property
    def transactional_id(self) -> str:
        return f"dlq-redrive-{self.dead_letter_topic}"


def route(settings: Settings, stage: str) -> Route:
    if stage == "collector":
        return Route(stage, settings.raw_dead_letter_topic, settings.raw_topic)
    return Route(stage, settings.validated_dead_letter_topic, settings.validated_topic)


@dataclass
class Summary:
    """What a run did (or, with --dry-run, would do), by reason."""

    stage: str
    dry_run: bool
    selected: int = 0
    redriven: int = 0
    already_redriven: int = 0
    already_present: int = 0
    # By the reason each record was parked for.
    redriven_by_reason: Counter[str] = field(default_factory=Counter)
    # By the reason it fails now.
    still_parked: Counter[str] = field(default_factory=Counter)
    transactions: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage, "dry_run": self.dry_run, "selected": self.selected,
            "redriven": self.redriven, "already_redriven": self.already_redriven,
            "already_present": self.already_present,
            "still_parked": sum(self.still_parked.values()),
            "still_parked_by_reason": dict(sorted(self.still_parked.items())),
            "redriven_by_reason": dict(sorted(self.redriven_by_reason.items())),
            "transactions": self.transactions, "seconds": round(self.seconds, 3),
            "rate_per_s": round(self.redriven / self.seconds, 1) if self.seconds else 0.0,
        }  # fmt: skip


def parked_records(settings: Settings, topic: str) -> Iterator[Parked]:
    for m in read_to_end(settings, topic):
        yield parse(topic, m.partition() or 0, m.offset() or 0, m.timestamp()[1], m.value(),
                    headers_of(m))  # fmt: skip


def _already_there(settings: Settings, topic: str) -> tuple[set[str], set[bytes]]:
    """Origins already re-driven to `topic`, and the keys (event ids) it holds."""
    origins: set[str] = set()
    keys: set[bytes] = set()
    for message in read_to_end(settings, topic):
        key = message.key()
        if key:
            keys.add(key)
        for name, value in headers_of(message):
            if name == REDRIVEN_FROM:
                origins.add(value.decode("utf-8", "replace"))
    return origins, keys


class Redriver:
    """One re-drive run over one dead-letter topic."""

    def __init__(self, settings: Settings, route: Route, judges: Judges, *, dry_run: bool) -> None:
        self.settings = settings
        self.route = route
        self.judges = judges
        self.summary = Summary(route.stage, dry_run)
        self._producer: Producer | None = None

    def run(self, filters: Filters) -> Summary:
        started = time.monotonic()
        if not self.summary.dry_run:
            self._producer = Producer(
                kafka_config(
                    self.settings,
                    **{
                        "transactional.id": self.route.transactional_id,
                        "enable.idempotence": True,
                        "linger.ms": 5,
                        "compression.type": "lz4",
                    },
                )
            )
            # Fences another run on this topic and aborts what a killed one left open, before the
            # target is read: what it holds from here on is all there is.
            self._producer.init_transactions(60)
        try:
            origins, keys = _already_there(self.settings, self.route.target_topic)
            selected = (p for p in parked_records(self.settings, self.route.dead_letter_topic)
                        if filters.match(p))  # fmt: skip
            batch: list[Out] = []
            for out in self._decisions(selected, origins, keys):
                batch.append(out)
                if len(batch) >= self.settings.batch_records:
                    self._write(batch)
                    batch = []
            self._write(batch)
        finally:
            if self._producer is not None:
                self._producer.flush(10)
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def _decisions(
        self, selected: Iterable[Parked], origins: set[str], keys: set[bytes]
    ) -> Iterator[Out]:
        summary = self.summary
        for parked in selected:
            summary.selected += 1
            if parked.origin in origins:
                summary.already_redriven += 1
                continue
            decision = self.judges.decide(parked)
            if isinstance(decision, Stay):
                summary.still_parked[decision.reason] += 1
                continue
            if decision.key:  # an envelope with neither event_id nor root_id has no dedup key
                if decision.key in keys:
                    summary.already_present += 1
                    continue
                keys.add(decision.key)
            summary.redriven += 1
            summary.redriven_by_reason[parked.reason] += 1
            yield decision

    def _write(self, batch: list[Out]) -> None:
        """One transaction for the batch; an error aborts it and stops the run (rerun is safe)."""
        producer = self._producer
        if producer is None or not batch:
            return
        producer.begin_transaction()
        try:
            for out in batch:
                _produce(producer, self.route.target_topic, out)
            producer.commit_transaction(120)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.txn_requires_abort():
                producer.abort_transaction(60)
            raise
        self.summary.transactions += 1
        # One line per commit: a person (or a test) sees how far a long run has come.
        print(f"committed transaction {self.summary.transactions}: {self.summary.redriven} "
              "re-driven so far", file=sys.stderr, flush=True)  # fmt: skip


def _produce(producer: Producer, topic: str, out: Out) -> None:
    while True:
        try:
            producer.produce(topic, key=out.key, value=out.value, headers=list(out.headers))
            return
        except BufferError:
            producer.poll(0.05)  # the local queue is full: let librdkafka send some
