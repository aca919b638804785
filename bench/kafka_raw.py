"""The physical limit: how fast one Python process can produce to the broker (delivery reports on).

Run as `python -m bench.kafka_raw BOOTSTRAP TOPIC SECONDS`; prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time

from confluent_kafka import KafkaError, Message, Producer

MESSAGE_BYTES = 625  # an envelope of the 540-byte sample event


def produce_for(bootstrap: str, topic: str, duration_s: float) -> dict[str, float]:
    """Produce `MESSAGE_BYTES`-byte messages for `duration_s`, then flush; delivered per second."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
            "enable.idempotence": True,
        }
    )
    delivered = failed = 0

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        nonlocal delivered, failed
        if error is None:
            delivered += 1
        else:
            failed += 1

    value = b'{"payload":' + b"x" * (MESSAGE_BYTES - 12) + b"}"
    start = time.perf_counter()
    deadline = start + duration_s
    sent = 0
    while time.perf_counter() < deadline:
        for _ in range(1000):
            try:
                producer.produce(topic, value, key=str(sent).encode(), on_delivery=on_delivery)
                sent += 1
            except BufferError:
                producer.poll(0.005)
        producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - start
    return {
        "sent": sent,
        "delivered": delivered,
        "failed": failed,
        "seconds": elapsed,
        "messages_per_s": delivered / elapsed,
        "message_bytes": MESSAGE_BYTES,
    }


if __name__ == "__main__":
    print(json.dumps(produce_for(sys.argv[1], sys.argv[2], float(sys.argv[3]))))
