"""Reading a topic to its end once, committed records only, with a progress bar on long reads."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from tqdm import tqdm

from dlq.settings import Settings, kafka_config

# Below this many records a read takes well under a second: no bar.
_BAR_FROM_RECORDS = 20_000


class ReadError(RuntimeError):
    """A topic is missing, unreachable, or could not be read to its end in time."""


def read_to_end(settings: Settings, topic: str) -> Iterator[Message]:
    """Every committed record on `topic` up to where each partition ended when the read began.

    Partitions are assigned directly (no group, nothing committed). With `read_committed` the last
    offsets of a partition may be transaction markers or aborted records, so a partition is done at
    its high watermark or at partition EOF, whichever the consumer reaches first.
    """
    consumer = Consumer(
        kafka_config(
            settings,
            **{
                "group.id": f"dlq-read-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            },
        )
    )
    try:
        ends = _ends(consumer, topic, min(15.0, settings.read_timeout_s))
        total = sum(high - low for low, high in ends.values())
        consumer.assign([TopicPartition(topic, p, low) for p, (low, _) in ends.items()])
        remaining = {p: high for p, (low, high) in ends.items() if high > low}
        deadline = time.monotonic() + settings.read_timeout_s
        with tqdm(total=total, desc=topic, unit="rec", file=sys.stderr, leave=False,
                  disable=total < _BAR_FROM_RECORDS) as bar:  # fmt: skip
            while remaining:
                if time.monotonic() > deadline:
                    raise ReadError(f"timed out reading {topic}: partitions {sorted(remaining)} "
                                    "not read to their end")  # fmt: skip
                for message in consumer.consume(num_messages=5_000, timeout=0.5):
                    if _done(message, remaining):
                        continue
                    bar.update(1)
                    yield message
    except KafkaException as exc:
        error = exc.args[0]
        text = error.str() if isinstance(error, KafkaError) else str(error)
        raise ReadError(f"cannot read {topic}: {text}") from exc
    finally:
        consumer.close()


def _ends(consumer: Consumer, topic: str, timeout_s: float) -> dict[int, tuple[int, int]]:
    """(low, high) watermarks of every partition of `topic`."""
    metadata: Any = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if metadata is None or metadata.error is not None:
        error = metadata.error if metadata is not None else "not found"
        raise ReadError(f"topic {topic}: {error}; check the name and DLQ_KAFKA_BOOTSTRAP_SERVERS")
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
        for p in metadata.partitions
    }


def _done(message: Message, remaining: dict[int, int]) -> bool:
    """True when `message` is not a record to hand out; drops partitions that reached their end."""
    partition = message.partition() or 0
    error = message.error()
    if error is not None:
        if error.code() == KafkaError._PARTITION_EOF:
            remaining.pop(partition, None)
            return True
        raise KafkaException(error)
    offset = message.offset()
    high = remaining.get(partition)
    if high is None or offset is None or offset >= high:
        return True
    if offset + 1 >= high:
        del remaining[partition]
    return False


def headers_of(message: Message) -> list[tuple[str, bytes]]:
    """A consumed record's headers as (name, bytes) pairs, in order."""
    headers = message.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    return [(k, v.encode() if isinstance(v, str) else v or b"") for k, v in pairs]
