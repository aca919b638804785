"""What to do with one parked record now: re-drive it (the record to write) or leave it parked.

Nothing here does I/O. A validator dead letter is judged again by the validator's own `judge`
against the contracts as they are now; a collector dead letter, which was never an event, is
re-driven only through the user's transformation and then the collector's own `Enveloper`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from collector.envelope import Enveloper, Valid
from dlq.records import REDRIVEN_FROM, Parked
from dlq.transform import Transform
from validator.contracts import Registry
from validator.verdict import Invalid, Source, judge

# Why a record stays parked when the fault is the transformation's, not the stage's.
NEEDS_TRANSFORM, TRANSFORM_FAILED, TRANSFORM_DROPPED = (
    "needs_transform", "transform_failed", "transform_returned_none")  # fmt: skip


class Out(NamedTuple):
    """A record to write to the stage's target topic, re-driven from `parked`."""

    parked: Parked
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Stay:
    """Still parked, and why (the reason as the stage would give it now)."""

    parked: Parked
    reason: str


Decision = Out | Stay


@dataclass
class Judges:
    """The stages' own checks, as they are now, and the user's transformation if any."""

    registry: Registry
    enveloper: Enveloper
    validator_id: str
    now_text: str
    transform: Transform | None = None

    def decide(self, parked: Parked) -> Decision:
        body = parked.body
        if parked.stage == "collector" and self.transform is None:
            return Stay(parked, NEEDS_TRANSFORM)
        if self.transform is not None:
            try:
                changed = self.transform(parked.body)
            except Exception:  # noqa: BLE001 - a user's function may raise anything: stays parked
                return Stay(parked, TRANSFORM_FAILED)
            if changed is None:
                return Stay(parked, TRANSFORM_DROPPED)
            body = changed
        origin = (REDRIVEN_FROM, parked.origin.encode())
        if parked.stage == "validator":
            source = Source(parked.topic, parked.partition, parked.offset, parked.timestamp_ms)
            verdict = judge(None, body, source, registry=self.registry,
                            validator_id=self.validator_id, now_text=self.now_text)  # fmt: skip
            if isinstance(verdict, Invalid):
                return Stay(parked, verdict.problem.value)
            kept = [h for h in parked.headers if h[0] != REDRIVEN_FROM]
            return Out(parked, verdict.key, verdict.value, [*kept, origin])
        if parked.stage == "collector":
            outcome = self.enveloper.event(body)
            if not isinstance(outcome, Valid):
                return Stay(parked, outcome.problem.value)
            return Out(parked, outcome.key, outcome.value, [*outcome.headers, origin])
        return Stay(parked, parked.reason)
