"""Per-API-key rate limits: a token bucket per key, refilled continuously (off by default)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimiter:
    """At most `rate_per_s` requests per second per key on average, bursts up to `burst`.

    `burst` 0 means one second's worth of requests (at least one).
    """

    def __init__(
        self, rate_per_s: float, burst: int = 0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst or max(1, math.ceil(rate_per_s)))
        self._clock = clock
        # key -> (tokens, when they were counted); keys are the configured API keys (or one
        # shared key when none are), so the table stays as small as the key list.
        self._buckets: dict[bytes, tuple[float, float]] = {}

    def take(self, key: bytes) -> float:
        """0 when a request under `key` may go ahead (and counts it), else seconds to wait."""
        now = self._clock()
        tokens, then = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate_per_s)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate_per_s


def retry_after_s(wait_s: float) -> int:
    """A `Retry-After` (whole seconds, at least 1) that is never earlier than `wait_s`."""
    return max(1, math.ceil(wait_s))
