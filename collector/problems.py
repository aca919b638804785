"""Every answer that is not a 202, once: its code, HTTP status, message and what it means.

The one table of problems (as PostHog's capture has one error enum with one mapping to HTTP): the
envelope, the sink, both HTTP front ends, the OpenAPI document and docs/collector.md read it, and a
test walks every member. A new code is a contract change: add it here, and to docs/collector.md.
"""

from __future__ import annotations

from enum import StrEnum

from collector.encoding import SUPPORTED


class Problem(StrEnum):
    """A stable error code; each member carries its status, message and what the client does."""

    status: int
    message: str
    # Sending the same request again may succeed (the producer retries; 4xx other than 408 never).
    retryable: bool
    # A dead-letter record holding the input was stored (acknowledged) before the answer.
    dead_lettered: bool

    def __new__(
        cls, code: str, status: int, retryable: bool, dead_lettered: bool, message: str
    ) -> Problem:
        member = str.__new__(cls, code)
        member._value_ = code
        member.status = status
        member.retryable = retryable
        member.dead_lettered = dead_lettered
        member.message = message
        return member

    # Input that is not an event: stored on the dead-letter topic, final.
    INVALID_JSON = (
        "invalid_json", 400, False, True,
        "the body is not JSON as RFC 8259 defines it (NaN and Infinity are not JSON)",
    )  # fmt: skip
    INVALID_UTF8 = (
        "invalid_utf8", 400, False, True,
        "the body is not valid UTF-8; the dead-letter record keeps it in `raw_base64`",
    )  # fmt: skip
    INVALID_EVENT = (
        "invalid_event", 422, False, True,
        "JSON, but not an event: a missing, mistyped, too long or extra top-level field",
    )  # fmt: skip
    TOO_DEEP = (
        "too_deep", 422, False, True,
        "JSON, but objects and arrays nest deeper than 64 levels (the event itself is level 1)",
    )  # fmt: skip
    DUPLICATE_KEY = (
        "duplicate_key", 422, False, True,
        "a top-level field appears twice, so readers could disagree on the event (keys inside "
        "`payload` are kept as sent)",
    )  # fmt: skip
    UNPROCESSABLE = (
        "unprocessable", 422, False, True,
        "the event could not be wrapped; it is stored on the dead-letter topic exactly as sent",
    )  # fmt: skip
    INVALID_BATCH = (
        "invalid_batch", 422, False, True,
        "a batch body that is JSON but not a non-empty array of events",
    )  # fmt: skip
    INVALID_ENCODING = (
        "invalid_encoding", 400, False, True,
        "the body does not decode with its `Content-Encoding`; the dead-letter record keeps it as "
        "received in `raw_base64`",
    )  # fmt: skip
    # Answers that store nothing, final.
    UNAUTHORIZED = (
        "unauthorized", 401, False, False,
        "a valid `Authorization: Bearer <key>` header is required",
    )  # fmt: skip
    BODY_TOO_LARGE = (
        "body_too_large", 413, False, False,
        "the body is larger than the limit; nothing was stored",
    )  # fmt: skip
    BATCH_TOO_LARGE = (
        "batch_too_large", 413, False, False,
        "the batch has more events than the limit; nothing was stored",
    )  # fmt: skip
    UNSUPPORTED_ENCODING = (
        "unsupported_encoding", 415, False, False,
        f"the `Content-Encoding` is none of {', '.join((*SUPPORTED, 'identity'))}; nothing was "
        "stored",
    )  # fmt: skip
    TOO_MANY_ENCODINGS = (
        "too_many_encodings", 415, False, False,
        "more than two `Content-Encoding` codings; nothing was read or stored",
    )  # fmt: skip
    HEADERS_TOO_LARGE = (
        "headers_too_large", 431, False, False,
        "the request's headers are larger or more numerous than the limit; nothing was read or "
        "stored",
    )  # fmt: skip
    RECORD_TOO_LARGE = (
        "record_too_large", 413, False, False,
        "the record is larger than Kafka accepts; nothing was stored",
    )  # fmt: skip
    # Nothing stored, nothing claimed: send it again.
    RATE_LIMITED = (
        "rate_limited", 429, True, False,
        "this API key is over its rate limit; nothing was stored, send it again later",
    )  # fmt: skip
    REQUEST_TIMEOUT = (
        "request_timeout", 408, True, False,
        "the request did not arrive in time; nothing was stored, send it again",
    )  # fmt: skip
    ACK_TIMEOUT = (
        "ack_timeout", 503, True, False,
        "Kafka did not acknowledge in time; nothing is claimed, send it again",
    )  # fmt: skip
    QUEUE_FULL = (
        "queue_full", 503, True, False,
        "the send queue is full; nothing is claimed, send it again",
    )  # fmt: skip
    KAFKA_ERROR = (
        "kafka_error", 503, True, False,
        "Kafka refused the record; nothing is claimed, send it again",
    )  # fmt: skip
    OVERLOADED = (
        "overloaded", 503, True, False,
        "this collector has as many requests in flight as it takes; nothing is claimed, send it "
        "again",
    )  # fmt: skip
    DRAINING = (
        "draining", 503, True, False,
        "this collector is shutting down; send it again (to another replica)",
    )  # fmt: skip
    INTERNAL_ERROR = (
        "internal_error", 503, True, False,
        "unexpected error; nothing is claimed, send it again",
    )  # fmt: skip

    @property
    def reply_status(self) -> str:
        """The `status` word of the reply body: `retry` when sending again may succeed."""
        return "retry" if self.retryable else "rejected"
