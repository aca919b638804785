"""Judging one raw record, without Kafka."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from tests.validator.test_contracts import good_payload
from validator import contracts
from validator.dedup import decode_seen, encode_seen
from validator.loop import Validator
from validator.settings import DEFAULT_CONTRACTS_DIR, Settings
from validator.verdict import Invalid, Problem, Source, Valid, dead_letter, judge

SOURCE = Source("raw-events", 2, 41, 1_700_000_000_000)
NOW = "2026-11-21T14:47:04.000001Z"
REGISTRY = contracts.Registry.load(DEFAULT_CONTRACTS_DIR)


def envelope(**change: Any) -> dict[str, Any]:
    return {
        "event_type": "YellowTaxiTripRecords",
        "schema_version": "0-0-1",
        "payload": good_payload(),
        "event_id": "yellow_tripdata_2023-01.parquet:41",
        "collector_timestamp": "2026-11-21T14:47:03.123456Z",
        "root_id": "0193a5c2-0000-7000-8000-000000000000",
        "collector_id": "collector-1",
        **change,
    }


def run(value: bytes, key: bytes | None = b"k") -> Valid | Invalid:
    return judge(key, value, SOURCE, registry=REGISTRY, validator_id="validator-0", now_text=NOW)


def test_a_valid_envelope_is_kept_byte_for_byte_with_our_members_added() -> None:
    raw = orjson.dumps(envelope()) + b"\n"
    verdict = run(raw)
    assert isinstance(verdict, Valid)
    assert verdict.key == b"yellow_tripdata_2023-01.parquet:41"
    assert verdict.value.startswith(raw.rstrip()[:-1] + b",")
    out = orjson.loads(verdict.value)
    assert out == {
        **envelope(),
        "contract": "YellowTaxiTripRecords/0-0-1",
        "validated_timestamp": NOW,
        "validator_id": "validator-0",
    }


def test_without_event_id_the_key_is_the_root_id() -> None:
    body = envelope()
    del body["event_id"]
    verdict = run(orjson.dumps(body))
    assert isinstance(verdict, Valid)
    assert verdict.key == body["root_id"].encode()
    assert verdict.event_id is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xfe not even utf-8", Problem.NOT_AN_ENVELOPE),
        (b"[1, 2]", Problem.NOT_AN_ENVELOPE),
        (orjson.dumps(envelope(payload=[1])), Problem.NOT_AN_ENVELOPE),
        (orjson.dumps(envelope(event_type=7)), Problem.NOT_AN_ENVELOPE),
        (orjson.dumps(envelope(schema_version="9-9-9")), Problem.UNKNOWN_CONTRACT),
        (orjson.dumps(envelope(event_type="Nope")), Problem.UNKNOWN_CONTRACT),
        (orjson.dumps(envelope(payload={**good_payload(), "fare_amount": "x"})),
         Problem.INVALID_PAYLOAD),
    ],
)  # fmt: skip
def test_what_fails_goes_to_the_dead_letter_topic_with_a_stable_reason(
    value: bytes, reason: Problem
) -> None:
    verdict = run(value)
    assert isinstance(verdict, Invalid)
    assert verdict.problem is reason
    record = orjson.loads(verdict.value)
    assert record["error"]["code"] == reason.value
    assert record["source"] == {
        "topic": "raw-events",
        "partition": 2,
        "offset": 41,
        "timestamp_ms": 1_700_000_000_000,
    }
    assert record["validator_id"] == "validator-0"
    kept = record["raw"].encode() if "raw" in record else base64.b64decode(record["raw_base64"])
    assert kept == value
    assert verdict.key == b"k"


def test_invalid_payload_lists_the_failing_pointers() -> None:
    body = envelope(payload={**good_payload(), "fare_amount": "x", "PULocationID": 999})
    verdict = run(orjson.dumps(body))
    assert isinstance(verdict, Invalid)
    record = orjson.loads(verdict.value)
    pointers = [d.split(":")[0] for d in record["error"]["details"]]
    assert pointers == ["/PULocationID", "/fare_amount"]
    assert record["event_id"] == body["event_id"]
    assert verdict.event_id == body["event_id"]


def test_an_event_id_longer_than_the_collectors_is_no_envelope() -> None:
    verdict = run(orjson.dumps(envelope(event_id="e" * 129)))
    assert isinstance(verdict, Invalid)
    assert verdict.problem is Problem.NOT_AN_ENVELOPE
    assert verdict.event_id is None


@pytest.mark.parametrize(
    ("raw", "room", "field"),
    [
        (b'{"text": "plain"}', None, "raw"),
        (b"\x01" * 3000, 10_000, "raw_base64"),  # escaped sixfold as text, a third more as base64
        (b"\xff" * 3000, None, "raw_base64"),
        (b"x" * 50_000, 20_000, "raw_bytes"),
    ],
)
def test_a_dead_letter_holds_its_raw_record_as_it_fits(
    raw: bytes, room: int | None, field: str
) -> None:
    verdict = dead_letter(
        b"k" * 100,
        raw,
        None,
        SOURCE,
        Problem.RECORD_TOO_LARGE,
        "too large",
        [],
        validator_id="validator-0",
        now_text=NOW,
        max_bytes=room,
    )
    record = orjson.loads(verdict.value)
    assert field in record
    assert {"raw", "raw_base64", "raw_bytes"} & set(record) == {field}
    if field == "raw_bytes":
        assert record["raw_bytes"] == len(raw)
    if room is not None:
        assert len(verdict.value) + len(verdict.key or b"") <= room
    assert record["source"]["offset"] == SOURCE.offset


def test_changelog_records_stay_within_their_size() -> None:
    entries = [("\x01" * 128, 1_700_000_000_000 + i) for i in range(5000)]
    values = list(encode_seen(entries, max_bytes=100_000))
    assert all(len(value) <= 100_000 for value in values)
    assert [e for value in values for e in decode_seen(value)] == entries


class _Broken:
    def get(self, event_type: str, version: str) -> None:
        raise RuntimeError("a contract that cannot be read")


def test_a_record_that_cannot_be_judged_is_its_own_dead_letter() -> None:
    validator = Validator(Settings(validator_id="validator-0"), _Broken())  # type: ignore[arg-type]
    message = _Message(orjson.dumps(envelope()))
    verdict = validator._judge(message, SOURCE, NOW)  # type: ignore[arg-type]
    assert isinstance(verdict, Invalid)
    assert verdict.problem is Problem.UNPROCESSABLE
    record = orjson.loads(verdict.value)
    assert record["error"]["message"] == "RuntimeError: a contract that cannot be read"
    assert orjson.loads(record["raw"]) == envelope()


class _Message:
    def __init__(self, value: bytes) -> None:
        self._value = value

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return self._value
