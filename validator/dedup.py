"""The seen event ids of one raw partition, within a time window; pure, fed by the loop.

The loop writes the ids it lets through to a changelog partition in the same Kafka transaction as
the output and the offsets, and rebuilds this from that changelog when it gets the partition:
the state is exactly what the committed output says was seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

# Ids per changelog record: one record per partition and batch, not one per id, halves the
# records a transaction writes; 5,000 ids of ~45 bytes stay far below Kafka's 1 MB record limit.
IDS_PER_RECORD = 5_000


def encode_seen(entries: Sequence[tuple[str, int]], max_bytes: int = 524_288) -> Iterator[bytes]:
    """Changelog values: `[[event_id, first_seen_ms], ...]`, at most IDS_PER_RECORD each and no
    larger than `max_bytes` (ids full of escaped characters are split further)."""
    for start in range(0, len(entries), IDS_PER_RECORD):
        yield from _within(entries[start : start + IDS_PER_RECORD], max_bytes)


def _within(entries: Sequence[tuple[str, int]], max_bytes: int) -> Iterator[bytes]:
    value = orjson.dumps(entries)
    if len(value) <= max_bytes or len(entries) == 1:
        yield value
        return
    half = len(entries) // 2
    yield from _within(entries[:half], max_bytes)
    yield from _within(entries[half:], max_bytes)


def decode_seen(value: bytes | None) -> list[tuple[str, int]]:
    """The entries of one changelog value; anything unreadable holds none."""
    try:
        entries: Any = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return []
    if not isinstance(entries, list):
        return []
    return [
        (e[0], e[1])
        for e in entries
        if isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) and isinstance(e[1], int)
    ]


@dataclass
class SeenIds:
    """Ids first seen at a record timestamp; an id is a duplicate within `window_ms` of that."""

    window_ms: int
    _seen: dict[str, int] = field(default_factory=dict, repr=False)
    # Additions of the open transaction, kept apart until it commits, dropped if it aborts.
    _pending: dict[str, int] = field(default_factory=dict, repr=False)
    _newest_ms: int = 0

    def __len__(self) -> int:
        return len(self._seen)

    def restore(self, event_id: str, first_seen_ms: int) -> None:
        """One changelog record (the newest wins, as in a compacted topic)."""
        self._seen[event_id] = first_seen_ms
        self._newest_ms = max(self._newest_ms, first_seen_ms)

    def first_time(self, event_id: str, timestamp_ms: int) -> bool:
        """True (and remembered as pending) when `event_id` is not a duplicate at this time."""
        first = self._pending.get(event_id)
        if first is None:
            first = self._seen.get(event_id)
        if first is not None and timestamp_ms - first <= self.window_ms:
            return False
        self._pending[event_id] = timestamp_ms
        self._newest_ms = max(self._newest_ms, timestamp_ms)
        return True

    def commit(self) -> None:
        self._seen.update(self._pending)
        self._pending.clear()

    def abort(self) -> None:
        self._pending.clear()

    def expire(self) -> int:
        """Forget ids older than the window, measured from the newest timestamp seen."""
        horizon = self._newest_ms - self.window_ms
        old = [event_id for event_id, first in self._seen.items() if first < horizon]
        for event_id in old:
            del self._seen[event_id]
        return len(old)
