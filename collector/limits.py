"""The size chain: how large a record a body can become, and what the topics must hold.

A limit is a chain: the body limit bounds every record the collector writes, the topics'
`max.message.bytes` must hold those records, and the validator (which reads the raw topic's limit at
start-up) writes what the raw topic holds plus its own members. Nothing here does I/O.

| link | bound |
|---|---|
| body (`COLLECTOR_MAX_BODY_BYTES`) | on `Content-Length`, while reading, after decoding |
| raw record (the envelope) | body + `ENVELOPE_ROOM` (members, key, headers, and the validator's) |
| dead-letter record | base64 of the body + `DEAD_LETTER_ROOM` (details are capped) |
| each topic's `max.message.bytes` | at least the record it takes; if not, the body limit shrinks |
"""

from __future__ import annotations

from dataclasses import dataclass

# The envelope's own members (timestamp, root_id, a collector id of up to 256 characters JSON
# escaped), its key (an event_id of up to 128 characters) and headers take under 5 KiB; the
# validator's members (contract, timestamp, its id) under 4 KiB more; the rest is Kafka's framing.
ENVELOPE_ROOM = 16_384
# A dead-letter record around its input: ids, timestamp, the error with at most 16 KiB of details
# and a message of at most 1,000 characters, both JSON-escaped; headers and framing.
DEAD_LETTER_ROOM = 49_152
# librdkafka's batch.size: several small records share one produce request up to this size, so a
# topic must hold at least this much besides the largest single record.
PRODUCER_BATCH_BYTES = 1_000_000


def base64_length(size: int) -> int:
    """How long `size` bytes are in base64, padding included."""
    return (size + 2) // 3 * 4


def largest_envelope(body_bytes: int) -> int:
    """The largest raw record a body of `body_bytes` becomes (value, key and headers)."""
    return body_bytes + ENVELOPE_ROOM


def largest_dead_letter(body_bytes: int) -> int:
    """The largest dead-letter record of a body of `body_bytes` (raw as text or base64)."""
    return base64_length(body_bytes) + DEAD_LETTER_ROOM


def producer_max_bytes(body_bytes: int) -> int:
    """librdkafka's `message.max.bytes` for the collector: every record it may write fits."""
    return max(PRODUCER_BATCH_BYTES, largest_dead_letter(body_bytes))


@dataclass(frozen=True)
class Fit:
    """The body limit the topics can hold, and why it is below the configured one (if it is)."""

    body_bytes: int
    short: str | None = None


def fit_body_limit(
    configured: int, raw_topic: tuple[str, int], dead_letter: tuple[str, int]
) -> Fit:
    """The largest body whose every record fits both topics (`(name, max.message.bytes)`)."""
    (raw_name, raw_max), (dead_name, dead_max) = raw_topic, dead_letter
    by_raw = raw_max - ENVELOPE_ROOM
    by_dead_letter = (dead_max - DEAD_LETTER_ROOM) // 4 * 3
    body_bytes = max(0, min(configured, by_raw, by_dead_letter))
    if body_bytes == configured:
        return Fit(configured)
    if by_raw <= by_dead_letter:
        name, value, needed = raw_name, raw_max, largest_envelope(configured)
    else:
        name, value, needed = dead_name, dead_max, largest_dead_letter(configured)
    return Fit(
        body_bytes,
        f"topic {name} has max.message.bytes {value:,}, so bodies over {body_bytes:,} bytes are "
        f"answered 413; set it to at least {needed:,} to take bodies up to "
        f"COLLECTOR_MAX_BODY_BYTES",
    )
