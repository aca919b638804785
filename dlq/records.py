"""A dead-letter record of either stage, read into one shape, and the filters that select them.

Nothing here does I/O. The collector parks request bodies (`raw-events-dlq`), the validator parks
raw envelopes (`validated-events-dlq`); both keep the original bytes and a reason code.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True)
class Parked:
    """One dead-letter record: where it is, why it is there, and the bytes it keeps."""

    # Where: the dead-letter topic, partition and offset, and when it was parked.
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    # Why: "collector" or "validator", and the stage's reason code.
    stage: str
    reason: str
    message: str
    stage_id: str | None
    event_type: str | None
    schema_version: str | None
    event_id: str | None
    body: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list, repr=False)

    @property
    def origin(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    def as_json(self) -> dict[str, Any]:
        """What `show --json` prints: the body as text when it is UTF-8, else base64."""
        out: dict[str, Any] = {
            "origin": self.origin,
            "parked": utc_text(self.timestamp_ms),
            "stage": self.stage,
            "reason": self.reason,
            "message": self.message,
            "stage_id": self.stage_id,
            "event_type": self.event_type,
            "schema_version": self.schema_version,
            "event_id": self.event_id,
        }
        try:
            out["raw"] = self.body.decode("utf-8")
        except UnicodeDecodeError:
            out["raw_base64"] = base64.b64encode(self.body).decode("ascii")
        return out


# The header a re-driven record carries: `<dead-letter topic>/<partition>/<offset>` it came from.
REDRIVEN_FROM = "redriven_from"
UNREADABLE = "unreadable_record"


def utc_text(timestamp_ms: int) -> str:
    moment = dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _lenient(body: bytes) -> Any:
    """The body parsed for display: strict JSON, else Python's reading (which takes a bare NaN)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse(
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    value: bytes | None,
    headers: list[tuple[str, bytes]] | None,
) -> Parked:
    """A dead-letter record of either stage; one this tool cannot read is `unreadable_record`."""
    try:
        record = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        record = None
    error = record.get("error") if isinstance(record, dict) else None
    if not isinstance(record, dict) or not isinstance(error, dict):
        return Parked(topic, partition, offset, timestamp_ms, "unknown", UNREADABLE,
                      "not a dead-letter record", None, None, None, None, value or b"",
                      list(headers or []))  # fmt: skip
    if isinstance(record.get("raw"), str):
        body = record["raw"].encode()
    else:
        try:
            body = base64.b64decode(record.get("raw_base64") or "", validate=True)
        except ValueError:
            body = b""
    stage = "validator" if "validator_id" in record else "collector"
    event = _lenient(body)
    event = event if isinstance(event, dict) else {}
    return Parked(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp_ms=timestamp_ms,
        stage=stage,
        reason=str(error.get("code") or UNREADABLE),
        message=str(error.get("message") or ""),
        stage_id=_text(record.get(f"{stage}_id")),
        event_type=_text(event.get("event_type")),
        schema_version=_text(event.get("schema_version")),
        event_id=_text(record.get("event_id")) or _text(event.get("event_id")),
        body=body,
        headers=list(headers or []),
    )


def parse_time(text: str) -> int:
    """Milliseconds since the epoch from ISO 8601 (`2026-12-05T01:00:00Z`); naive means UTC."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Filters:
    """Which parked records a command looks at; an empty filter selects everything."""

    reasons: frozenset[str] = frozenset()
    event_types: frozenset[str] = frozenset()
    schema_versions: frozenset[str] = frozenset()
    event_ids: frozenset[str] = frozenset()
    since_ms: int | None = None
    until_ms: int | None = None

    def match(self, parked: Parked) -> bool:
        return (
            (not self.reasons or parked.reason in self.reasons)
            and (not self.event_types or parked.event_type in self.event_types)
            and (not self.schema_versions or parked.schema_version in self.schema_versions)
            and (not self.event_ids or parked.event_id in self.event_ids)
            and (self.since_ms is None or parked.timestamp_ms >= self.since_ms)
            and (self.until_ms is None or parked.timestamp_ms < self.until_ms)
        )
