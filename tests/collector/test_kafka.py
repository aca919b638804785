"""The same behaviour against the real broker: records, keys and headers as consumers see them."""

from __future__ import annotations

import asyncio
import base64
import collections
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest

from collector.app import create_app, kafka_sink
from devstack.collector import CollectorProcess
from devstack.kafka import Broker, read_topic
from devstack.proc import free_port
from tests.collector.conftest import make_settings, serving
from tests.conftest import Topics

pytestmark = [pytest.mark.kafka, pytest.mark.anyio]

TAXI_EVENT: dict[str, Any] = {
    "event_type": "YellowTaxiTripRecords",
    "schema_version": "0-0-1",
    "payload": {"VendorID": 2, "trip_distance": 1.2, "note": "caf\u00e9", "fee": None},
    "event_id": "yellow_tripdata_2023-01.parquet:41",
}


@asynccontextmanager
async def collector_on(
    bootstrap: str, topics: Topics, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        kafka={"bootstrap_servers": bootstrap},
        raw_topic=topics.raw,
        dead_letter_topic=topics.dead_letter,
        readiness_interval_s=0.2,
        **overrides,
    )
    async with serving(create_app(settings, kafka_sink(settings))) as client:
        yield client


async def wait_ready(
    client: httpx.AsyncClient, expected: int = 200, timeout_s: float = 20.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while (await client.get("/readyz")).status_code != expected:
        assert time.monotonic() < deadline, f"/readyz never answered {expected}"
        await asyncio.sleep(0.1)


async def test_a_valid_event_arrives_on_the_raw_topic(kafka: Broker, topics: Topics) -> None:
    body = orjson.dumps(TAXI_EVENT)
    async with collector_on(kafka.bootstrap_servers, topics) as client:
        await wait_ready(client)
        with_id = await client.post("/api/v1/collect", content=body)
        without = {k: v for k, v in TAXI_EVENT.items() if k != "event_id"}
        no_id = await client.post("/api/v1/collect", content=orjson.dumps(without))
    assert (with_id.status_code, no_id.status_code) == (202, 202)
    messages = {m.key(): m for m in read_topic(kafka.bootstrap_servers, topics.raw)}
    assert len(messages) == 2

    message = messages[b"yellow_tripdata_2023-01.parquet:41"]
    envelope = orjson.loads(message.value())
    assert envelope.pop("root_id") == with_id.json()["root_id"]
    assert envelope.pop("collector_id") == "collector-test"
    stamp = envelope.pop("collector_timestamp")
    assert len(stamp) == 27
    assert stamp.endswith("Z")
    assert envelope == TAXI_EVENT
    assert message.headers() == [
        ("event_type", b"YellowTaxiTripRecords"),
        ("schema_version", b"0-0-1"),
        ("collector_id", b"collector-test"),
    ]
    root_id = no_id.json()["root_id"]
    assert orjson.loads(messages[root_id.encode()].value())["root_id"] == root_id
    assert read_topic(kafka.bootstrap_servers, topics.dead_letter) == []


async def test_rejected_input_arrives_on_the_dead_letter_topic(
    kafka: Broker, topics: Topics
) -> None:
    invalid_event = orjson.dumps({**TAXI_EVENT, "root_id": "forged"})
    not_json = b'{"event_type": "T", "payload": {"x": NaN}}'
    not_utf8 = b'{"event_type": "\xff"}'
    batch = orjson.dumps([TAXI_EVENT, {"event_type": "T"}, TAXI_EVENT])
    async with collector_on(kafka.bootstrap_servers, topics) as client:
        await wait_ready(client)
        answers = [
            await client.post("/api/v1/collect", content=body)
            for body in (invalid_event, not_json, not_utf8)
        ]
        mixed = await client.post("/api/v1/collect/batch", content=batch)
    assert [a.status_code for a in answers] == [422, 400, 400]
    assert mixed.status_code == 202
    results = mixed.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]

    dead = {
        orjson.loads(m.value())["root_id"]: m
        for m in read_topic(kafka.bootstrap_servers, topics.dead_letter)
    }
    assert len(dead) == 4
    expected = [
        (answers[0], "invalid_event", invalid_event),
        (answers[1], "invalid_json", not_json),
    ]
    for answer, code, body in expected:
        message = dead[answer.json()["root_id"]]
        record = orjson.loads(message.value())
        assert record["error"]["code"] == code
        assert record["raw"].encode() == body
        assert record["collector_id"] == "collector-test"
        assert message.key() == answer.json()["root_id"].encode()
        assert ("error_code", code.encode()) in message.headers()
    utf8_record = orjson.loads(dead[answers[2].json()["root_id"]].value())
    assert utf8_record["error"]["code"] == "invalid_utf8"
    assert base64.b64decode(utf8_record["raw_base64"]) == not_utf8
    element = orjson.loads(dead[results[1]["root_id"]].value())
    assert (element["batch_index"], element["error"]["code"]) == (1, "invalid_event")
    assert orjson.loads(element["raw"]) == {"event_type": "T"}

    raw = {
        orjson.loads(m.value())["root_id"] for m in read_topic(kafka.bootstrap_servers, topics.raw)
    }
    assert raw == {results[0]["root_id"], results[2]["root_id"]}


async def test_kafka_unreachable_is_503_with_retry_after_and_not_ready(topics: Topics) -> None:
    closed = f"127.0.0.1:{free_port()}"
    async with collector_on(closed, topics, ack_timeout_s=0.5, retry_after_s=2) as client:
        single = await client.post("/api/v1/collect", content=orjson.dumps(TAXI_EVENT))
        batch = await client.post("/api/v1/collect/batch", content=orjson.dumps([TAXI_EVENT] * 3))
        invalid = await client.post("/api/v1/collect", content=b"not json")
        ready = await client.get("/readyz")
        health = await client.get("/healthz")
        metrics = (await client.get("/metrics")).text
    for response in (single, batch, invalid):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "2"
    assert single.json()["error"]["code"] == "ack_timeout"
    assert [r["status"] for r in batch.json()["results"]] == ["retry"] * 3
    assert ready.status_code == 503
    assert ready.json()["kafka"] is False
    assert health.status_code == 200
    assert "collector_kafka_up 0.0" in metrics
    assert 'collector_events_failed_total{reason="ack_timeout"} 5.0' in metrics


async def _fire(
    client: httpx.AsyncClient,
    stop_at: float,
    accepted: list[str],
    statuses: list[int],
    enough: asyncio.Event,
) -> None:
    n = 0
    while time.monotonic() < stop_at:
        event = {**TAXI_EVENT, "event_id": f"sigterm-{time.monotonic_ns()}-{n}"}
        n += 1
        try:
            response = await client.post("/api/v1/collect", content=orjson.dumps(event))
        except httpx.TransportError:
            statuses.append(0)  # refused or cut off while draining: nothing was claimed
            await asyncio.sleep(0.02)
            continue
        statuses.append(response.status_code)
        if response.status_code == 202:
            accepted.append(response.json()["root_id"])
            if len(accepted) >= 200:
                enough.set()


@pytest.mark.slow
async def test_sigterm_under_load_loses_no_acknowledged_event(
    kafka: Broker, topics: Topics, tmp_path: Any
) -> None:
    log_path = tmp_path / "collector.log"
    process = CollectorProcess(
        kafka.bootstrap_servers,
        raw_topic=topics.raw,
        dead_letter_topic=topics.dead_letter,
        env={"COLLECTOR_READINESS_INTERVAL_S": "0.5"},
        log_path=log_path,
    )
    process.start(timeout_s=60)
    accepted: list[str] = []
    statuses: list[int] = []
    try:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(base_url=process.url, timeout=10, limits=limits) as client:
            stop_at = time.monotonic() + 20.0
            enough = asyncio.Event()
            load = [
                asyncio.create_task(_fire(client, stop_at, accepted, statuses, enough))
                for _ in range(16)
            ]
            await asyncio.wait_for(enough.wait(), timeout=15)
            before = len(accepted)
            process.signal(signal.SIGTERM)
            code = await asyncio.to_thread(process.wait, 60)
            for task in load:
                task.cancel()
            await asyncio.gather(*load, return_exceptions=True)
    finally:
        process.stop()
    log_text = log_path.read_text()
    assert code == 0, log_text[-3000:]
    assert before >= 200, (collections.Counter(statuses), log_text[-2000:])
    assert set(statuses) <= {0, 202, 503}
    on_topic = {
        orjson.loads(m.value())["root_id"] for m in read_topic(kafka.bootstrap_servers, topics.raw)
    }
    missing = set(accepted) - on_topic
    assert not missing, f"{len(missing)} acknowledged events lost"
    assert len(accepted) > before  # requests in flight at SIGTERM were still answered and stored
    lines = [orjson.loads(line) for line in log_text.splitlines()]
    assert any(line["message"] == "collector stopped" for line in lines)


@pytest.mark.slow
def test_two_workers_serve_and_stop_cleanly(kafka: Broker, topics: Topics) -> None:
    process = CollectorProcess(
        kafka.bootstrap_servers,
        raw_topic=topics.raw,
        dead_letter_topic=topics.dead_letter,
        env={"COLLECTOR_WORKERS": "2"},
    )
    process.start(timeout_s=60)
    try:
        with httpx.Client(base_url=process.url) as client:
            statuses = [
                client.post("/api/v1/collect", content=orjson.dumps(TAXI_EVENT)).status_code
                for _ in range(20)
            ]
        assert statuses == [202] * 20
    finally:
        code = process.stop()
    assert code == 0
    assert len(read_topic(kafka.bootstrap_servers, topics.raw)) == 20
