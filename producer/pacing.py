"""Pacing: events per second across the whole producer, by reservation on a virtual schedule."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Pacer:
    """A token bucket kept as the time the next token is due (GCRA).

    Each `acquire(n)` reserves its place on the schedule at once and sleeps until then, so
    concurrent senders share one rate without a lock and without drift from sleep overshoot.
    Idle time earns at most `burst_s` of tokens, so a stall is not followed by a flood.
    """

    def __init__(
        self,
        rate_per_s: float,
        *,
        burst_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_s < 0:
            raise ValueError("rate_per_s must be >= 0")
        self.rate_per_s = rate_per_s
        self._burst_s = burst_s
        self._clock = clock
        self._sleep = sleep
        self._next_s: float | None = None

    def reserve(self, n: int = 1) -> float:
        """Claim `n` tokens; the seconds to wait before using them."""
        if self.rate_per_s == 0:
            return 0.0
        now = self._clock()
        due = now if self._next_s is None else max(self._next_s, now - self._burst_s)
        self._next_s = due + n / self.rate_per_s
        return max(0.0, due - now)

    def resync(self) -> None:
        """Drop any lateness: the schedule goes on from now, with no catch-up burst.

        For a one-off stall that is not the rate's doing (the first request pays for the
        connection and lazy imports): catching up on it would send a flood right after.
        """
        if self._next_s is not None:
            self._next_s = max(self._next_s, self._clock())

    async def acquire(self, n: int = 1) -> None:
        wait_s = self.reserve(n)
        if wait_s > 0:
            await self._sleep(wait_s)
