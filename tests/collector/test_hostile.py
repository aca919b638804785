"""Hostile input on the in-memory sink: each element judged alone, its own bytes dead-lettered,
depth and duplicate keys refused with their codes, replies and records bounded."""

from __future__ import annotations

import base64
import gzip
import logging
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from collector.envelope import Enveloper, Invalid, Valid
from collector.limits import largest_dead_letter
from collector.problems import Problem
from collector.schemas import MAX_DEPTH, MAX_DETAILS, TAXI_EVENT
from collector.structure import array_elements
from tests.collector.conftest import DLQ, RAW
from tests.collector.memory_sink import MemorySink

pytestmark = pytest.mark.anyio

Serve = Callable[..., Any]
TAXI = orjson.dumps(TAXI_EVENT)
HEAD = b'{"event_type":"T","schema_version":"1","payload":'


def nested(levels: int, leaf: bytes = b"1") -> bytes:
    """An event whose payload nests `levels` objects (the event itself is one more level)."""
    return HEAD + b'{"a":' * (levels - 1) + leaf + b"}" * (levels - 1) + b"}"


def record(outcome: Invalid) -> dict[str, Any]:
    value = orjson.loads(outcome.value)
    assert isinstance(value, dict)
    return value


def raw_bytes(dead_letter: dict[str, Any]) -> bytes:
    if "raw" in dead_letter:
        return str(dead_letter["raw"]).encode()
    return base64.b64decode(dead_letter["raw_base64"])


# The spellings the README promises to keep, each inside a batch beside good events.
EXACT = [
    b'{"event_type":"T","schema_version":"1","payload":{"f":1.0E2}}',
    b'{"event_type":"T","schema_version":"1","payload":{"s":"\\u00e9"}}',
    b'{"event_type":"T","schema_version":"1","payload":{"z":-0}}',
    b'{"event_type":"T","schema_version":"1","payload":{"n":123456789012345678901234567890}}',
]


@pytest.mark.parametrize("element", EXACT)
def test_batch_elements_keep_their_bytes_accepted_or_rejected(element: bytes) -> None:
    rejected = element.replace(b'"schema_version":"1",', b"")  # the same, but not an event
    body = b"[ " + TAXI + b" ,\n" + element + b"," + rejected + b"]"
    good, exact, bad = Enveloper("c").batch(body)  # type: ignore[misc]
    assert isinstance(good, Valid)
    assert isinstance(exact, Valid)
    assert exact.value.startswith(element[:-1] + b',"collector_timestamp"')
    assert isinstance(bad, Invalid)
    assert bad.problem is Problem.INVALID_EVENT
    assert raw_bytes(record(bad)) == rejected
    assert record(bad)["batch_index"] == 2


def test_invalid_utf8_in_one_element_is_that_elements_rejection_in_base64() -> None:
    broken = b'{"event_type":"T","schema_version":"1","payload":{"s":"caf\xe9"}}'
    outcomes = Enveloper("c").batch(b"[" + TAXI + b"," + broken + b"," + TAXI + b"]")
    assert isinstance(outcomes, list)
    assert [type(o) for o in outcomes] == [Valid, Invalid, Valid]
    rejected = outcomes[1]
    assert isinstance(rejected, Invalid)
    assert rejected.problem is Problem.INVALID_UTF8
    assert base64.b64decode(record(rejected)["raw_base64"]) == broken


@pytest.mark.parametrize(
    ("element", "code"),
    [
        (nested(MAX_DEPTH + 1), Problem.TOO_DEEP),
        (nested(300), Problem.TOO_DEEP),  # past orjson's 254 levels for encoding
        (nested(1000, b"12345678901234567"), Problem.TOO_DEEP),  # past msgspec's and json's
        (nested(100_000), Problem.TOO_DEEP),  # past orjson's 1,024 levels for decoding
        (HEAD + b'{"a" 1}}', Problem.INVALID_JSON),  # no colon
        (b"1e400", Problem.INVALID_JSON),
        (b'{"a":}', Problem.INVALID_JSON),
        (b'{"event_type":"admin","event_type":"T","schema_version":"1","payload":{}}',
         Problem.DUPLICATE_KEY),
    ],
)  # fmt: skip
def test_one_bad_element_is_its_own_rejection_and_the_others_are_accepted(
    element: bytes, code: Problem
) -> None:
    outcomes = Enveloper("c").batch(b"[" + TAXI + b"," + element + b"," + TAXI + b"]")
    assert isinstance(outcomes, list)
    first, bad, last = outcomes
    assert isinstance(first, Valid)
    assert isinstance(last, Valid)
    assert isinstance(bad, Invalid)
    assert bad.problem is code
    assert raw_bytes(record(bad)) == element


def test_depth_counts_the_event_as_level_one() -> None:
    assert isinstance(Enveloper("c").event(nested(MAX_DEPTH - 1)), Valid)
    deepest = nested(MAX_DEPTH - 1).replace(b"1}", b"[]}", 1)
    assert isinstance(Enveloper("c").event(deepest), Valid)
    too_deep = nested(MAX_DEPTH - 1).replace(b"1}", b"[[]]}", 1)
    outcome = Enveloper("c").event(too_deep)
    assert isinstance(outcome, Invalid)
    assert outcome.problem is Problem.TOO_DEEP
    assert outcome.problem.status == 422
    assert record(outcome)["raw"] == too_deep.decode()


@pytest.mark.parametrize(
    "body",
    [
        b'{"event_type":"admin","event_type":"T","schema_version":"1","payload":{}}',
        b'{"event_type":"T","schema_version":"1","payload":{},"payload":{"x":1}}',
        # the same key, spelled with an escape
        b'{"event_type":"admin","event\\u005ftype":"T","schema_version":"1","payload":{}}',
        b'{"event_id":"a","schema_version":"1","event_id":"b","event_type":"T","payload":{}}',
    ],
)
def test_a_top_level_key_twice_is_refused_whatever_its_spelling(body: bytes) -> None:
    outcome = Enveloper("c").event(body)
    assert isinstance(outcome, Invalid)
    assert outcome.problem is Problem.DUPLICATE_KEY
    assert record(outcome)["raw"] == body.decode()


def test_keys_repeated_inside_the_payload_are_kept_as_sent() -> None:
    body = b'{"event_type":"T","schema_version":"1","payload":{"x":1,"x":2,"event_type":"\\""}}'
    outcome = Enveloper("c").event(body)
    assert isinstance(outcome, Valid)
    assert outcome.value.startswith(body[:-1] + b",")


def test_ninety_thousand_extra_keys_are_one_bounded_rejection_with_the_whole_body() -> None:
    extra = b"".join(b'"k%d":%d,' % (i, i) for i in range(90_000))
    body = b'{"event_type":"T",' + extra + b'"schema_version":"1","payload":{}}'
    outcome = Enveloper("c").event(body)
    assert isinstance(outcome, Invalid)
    assert outcome.problem is Problem.INVALID_EVENT
    dead_letter = record(outcome)
    assert dead_letter["raw"] == body.decode()
    assert len(outcome.details) == MAX_DETAILS
    assert outcome.details[-1]["msg"] == f"and {90_000 - MAX_DETAILS + 1} more extra fields"
    assert len(outcome.value) <= largest_dead_letter(len(body))


def test_a_body_that_would_escape_sixfold_is_dead_lettered_in_base64() -> None:
    body = b"\x01" * 10_000
    outcome = Enveloper("c").event(body)
    assert isinstance(outcome, Invalid)
    assert base64.b64decode(record(outcome)["raw_base64"]) == body
    assert len(outcome.value) <= largest_dead_letter(len(body))


def test_long_field_names_are_cut_in_what_is_said() -> None:
    body = orjson.dumps({"x" * 100_000: 1, "event_type": "T", "payload": {}})
    outcome = Enveloper("c").event(body)
    assert isinstance(outcome, Invalid)
    assert len(outcome.message) <= 1000
    assert len(orjson.dumps(outcome.details)) < 2000
    assert record(outcome)["raw"] == body.decode()


@pytest.mark.parametrize(
    ("body", "elements"),
    [
        (b' [ 1 , "a,]\\"" , {"x":[1,{"y":"}"}]} ] ', [b"1", b'"a,]\\""', b'{"x":[1,{"y":"}"}]}']),
        (b"[" + b"[" * 2000 + b"]" * 2000 + b",2]", [b"[" * 2000 + b"]" * 2000, b"2"]),
        (b'[{"a":},2]', [b'{"a":}', b"2"]),
        (b"[1,,2]", [b"1", b"", b"2"]),
        (b"[]", []),
        (b"[1,]", None),
        (b"[1", None),
        (b"[1]x", None),
        (b'{"a":1}', None),
        (b"[{]", None),
    ],
)
def test_array_elements_split_by_structure_only(body: bytes, elements: list[bytes] | None) -> None:
    assert array_elements(body) == elements


async def test_a_batch_with_a_deep_element_is_settled_not_503(serve: Serve) -> None:
    sink = MemorySink()
    body = b"[" + TAXI + b"," + nested(300) + b"]"
    async with serve(sink) as (client, _):
        answer = await client.post("/api/v1/collect/batch", content=body)
    assert answer.status_code == 202
    reply = answer.json()
    assert (reply["accepted"], reply["rejected"], reply["retry"]) == (1, 1, 0)
    assert reply["results"][1]["error"]["code"] == "too_deep"
    assert len(sink.on(RAW)) == 1
    [dead_letter] = sink.on(DLQ)
    assert orjson.loads(dead_letter.value)["batch_index"] == 1


async def test_a_single_event_too_deep_for_any_parser_is_422(serve: Serve) -> None:
    async with serve(MemorySink()) as (client, _):
        answer = await client.post("/api/v1/collect", content=nested(100_000))
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "too_deep"


async def test_a_batch_reply_is_never_many_times_its_request(serve: Serve) -> None:
    # 1,000 events, each with 20 unknown fields of long names: every one says a lot.
    names = {f"{'n' * 150}{i}": i for i in range(20)}
    body = orjson.dumps([{"event_type": "T", "payload": {}, **names}] * 1000)
    async with serve(MemorySink(), max_body_bytes=4_000_000) as (client, _):
        answer = await client.post("/api/v1/collect/batch", content=body)
    assert answer.status_code == 202
    assert answer.json()["rejected"] == 1000
    assert len(answer.content) < 2 * len(body)
    first, last = answer.json()["results"][0], answer.json()["results"][-1]
    assert first["error"]["details"]  # the first ones say what was wrong
    assert last["error"] == {"code": "invalid_event", "message": "", "details": []}


@pytest.mark.parametrize(
    ("encoding", "status"),
    [("gzip", 202), ("gzip, gzip", 202), ("gzip, gzip, gzip", 415), ("identity, gzip", 202)],
)
async def test_at_most_two_content_codings(serve: Serve, encoding: str, status: int) -> None:
    body = TAXI
    for _ in range(encoding.count("gzip")):
        body = gzip.compress(body)
    async with serve(MemorySink()) as (client, _):
        answer = await client.post(
            "/api/v1/collect", content=body, headers={"content-encoding": encoding}
        )
    assert answer.status_code == status
    if status == 415:
        assert answer.json()["error"]["code"] == "too_many_encodings"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_the_bearer_scheme_is_case_insensitive(serve: Serve, scheme: str) -> None:
    async with serve(MemorySink(), api_keys=("k1", "k2")) as (client, _):
        answer = await client.post(
            "/api/v1/collect", content=TAXI, headers={"authorization": f"{scheme} k2"}
        )
    assert answer.status_code == 202


async def test_refusals_are_counted_by_reason_and_logged_once_a_second_per_address(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    tries = [None, "Basic k1", "Bearer", "Bearer nope", "Bearer nope", "Bearer k1"]
    async with serve(MemorySink(), api_keys=("k1",)) as (client, _):
        statuses = []
        for authorization in tries:
            headers = {"authorization": authorization} if authorization else {}
            answer = await client.post("/api/v1/collect", content=TAXI, headers=headers)
            statuses.append(answer.status_code)
        metrics = (await client.get("/metrics")).text
    assert statuses == [401, 401, 401, 401, 401, 202]
    assert 'collector_requests_unauthorized_total{reason="missing"} 1.0' in metrics
    assert 'collector_requests_unauthorized_total{reason="malformed"} 2.0' in metrics
    assert 'collector_requests_unauthorized_total{reason="wrong_key"} 2.0' in metrics
    refusals = [r for r in caplog.records if r.getMessage() == "request without a valid API key"]
    assert len(refusals) == 1  # five 401s from one address within a second
    assert "nope" not in caplog.text
