"""Judging one raw record: a validated record or a dead-letter record, both as bytes.

Nothing here does I/O: the clock value and the validator id are passed in. Good and bad records are
data (Snowplow's good/bad split), routed to their topics by the caller.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from validator.contracts import Registry


class Problem(StrEnum):
    """What is wrong with a raw record: the stable codes of its dead-letter record."""

    NOT_AN_ENVELOPE = "not_an_envelope"
    UNKNOWN_CONTRACT = "unknown_contract"
    INVALID_PAYLOAD = "invalid_payload"
    # Records the validator could not write as they are: dead-lettered so the stream goes on.
    RECORD_TOO_LARGE = "record_too_large"
    UNPROCESSABLE = "unprocessable"
    UNWRITABLE = "unwritable"


# The collector's longest event_id; a longer one is no envelope of its (and would bloat the
# seen-ids changelog).
MAX_EVENT_ID_CHARS = 128


@dataclass(frozen=True, slots=True)
class Source:
    """Where a raw record was read."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Valid:
    key: bytes
    value: bytes
    event_id: str | None


@dataclass(frozen=True, slots=True)
class Invalid:
    key: bytes | None
    value: bytes
    event_id: str | None
    problem: Problem


Verdict = Valid | Invalid


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def judge(
    key: bytes | None,
    value: bytes | None,
    source: Source,
    *,
    registry: Registry,
    validator_id: str,
    now_text: str,
) -> Verdict:
    """Validate one raw record against the contract its envelope names."""
    raw = value or b""
    dead = functools.partial(dead_letter, key, raw, validator_id=validator_id, now_text=now_text)
    try:
        envelope = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return dead(None, source, Problem.NOT_AN_ENVELOPE, "not JSON", [])
    if not isinstance(envelope, dict):
        return dead(None, source, Problem.NOT_AN_ENVELOPE, "not a JSON object", [])
    event_id = envelope.get("event_id")
    event_id = event_id if _text(event_id) else None
    if event_id is not None and len(event_id) > MAX_EVENT_ID_CHARS:
        why = f"event_id over {MAX_EVENT_ID_CHARS} characters"
        return dead(None, source, Problem.NOT_AN_ENVELOPE, why, [])
    event_type, version = envelope.get("event_type"), envelope.get("schema_version")
    payload = envelope.get("payload")
    if not (
        isinstance(event_type, str)
        and isinstance(version, str)
        and event_type
        and version
        and isinstance(payload, dict)
    ):
        why = "event_type, schema_version (strings) and payload (object) are required"
        return dead(event_id, source, Problem.NOT_AN_ENVELOPE, why, [])
    contract = registry.get(event_type, version)
    if contract is None:
        why = f"no contract {event_type}/{version}"
        return dead(event_id, source, Problem.UNKNOWN_CONTRACT, why, [])
    problems = contract.problems(payload)
    if problems:
        why = f"the payload breaks {contract.name}"
        return dead(event_id, source, Problem.INVALID_PAYLOAD, why, problems)
    members = _members(contract.name, now_text, validator_id)
    # The envelope stays byte for byte as the collector wrote it: our members are spliced in
    # before its closing brace (cheaper than re-serialising it, and no number is re-spelled).
    body = raw.rstrip()
    spliced = body[:-1] + b"," + members[1:]
    out_key = (event_id or envelope.get("root_id") or "").encode() or (key or b"")
    return Valid(out_key, spliced, event_id)


@functools.lru_cache(maxsize=64)
def _members(contract: str, now_text: str, validator_id: str) -> bytes:
    """Our members as JSON, made once per batch (the clock text is the batch's), not per record."""
    return orjson.dumps(
        {"contract": contract, "validated_timestamp": now_text, "validator_id": validator_id}
    )


def dead_letter(
    key: bytes | None,
    raw: bytes,
    event_id: str | None,
    source: Source,
    problem: Problem,
    message: str,
    details: list[str],
    *,
    validator_id: str,
    now_text: str,
    max_bytes: int | None = None,
) -> Invalid:
    """A dead-letter record of `raw`; within `max_bytes` (value and key), the raw record is kept
    as text, else as base64 when that is smaller and fits, else left out (`raw_bytes` says how
    large it was; `source` says where it still is), and an oversized key is dropped."""
    record: dict[str, Any] = {
        "error": {"code": problem.value, "message": message, "details": details},
        "source": {
            "topic": source.topic,
            "partition": source.partition,
            "offset": source.offset,
            "timestamp_ms": source.timestamp_ms,
        },
        "validator_id": validator_id,
        "validated_timestamp": now_text,
    }
    if event_id is not None:
        record["event_id"] = event_id
    if max_bytes is not None and key is not None and len(key) > max_bytes // 2:
        key = None
    room = None if max_bytes is None else max_bytes - len(key or b"")
    for field, text in _raw_forms(raw):
        value = orjson.dumps({**record, field: text})
        if room is None or len(value) <= room:
            return Invalid(key, value, event_id, problem)
    value = orjson.dumps({**record, "raw_bytes": len(raw)})
    return Invalid(key, value, event_id, problem)


def _raw_forms(raw: bytes) -> Iterator[tuple[str, str]]:
    """The raw record as text (when UTF-8), then as base64 when that is shorter."""
    encoded = base64.b64encode(raw).decode("ascii")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        yield "raw_base64", encoded
        return
    yield "raw", text
    if len(encoded) < len(orjson.dumps(text)):
        yield "raw_base64", encoded
