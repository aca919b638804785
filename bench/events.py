"""The request bodies every app is measured with: one TLC yellow-taxi event, and a batch of 100."""

from __future__ import annotations

from typing import Any

import orjson

_TRIP: dict[str, Any] = {
    "VendorID": 2,
    "tpep_pickup_datetime": "2023-01-01T00:32:10",
    "tpep_dropoff_datetime": "2023-01-01T00:40:36",
    "passenger_count": 1.0,
    "trip_distance": 0.97,
    "RatecodeID": 1.0,
    "store_and_fwd_flag": "N",
    "PULocationID": 161,
    "DOLocationID": 141,
    "payment_type": 2,
    "fare_amount": 9.3,
    "extra": 1.0,
    "mta_tax": 0.5,
    "tip_amount": 0.0,
    "tolls_amount": 0.0,
    "improvement_surcharge": 1.0,
    "total_amount": 14.3,
    "congestion_surcharge": 2.5,
    "airport_fee": 0.0,
}
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
