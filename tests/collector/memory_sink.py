"""The in-memory Sink the collector's tests serve with: no broker, and failures on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from collector.problems import Problem
from collector.sinks import Delivery, LimitsWatcher, Record


class MemorySink:
    """Keeps acknowledged records in memory; `failure` or `hold` make it misbehave on purpose."""

    def __init__(self, failure: Problem | None = None, hold: bool = False) -> None:
        self.records: list[Record] = []
        self.failure = failure
        self.hold = hold
        self.reachable = True
        self.closed = False
        self.watchers: list[LimitsWatcher] = []
        self._held: list[Delivery] = []

    async def start(self) -> None:
        """Nothing to acquire."""

    @property
    def ready(self) -> bool:
        """Whatever the test set in `reachable`."""
        return self.reachable

    @property
    def problem(self) -> str | None:
        """ "unreachable" unless `reachable`."""
        return None if self.reachable else "unreachable"

    def queue_depth(self) -> int:
        """Deliveries being held back."""
        return len(self._held)

    def watch_limits(self, watcher: LimitsWatcher) -> None:
        """Kept in `watchers`: a test calls them with the limits it wants the topics to have."""
        self.watchers.append(watcher)

    def publish(self, records: Sequence[Record], timeout_s: float) -> Delivery:
        """Acknowledge on the next loop turn, fail with `failure`, or never answer (`hold`)."""
        loop = asyncio.get_running_loop()
        delivery = Delivery(loop, len(records), timeout_s)
        if self.hold:
            self._held.append(delivery)
            return delivery
        for index, record in enumerate(records):
            if self.failure is None:
                self.records.append(record)
            loop.call_soon(delivery.settle, index, self.failure)
        return delivery

    def on(self, topic: str) -> list[Record]:
        """The acknowledged records of one topic, in order."""
        return [record for record in self.records if record.topic == topic]

    async def close(self, timeout_s: float) -> int:
        """Mark closed; held deliveries count as undelivered."""
        self.closed = True
        return len(self._held)
