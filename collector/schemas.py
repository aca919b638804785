"""The documented shapes of requests and answers: the event contract, written once.

`Event` and `MAX_CHARS` are what an event is; the validator on the hot path
(`collector.envelope`) reads the same limits, and explains a rejection with `EVENT`'s errors. The
reply models document what `collector.service` sends; tests hold every reply to them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, with_config
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from collector.problems import Problem

# The longest value of each string field, in characters (all must be at least 1 long).
MAX_CHARS = {"event_type": 256, "schema_version": 64, "event_id": 128}
# How deep objects and arrays may nest in an event, the event object itself being level 1 (so a
# payload may nest 63 levels). Deeper input is answered 422 `too_deep`: every consumer down the
# line can then parse and re-encode what the collector accepted (orjson re-encodes at most 254
# levels, Python's json module about 1,000).
MAX_DEPTH = 64
# At most this many problems are listed for one rejected event; each text in them at most
# `MAX_DETAIL_CHARS` characters. Replies and dead-letter records stay small whatever was sent.
MAX_DETAILS = 20
MAX_DETAIL_CHARS = 200


def _text(field: str) -> Any:
    return Annotated[str, StringConstraints(min_length=1, max_length=MAX_CHARS[field])]


@with_config(ConfigDict(extra="forbid", strict=True))
class Event(TypedDict):
    """One event as a client sends it; no other top-level fields are allowed."""

    event_type: _text("event_type")  # type: ignore[valid-type]
    schema_version: _text("schema_version")  # type: ignore[valid-type]
    payload: dict[str, Any]
    event_id: NotRequired[_text("event_id")]  # type: ignore[valid-type]


EVENT = TypeAdapter(Event)

TAXI_EVENT: dict[str, Any] = {
    "event_type": "YellowTaxiTripRecords",
    "schema_version": "0-0-1",
    "payload": {
        "VendorID": 2,
        "tpep_pickup_datetime": "2023-01-01T00:32:10",
        "tpep_dropoff_datetime": "2023-01-01T00:40:36",
        "passenger_count": 1.0,
        "trip_distance": 0.97,
        "RatecodeID": 1.0,
        "store_and_fwd_flag": "N",
        "PULocationID": 161,
        "DOLocationID": 141,
        "payment_type": 2,
        "fare_amount": 9.3,
        "extra": 1.0,
        "mta_tax": 0.5,
        "tip_amount": 0.0,
        "tolls_amount": 0.0,
        "improvement_surcharge": 1.0,
        "total_amount": 14.3,
        "congestion_surcharge": 2.5,
        "airport_fee": 0.0,
    },
    # Not `<file>:<row>` as a replay's ids are: trying the example out can never collide with
    # (and so spoil the reconciliation of) a replayed row.
    "event_id": "docs-example:yellow-trip",
}

GREEN_EVENT: dict[str, Any] = {
    "event_type": "GreenTaxiTripRecords",
    "schema_version": "0-0-1",
    "payload": {
        "VendorID": 2,
        "lpep_pickup_datetime": "2023-01-01T00:26:10",
        "trip_distance": 2.58,
    },
}

# Not an event (no schema_version): answered 422 `invalid_event`, stored on the dead-letter topic.
NOT_AN_EVENT: dict[str, Any] = {
    "event_type": "YellowTaxiTripRecords",
    "payload": {"VendorID": 2, "trip_distance": 0.97},
    "event_id": "docs-example:not-an-event",
}


class ErrorInfo(BaseModel):
    """What went wrong: a stable code, a sentence, and the details."""

    code: Problem = Field(examples=[Problem.INVALID_EVENT])
    message: str
    details: list[dict[str, Any]] = Field(default_factory=list)


class AcceptedReply(BaseModel):
    """202: Kafka acknowledged the envelope."""

    status: Literal["accepted"] = "accepted"
    root_id: str = Field(examples=["019a9f6e-8f3c-7d2a-9b1e-3f5c2a7d4e10"])


class RejectedReply(BaseModel):
    """400 or 422: not an event; the dead-letter record with this root_id is stored."""

    status: Literal["rejected"] = "rejected"
    root_id: str
    error: ErrorInfo


class ProblemReply(BaseModel):
    """`rejected` (401, 413, 415: final, nothing stored) or `retry` (408, 429, 503: send again)."""

    status: Literal["rejected", "retry"]
    error: ErrorInfo


class BatchItem(BaseModel):
    """The outcome of one element of a batch, by its index."""

    index: int
    status: Literal["accepted", "rejected", "retry"]
    root_id: str | None = None
    error: ErrorInfo | None = None


class BatchReply(BaseModel):
    """202 when every element is settled, 503 when those marked `retry` must be sent again."""

    status: Literal["settled", "retry"]
    accepted: int
    rejected: int
    retry: int
    results: list[BatchItem]


class Identity(BaseModel):
    """Which collector answered."""

    service: str = "event-collector"
    collector_id: str
    version: str


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "ready", "not_ready"]
    kafka: bool | None = None
    draining: bool | None = None
    # Why not ready: "draining", "kafka unreachable", a topic missing, or a partition with no
    # leader or fewer replicas in sync than min.insync.replicas.
    reason: str | None = None
