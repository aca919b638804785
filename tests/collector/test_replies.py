"""Every reply the collector sends is exactly one of the documented models (`collector.schemas`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from pydantic import BaseModel

from collector.problems import Problem
from collector.schemas import (
    TAXI_EVENT,
    AcceptedReply,
    BatchReply,
    ProblemReply,
    RejectedReply,
)
from tests.collector.memory_sink import MemorySink

pytestmark = pytest.mark.anyio

Serve = Callable[..., Any]
TAXI = orjson.dumps(TAXI_EVENT)
BATCH = orjson.dumps([TAXI_EVENT, {"event_type": "T"}])


def documented(response: httpx.Response, batch: bool) -> type[BaseModel]:
    """The model the OpenAPI document gives for this route and status."""
    status = response.status_code
    if batch and status in {202, 503} and "results" in response.json():
        return BatchReply
    if status == 202:
        return AcceptedReply
    if status in {400, 422}:
        return RejectedReply
    return ProblemReply


def assert_documented(response: httpx.Response, batch: bool) -> None:
    model = documented(response, batch)
    body = response.json()
    parsed = model.model_validate_json(response.content)
    # Nothing more, nothing less than the model: every member sent is a field, with its value.
    assert parsed.model_dump(mode="json", exclude_unset=True) == body
    assert response.headers["content-type"] == "application/json"
    if "error" in body:
        problem = Problem(body["error"]["code"])
        if not (batch and "results" in body):
            assert response.status_code == problem.status


ONE = "/api/v1/collect"
MANY = "/api/v1/collect/batch"
LIST = b"[" + TAXI + b"]"
SCENARIOS: list[tuple[dict[str, Any], dict[str, Any], str, bytes, int]] = [
    ({}, {}, ONE, TAXI, 202),
    ({}, {}, MANY, BATCH, 202),
    ({}, {}, ONE, b"{", 400),
    ({}, {}, MANY, b"[", 400),
    ({}, {}, ONE, b"\xff", 400),
    ({}, {}, ONE, b"{}", 422),
    ({}, {}, MANY, b"{}", 422),
    ({}, {"api_keys": ("k",)}, ONE, TAXI, 401),
    ({}, {"api_keys": ("k",)}, MANY, LIST, 401),
    ({}, {"max_body_bytes": 10}, ONE, TAXI, 413),
    ({}, {"max_batch_events": 1}, MANY, BATCH, 413),
    ({"failure": Problem.RECORD_TOO_LARGE}, {}, ONE, TAXI, 413),
    ({"failure": Problem.RECORD_TOO_LARGE}, {}, MANY, LIST, 202),
    ({"failure": Problem.QUEUE_FULL}, {}, ONE, TAXI, 503),
    ({"failure": Problem.KAFKA_ERROR}, {}, MANY, BATCH, 503),
    ({"hold": True}, {"ack_timeout_s": 0.05}, ONE, TAXI, 503),
    ({"hold": True}, {"ack_timeout_s": 0.05}, MANY, LIST, 503),
]


@pytest.mark.parametrize(("sink_args", "settings", "path", "body", "status"), SCENARIOS)
async def test_every_reply_is_a_documented_model(
    serve: Serve,
    sink_args: dict[str, Any],
    settings: dict[str, Any],
    path: str,
    body: bytes,
    status: int,
) -> None:
    async with serve(MemorySink(**sink_args), **settings) as (client, app):
        response = await client.post(path, content=body)
        app.service.draining = True
        draining = await client.post(path, content=body)
    assert response.status_code == status
    assert_documented(response, batch=path == MANY)
    assert draining.status_code == (401 if settings.get("api_keys") else 503)
    assert_documented(draining, batch=path == MANY)
