"""The validator's link of the size chain: what each topic holds (its max.message.bytes), the
largest record to hand the producer for it, and where the chain breaks (an output topic holding
less than the raw topic). See docs/collector.md#limits for the whole chain."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]

from validator.settings import Settings

log = logging.getLogger("validator")

# Kafka's own default max.message.bytes, assumed for a topic whose configuration is unreadable.
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
# librdkafka's default batch.size, lowered when a topic holds less.
BATCH_BYTES = 1_000_000
# A record batch's header and a record's own framing, with room to spare.
_FRAMING_BYTES = 4_096
# The smallest max.message.bytes an output topic may have: room for a dead letter without its raw
# record (ids, source, reason).
MIN_OUTPUT_MAX_BYTES = 65_536


def topic_max_bytes(config: dict[str, Any], topics: list[str]) -> dict[str, int]:
    """Each topic's max.message.bytes (Kafka's default for one whose config is unreadable), read
    with the admin client `config`."""
    admin = AdminClient(config)
    limits = dict.fromkeys(topics, KAFKA_DEFAULT_MAX_MESSAGE_BYTES)
    resources = [ConfigResource("topic", topic) for topic in topics]
    for resource, future in admin.describe_configs(resources, request_timeout=30).items():
        try:
            entry = future.result(timeout=30).get("max.message.bytes")
            if entry is not None:
                limits[resource.name] = int(entry.value)
        except (KafkaException, ValueError) as exc:
            log.warning(
                "topic config unreadable; Kafka's default max.message.bytes assumed",
                extra={"topic": resource.name, "error": str(exc)},
            )
    return limits


def record_room(max_message_bytes: int) -> int:
    """The largest record (value, key, headers) to hand the producer for a topic of this limit:
    the broker counts the batch with its framing (librdkafka sends a batch uncompressed when
    compression would make it larger)."""
    return max_message_bytes - _FRAMING_BYTES


def chain_problems(settings: Settings, limits: dict[str, int]) -> list[str]:
    """Where the size chain breaks: an output topic that cannot hold what the raw topic can.

    The collector keeps its records 16 KiB under the raw topic's limit (collector/limits.py), room
    for the validator's members: a validated topic with the raw topic's limit holds them all.
    """
    raw = limits[settings.raw_topic]
    problems = []
    validated = limits[settings.validated_topic]
    if validated < raw:
        problems.append(
            f"topic {settings.validated_topic} has max.message.bytes {validated:,}, less than "
            f"{settings.raw_topic}'s {raw:,}: the largest events are dead-lettered as "
            f"record_too_large; set it to at least {raw:,}"
        )
    for topic in (settings.dead_letter_topic, settings.dedup_topic):
        if limits[topic] < MIN_OUTPUT_MAX_BYTES:
            problems.append(
                f"topic {topic} has max.message.bytes {limits[topic]:,}; it needs at least "
                f"{MIN_OUTPUT_MAX_BYTES:,}"
            )
    return problems


def record_size(value: bytes, key: bytes | None, headers: Any) -> int:
    """A record's size as librdkafka counts it against message.max.bytes."""
    size = len(value) + len(key or b"")
    for name, header in headers or ():
        size += len(name) + len(header or b"")
    return size
