"""The request bodies every app is measured with: one TLC yellow-taxi event, and a batch of 100."""

from __future__ import annotations

import gzip
from typing import Any

import orjson

from collector.schemas import TAXI_EVENT

# The OpenAPI document's example trip: what Swagger UI sends is what is measured.
_TRIP: dict[str, Any] = TAXI_EVENT["payload"]
FILE_NAME = "yellow_tripdata_2023-01.parquet"
BATCH_SIZE = 100


def event(row: int = 41) -> dict[str, Any]:
    """One event as the producer sends it."""
    return {
        "event_type": "YellowTaxiTripRecords",
        "schema_version": "0-0-1",
        "payload": _TRIP,
        "event_id": f"{FILE_NAME}:{row}",
    }


def single_body() -> bytes:
    return orjson.dumps(event())


def batch_body(size: int = BATCH_SIZE) -> bytes:
    return orjson.dumps([event(row) for row in range(size)])


def gzipped(body: bytes) -> bytes:
    """`body` as an SDK sends it with `Content-Encoding: gzip` (zlib's default level 6)."""
    return gzip.compress(body, compresslevel=6)
