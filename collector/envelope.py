"""Request bytes in, envelopes or rejections out: the collector's pure core.

Nothing here does I/O or knows about HTTP or Kafka clients: the clock, the id source and the
collector id are passed in, so every outcome is reproducible in a test.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import uuid_utils
from pydantic import ValidationError

from collector.limits import base64_length
from collector.problems import Problem
from collector.schemas import (
    EVENT,
    MAX_CHARS,
    MAX_DEPTH,
    MAX_DETAIL_CHARS,
    MAX_DETAILS,
    Event,
)
from collector.structure import array_elements, repeats_a_key, too_deep
from console.timestamps import rfc3339

Clock = Callable[[], datetime]
IdSource = Callable[[], str]
Header = tuple[str, bytes]

# The event's fields and limits come from the documented schema (`collector.schemas`).
_ALLOWED = Event.__required_keys__ | Event.__optional_keys__
_EVENT_TYPE_MAX = MAX_CHARS["event_type"]
_SCHEMA_VERSION_MAX = MAX_CHARS["schema_version"]
_EVENT_ID_MAX = MAX_CHARS["event_id"]


# Bounds on what a rejection says (collector.limits counts on them for a dead-letter record's size).
_MAX_DETAILS_BYTES = 16_384
_MAX_MESSAGE_CHARS = 1_000
_DEPTH_EXCEEDED = "depth limit exceeded"  # orjson's message past its own 1,024 levels


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def uuid7() -> str:
    """A fresh time-ordered UUIDv7 as text."""
    return str(uuid_utils.uuid7())


@dataclass(slots=True)
class Valid:
    """A valid event, wrapped in its envelope: the record for the raw topic."""

    value: bytes
    key: bytes
    headers: list[Header]
    root_id: str


@dataclass(slots=True)
class Invalid:
    """Input that is not an event: its problem, and the record for the dead-letter topic."""

    problem: Problem
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


# What the collector makes of one event's bytes (the validator's verdicts have the same names).
Verdict = Valid | Invalid


def _detail(loc: list[str | int], kind: str, msg: str) -> dict[str, Any]:
    return {"loc": loc, "type": kind, "msg": msg}


def event_problems(event: object) -> list[dict[str, Any]]:
    """What is wrong with a parsed event, empty when nothing is: the documented schema's errors."""
    # Only for events `_fast_valid` turned down, so pydantic's pass costs nothing on the hot path.
    if type(event) is dict and len(event) > MAX_DETAILS:
        # Thousands of unknown fields would cost pydantic a second and list every one: only the
        # first few are named, and the known fields are checked alone.
        extra = [name for name in event if name not in _ALLOWED]
        known = {name: value for name, value in event.items() if name in _ALLOWED}
        problems = event_problems(known)
        room = max(0, MAX_DETAILS - len(problems) - 1)
        forbidden = "Extra inputs are not permitted"
        named = [_detail([name], "extra_forbidden", forbidden) for name in extra[:room]]
        rest = len(extra) - len(named)
        more = [_detail([], "extra_forbidden", f"and {rest} more extra fields")] if rest else []
        return problems + named + more
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
        return self.element(body, rfc3339(self._clock()))

    def batch(self, body: bytes) -> list[Verdict] | Invalid | TooManyEvents:
        """A batch body: one outcome per element, or one rejection for the whole body.

        Each element is judged on its own bytes, so one that is not JSON, too deep, or anything
        else wrong is only that element's rejection, dead-lettered exactly as it was sent.
        """
        timestamp = rfc3339(self._clock())
        elements = array_elements(body)
        if elements is None:
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                return self._unparsable(body, exc, timestamp)
            problem = _detail([], "list_type", "Input should be a valid array")
            return self._reject(Problem.INVALID_BATCH, body, [problem], timestamp)
        if not elements:
            problem = _detail([], "too_short", "A batch should have at least 1 event")
            return self._reject(Problem.INVALID_BATCH, body, [problem], timestamp)
        if len(elements) > self.max_batch_events:
            return TooManyEvents(len(elements), self.max_batch_events)
        return [self.element(raw, timestamp, index) for index, raw in enumerate(elements)]

    def element(self, raw: bytes, timestamp: str, batch_index: int | None = None) -> Verdict:
        """One event's bytes (a body, or a batch element): its envelope, or its rejection."""
        try:
            try:
                event = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                return self._unparsable(raw, exc, timestamp, batch_index)
            return self.verdict_on(event, timestamp, batch_index, raw)
        except Exception as exc:  # noqa: BLE001 - one event's failure is that event's answer
            detail = _detail([], "unprocessable", f"{type(exc).__name__}: {exc}")
            return self._reject(Problem.UNPROCESSABLE, raw, [detail], timestamp, batch_index)

    def verdict_on(
        self,
        event: object,
        timestamp: str,
        batch_index: int | None = None,
        raw: bytes | None = None,
    ) -> Verdict:
        """Validate a parsed event and wrap it in its envelope (`raw`: its bytes, encoded afresh
        when not given), or say what is wrong with it."""
        raw = orjson.dumps(event) if raw is None else raw
        if too_deep(event, raw):
            return self._reject(Problem.TOO_DEEP, raw, [_deeper_than()], timestamp, batch_index)
        if not _fast_valid(event):
            return self._reject(
                Problem.INVALID_EVENT, raw, event_problems(event), timestamp, batch_index
            )
        assert type(event) is dict
        if repeats_a_key(event, raw):
            detail = _detail([], "duplicate_key", "a top-level field appears more than once")
            return self._reject(Problem.DUPLICATE_KEY, raw, [detail], timestamp, batch_index)
        # The envelope is the event's own bytes plus three members: the payload stays exactly as
        # sent (number spellings, escapes, integers beyond 64 bits), and nothing is re-encoded.
        return self._envelope(event, raw, timestamp)

    def _envelope(self, event: dict[str, Any], raw: bytes, timestamp: str) -> Valid:
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

    def _accepted(self, event: dict[str, Any], value: bytes, root_id: str) -> Valid:
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
        return Valid(value, (event_id or root_id).encode(), headers, root_id)

    def _unparsable(
        self,
        body: bytes,
        exc: orjson.JSONDecodeError,
        timestamp: str,
        batch_index: int | None = None,
    ) -> Invalid:
        if exc.msg == _DEPTH_EXCEEDED:
            return self._reject(Problem.TOO_DEEP, body, [_deeper_than()], timestamp, batch_index)
        try:
            body.decode()
        except UnicodeDecodeError as bad:
            problem = _detail([], "utf8", f"invalid UTF-8 at byte {bad.start}: {bad.reason}")
            return self._reject(Problem.INVALID_UTF8, body, [problem], timestamp, batch_index)
        problem = _detail([], "json_invalid", str(exc))
        return self._reject(Problem.INVALID_JSON, body, [problem], timestamp, batch_index)

    def undecodable(self, body: bytes, coding: str, reason: str) -> Invalid:
        """A body that does not decode with its declared `Content-Encoding`, kept as received."""
        problem = _detail([], "content_encoding", f"{coding}: {reason}")
        return self._reject(Problem.INVALID_ENCODING, body, [problem], rfc3339(self._clock()))

    def _reject(
        self,
        problem: Problem,
        raw: bytes,
        details: list[dict[str, Any]],
        timestamp: str,
        batch_index: int | None = None,
    ) -> Invalid:
        root_id = self._new_id()
        details = _capped(details)
        message = (
            problem.message
            if problem is not Problem.INVALID_EVENT
            else _cut(
                "not an event: " + "; ".join(f"{_where(d['loc'])}: {d['msg']}" for d in details),
                _MAX_MESSAGE_CHARS,
            )
        )
        record: dict[str, Any] = {
            "root_id": root_id,
            "collector_id": self.collector_id,
            "collector_timestamp": timestamp,
            "error": {"code": problem, "message": message, "details": details},
            **raw_fields(raw, as_bytes=problem is Problem.INVALID_ENCODING),
        }
        if batch_index is not None:
            record["batch_index"] = batch_index
        return Invalid(
            problem=problem,
            message=message,
            details=details,
            value=orjson.dumps(record),
            key=root_id.encode(),
            headers=[("error_code", problem.encode()), self._id_header],
            root_id=root_id,
            batch_index=batch_index,
        )


def raw_fields(raw: bytes, as_bytes: bool = False) -> dict[str, str]:
    """The input of a dead-letter record: `raw` as text, or `raw_base64` when it is not UTF-8
    or its text would take more room in JSON than base64 (control characters escape sixfold), so
    a dead-letter record is never more than a third larger than what was sent."""
    if not as_bytes:
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            pass
        else:
            if len(raw) < 64 or len(orjson.dumps(text)) <= base64_length(len(raw)):
                return {"raw": text}
    return {"raw_base64": base64.b64encode(raw).decode()}


def _deeper_than() -> dict[str, Any]:
    return _detail([], "too_deep", f"objects and arrays nest deeper than {MAX_DEPTH} levels")


def _capped(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most MAX_DETAILS problems, each text cut to MAX_DETAIL_CHARS, at most 16 KiB of JSON
    (escaping can grow text sixfold): a reply or dead-letter record stays small whatever came in."""
    capped = [
        {
            "loc": [_cut(part) if isinstance(part, str) else part for part in d["loc"]][:4],
            "type": _cut(str(d["type"])),
            "msg": _cut(str(d["msg"])),
        }
        for d in details[:MAX_DETAILS]
    ]
    while len(capped) > 1 and len(orjson.dumps(capped)) > _MAX_DETAILS_BYTES:
        capped.pop()
    if len(capped) < len(details):
        more = len(details) - len(capped)
        capped.append(_detail([], "more", f"and {more} more problems"))
    return capped


def _cut(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where(loc: list[str | int]) -> str:
    return ".".join(str(part) for part in loc) or "body"
