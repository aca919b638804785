"""Fixtures for the collector: settings, an app on the in-memory sink, an HTTP client on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from collector.app import create_app
from collector.front import CollectorApp
from collector.settings import Settings
from collector.sinks import Delivery, Record, Sink
from tests.collector.memory_sink import MemorySink

RAW = "raw-test"
DLQ = "dlq-test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "collector_id": "collector-test",
        "raw_topic": RAW,
        "dead_letter_topic": DLQ,
        "ack_timeout_s": 2.0,
        "allow_anonymous": True,
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def serving(app: CollectorApp) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give an HTTP client talking to it in-process."""
    async with app.api.router.lifespan_context(app.api):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
            yield client


Serve = Callable[..., Any]


@pytest.fixture
def memory_sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def serve() -> Callable[..., Any]:
    """`async with serve(sink, **settings) as (client, app)`: an app with its lifespan running."""

    @asynccontextmanager
    async def _serve(
        sink: Sink, **overrides: Any
    ) -> AsyncIterator[tuple[httpx.AsyncClient, CollectorApp]]:
        app = create_app(make_settings(**overrides), sink)
        async with serving(app) as client:
            yield client, app

    return _serve


class PartialSink(MemorySink):
    """Acknowledges the even-numbered records of each publish, never the odd ones."""

    def publish(self, records: Sequence[Record], timeout_s: float) -> Delivery:
        delivery = Delivery(asyncio.get_running_loop(), len(records), timeout_s)
        for index, record in enumerate(records):
            if index % 2 == 0:
                self.records.append(record)
                delivery.settle(index, None)
        return delivery
