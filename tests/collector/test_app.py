"""The HTTP behaviour on the in-memory sink: statuses, bodies, records, probes, docs, metrics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.app import create_app
from collector.problems import Problem
from collector.schemas import TAXI_EVENT
from collector.sinks import Delivery, Record
from tests.collector.conftest import DLQ, RAW, PartialSink, make_settings, serving
from tests.collector.memory_sink import MemorySink

pytestmark = pytest.mark.anyio

Serve = Callable[..., Any]
TAXI = orjson.dumps(TAXI_EVENT)


async def test_an_event_is_answered_202_after_the_sink_has_it(serve: Serve) -> None:
    sink = MemorySink()
    async with serve(sink) as (client, _):
        response = await client.post("/api/v1/collect", content=TAXI)
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    root_id = response.json()["root_id"]
    assert response.json() == {"status": "accepted", "root_id": root_id}
    [record] = sink.records
    assert record.topic == RAW
    assert orjson.loads(record.value)["root_id"] == root_id
    assert record.key == TAXI_EVENT["event_id"].encode()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"event_type": "T", "schema_version": "1", "payload": {"x": NaN}}', 400, "invalid_json"),
        (b"\xc3\x28", 400, "invalid_utf8"),
        (b'{"event_type": "T", "payload": {}}', 422, "invalid_event"),
        (orjson.dumps({**TAXI_EVENT, "root_id": "forged"}), 422, "invalid_event"),
    ],
)
async def test_rejected_input_is_dead_lettered_before_the_answer(
    serve: Serve, body: bytes, status: int, code: str
) -> None:
    sink = MemorySink()
    async with serve(sink) as (client, _):
        response = await client.post("/api/v1/collect", content=body)
    assert response.status_code == status
    answer = response.json()
    assert answer["status"] == "rejected"
    assert answer["error"]["code"] == code
    assert answer["error"]["details"]
    [record] = sink.records
    assert record.topic == DLQ
    stored = orjson.loads(record.value)
    assert stored["root_id"] == answer["root_id"]
    assert stored["error"]["code"] == code


async def test_any_content_type_is_parsed_as_json(serve: Serve) -> None:
    async with serve(MemorySink()) as (client, _):
        for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
            response = await client.post(
                "/api/v1/collect", content=TAXI, headers={"content-type": content_type}
            )
            assert response.status_code == 202, content_type


async def test_a_body_over_the_limit_is_413_and_nothing_is_stored(serve: Serve) -> None:
    sink = MemorySink()
    limit = len(TAXI) - 1

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(TAXI), 100):
            yield TAXI[start : start + 100]

    async with serve(sink, max_body_bytes=limit) as (client, _):
        declared = await client.post("/api/v1/collect", content=TAXI)
        streamed = await client.post("/api/v1/collect", content=chunks())  # chunked, no length
        batch = await client.post("/api/v1/collect/batch", content=b"[" + TAXI + b"]")
        fits = await client.post("/api/v1/collect", content=TAXI[:limit])
    assert "content-length" not in streamed.request.headers
    for response in (declared, streamed, batch):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "body_too_large"
    assert fits.status_code == 400  # exactly the limit is read (and is not JSON)
    assert [r.topic for r in sink.records] == [DLQ]


async def test_the_body_is_not_buffered_past_the_limit(serve: Serve) -> None:
    received: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(1000):
            received.append(1)
            yield b"x" * 1000

    async with serve(MemorySink(), max_body_bytes=10_000) as (client, _):
        response = await client.post("/api/v1/collect", content=endless())
    assert response.status_code == 413
    assert len(received) < 1000


async def test_api_keys_guard_the_collect_routes_only(serve: Serve) -> None:
    sink = MemorySink()
    async with serve(sink, api_keys=("k1", "k2")) as (client, _):
        missing = await client.post("/api/v1/collect", content=TAXI)
        wrong = await client.post(
            "/api/v1/collect", content=TAXI, headers={"authorization": "Bearer k3"}
        )
        basic = await client.post("/api/v1/collect", content=TAXI, headers={"authorization": "k1"})
        batch = await client.post("/api/v1/collect/batch", content=b"[" + TAXI + b"]")
        good = await client.post(
            "/api/v1/collect", content=TAXI, headers={"authorization": "Bearer k2"}
        )
        health = await client.get("/healthz")
    for response in (missing, wrong, basic, batch):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert good.status_code == 202
    assert health.status_code == 200
    assert len(sink.records) == 1


async def test_kafka_too_slow_is_503_with_retry_after(serve: Serve) -> None:
    sink = MemorySink(hold=True)
    async with serve(sink, ack_timeout_s=0.05, retry_after_s=3) as (client, _):
        single = await client.post("/api/v1/collect", content=TAXI)
        batch = await client.post("/api/v1/collect/batch", content=b"[" + TAXI + b"]")
        bad = await client.post("/api/v1/collect", content=b"nope")
    for response in (single, bad):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "3"
        assert response.json()["status"] == "retry"
        assert response.json()["error"]["code"] == "ack_timeout"
    assert batch.status_code == 503
    assert batch.headers["retry-after"] == "3"
    assert batch.json()["results"] == [
        {
            "index": 0,
            "status": "retry",
            "root_id": None,
            "error": {
                "code": "ack_timeout",
                "message": Problem.ACK_TIMEOUT.message,
                "details": [],
            },
        }
    ]


async def test_a_full_send_queue_is_503(serve: Serve) -> None:
    async with serve(MemorySink(failure=Problem.QUEUE_FULL)) as (client, _):
        response = await client.post("/api/v1/collect", content=TAXI)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "queue_full"
    assert "retry-after" in response.headers


async def test_a_record_kafka_refuses_as_too_large_is_413(serve: Serve) -> None:
    async with serve(MemorySink(failure=Problem.RECORD_TOO_LARGE)) as (client, _):
        response = await client.post("/api/v1/collect", content=TAXI)
        batch = await client.post("/api/v1/collect/batch", content=b"[" + TAXI + b"]")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "record_too_large"
    assert batch.status_code == 202  # nothing to send again: resending would fail the same way
    assert batch.json()["results"][0]["status"] == "rejected"


async def test_a_mixed_batch_settles_with_one_result_per_event(serve: Serve) -> None:
    sink = MemorySink()
    bad = {"event_type": "T", "schema_version": "1", "payload": []}
    body = orjson.dumps(
        [TAXI_EVENT, bad, {"event_type": "T", "schema_version": "1", "payload": {}}]
    )
    async with serve(sink) as (client, _):
        response = await client.post("/api/v1/collect/batch", content=body)
    assert response.status_code == 202
    answer = response.json()
    assert (answer["status"], answer["accepted"], answer["rejected"], answer["retry"]) == (
        "settled",
        2,
        1,
        0,
    )
    assert [(r["index"], r["status"]) for r in answer["results"]] == [
        (0, "accepted"),
        (1, "rejected"),
        (2, "accepted"),
    ]
    assert answer["results"][1]["error"]["code"] == "invalid_event"
    raw = [orjson.loads(r.value) for r in sink.on(RAW)]
    dlq = [orjson.loads(r.value) for r in sink.on(DLQ)]
    assert [e["root_id"] for e in raw] == [
        answer["results"][0]["root_id"],
        answer["results"][2]["root_id"],
    ]
    assert [(d["root_id"], d["batch_index"]) for d in dlq] == [(answer["results"][1]["root_id"], 1)]


async def test_a_partly_acknowledged_batch_is_503_naming_what_to_resend(serve: Serve) -> None:
    sink = PartialSink()
    async with serve(sink, ack_timeout_s=0.05) as (client, _):
        response = await client.post(
            "/api/v1/collect/batch", content=orjson.dumps([TAXI_EVENT] * 4)
        )
    assert response.status_code == 503
    assert "retry-after" in response.headers
    answer = response.json()
    assert (answer["status"], answer["accepted"], answer["retry"]) == ("retry", 2, 2)
    assert [r["status"] for r in answer["results"]] == ["accepted", "retry", "accepted", "retry"]
    stored = {orjson.loads(r.value)["root_id"] for r in sink.records}
    assert stored == {r["root_id"] for r in answer["results"] if r["status"] == "accepted"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [(b"[1,", 400, "invalid_json"), (b"{}", 422, "invalid_batch"), (b"[]", 422, "invalid_batch")],
)
async def test_a_batch_that_is_not_an_array_is_dead_lettered_whole(
    serve: Serve, body: bytes, status: int, code: str
) -> None:
    sink = MemorySink()
    async with serve(sink) as (client, _):
        response = await client.post("/api/v1/collect/batch", content=body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert orjson.loads(sink.on(DLQ)[0].value)["raw"] == body.decode()


async def test_a_batch_over_the_event_limit_is_413(serve: Serve) -> None:
    sink = MemorySink()
    async with serve(sink, max_batch_events=2) as (client, _):
        response = await client.post(
            "/api/v1/collect/batch", content=orjson.dumps([TAXI_EVENT] * 3)
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "batch_too_large"
    assert sink.records == []


class ExplodingSink(MemorySink):
    def publish(self, records: Sequence[Record], timeout_s: float) -> Delivery:
        raise RuntimeError("boom")

    @property
    def ready(self) -> bool:
        raise RuntimeError("boom")


async def test_an_unexpected_error_is_503_never_500(serve: Serve) -> None:
    async with serve(ExplodingSink()) as (client, _):
        single = await client.post("/api/v1/collect", content=TAXI)
        batch = await client.post("/api/v1/collect/batch", content=b"[" + TAXI + b"]")
        # A route FastAPI serves: the same catch-all answers.
        via_framework = await client.get("/readyz")
    for response in (single, batch):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "internal_error"
        assert "retry-after" in response.headers
    assert via_framework.status_code == 503


async def test_probes_follow_kafka_and_draining(serve: Serve) -> None:
    sink = MemorySink()
    async with serve(sink) as (client, app):
        assert (await client.get("/readyz")).status_code == 200
        sink.reachable = False
        not_ready = await client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json() == {
            "status": "not_ready",
            "kafka": False,
            "draining": False,
            "reason": "unreachable",
        }
        assert (await client.get("/healthz")).status_code == 200
        sink.reachable = True
        app.service.draining = True
        draining = await client.get("/readyz")
        assert draining.json() == {
            "status": "not_ready",
            "kafka": True,
            "draining": True,
            "reason": "draining",
        }
        refused = await client.post("/api/v1/collect", content=TAXI)
        assert (await client.get("/healthz")).status_code == 200
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "draining"
    assert sink.records == []
    assert sink.closed


async def test_readyz_and_the_ready_gauge_give_one_answer(serve: Serve) -> None:
    sink = MemorySink()
    seen = []
    async with serve(sink) as (client, app):
        for reachable, draining in ((True, False), (False, False), (True, True)):
            sink.reachable, app.service.draining = reachable, draining
            ready = (await client.get("/readyz")).status_code == 200
            gauge = "\ncollector_ready 1.0\n" in (await client.get("/metrics")).text
            seen.append((ready, gauge))
    assert seen == [(True, True), (False, False), (False, False)]


async def test_identity_docs_and_openapi(serve: Serve) -> None:
    async with serve(MemorySink()) as (client, _):
        identity = (await client.get("/api/v1")).json()
        docs = await client.get("/api/v1/docs")
        redoc = await client.get("/api/v1/redoc")
        spec = (await client.get("/api/v1/openapi.json")).json()
        wrong_method = await client.get("/api/v1/collect")
    assert identity == {
        "service": "event-collector",
        "collector_id": "collector-test",
        "version": "0.1.0",
    }
    assert docs.status_code == 200
    assert "/api/v1/openapi.json" in docs.text
    assert redoc.status_code == 200
    assert wrong_method.status_code == 405
    single = spec["paths"]["/api/v1/collect"]["post"]
    body = single["requestBody"]["content"]["application/json"]
    assert body["schema"]["required"] == ["event_type", "schema_version", "payload"]
    assert body["schema"]["additionalProperties"] is False
    assert body["examples"]["taxi"]["value"] == TAXI_EVENT
    assert {"202", "400", "401", "413", "422", "503"} <= set(single["responses"])
    assert "Retry-After" in single["responses"]["503"]["headers"]
    batch = spec["paths"]["/api/v1/collect/batch"]["post"]
    assert batch["requestBody"]["content"]["application/json"]["schema"]["type"] == "array"
    assert "Content-Type" in spec["info"]["description"]


async def test_the_collect_routes_are_served_once_and_only_described_by_fastapi(
    serve: Serve,
) -> None:
    sink = MemorySink()
    async with (
        serve(sink, max_body_bytes=len(TAXI) + 2) as (client, app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app.api), base_url="http://c") as api,
    ):
        good = await client.post("/api/v1/collect", content=TAXI)
        bad = await client.post("/api/v1/collect", content=b"{}")
        big = await client.post("/api/v1/collect", content=TAXI + b"   ")
        batch = await client.post("/api/v1/collect/batch", content=b"[" + TAXI + b"]")
        documented = (await api.get("/api/v1/openapi.json")).json()["paths"]
        not_served = await api.post("/api/v1/collect", content=TAXI)
    assert {"/api/v1/collect", "/api/v1/collect/batch"} <= set(documented)
    assert not_served.status_code == 404
    assert good.status_code == 202
    assert good.json()["root_id"] == orjson.loads(sink.records[0].value)["root_id"]
    assert bad.status_code == 422
    assert big.status_code == 413
    assert batch.status_code == 202
    assert batch.json()["results"][0]["status"] == "accepted"
    assert len(sink.records) == 3


async def test_metrics_count_requests_events_and_dead_letters(serve: Serve) -> None:
    async with serve(MemorySink()) as (client, _):
        await client.post("/api/v1/collect", content=TAXI)
        await client.post("/api/v1/collect", content=b"[")
        await client.post("/api/v1/collect/batch", content=orjson.dumps([TAXI_EVENT, {}]))
        await client.get("/healthz")
        await client.get("/no-such-page")
        text = (await client.get("/metrics")).text
    assert 'collector_http_requests_total{route="/api/v1/collect",status="202"} 1.0' in text
    assert 'collector_http_requests_total{route="/api/v1/collect",status="400"} 1.0' in text
    assert 'collector_http_requests_total{route="/api/v1/collect/batch",status="202"} 1.0' in text
    assert 'collector_http_requests_total{route="/healthz",status="200"} 1.0' in text
    assert 'collector_http_requests_total{route="other",status="404"} 1.0' in text
    assert "collector_events_accepted_total 2.0" in text
    assert 'collector_events_dead_lettered_total{code="invalid_json"} 1.0' in text
    assert 'collector_events_dead_lettered_total{code="invalid_event"} 1.0' in text
    assert "collector_kafka_ack_seconds_count 3.0" in text
    assert "collector_send_queue_depth 0.0" in text
    assert "collector_kafka_up 1.0" in text


bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=15), c, max_size=4),
        max_leaves=10,
    ).map(lambda v: json.dumps(v).encode()),  # stdlib: writes NaN, huge integers
    st.fixed_dictionaries(
        {"event_type": st.text(max_size=300), "schema_version": st.text(max_size=70)},
        optional={
            "payload": st.dictionaries(st.text(max_size=5), st.integers()),
            "event_id": st.text(max_size=130),
            "x": st.none(),
        },
    ).map(lambda v: json.dumps(v).encode()),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, batch=st.booleans())
async def test_arbitrary_bodies_never_get_a_500(body: bytes, batch: bool) -> None:
    sink = MemorySink()
    app = create_app(make_settings(max_body_bytes=250), sink)
    async with serving(app) as client:
        response = await client.post(
            "/api/v1/collect/batch" if batch else "/api/v1/collect", content=body
        )
    assert response.status_code in {202, 400, 413, 422}
    if response.status_code == 413:
        assert sink.records == []
    elif not batch:
        assert len(sink.records) == 1
        assert sink.records[0].topic == (RAW if response.status_code == 202 else DLQ)
        assert orjson.loads(sink.records[0].value)["root_id"] == response.json()["root_id"]


async def test_a_new_route_is_labelled_by_its_own_path(serve: Serve) -> None:
    async with serve(MemorySink()) as (client, app):

        async def extra() -> dict[str, str]:
            return {"ok": "yes"}

        app.api.add_api_route("/api/v1/extra/{item}", extra)
        assert (await client.get("/api/v1/extra/7")).status_code == 200
        assert (await client.get("/api/v1/extra/7/8")).status_code == 404
        text = (await client.get("/metrics")).text
    assert 'collector_http_requests_total{route="/api/v1/extra/{item}",status="200"} 1.0' in text
    assert 'collector_http_requests_total{route="other",status="404"} 1.0' in text
