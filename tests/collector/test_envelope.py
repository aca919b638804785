"""The pure core: bytes in, envelopes and dead-letter records out."""

from __future__ import annotations

import base64
import copy
import itertools
import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from collector.envelope import (
    Enveloper,
    Invalid,
    TooManyEvents,
    Valid,
    event_problems,
    uuid7,
)
from collector.problems import Problem
from collector.schemas import EVENT, TAXI_EVENT

MOMENT = datetime(2026, 11, 21, 14, 47, 3, 123456, tzinfo=UTC)


def fixed_ids() -> Any:
    counter = itertools.count()
    return lambda: f"00000000-0000-7000-8000-{next(counter):012d}"


def enveloper(**kwargs: Any) -> Enveloper:
    return Enveloper("collector-7d9f5-x2k8p", clock=lambda: MOMENT, new_id=fixed_ids(), **kwargs)


def test_valid_event_gets_every_envelope_field_key_and_headers() -> None:
    outcome = enveloper().event(orjson.dumps(TAXI_EVENT))
    assert isinstance(outcome, Valid)
    assert orjson.loads(outcome.value) == {
        **TAXI_EVENT,
        "collector_timestamp": "2026-11-21T14:47:03.123456Z",
        "root_id": "00000000-0000-7000-8000-000000000000",
        "collector_id": "collector-7d9f5-x2k8p",
    }
    assert outcome.root_id == "00000000-0000-7000-8000-000000000000"
    assert outcome.key == b"docs-example:yellow-trip"
    assert outcome.headers == [
        ("event_type", b"YellowTaxiTripRecords"),
        ("schema_version", b"0-0-1"),
        ("collector_id", b"collector-7d9f5-x2k8p"),
    ]


def test_without_event_id_the_key_is_the_root_id() -> None:
    event = {k: v for k, v in TAXI_EVENT.items() if k != "event_id"}
    outcome = enveloper().event(orjson.dumps(event))
    assert isinstance(outcome, Valid)
    assert outcome.key == outcome.root_id.encode()
    assert "event_id" not in orjson.loads(outcome.value)


def test_payload_is_kept_byte_for_byte() -> None:
    payload = (
        b'{"n": 1.10, "e": 1E2, "big": 123456789012345678901234567890, "neg0": -0, '
        b'"s": "caf\\u00e9 \xf0\x9f\x9a\x95", "nested": [{"a": null}, []], "t": true}'
    )
    body = b' {"event_type": "T", "schema_version": "1", "payload": ' + payload + b"}\n"
    outcome = enveloper().event(body)
    assert isinstance(outcome, Valid)
    assert payload in outcome.value
    assert orjson.loads(outcome.value)["payload"]["s"] == "caf\u00e9 \U0001f695"


def test_the_input_is_not_modified_and_each_processing_gets_a_new_root_id() -> None:
    event = copy.deepcopy(TAXI_EVENT)
    body = orjson.dumps(event)
    real = Enveloper("c", max_batch_events=10)
    first, second = real.event(body), real.event(body)
    assert isinstance(first, Valid)
    assert isinstance(second, Valid)
    assert first.root_id != second.root_id
    assert body == orjson.dumps(TAXI_EVENT)

    parsed = copy.deepcopy(TAXI_EVENT)
    one = real.verdict_on(parsed, "2026-01-01T00:00:00.000000Z")
    two = real.verdict_on(parsed, "2026-01-01T00:00:00.000000Z")
    assert parsed == TAXI_EVENT
    assert isinstance(one, Valid)
    assert isinstance(two, Valid)
    assert one.root_id != two.root_id
    assert orjson.loads(one.value)["root_id"] == one.root_id


def test_root_ids_are_time_ordered_uuid7() -> None:
    ids = [uuid7() for _ in range(50)]
    assert all(
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i)
        for i in ids
    )
    assert len(set(ids)) == 50
    # The first 48 bits are milliseconds: never decreasing.
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"a": NaN}',
        b"Infinity",
        b'{"a": -Infinity}',
        b"{} {}",
        b"nul",
        b"\xef\xbb\xbf{}",
    ],
)
def test_not_json_is_rejected_with_the_raw_text(body: bytes) -> None:
    outcome = enveloper().event(body)
    assert isinstance(outcome, Invalid)
    assert outcome.problem == Problem.INVALID_JSON
    record = orjson.loads(outcome.value)
    assert record["raw"] == body.decode()
    assert record["error"]["code"] == Problem.INVALID_JSON
    assert record["root_id"] == outcome.root_id
    assert record["collector_id"] == "collector-7d9f5-x2k8p"
    assert record["collector_timestamp"] == "2026-11-21T14:47:03.123456Z"
    assert outcome.key == outcome.root_id.encode()
    assert ("error_code", Problem.INVALID_JSON.encode()) in outcome.headers


def test_non_utf8_is_rejected_with_the_bytes_in_base64() -> None:
    body = b'{"event_type": "\xff\xfe", "schema_version": "1", "payload": {}}'
    outcome = enveloper().event(body)
    assert isinstance(outcome, Invalid)
    assert outcome.problem == Problem.INVALID_UTF8
    record = orjson.loads(outcome.value)
    assert "raw" not in record
    assert base64.b64decode(record["raw_base64"]) == body


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ([], [([], "dict_type")]),
        ("text", [([], "dict_type")]),
        (
            {},
            [
                (["event_type"], "missing"),
                (["schema_version"], "missing"),
                (["payload"], "missing"),
            ],
        ),
        (
            {**TAXI_EVENT, "root_id": "forged", "collector_id": "x"},
            [(["root_id"], "extra_forbidden"), (["collector_id"], "extra_forbidden")],
        ),
        ({**TAXI_EVENT, "event_type": ""}, [(["event_type"], "string_too_short")]),
        ({**TAXI_EVENT, "schema_version": "v" * 65}, [(["schema_version"], "string_too_long")]),
        ({**TAXI_EVENT, "event_id": 41}, [(["event_id"], "string_type")]),
        ({**TAXI_EVENT, "event_id": None}, [(["event_id"], "string_type")]),
        ({**TAXI_EVENT, "payload": [1]}, [(["payload"], "dict_type")]),
    ],
)
def test_not_an_event_is_rejected_with_what_is_wrong(event: Any, expected: list[Any]) -> None:
    body = orjson.dumps(event)
    outcome = enveloper().event(body)
    assert isinstance(outcome, Invalid)
    assert outcome.problem == Problem.INVALID_EVENT
    assert [(d["loc"], d["type"]) for d in outcome.details] == expected
    record = orjson.loads(outcome.value)
    assert record["raw"] == body.decode()
    assert record["error"]["details"] == outcome.details
    assert "batch_index" not in record


def test_length_limits_count_characters_not_bytes() -> None:
    event = {**TAXI_EVENT, "event_type": "\u00e9" * 256, "event_id": "\U0001f695" * 128}
    assert isinstance(enveloper().event(orjson.dumps(event)), Valid)
    too_long = {**TAXI_EVENT, "event_type": "\u00e9" * 257}
    assert isinstance(enveloper().event(orjson.dumps(too_long)), Invalid)


def test_a_batch_splits_into_one_outcome_per_element() -> None:
    bad = {"event_type": "T", "payload": {}}
    outcomes = enveloper().batch(orjson.dumps([TAXI_EVENT, bad, TAXI_EVENT]))
    assert isinstance(outcomes, list)
    assert [type(o) for o in outcomes] == [Valid, Invalid, Valid]
    rejected = outcomes[1]
    assert isinstance(rejected, Invalid)
    assert rejected.batch_index == 1
    record = orjson.loads(rejected.value)
    assert record["batch_index"] == 1
    assert orjson.loads(record["raw"]) == bad
    envelopes = [orjson.loads(o.value) for o in outcomes if isinstance(o, Valid)]
    assert {e["collector_timestamp"] for e in envelopes} == {"2026-11-21T14:47:03.123456Z"}
    assert len({o.root_id for o in outcomes}) == 3


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[1,", Problem.INVALID_JSON),
        (b"{}", Problem.INVALID_BATCH),
        (b"[]", Problem.INVALID_BATCH),
        (b"\x80[]", Problem.INVALID_UTF8),
    ],
)
def test_a_batch_that_is_not_an_array_of_events_is_one_rejection(body: bytes, code: str) -> None:
    outcome = enveloper().batch(body)
    assert isinstance(outcome, Invalid)
    assert outcome.problem == code
    assert outcome.batch_index is None


def test_a_batch_over_the_limit_is_refused_whole() -> None:
    outcome = enveloper(max_batch_events=2).batch(orjson.dumps([TAXI_EVENT] * 3))
    assert outcome == TooManyEvents(count=3, limit=2)
    assert isinstance(enveloper(max_batch_events=3).batch(orjson.dumps([TAXI_EVENT] * 3)), list)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=6,
)
field_values = (
    st.text(min_size=0, max_size=3)
    | st.text(min_size=60, max_size=300)
    | st.dictionaries(st.text(max_size=3), json_values, max_size=3)
    | json_values
)
events = (
    st.dictionaries(
        st.sampled_from(
            ["event_type", "schema_version", "payload", "event_id", "extra", "root_id"]
        ),
        field_values,
        max_size=6,
    )
    | json_values
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_hand_validation_agrees_with_the_documented_schema(event: Any) -> None:
    problems = sorted((tuple(p["loc"]), p["type"]) for p in event_problems(event))
    try:
        EVENT.validate_python(event)
        expected: list[Any] = []
    except ValidationError as exc:
        expected = sorted((tuple(e["loc"]), e["type"]) for e in exc.errors())
    assert problems == expected
    outcome = Enveloper("c").event(orjson.dumps(event))
    assert isinstance(outcome, Valid) == (expected == [])


BIG_NUMBERS = (
    b'{"event_type":"T","schema_version":"1","payload":'
    b'{"big":-18446744073709551616,"tiny":1e-400,"long":0.1000000000000000000001}}'
)


def test_numbers_beyond_a_double_are_kept_exactly_in_single_events() -> None:
    outcome = Enveloper("c-1").event(BIG_NUMBERS)
    assert isinstance(outcome, Valid)
    assert outcome.value.startswith(BIG_NUMBERS[:-1] + b",")


def test_numbers_beyond_a_double_are_kept_exactly_in_batches() -> None:
    body = b" [ " + BIG_NUMBERS + b' ,\n {"event_type": "T"} , ' + BIG_NUMBERS + b" ]\n"
    outcomes = Enveloper("c-1").batch(body)
    assert isinstance(outcomes, list)
    first, second, third = outcomes
    assert isinstance(first, Valid)
    assert isinstance(third, Valid)
    assert first.value.startswith(BIG_NUMBERS[:-1] + b",")
    assert third.value.startswith(BIG_NUMBERS[:-1] + b",")
    assert isinstance(second, Invalid)
    assert orjson.loads(second.value)["raw"] == '{"event_type": "T"}'


@pytest.mark.parametrize(
    "body",
    [
        b'{"event_type":"T","schema_version":"1","payload":{"x":NaN}}',
        b'{"event_type":"T","schema_version":"1","payload":{"x":-Infinity}}',
        b'{"event_type":"T","schema_version":"1","payload":{"x":"\\ud800"}}',
        b'{"event_type":"T","schema_version":"1","payload":{"beyond_a_double":1e400}}',
    ],
)
def test_not_json_or_unreadable_by_consumers_is_invalid_json(body: bytes) -> None:
    outcome = Enveloper("c-1").event(body)
    assert isinstance(outcome, Invalid)
    assert outcome.problem == "invalid_json"


def test_problems_list_missing_fields_first_then_the_rest_as_written() -> None:
    problems = event_problems({"root_id": "x", "event_type": 5, "payload": []})
    assert [(p["loc"], p["type"]) for p in problems] == [
        (["schema_version"], "missing"),
        (["root_id"], "extra_forbidden"),
        (["event_type"], "string_type"),
        (["payload"], "dict_type"),
    ]
