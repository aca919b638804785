"""Topics on a local broker or cluster: the project's names, creating them, reading one to its
end, and counting what one holds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from devstack.kafka.jars import KafkaSetupError
from kafkaconn.reading import read_to_end
from kafkaconn.reasons import KafkaUnavailable, TopicReadError

DEFAULT_TOPICS = ("raw-events", "raw-events-dlq")
# Every topic's default max.message.bytes on a local broker: a dead-letter record of a 1 MiB body
# (its base64) must fit, or the collector lowers its body limit (collector/limits.py).
TOPIC_MAX_MESSAGE_BYTES = 2_097_152
# The validator's output: `make kafka-up` creates them beside the raw ones.
VALIDATED_TOPICS = ("validated-events", "validated-events-dlq")
DEFAULT_PARTITIONS = 3


def create_topics(
    bootstrap_servers: str | Mapping[str, Any],
    names: Iterable[str],
    partitions: int,
    replication_factor: int,
    config: dict[str, str] | None = None,
) -> None:
    # Errors only: librdkafka's informational lines would interleave with the caller's output.
    client = (
        {"bootstrap.servers": bootstrap_servers}
        if isinstance(bootstrap_servers, str)
        else dict(bootstrap_servers)
    )
    admin = AdminClient({**client, "log_level": 3})
    futures = admin.create_topics(
        [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=replication_factor,
                config=config or {},
            )
            for name in names
        ],
        operation_timeout=30,
    )
    for name, future in futures.items():
        try:
            future.result(timeout=60)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise KafkaSetupError(f"could not create topic {name}: {exc}") from exc


def read_topic(bootstrap_servers: str, topic: str, timeout_s: float = 30.0) -> list[Message]:
    """Every message now on `topic`, read up to each partition's high watermark, in order."""
    try:
        return list(read_to_end({"bootstrap.servers": bootstrap_servers}, topic, timeout_s))
    except (TopicReadError, KafkaUnavailable) as exc:
        raise KafkaSetupError(str(exc)) from exc


def topic_count(bootstrap_servers: str, topic: str) -> int:
    """Messages on `topic` now (sum of high minus low watermarks), without reading them."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "demo-watermarks"})
    try:
        partitions = consumer.list_topics(topic, timeout=5).topics[topic].partitions
        total = 0
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)
            total += high - low
        return total
    finally:
        consumer.close()
