"""The one text form of a moment, in records and in log lines alike."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(moment: datetime) -> str:
    """`2026-11-21T14:47:03.123456Z`: RFC 3339, UTC, always microseconds."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def rfc3339_at(seconds: float) -> str:
    """`rfc3339` of a Unix time (`time.time()`)."""
    return rfc3339(datetime.fromtimestamp(seconds, UTC))
