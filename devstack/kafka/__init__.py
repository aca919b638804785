"""Real KRaft Kafka on 127.0.0.1, from Maven Central jars and the local Java: one combined node
(`Broker`), or a replicated cluster of one controller and three brokers (`Cluster`).

Used by `make kafka-up [BROKERS=3]` / `make kafka-down` (`cli`, state in `.kafka/`), by the test
suite (free ports in a temp dir, stopped with the session) and by `make demo` / `make bench`.
"""

from devstack.kafka.broker import Broker
from devstack.kafka.cluster import FAST_FAILOVER, Cluster
from devstack.kafka.jars import KAFKA_VERSION, KafkaSetupError, fetch_jars
from devstack.kafka.topics import (
    DEFAULT_PARTITIONS,
    DEFAULT_TOPICS,
    TOPIC_MAX_MESSAGE_BYTES,
    VALIDATED_TOPICS,
    read_topic,
    topic_count,
)

__all__ = [
    "DEFAULT_PARTITIONS",
    "DEFAULT_TOPICS",
    "FAST_FAILOVER",
    "KAFKA_VERSION",
    "TOPIC_MAX_MESSAGE_BYTES",
    "VALIDATED_TOPICS",
    "Broker",
    "Cluster",
    "KafkaSetupError",
    "fetch_jars",
    "read_topic",
    "topic_count",
]
