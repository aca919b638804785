"""Reading a topic to its end, once for every reader (reconcile, the validator's restore, tools).

The error policy, the same for every caller: what librdkafka retries on its own (a broker down,
a connection reset) is waited out until the deadline, then `KafkaUnavailable` names the last
reason; a refused password or certificate raises `KafkaUnavailable` at once; a topic that does not
exist raises `TopicReadError`; anything else the consumer reports raises `KafkaUnavailable`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from kafkaconn.reasons import KafkaUnavailable, ReasonWatch, TopicReadError

# Errors the consumer reports and then retries by itself.
_TRANSIENT = frozenset(
    {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT,
     KafkaError._RESOLVE}
)  # fmt: skip


def read_to_end(
    config: Mapping[str, Any],
    topic: str,
    timeout_s: float,
    *,
    partitions: Iterable[int] | None = None,
) -> Iterator[Message]:
    """Every committed record now on `topic` (or on its `partitions`), each partition read from
    its start to its end as it stands when the read begins.

    `config` is a client configuration (`KafkaConnection.client_config()`). Partitions are
    assigned directly, without a consumer group rebalance, and nothing is committed. On a
    transactional topic the last offsets are commit markers, not records, so a partition also
    ends when the consumer says so (partition EOF).
    """
    watch = ReasonWatch(str(config.get("bootstrap.servers", "")))
    consumer = Consumer(
        {
            "group.id": f"read-to-end-{uuid.uuid4()}",
            **config,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            # Reasons arrive through the error callback, said once by the caller.
            "log_level": 0,
            "error_cb": watch,
        }
    )
    deadline = time.monotonic() + timeout_s
    try:
        ends = _ends(consumer, topic, partitions, watch)
        consumer.assign([TopicPartition(topic, p, low) for p, (low, _) in ends.items()])
        while ends:
            if watch.refused or time.monotonic() > deadline:
                raise watch.explain(f"reading {topic} (partitions left {sorted(ends)})")
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                partition, offset = message.partition() or 0, message.offset()
                if (error := message.error()) is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        ends.pop(partition, None)
                    elif error.code() not in _TRANSIENT:
                        raise KafkaUnavailable(f"reading {topic}: {error.str()}")
                    continue
                if partition not in ends or offset is None or offset >= ends[partition][1]:
                    continue
                yield message
                if offset + 1 >= ends[partition][1]:
                    del ends[partition]
    finally:
        consumer.close()


def _ends(
    consumer: Consumer, topic: str, partitions: Iterable[int] | None, watch: ReasonWatch
) -> dict[int, tuple[int, int]]:
    """(low, high) watermarks of the partitions that hold something."""
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            if metadata.error.code() in _TRANSIENT:
                raise KafkaException(metadata.error)
            raise TopicReadError(f"topic {topic}: {metadata.error.str()}")
        wanted = metadata.partitions if partitions is None else partitions
        ends = {}
        for partition in wanted:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                ends[partition] = (low, high)
        return ends
    except KafkaException:
        consumer.poll(0.1)  # serves the error callbacks that say why
        raise watch.explain(f"reading {topic}") from None
