"""Sample files shaped like the TLC's yellow taxi files of 2023."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from producer.sample import write_month, write_samples

# yellow_tripdata_2023-01.parquet as published by the TLC.
REAL_COLUMNS = [
    ("VendorID", "int64"),
    ("tpep_pickup_datetime", "timestamp[us]"),
    ("tpep_dropoff_datetime", "timestamp[us]"),
    ("passenger_count", "double"),
    ("trip_distance", "double"),
    ("RatecodeID", "double"),
    ("store_and_fwd_flag", "string"),
    ("PULocationID", "int64"),
    ("DOLocationID", "int64"),
    ("payment_type", "int64"),
    ("fare_amount", "double"),
    ("extra", "double"),
    ("mta_tax", "double"),
    ("tip_amount", "double"),
    ("tolls_amount", "double"),
    ("improvement_surcharge", "double"),
    ("total_amount", "double"),
    ("congestion_surcharge", "double"),
    ("airport_fee", "double"),
]


def test_columns_and_types_match_the_real_files(tmp_path: Path) -> None:
    path = write_month(tmp_path, "2023-02", rows=500)
    schema = pq.read_schema(path)
    assert [(f.name, str(f.type)) for f in schema] == REAL_COLUMNS


def test_several_row_groups_and_trips_inside_their_month(tmp_path: Path) -> None:
    path = write_month(tmp_path, "2023-03", rows=1000, row_group_rows=300)
    parquet = pq.ParquetFile(path)
    assert parquet.metadata.num_row_groups == 4
    assert parquet.metadata.num_rows == 1000
    table = parquet.read()
    pickup = table.column("tpep_pickup_datetime")
    assert pc.min(pickup).as_py() >= dt.datetime(2023, 3, 1)
    assert pc.max(pickup).as_py() < dt.datetime(2023, 4, 1)
    later = pc.greater_equal(table.column("tpep_dropoff_datetime"), pickup)
    assert pc.all(later).as_py()


def test_nullable_columns_have_nulls_as_in_the_real_files(tmp_path: Path) -> None:
    table = pq.read_table(write_month(tmp_path, "2023-01", rows=4000))
    for name in ("passenger_count", "RatecodeID", "store_and_fwd_flag", "airport_fee"):
        nulls = table.column(name).null_count
        assert 20 < nulls < 300, (name, nulls)
    for name in ("VendorID", "tpep_pickup_datetime", "fare_amount", "total_amount"):
        assert table.column(name).null_count == 0
    unknown = pc.equal(table.column("payment_type"), 0)
    assert pc.all(pc.is_null(table.filter(unknown).column("passenger_count"))).as_py()


def test_same_seed_same_rows_other_seed_other_rows(tmp_path: Path) -> None:
    a = pq.read_table(write_samples(tmp_path / "a", rows=100, seed=1)[0])
    b = pq.read_table(write_samples(tmp_path / "b", rows=100, seed=1)[0])
    c = pq.read_table(write_samples(tmp_path / "c", rows=100, seed=2)[0])
    assert a.equals(b)
    assert not a.equals(c)
    assert a.schema.field("VendorID").type == pa.int64()
