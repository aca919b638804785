"""The validator's topics: the client settings, and the seen-ids changelog made to match the raw
topic (created when missing, checked when there)."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from kafkaconn.reasons import ReasonWatch
from validator.settings import Settings


class RawTopicMissing(RuntimeError):
    """The raw topic does not exist yet (on a fresh cluster its Job may still be creating it)."""


class ValidatorError(RuntimeError):
    """Something the validator cannot go on from; it exits and is restarted."""


def kafka_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    return settings.kafka.client_config(extra)


def ensure_dedup_topic(settings: Settings, watch: ReasonWatch | None = None) -> int:
    """Create the changelog topic like the raw one (same partition count) if missing; the count.

    librdkafka's log is off here: why Kafka cannot be reached reaches `watch` (an error_cb).
    """
    watch = watch or ReasonWatch(settings.kafka.bootstrap_servers)
    admin = AdminClient(kafka_config(settings, log_level=0, error_cb=watch))
    deadline = time.monotonic() + 30
    while True:
        # Short tries, so a refused password or certificate is said at once, not after 30 s.
        try:
            topics = admin.list_topics(timeout=2).topics
            break
        except KafkaException:
            admin.poll(0)  # serves the error callback
            if watch.refused or time.monotonic() > deadline:
                raise watch.explain("connecting") from None
    raw = topics.get(settings.raw_topic)
    if raw is None or raw.error is not None:
        raise RawTopicMissing(f"raw topic {settings.raw_topic} not found")
    partitions = len(raw.partitions)
    window_ms = int(settings.dedup_window_s * 1000)
    changelog = topics.get(settings.dedup_topic)
    if changelog is None:
        replication = min(3, len(admin.list_topics(timeout=30).brokers))
        config = {
            # Deleted past the window plus a day: the changelog holds what the window needs and
            # no more (record timestamps are the newest raw one of their batch). An id is written
            # once per window, so there is nothing to compact.
            "cleanup.policy": "delete",
            "retention.ms": str(window_ms + 86_400_000),
            "min.insync.replicas": str(min(2, replication)),
        }
        future = admin.create_topics(
            [NewTopic(settings.dedup_topic, partitions, replication, config=config)],
            operation_timeout=30,
        )[settings.dedup_topic]
        try:
            future.result(timeout=60)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    else:
        have = len(changelog.partitions)
        if have != partitions:
            raise ValidatorError(
                f"{settings.dedup_topic} has {have} partitions but {settings.raw_topic} has "
                f"{partitions}: partition n of one must hold the ids of partition n of the other"
            )
    return partitions
