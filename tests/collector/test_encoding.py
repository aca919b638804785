"""Compressed bodies: gzip and deflate decoded within the limit, corrupt ones dead-lettered."""

from __future__ import annotations

import base64
import gzip
import subprocess
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import encoding
from collector.app import create_app
from collector.schemas import GREEN_EVENT, TAXI_EVENT
from tests.collector.conftest import DLQ, RAW, make_settings, serving
from tests.collector.live import live_collector
from tests.collector.memory_sink import MemorySink

Serve = Callable[..., Any]
TAXI = orjson.dumps(TAXI_EVENT)
BATCH = orjson.dumps([TAXI_EVENT, GREEN_EVENT])


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def bomb(size: int) -> bytes:
    """`size` zero bytes, gzipped: about a thousandth of that on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * 1_048_576
    parts = [packer.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + packer.flush()


# The pure decoder.


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ([], []),
        ([(b"content-encoding", b"gzip")], ["gzip"]),
        ([(b"content-encoding", b"X-Gzip")], ["gzip"]),
        ([(b"content-encoding", b"identity")], []),
        ([(b"content-encoding", b"deflate, gzip")], ["deflate", "gzip"]),
        ([(b"content-encoding", b"gzip"), (b"content-encoding", b"deflate")], ["gzip", "deflate"]),
        ([(b"content-encoding", b"br")], encoding.Unsupported("br")),
        ([(b"content-encoding", b"gzip, zstd")], encoding.Unsupported("zstd")),
    ],
)
def test_codings_are_read_in_the_order_they_were_applied(
    header: list[tuple[bytes, bytes]], expected: object
) -> None:
    assert encoding.codings(value for _, value in header) == expected


@pytest.mark.parametrize(
    ("packed", "applied"),
    [
        (gzip.compress(TAXI), ["gzip"]),
        (gzip.compress(TAXI[:100]) + gzip.compress(TAXI[100:]), ["gzip"]),  # two members
        (zlib.compress(TAXI), ["deflate"]),
        (raw_deflate(TAXI), ["deflate"]),
        (gzip.compress(zlib.compress(TAXI)), ["deflate", "gzip"]),
    ],
)
def test_bodies_decode_to_what_was_compressed(packed: bytes, applied: list[str]) -> None:
    assert encoding.decode(packed, applied, len(TAXI)) == TAXI


def test_decoding_stops_just_past_the_limit() -> None:
    packed = gzip.compress(TAXI)
    assert encoding.decode(packed, ["gzip"], len(TAXI) - 1) is encoding.TOO_LARGE
    two = gzip.compress(TAXI) + gzip.compress(TAXI)  # each member fits, together they do not
    assert encoding.decode(two, ["gzip"], len(TAXI) + 1) is encoding.TOO_LARGE


@pytest.mark.parametrize(
    ("packed", "coding"),
    [
        (gzip.compress(TAXI)[:-12], "gzip"),  # truncated
        (gzip.compress(TAXI)[:-4] + b"\0\0\0\0", "gzip"),  # wrong length in the trailer
        (TAXI, "gzip"),  # not compressed at all
        (b"", "gzip"),
        (zlib.compress(TAXI)[:-8], "deflate"),
        (zlib.compress(TAXI) + b"junk", "deflate"),
    ],
)
def test_corrupt_streams_are_named(packed: bytes, coding: str) -> None:
    decoded = encoding.decode(packed, [coding], 1_000_000)
    assert isinstance(decoded, encoding.Corrupt)
    assert decoded.coding == coding
    assert decoded.reason


# Through the app.

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("coding", "pack"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", raw_deflate)],
)
async def test_compressed_bodies_are_accepted_on_both_routes(
    serve: Serve, coding: str, pack: Callable[[bytes], bytes]
) -> None:
    sink = MemorySink()
    headers = {"content-encoding": coding}
    async with serve(sink) as (client, _):
        single = await client.post("/api/v1/collect", content=pack(TAXI), headers=headers)
        batch = await client.post("/api/v1/collect/batch", content=pack(BATCH), headers=headers)
    assert single.status_code == 202
    assert batch.status_code == 202
    assert batch.json()["accepted"] == 2
    stored = [orjson.loads(record.value) for record in sink.on(RAW)]
    assert [event["payload"] for event in stored] == [
        TAXI_EVENT["payload"],
        TAXI_EVENT["payload"],
        GREEN_EVENT["payload"],
    ]


async def test_a_gzip_bomb_is_413_after_reading_no_more_than_the_limit(serve: Serve) -> None:
    packed = bomb(64 * 1_048_576)
    limit = 1_048_576
    assert len(packed) < limit // 10
    sink = MemorySink()
    async with serve(sink, max_body_bytes=limit) as (client, _):
        for route in ("/api/v1/collect", "/api/v1/collect/batch"):
            response = await client.post(
                route, content=packed, headers={"content-encoding": "gzip"}
            )
            assert response.status_code == 413
            assert response.json()["error"]["code"] == "body_too_large"
    assert sink.records == []


async def test_the_limit_holds_for_the_decompressed_body(serve: Serve) -> None:
    sink = MemorySink()
    packed = gzip.compress(TAXI)
    headers = {"content-encoding": "gzip"}
    async with serve(sink, max_body_bytes=len(TAXI) - 1) as (client, _):
        over = await client.post("/api/v1/collect", content=packed, headers=headers)
    async with serve(sink, max_body_bytes=len(TAXI)) as (client, _):
        exact = await client.post("/api/v1/collect", content=packed, headers=headers)
    assert over.status_code == 413
    assert exact.status_code == 202
    assert len(sink.records) == 1


@pytest.mark.parametrize("route", ["/api/v1/collect", "/api/v1/collect/batch"])
async def test_a_truncated_stream_is_400_and_dead_lettered_as_received(
    serve: Serve, route: str
) -> None:
    sink = MemorySink()
    truncated = gzip.compress(BATCH if route.endswith("batch") else TAXI)[:-20]
    async with serve(sink) as (client, _):
        response = await client.post(route, content=truncated, headers={"content-encoding": "gzip"})
    assert response.status_code == 400
    answer = response.json()
    assert answer["status"] == "rejected"
    assert answer["error"]["code"] == "invalid_encoding"
    assert "gzip" in answer["error"]["details"][0]["msg"]
    [record] = sink.records
    assert record.topic == DLQ
    stored = orjson.loads(record.value)
    assert stored["root_id"] == answer["root_id"]
    assert stored["error"]["code"] == "invalid_encoding"
    assert base64.b64decode(stored["raw_base64"]) == truncated
    assert "raw" not in stored


async def test_a_decoded_body_that_is_not_an_event_is_dead_lettered_decoded(
    serve: Serve,
) -> None:
    sink = MemorySink()
    async with serve(sink) as (client, _):
        response = await client.post(
            "/api/v1/collect", content=gzip.compress(b"{nope"), headers={"content-encoding": "gzip"}
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert orjson.loads(sink.records[0].value)["raw"] == "{nope"


async def test_an_unknown_encoding_is_415_and_the_body_is_not_read(serve: Serve) -> None:
    sent: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for _ in range(100):
            sent.append(1)
            yield b"x" * 10_000

    sink = MemorySink()
    async with serve(sink) as (client, _):
        for route in ("/api/v1/collect", "/api/v1/collect/batch"):
            response = await client.post(route, content=body(), headers={"content-encoding": "br"})
            assert response.status_code == 415
            assert response.json()["error"]["code"] == "unsupported_encoding"
    assert sink.records == []
    assert len(sent) < 200


async def test_metrics_count_compressed_requests_like_any_other(serve: Serve) -> None:
    async with serve(MemorySink()) as (client, _):
        await client.post(
            "/api/v1/collect", content=gzip.compress(TAXI), headers={"content-encoding": "gzip"}
        )
        await client.post("/api/v1/collect", content=TAXI, headers={"content-encoding": "br"})
        metrics = (await client.get("/metrics")).text
    assert 'collector_http_requests_total{route="/api/v1/collect",status="202"} 1.0' in metrics
    assert 'collector_http_requests_total{route="/api/v1/collect",status="415"} 1.0' in metrics


# A real HTTP client: curl, over a socket, to uvicorn.


@pytest.mark.parametrize("route", ["/api/v1/collect", "/api/v1/collect/batch"])
def test_curl_data_binary_with_a_gzip_file(tmp_path: Path, route: str) -> None:
    body = BATCH if route.endswith("batch") else TAXI
    packed = tmp_path / "body.json.gz"
    packed.write_bytes(gzip.compress(body))
    with live_collector() as (url, sink):
        done = subprocess.run(
            [
                "curl",
                "--silent",
                "--show-error",
                "--max-time",
                "30",
                "--header",
                "Content-Type: application/json",
                "--header",
                "Content-Encoding: gzip",
                "--data-binary",
                f"@{packed}",
                "--write-out",
                "\n%{http_code}",
                url + route,
            ],
            capture_output=True,
            check=True,
            timeout=60,
        )
        answer, status = done.stdout.decode().rsplit("\n", 1)
        assert status == "202", answer
        assert len(sink.on(RAW)) == (2 if route.endswith("batch") else 1)


def test_a_bomb_costs_the_limit_in_memory_not_what_it_expands_to() -> None:
    packed = bomb(256 * 1_048_576)
    tracemalloc.start()
    try:
        decoded = encoding.decode(packed, ["gzip"], 1_048_576)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoded is encoding.TOO_LARGE
    assert peak < 4 * 1_048_576


_PACKERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "raw-deflate": raw_deflate,
    "none": lambda body: body,
}


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=400),
    packing=st.sampled_from(sorted(_PACKERS)),
    cut=st.integers(min_value=0, max_value=40),
    coding=st.sampled_from(["gzip", "deflate", "gzip, deflate", "x-gzip"]),
    batch=st.booleans(),
)
async def test_arbitrary_compressed_bodies_never_get_a_5xx(
    body: bytes, packing: str, cut: int, coding: str, batch: bool
) -> None:
    packed = _PACKERS[packing](body)
    packed = packed[: len(packed) - cut] if cut < len(packed) else packed
    sink = MemorySink()
    app = create_app(make_settings(max_body_bytes=300), sink)
    async with serving(app) as client:
        response = await client.post(
            "/api/v1/collect/batch" if batch else "/api/v1/collect",
            content=packed,
            headers={"content-encoding": coding},
        )
    assert response.status_code in {202, 400, 413, 422}
    if response.status_code == 413:
        assert sink.records == []
    elif response.status_code == 400 and response.json()["error"]["code"] == "invalid_encoding":
        [record] = sink.records
        assert base64.b64decode(orjson.loads(record.value)["raw_base64"]) == packed
