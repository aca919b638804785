"""The seen event ids of one raw partition, within a time window; pure, fed by the loop.

The loop writes every id it lets through to a changelog partition in the same Kafka transaction as
the output and the offsets, and rebuilds this from that changelog when it gets the partition:
the state is exactly what the committed output says was seen.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

_TIMESTAMP = struct.Struct(">q")


def encode_seen(timestamp_ms: int) -> bytes:
    """A changelog value: when the id was first seen (the raw record's timestamp), 8 bytes."""
    return _TIMESTAMP.pack(timestamp_ms)


def decode_seen(value: bytes | None) -> int | None:
    if value is None or len(value) != _TIMESTAMP.size:
        return None
    return int(_TIMESTAMP.unpack(value)[0])


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
