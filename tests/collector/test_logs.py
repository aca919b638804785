"""Logs: one JSON line per problem, nothing per event."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from collector.logs import JsonFormatter
from collector.problems import Problem
from collector.schemas import TAXI_EVENT
from tests.collector.memory_sink import MemorySink

pytestmark = pytest.mark.anyio

Serve = Callable[..., Any]
TAXI = orjson.dumps(TAXI_EVENT)


def _ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    # Not the start-up warning that anonymous access is on (the tests' collectors have no keys).
    return [
        r
        for r in caplog.records
        if r.name.startswith("collector") and not r.getMessage().startswith("no API keys")
    ]


async def _lines_for(serve: Serve, caplog: pytest.LogCaptureFixture, events: int) -> list[str]:
    caplog.clear()
    async with serve(MemorySink()) as (client, _):
        for _ in range(events):
            assert (await client.post("/api/v1/collect", content=TAXI)).status_code == 202
            assert (await client.post("/api/v1/collect", content=b"{")).status_code == 400
    return [r.getMessage() for r in _ours(caplog) if r.levelno >= logging.INFO]


async def test_accepted_and_rejected_events_log_nothing(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    one = await _lines_for(serve, caplog, 1)
    many = await _lines_for(serve, caplog, 50)
    # Start and stop only: the same lines for 2 requests as for 100.
    assert many == one
    assert len(one) <= 2


async def test_a_failing_sink_logs_one_json_line_not_one_per_event(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with serve(MemorySink(failure=Problem.QUEUE_FULL)) as (client, _):
        for _ in range(20):
            assert (await client.post("/api/v1/collect", content=TAXI)).status_code == 503
    [record] = [r for r in _ours(caplog) if r.levelno >= logging.WARNING]
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = orjson.loads(line)
    assert parsed["level"] == "WARNING"
    assert parsed["reason"] == Problem.QUEUE_FULL
    assert parsed["ts"].endswith("Z")
