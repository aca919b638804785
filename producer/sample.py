"""Small parquet files shaped like the TLC yellow taxi trip records of January to March 2023."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# Column names and Arrow types exactly as in yellow_tripdata_2023-01.parquet (the TLC's own file).
YELLOW_SCHEMA = pa.schema(
    [
        ("VendorID", pa.int64()),
        ("tpep_pickup_datetime", pa.timestamp("us")),
        ("tpep_dropoff_datetime", pa.timestamp("us")),
        ("passenger_count", pa.float64()),
        ("trip_distance", pa.float64()),
        ("RatecodeID", pa.float64()),
        ("store_and_fwd_flag", pa.string()),
        ("PULocationID", pa.int64()),
        ("DOLocationID", pa.int64()),
        ("payment_type", pa.int64()),
        ("fare_amount", pa.float64()),
        ("extra", pa.float64()),
        ("mta_tax", pa.float64()),
        ("tip_amount", pa.float64()),
        ("tolls_amount", pa.float64()),
        ("improvement_surcharge", pa.float64()),
        ("total_amount", pa.float64()),
        ("congestion_surcharge", pa.float64()),
        ("airport_fee", pa.float64()),
    ]
)
MONTHS = ("2023-01", "2023-02", "2023-03")
# In the real files about 2-3% of trips (payment_type 0, "flex fare") lack these five fields.
_NULLABLE_ON_UNKNOWN = (
    "passenger_count",
    "RatecodeID",
    "store_and_fwd_flag",
    "congestion_surcharge",
    "airport_fee",
)
_UNKNOWN_SHARE = 0.025


def file_name(month: str) -> str:
    return f"yellow_tripdata_{month}.parquet"


def _trip(rng: random.Random, month_start: dt.datetime, month_s: int) -> dict[str, object]:
    pickup = month_start + dt.timedelta(seconds=rng.randrange(month_s))
    minutes = rng.expovariate(1 / 14)
    dropoff = pickup + dt.timedelta(seconds=round(minutes * 60))
    distance = round(rng.expovariate(1 / 3.2), 2)
    unknown = rng.random() < _UNKNOWN_SHARE
    airport = rng.random() < 0.08
    fare = round(3.0 + 2.5 * distance + 0.7 * minutes, 2)
    extra = rng.choice((0.0, 0.5, 1.0, 2.5, 5.0))
    tip = round(fare * rng.choice((0.0, 0.0, 0.15, 0.2, 0.25)), 2)
    tolls = 6.55 if rng.random() < 0.05 else 0.0
    congestion = 0.0 if airport else 2.5
    airport_fee = 1.25 if airport else 0.0
    total = round(fare + extra + 0.5 + tip + tolls + 1.0 + congestion + airport_fee, 2)
    trip: dict[str, object] = {
        "VendorID": rng.choice((1, 2, 2, 2)),
        "tpep_pickup_datetime": pickup,
        "tpep_dropoff_datetime": dropoff,
        "passenger_count": float(rng.choice((1, 1, 1, 1, 2, 2, 3, 4, 5, 6, 0))),
        "trip_distance": distance,
        "RatecodeID": 2.0 if airport and rng.random() < 0.5 else 1.0,
        "store_and_fwd_flag": "Y" if rng.random() < 0.006 else "N",
        "PULocationID": rng.randint(1, 265),
        "DOLocationID": rng.randint(1, 265),
        "payment_type": 0 if unknown else rng.choice((1, 1, 1, 2, 2, 3, 4)),
        "fare_amount": fare,
        "extra": extra,
        "mta_tax": 0.5,
        "tip_amount": tip,
        "tolls_amount": tolls,
        "improvement_surcharge": 1.0,
        "total_amount": total,
        "congestion_surcharge": congestion,
        "airport_fee": airport_fee,
    }
    if unknown:
        trip.update(dict.fromkeys(_NULLABLE_ON_UNKNOWN))
    return trip


def _row_groups(month: str, rows: int, row_group_rows: int, seed: int) -> Iterator[pa.Table]:
    year, mon = (int(part) for part in month.split("-"))
    start = dt.datetime(year, mon, 1)
    end = dt.datetime(year + mon // 12, mon % 12 + 1, 1)
    month_s = int((end - start).total_seconds())
    rng = random.Random(f"{seed}:{month}")
    for first in range(0, rows, row_group_rows):
        trips = [_trip(rng, start, month_s) for _ in range(min(row_group_rows, rows - first))]
        yield pa.Table.from_pylist(trips, schema=YELLOW_SCHEMA)


def write_month(
    out_dir: Path, month: str, *, rows: int, seed: int = 2023, row_group_rows: int = 0
) -> Path:
    """Write one month's sample file (several row groups), one row group in memory at a time."""
    row_group_rows = row_group_rows or max(1, -(-rows // 4))
    path = Path(out_dir) / file_name(month)
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, YELLOW_SCHEMA) as writer:
        for table in _row_groups(month, rows, row_group_rows, seed):
            writer.write_table(table, row_group_size=row_group_rows)
    return path


def write_samples(
    out_dir: Path,
    *,
    rows: int = 1000,
    seed: int = 2023,
    months: tuple[str, ...] = MONTHS,
    row_group_rows: int = 0,
) -> list[Path]:
    """One deterministic sample file per month; the same seed always gives the same files."""
    return [
        write_month(out_dir, m, rows=rows, seed=seed, row_group_rows=row_group_rows) for m in months
    ]
