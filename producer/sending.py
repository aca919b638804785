"""Sending events to the collector: outcomes, retries with backoff, the batch endpoint."""

from __future__ import annotations

import asyncio
import email.utils
import enum
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from producer import reasons
from producer.client import Poster, TransportError

COLLECT_PATH = "/api/v1/collect"
BATCH_PATH = "/api/v1/collect/batch"


class Outcome(enum.Enum):
    """What became of one event, as the producer counts it."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"  # final: the collector said the input is wrong
    RETRY = "retry"  # try again later
    FAILED = "failed"  # final: nothing more to try (auth, not found, budget spent)


_REJECTED_STATUSES = frozenset({400, 413, 422})
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def outcome_of(status: int) -> Outcome:
    """The one place that maps a collector status code to what the producer does next."""
    if 200 <= status < 300:
        return Outcome.ACCEPTED
    if status in _REJECTED_STATUSES:
        return Outcome.REJECTED
    if status in _RETRY_STATUSES:
        return Outcome.RETRY
    return Outcome.FAILED


def retry_after_s(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def transport_error_text(exc: TransportError) -> str:
    """`ConnectError: Connection refused`: the root cause where it has an error number (a
    connection error's own message often carries only the address)."""
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno:
            # A resolver error (negative number) has no strerror of its own in `os`.
            why = os.strerror(cause.errno) if cause.errno > 0 else cause.strerror
            return f"{exc.kind}: {why}"
        cause = cause.__cause__ or cause.__context__
    return str(exc)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded per event by attempts and elapsed time."""

    max_attempts: int = 30
    max_elapsed_s: float = 120.0
    base_s: float = 0.1
    cap_s: float = 5.0

    def delay_s(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """The pause after failed attempt number `attempt` (from 1); never below Retry-After."""
        jittered = rng.uniform(0.0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))
        return max(jittered, retry_after or 0.0)


@dataclass
class Stats:
    records: int = 0
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    retries: int = 0
    # Connections the collector ended (its age limit, draining, idle) and that were replaced at
    # no cost to any event: neither retries nor failures.
    reconnects: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    reasons: reasons.Reasons = field(default_factory=reasons.Reasons)
    # Why the latest retry was needed (`503 ack_timeout "..."`), for the progress line.
    last_retry: str = ""

    @property
    def done(self) -> int:
        return self.accepted + self.rejected + self.failed

    def count(self, outcome: Outcome, n: int = 1) -> None:
        if outcome is Outcome.ACCEPTED:
            self.accepted += n
        elif outcome is Outcome.REJECTED:
            self.rejected += n
        else:
            self.failed += n

    def saw(self, status: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def retrying(self, n: int, why: tuple[str, str]) -> None:
        self.retries += n
        key, message = why
        self.last_retry = message if message.startswith(key) else f'{key} "{message}"'


@dataclass(frozen=True)
class EncodedEvent:
    """One event, as the JSON bytes to send, and the id it is reconciled by."""

    event_id: str
    body: bytes


# A batch element's `status` in the collector's batch reply (`BatchReply` in collector/schemas.py).
_RESULTS = {"accepted": Outcome.ACCEPTED, "rejected": Outcome.REJECTED, "retry": Outcome.RETRY}


def batch_outcomes(status: int, body: bytes, size: int) -> list[Outcome]:
    """One outcome per event of an answer to a batch of `size` events.

    The collector answers a batch it read with 202 or 503 and one result per element, in order;
    any other answer (a whole-batch problem, or a proxy's own page) applies to every event.
    """
    results = reasons.batch_results(status, body, size)
    if results is None:  # a 503 problem reply (draining, internal error), or not the collector
        return [outcome_of(status)] * size
    return [_RESULTS[result["status"]] for result in results]


class Sender:
    """Sends events through one shared async HTTP client and settles each one's outcome."""

    def __init__(
        self,
        client: Poster,
        stats: Stats,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._stats = stats
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._give_up_at_s = float("inf")

    def give_up_after(self, seconds: float) -> None:
        """Stop retrying `seconds` from now (draining on SIGTERM); left-overs count as failed."""
        self._give_up_at_s = min(self._give_up_at_s, self._clock() + seconds)

    async def _post(self, path: str, body: bytes) -> tuple[int, bytes, float | None]:
        """Status, body and Retry-After of one attempt; status 0 and the error for a transport
        error."""
        try:
            answer = await self._client.post(path, body)
        except TransportError as exc:
            self._stats.saw(exc.kind)
            return 0, transport_error_text(exc).encode(), None
        self._stats.saw(str(answer.status))
        return answer.status, answer.body, retry_after_s(answer.retry_after)

    def _may_retry(self, attempt: int, started_s: float, pause_s: float) -> bool:
        resume_s = self._clock() + pause_s
        return (
            attempt < self._policy.max_attempts
            and resume_s - started_s <= self._policy.max_elapsed_s
            and resume_s <= self._give_up_at_s
        )

    async def send(self, event: EncodedEvent) -> Outcome:
        """POST one event until it is accepted, rejected, or its retry budget is spent."""
        self._stats.records += 1
        started_s = self._clock()
        attempt = 0
        while True:
            attempt += 1
            status, answer, retry_after = await self._post(COLLECT_PATH, event.body)
            outcome = Outcome.RETRY if status == 0 else outcome_of(status)
            if outcome is Outcome.RETRY:
                pause_s = self._policy.delay_s(attempt, retry_after, self._rng)
                if self._may_retry(attempt, started_s, pause_s):
                    self._stats.retrying(1, reasons.of_answer(status, answer))
                    await self._sleep(pause_s)
                    continue
                outcome = Outcome.FAILED
            self._stats.count(outcome)
            if outcome is not Outcome.ACCEPTED:
                self._stats.reasons.note(outcome.value, *reasons.of_answer(status, answer))
            return outcome

    async def send_batch(self, events: Sequence[EncodedEvent]) -> list[Outcome]:
        """POST events as one array; resend only those the answer says must be sent again."""
        self._stats.records += len(events)
        final: dict[int, Outcome] = {}
        pending = list(range(len(events)))
        started_s = self._clock()
        attempt = 0
        while pending:
            attempt += 1
            body = b"[" + b",".join(events[i].body for i in pending) + b"]"
            status, answer, retry_after = await self._post(BATCH_PATH, body)
            if status == 413 and len(pending) > 1:
                # Too large as a whole: halve it rather than reject events that fit alone.
                half = len(pending) // 2
                self._stats.records -= len(pending)
                for part in (pending[:half], pending[half:]):
                    outcomes = await self.send_batch([events[i] for i in part])
                    final.update(zip(part, outcomes, strict=True))
                break
            outcomes = (
                [Outcome.RETRY] * len(pending)
                if status == 0
                else batch_outcomes(status, answer, len(pending))
            )
            again = [i for i, o in zip(pending, outcomes, strict=True) if o is Outcome.RETRY]
            # Reasons are read only when something did not get through (never on the hot path).
            why = (
                dict(zip(pending, reasons.of_batch(status, answer, len(pending)), strict=True))
                if status == 0 or any(o is not Outcome.ACCEPTED for o in outcomes)
                else {}
            )
            for i, o in zip(pending, outcomes, strict=True):
                if o is not Outcome.RETRY:
                    final[i] = o
                    self._stats.count(o)
                    if o is not Outcome.ACCEPTED:
                        self._stats.reasons.note(o.value, *why[i])
            pending = again
            if not pending:
                break
            pause_s = self._policy.delay_s(attempt, retry_after, self._rng)
            if not self._may_retry(attempt, started_s, pause_s):
                for i in pending:
                    final[i] = Outcome.FAILED
                    self._stats.reasons.note(Outcome.FAILED.value, *why[i])
                self._stats.count(Outcome.FAILED, len(pending))
                break
            self._stats.retrying(len(pending), why[pending[0]])
            await self._sleep(pause_s)
        return [final[i] for i in range(len(events))]
