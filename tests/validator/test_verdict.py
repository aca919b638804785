"""Judging one raw record, without Kafka."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from tests.validator.test_contracts import good_payload
from validator import contracts
from validator.settings import DEFAULT_CONTRACTS_DIR
from validator.verdict import Invalid, Reason, Source, Valid, judge

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
        (b"\xff\xfe not even utf-8", Reason.NOT_AN_ENVELOPE),
        (b"[1, 2]", Reason.NOT_AN_ENVELOPE),
        (orjson.dumps(envelope(payload=[1])), Reason.NOT_AN_ENVELOPE),
        (orjson.dumps(envelope(event_type=7)), Reason.NOT_AN_ENVELOPE),
        (orjson.dumps(envelope(schema_version="9-9-9")), Reason.UNKNOWN_CONTRACT),
        (orjson.dumps(envelope(event_type="Nope")), Reason.UNKNOWN_CONTRACT),
        (orjson.dumps(envelope(payload={**good_payload(), "fare_amount": "x"})),
         Reason.INVALID_PAYLOAD),
    ],
)  # fmt: skip
def test_what_fails_goes_to_the_dead_letter_topic_with_a_stable_reason(
    value: bytes, reason: Reason
) -> None:
    verdict = run(value)
    assert isinstance(verdict, Invalid)
    assert verdict.reason is reason
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
