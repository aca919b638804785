"""Real KRaft Kafka on 127.0.0.1, from Maven Central jars and the local Java."""

from devstack.kafka.broker import (
    DEFAULT_PARTITIONS,
    DEFAULT_TOPICS,
    FAST_FAILOVER,
    KAFKA_VERSION,
    VALIDATED_TOPICS,
    Broker,
    Cluster,
    KafkaSetupError,
    fetch_jars,
    read_topic,
)

__all__ = [
    "DEFAULT_PARTITIONS",
    "DEFAULT_TOPICS",
    "FAST_FAILOVER",
    "KAFKA_VERSION",
    "VALIDATED_TOPICS",
    "Broker",
    "Cluster",
    "KafkaSetupError",
    "fetch_jars",
    "read_topic",
]
