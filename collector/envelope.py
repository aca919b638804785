"""Request bytes in, envelopes or rejections out: the collector's pure core.

Nothing here does I/O or knows about HTTP or Kafka clients: the clock, the id source and the
collector id are passed in, so every outcome is reproducible in a test.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import uuid_utils
from pydantic import ValidationError

from collector.problems import Problem
from collector.schemas import EVENT, MAX_CHARS, Event

Clock = Callable[[], datetime]
IdSource = Callable[[], str]
Header = tuple[str, bytes]

# The event's fields and limits come from the documented schema (`collector.schemas`).
_ALLOWED = Event.__required_keys__ | Event.__optional_keys__
_EVENT_TYPE_MAX = MAX_CHARS["event_type"]
_SCHEMA_VERSION_MAX = MAX_CHARS["schema_version"]
_EVENT_ID_MAX = MAX_CHARS["event_id"]


# Number spellings a double cannot hold exactly (17 or more digits, a 3-digit exponent): a batch
# holding one is split from its own bytes instead of being re-encoded from the parsed values.
# Digits and dots fold to "0" and signs vanish, so two C substring searches find them (a regular
# expression over the body cost 5 us per event; this, under 1).
_FOLD_NUMBERS = bytes.maketrans(b"123456789.E", b"0000000000e")
_LONG_DIGITS = b"0" * 17
_LONG_EXPONENT = b"e000"


def _may_lose_numbers(body: bytes) -> bool:
    folded = body.translate(_FOLD_NUMBERS, b"+-")
    return _LONG_DIGITS in folded or _LONG_EXPONENT in folded


_WHITESPACE = " \t\n\r"


# Only for batches `_may_lose_numbers` flags, after orjson has accepted the body as strict JSON.
# (Numbers beyond a double's range, such as 1e400, are refused as RFC 8259 section 6 allows:
# most consumers could not read them back.)
_STDLIB = json.JSONDecoder()


def _array_elements(body: bytes) -> list[tuple[object, bytes]]:
    """Each element of a JSON array (known to be valid) with its exact bytes."""
    text = body.decode()
    index = len(text) - len(text.lstrip(_WHITESPACE)) + 1  # past "["
    elements: list[tuple[object, bytes]] = []
    while True:
        while text[index] in _WHITESPACE:
            index += 1
        if text[index] == "]":
            return elements
        value, end = _STDLIB.raw_decode(text, index)
        elements.append((value, text[index:end].encode()))
        index = end
        while text[index] in _WHITESPACE:
            index += 1
        if text[index] == ",":
            index += 1


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def uuid7() -> str:
    """A fresh time-ordered UUIDv7 as text."""
    return str(uuid_utils.uuid7())


def rfc3339(moment: datetime) -> str:
    """`2026-11-21T14:47:03.123456Z`: RFC 3339, UTC, always microseconds."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@dataclass(slots=True)
class Accepted:
    """A valid event, wrapped: the record for the raw topic."""

    value: bytes
    key: bytes
    headers: list[Header]
    root_id: str


@dataclass(slots=True)
class Rejected:
    """Input that is not an event: why, and the record for the dead-letter topic."""

    code: Problem
    message: str
    details: list[dict[str, Any]]
    value: bytes
    key: bytes
    headers: list[Header]
    root_id: str
    batch_index: int | None = None


@dataclass(slots=True)
class TooManyEvents:
    """A batch over the event limit: nothing is stored, the client keeps it."""

    count: int
    limit: int


Verdict = Accepted | Rejected


def _detail(loc: list[str | int], kind: str, msg: str) -> dict[str, Any]:
    return {"loc": loc, "type": kind, "msg": msg}


def event_problems(event: object) -> list[dict[str, Any]]:
    """What is wrong with a parsed event, empty when nothing is: the documented schema's errors."""
    # Only for events `_fast_valid` turned down, so pydantic's pass costs nothing on the hot path.
    try:
        EVENT.validate_python(event)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        # Missing fields first, then the others in the order the client wrote them.
        order = {name: i for i, name in enumerate(event)} if type(event) is dict else {}
        errors.sort(
            key=lambda e: (e["type"] != "missing", order.get(e["loc"][0] if e["loc"] else 0, -1))
        )
        return [_detail(list(error["loc"]), error["type"], error["msg"]) for error in errors]
    return []


def _fast_valid(event: object) -> bool:
    # The common case in one expression (a fraction of a pydantic pass); anything unusual goes
    # through `event_problems`. Tests hold the two to the same answer.
    if type(event) is not dict or not event.keys() <= _ALLOWED:
        return False
    event_type = event.get("event_type")
    version = event.get("schema_version")
    event_id = event.get("event_id", "-")
    return (
        type(event_type) is str
        and 0 < len(event_type) <= _EVENT_TYPE_MAX
        and type(version) is str
        and 0 < len(version) <= _SCHEMA_VERSION_MAX
        and type(event.get("payload")) is dict
        and type(event_id) is str
        and 0 < len(event_id) <= _EVENT_ID_MAX
    )


class Enveloper:
    """Turns request bodies into envelopes and dead-letter records for one collector."""

    def __init__(
        self,
        collector_id: str,
        *,
        clock: Clock = utc_now,
        new_id: IdSource = uuid7,
        max_batch_events: int = 1_000,
    ) -> None:
        self.collector_id = collector_id
        self.max_batch_events = max_batch_events
        self._clock = clock
        self._new_id = new_id
        self._id_header: Header = ("collector_id", collector_id.encode())
        self._id_json = orjson.dumps(collector_id)
        self._headers: dict[tuple[str, str], list[Header]] = {}

    def event(self, body: bytes) -> Verdict:
        """One request body: an envelope around the event, or a rejection."""
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return self._unparsable(body, exc)
        if not _fast_valid(event):
            return self._reject(
                Problem.INVALID_EVENT, body, event_problems(event), rfc3339(self._clock())
            )
        # The envelope is the body's own bytes plus three members: the payload stays exactly as
        # sent (number spellings, escapes, integers beyond 64 bits), and nothing is re-encoded.
        return self._envelope(event, body, rfc3339(self._clock()))

    def batch(self, body: bytes) -> list[Verdict] | Rejected | TooManyEvents:
        """A batch body: one outcome per element, or one rejection for the whole body."""
        try:
            events = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return self._unparsable(body, exc)
        timestamp = rfc3339(self._clock())
        if type(events) is not list or not events:
            problem = (
                _detail([], "list_type", "Input should be a valid array")
                if type(events) is not list
                else _detail([], "too_short", "A batch should have at least 1 event")
            )
            return self._reject(Problem.INVALID_BATCH, body, [problem], timestamp)
        if len(events) > self.max_batch_events:
            return TooManyEvents(len(events), self.max_batch_events)
        if _may_lose_numbers(body):
            return [
                self.parsed(event, timestamp, index, raw)
                for index, (event, raw) in enumerate(_array_elements(body))
            ]
        return [self.parsed(event, timestamp, index) for index, event in enumerate(events)]

    def parsed(
        self,
        event: object,
        timestamp: str,
        batch_index: int | None = None,
        raw: bytes | None = None,
    ) -> Verdict:
        """A parsed event (a batch element, with its `raw` bytes when known): envelope or not."""
        if not _fast_valid(event):
            raw = orjson.dumps(event) if raw is None else raw
            return self._reject(
                Problem.INVALID_EVENT, raw, event_problems(event), timestamp, batch_index
            )
        assert type(event) is dict
        # Without its own bytes a batch element is re-encoded (the input dict is left untouched;
        # `_may_lose_numbers` sends the batches this would change to the exact path).
        return self._envelope(event, orjson.dumps(event) if raw is None else raw, timestamp)

    def _envelope(self, event: dict[str, Any], raw: bytes, timestamp: str) -> Accepted:
        """A new object: the event's JSON object bytes with the collector's members appended."""
        root_id = self._new_id()
        value = b"".join(
            (
                raw.rstrip()[:-1],
                b',"collector_timestamp":"',
                timestamp.encode(),
                b'","root_id":"',
                root_id.encode(),
                b'","collector_id":',
                self._id_json,
                b"}",
            )
        )
        return self._accepted(event, value, root_id)

    def _accepted(self, event: dict[str, Any], value: bytes, root_id: str) -> Accepted:
        kind = (event["event_type"], event["schema_version"])
        headers = self._headers.get(kind)
        if headers is None:
            if len(self._headers) >= 1024:  # bounded, whatever types clients invent
                self._headers.clear()
            # Shared by every record of this type: the producer only reads them.
            headers = self._headers[kind] = [
                ("event_type", kind[0].encode()),
                ("schema_version", kind[1].encode()),
                self._id_header,
            ]
        event_id: str | None = event.get("event_id")
        return Accepted(value, (event_id or root_id).encode(), headers, root_id)

    def _unparsable(self, body: bytes, exc: orjson.JSONDecodeError) -> Rejected:
        timestamp = rfc3339(self._clock())
        try:
            body.decode()
        except UnicodeDecodeError as bad:
            problem = _detail([], "utf8", f"invalid UTF-8 at byte {bad.start}: {bad.reason}")
            return self._reject(Problem.INVALID_UTF8, body, [problem], timestamp)
        return self._reject(
            Problem.INVALID_JSON, body, [_detail([], "json_invalid", str(exc))], timestamp
        )

    def undecodable(self, body: bytes, coding: str, reason: str) -> Rejected:
        """A body that does not decode with its declared `Content-Encoding`, kept as received."""
        problem = _detail([], "content_encoding", f"{coding}: {reason}")
        return self._reject(Problem.INVALID_ENCODING, body, [problem], rfc3339(self._clock()))

    def _reject(
        self,
        code: Problem,
        raw: bytes,
        details: list[dict[str, Any]],
        timestamp: str,
        batch_index: int | None = None,
    ) -> Rejected:
        root_id = self._new_id()
        message = (
            code.message
            if code is not Problem.INVALID_EVENT
            else "not an event: " + "; ".join(f"{_where(d['loc'])}: {d['msg']}" for d in details)
        )
        record: dict[str, Any] = {
            "root_id": root_id,
            "collector_id": self.collector_id,
            "collector_timestamp": timestamp,
            "error": {"code": code, "message": message, "details": details},
        }
        if code in (Problem.INVALID_UTF8, Problem.INVALID_ENCODING):
            record["raw_base64"] = base64.b64encode(raw).decode()
        else:
            record["raw"] = raw.decode()
        if batch_index is not None:
            record["batch_index"] = batch_index
        return Rejected(
            code=code,
            message=message,
            details=details,
            value=orjson.dumps(record),
            key=root_id.encode(),
            headers=[("error_code", code.encode()), self._id_header],
            root_id=root_id,
            batch_index=batch_index,
        )


def _where(loc: list[str | int]) -> str:
    return ".".join(str(part) for part in loc) or "body"
