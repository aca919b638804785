"""The one text form of a moment: records and log lines alike."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone

import orjson

from console.logs import JsonFormatter
from console.timestamps import rfc3339, rfc3339_at

MOMENT = datetime(2026, 11, 21, 14, 47, 3, 123456, tzinfo=UTC)


def test_timestamps_are_rfc3339_utc_with_microseconds() -> None:
    assert rfc3339(MOMENT) == "2026-11-21T14:47:03.123456Z"
    assert rfc3339(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"
    east = datetime(2026, 1, 1, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(east) == "2026-01-01T00:30:00.000000Z"


def test_a_unix_time_reads_as_the_same_moment() -> None:
    assert rfc3339_at(MOMENT.timestamp()) == "2026-11-21T14:47:03.123456Z"
    assert rfc3339_at(0.5) == "1970-01-01T00:00:00.500000Z"


def test_a_log_line_carries_the_moment_and_the_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "validator", "levelname": "WARNING", "msg": "late %s", "args": ("ack",)}
    )
    record.created = MOMENT.timestamp()
    record.topic = "raw-events"
    parsed = orjson.loads(JsonFormatter().format(record))
    assert parsed == {
        "ts": "2026-11-21T14:47:03.123456Z",
        "level": "WARNING",
        "logger": "validator",
        "message": "late ack",
        "topic": "raw-events",
    }
