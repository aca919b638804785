"""The OpenAPI document's answer examples: one per problem code, each what the collector really
answers; request examples whose event ids no replay can produce; the docs shortcuts."""

from __future__ import annotations

import gzip
import logging
import re
from typing import Any

import httpx
import orjson
import pytest

from collector import examples
from collector.problems import Problem
from collector.schemas import NOT_AN_EVENT, TAXI_EVENT
from tests.collector.conftest import Serve
from tests.collector.memory_sink import MemorySink

pytestmark = pytest.mark.anyio

COLLECT, BATCH = "/api/v1/collect", "/api/v1/collect/batch"


async def _document(serve: Serve) -> dict[str, Any]:
    async with serve(MemorySink()) as (client, _):
        document: dict[str, Any] = (await client.get("/api/v1/openapi.json")).json()
    return document


def _answer_examples(document: dict[str, Any], path: str, status: int) -> dict[str, Any]:
    response = document["paths"][path]["post"]["responses"][str(status)]
    found: dict[str, Any] = response["content"]["application/json"]["examples"]
    return found


async def test_every_problem_code_is_an_example_of_its_own_status(serve: Serve) -> None:
    document = await _document(serve)
    for path in (COLLECT, BATCH):
        responses = document["paths"][path]["post"]["responses"]
        codes: set[str] = set()
        for status in responses:
            if status == "202":
                continue
            shown = _answer_examples(document, path, int(status))
            assert shown, (path, status)
            for name, example in shown.items():
                if name == "some_to_resend":  # a batch's partial 503
                    assert example["value"]["results"][1]["status"] == "retry"
                    continue
                assert Problem(name).status == int(status)
                assert example["value"]["error"]["code"] == name
                codes.add(name)
        route_only = {
            COLLECT: {"invalid_batch", "batch_too_large"},
            BATCH: {"invalid_event", "duplicate_key", "unprocessable"},  # per element, in a 202
        }
        assert codes == {p.value for p in Problem} - route_only[path], path
    # Not one generic body for all: 429 and 503 say `retry` with their own codes.
    assert _answer_examples(document, COLLECT, 429)["rate_limited"]["value"]["status"] == "retry"
    assert set(_answer_examples(document, COLLECT, 503)) == {
        "ack_timeout", "queue_full", "kafka_error", "overloaded", "draining", "internal_error",
    }  # fmt: skip


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    """What an example promises: status, code and message (root ids and parse offsets vary)."""
    return {"status": body["status"], "code": body["error"]["code"], **(
        {"message": body["error"]["message"]} if body["error"]["code"] != "invalid_json" else {}
    )}  # fmt: skip


async def _real_answers(serve: Serve) -> dict[Problem, httpx.Response]:
    """The collector's own answers for each problem a test can provoke in memory."""
    taxi = orjson.dumps(TAXI_EVENT)
    got: dict[Problem, httpx.Response] = {}
    async with serve(MemorySink(), max_body_bytes=4096, max_batch_events=2) as (client, app):
        got[Problem.INVALID_JSON] = await client.post(COLLECT, content=b'{"a": NaN}')
        got[Problem.INVALID_UTF8] = await client.post(COLLECT, content=b'{"a": "\xff"}')
        got[Problem.INVALID_EVENT] = await client.post(COLLECT, json=NOT_AN_EVENT)
        for problem in (Problem.TOO_DEEP, Problem.DUPLICATE_KEY):
            got[problem] = await client.post(COLLECT, content=examples._INPUTS[problem])
        got[Problem.INVALID_BATCH] = await client.post(BATCH, content=b"[]")
        got[Problem.INVALID_ENCODING] = await client.post(
            COLLECT, content=gzip.compress(taxi)[:10], headers={"content-encoding": "gzip"}
        )
        got[Problem.BODY_TOO_LARGE] = await client.post(COLLECT, content=b" " * 5000 + taxi)
        got[Problem.BATCH_TOO_LARGE] = await client.post(
            BATCH, content=b"[" + b",".join([taxi] * 3) + b"]"
        )
        got[Problem.UNSUPPORTED_ENCODING] = await client.post(
            COLLECT, content=taxi, headers={"content-encoding": "br"}
        )
        app.service.draining = True
        got[Problem.DRAINING] = await client.post(COLLECT, content=taxi)
    async with serve(MemorySink(), api_keys=("k",)) as (client, _):
        got[Problem.UNAUTHORIZED] = await client.post(COLLECT, content=taxi)
    async with serve(MemorySink(), rate_limit_per_s=0.001, rate_limit_burst=1) as (client, _):
        await client.post(COLLECT, content=taxi)
        got[Problem.RATE_LIMITED] = await client.post(COLLECT, content=taxi)
    for failure in (Problem.ACK_TIMEOUT, Problem.QUEUE_FULL, Problem.KAFKA_ERROR,
                    Problem.RECORD_TOO_LARGE):  # fmt: skip
        async with serve(MemorySink(failure=failure)) as (client, _):
            got[failure] = await client.post(COLLECT, content=taxi)
    return got


async def test_each_example_is_what_the_collector_really_answers(serve: Serve) -> None:
    document = await _document(serve)
    for problem, answer in (await _real_answers(serve)).items():
        assert answer.status_code == problem.status, (problem, answer.text)
        path = BATCH if problem in (Problem.INVALID_BATCH, Problem.BATCH_TOO_LARGE) else COLLECT
        example = _answer_examples(document, path, problem.status)[problem.value]["value"]
        assert _comparable(example) == _comparable(answer.json()), problem
        assert set(example) == set(answer.json()), problem
        assert example == examples.answer(problem)


async def test_example_event_ids_can_never_be_a_replays(serve: Serve) -> None:
    # A replay's event ids are `<file name>:<row number>` (producer.replay.units_of): an example
    # tried out in Swagger UI must not take one, or the next reconciliation counts a duplicate.
    document = await _document(serve)
    ids = []
    for path in (COLLECT, BATCH):
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        for example in body["examples"].values():
            events = example["value"] if isinstance(example["value"], list) else [example["value"]]
            ids += [event["event_id"] for event in events if "event_id" in event]
    assert ids
    for event_id in ids:
        assert not re.fullmatch(r".*:[0-9]+", event_id), event_id


@pytest.mark.parametrize("path", ["/", "/docs"])
async def test_the_usual_docs_paths_redirect_to_swagger_ui(serve: Serve, path: str) -> None:
    async with serve(MemorySink()) as (client, _):
        answer = await client.get(path)
        assert answer.status_code == 307
        assert answer.headers["location"] == "/api/v1/docs"
        followed = await client.get(path, follow_redirects=True)
    assert followed.status_code == 200
    assert "swagger-ui" in followed.text


async def test_the_start_up_log_names_the_docs_url(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with serve(MemorySink(), host="0.0.0.0", port=8123):
        pass
    [started] = [r for r in caplog.records if r.getMessage() == "collector started"]
    assert started.__dict__["docs"] == "http://127.0.0.1:8123/api/v1/docs"
