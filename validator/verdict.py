"""Judging one raw record: a validated record or a dead-letter record, both as bytes.

Nothing here does I/O: the clock value and the validator id are passed in. Good and bad records are
data (Snowplow's good/bad split), routed to their topics by the caller.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from validator.contracts import Registry


class Reason(StrEnum):
    """The stable reason codes of a dead-letter record."""

    NOT_AN_ENVELOPE = "not_an_envelope"
    UNKNOWN_CONTRACT = "unknown_contract"
    INVALID_PAYLOAD = "invalid_payload"


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
    reason: Reason


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
    try:
        envelope = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _dead(key, raw, None, source, Reason.NOT_AN_ENVELOPE, "not JSON", [], validator_id,
                     now_text)  # fmt: skip
    if not isinstance(envelope, dict):
        return _dead(key, raw, None, source, Reason.NOT_AN_ENVELOPE, "not a JSON object", [],
                     validator_id, now_text)  # fmt: skip
    event_id = envelope.get("event_id")
    event_id = event_id if _text(event_id) else None
    event_type, version = envelope.get("event_type"), envelope.get("schema_version")
    payload = envelope.get("payload")
    if not (
        isinstance(event_type, str)
        and isinstance(version, str)
        and event_type
        and version
        and isinstance(payload, dict)
    ):
        return _dead(key, raw, event_id, source, Reason.NOT_AN_ENVELOPE,
                     "event_type, schema_version (strings) and payload (object) are required",
                     [], validator_id, now_text)  # fmt: skip
    contract = registry.get(event_type, version)
    if contract is None:
        return _dead(key, raw, event_id, source, Reason.UNKNOWN_CONTRACT,
                     f"no contract {event_type}/{version}", [], validator_id,
                     now_text)  # fmt: skip
    problems = contract.problems(payload)
    if problems:
        return _dead(key, raw, event_id, source, Reason.INVALID_PAYLOAD,
                     f"the payload breaks {contract.name}", problems, validator_id,
                     now_text)  # fmt: skip
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


def _dead(
    key: bytes | None,
    raw: bytes,
    event_id: str | None,
    source: Source,
    reason: Reason,
    message: str,
    details: list[str],
    validator_id: str,
    now_text: str,
) -> Invalid:
    record: dict[str, Any] = {
        "error": {"code": reason.value, "message": message, "details": details},
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
    try:
        record["raw"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        record["raw_base64"] = base64.b64encode(raw).decode("ascii")
    return Invalid(key, orjson.dumps(record), event_id, reason)
