"""Rows to JSON events: every Arrow type a parquet file can hold, written JSON-safe."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer import rows


def payload_of(table: pa.Table) -> list[dict[str, object]]:
    batch = table.combine_chunks().to_batches()[0]
    texts = rows.payloads(batch).to_pylist()
    for text in texts:
        # Strict RFC 8259 (no NaN/Infinity): the stdlib parser with constants refused.
        json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    return [orjson.loads(t) for t in texts]


def column(values: list[object], type_: pa.DataType) -> list[object]:
    return [row["c"] for row in payload_of(pa.table({"c": pa.array(values, type_)}))]


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("s", "2023-01-14T10:09:48"),
        ("ms", "2023-01-14T10:09:48.123"),
        ("us", "2023-01-14T10:09:48.123456"),
        ("ns", "2023-01-14T10:09:48.123456000"),
    ],
)
def test_timestamps_of_every_unit_are_iso_8601_with_t(unit: str, expected: str) -> None:
    when = dt.datetime(2023, 1, 14, 10, 9, 48, 123456)
    assert column([when, None], pa.timestamp(unit)) == [expected, None]


def test_nanoseconds_are_kept() -> None:
    values = pa.array([1_673_690_988_123_456_789], pa.timestamp("ns"))
    assert column(values.to_pylist(), pa.timestamp("ns"))[0] == "2023-01-14T10:09:48.123456789"


def test_zoned_timestamps_are_written_in_utc_with_z() -> None:
    when = dt.datetime(2023, 1, 14, 10, 9, 48, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert column([when], pa.timestamp("us", tz="America/New_York")) == [
        "2023-01-14T15:09:48.000000Z"
    ]


def test_nan_and_infinities_become_null_and_floats_stay_floats() -> None:
    values = [1.5, float("nan"), float("inf"), float("-inf"), None, 3.0, -0.0, 1e300, 0.1]
    out = column(values, pa.float64())
    assert out == [1.5, None, None, None, None, 3.0, -0.0, 1e300, 0.1]
    assert all(isinstance(v, float) for v in out if v is not None)
    assert column([float("nan"), 2.5], pa.float32()) == [None, 2.5]
    assert column([1.5, None], pa.float16()) == [1.5, None]


def test_integers_booleans_and_nulls() -> None:
    assert column([2**63 - 1, -(2**63), None], pa.int64()) == [2**63 - 1, -(2**63), None]
    assert column([2**64 - 1], pa.uint64()) == [2**64 - 1]
    assert column([True, False, None], pa.bool_()) == [True, False, None]
    assert column([None, None], pa.null()) == [None, None]


def test_strings_are_escaped_and_unicode_kept() -> None:
    values = ['say "hi"', "back\\slash", "tab\tnew\nline\x00", "Zürich 東京 🚕", "", None]
    assert column(values, pa.string()) == values
    assert column(values, pa.large_string()) == values


def test_decimals_are_exact_strings() -> None:
    values = [decimal.Decimal("12.50"), decimal.Decimal("-0.01"), None]
    assert column(values, pa.decimal128(10, 2)) == ["12.50", "-0.01", None]
    big = decimal.Decimal("12345678901234567890.123456789012345678")
    assert column([big], pa.decimal128(38, 18)) == [str(big)]


def test_binary_is_base64() -> None:
    assert column([b"\x00\xffraw", b"", None], pa.binary()) == ["AP9yYXc=", "", None]
    assert column([b"ab"], pa.binary(2)) == ["YWI="]
    assert column([b"xyz"], pa.large_binary()) == ["eHl6"]


def test_dates_times_and_durations() -> None:
    assert column([dt.date(2023, 3, 1), None], pa.date32()) == ["2023-03-01", None]
    assert column([dt.date(2023, 3, 1)], pa.date64()) == ["2023-03-01"]
    assert column([dt.time(1, 2, 3)], pa.time32("s")) == ["01:02:03"]
    assert column([1500, -250, 0, None], pa.duration("ms")) == ["PT1.5S", "PT-0.25S", "PT0S", None]
    assert column([1], pa.duration("ns")) == ["PT0.000000001S"]
    assert column([86_400], pa.duration("s")) == ["PT86400S"]


def test_nested_lists_structs_and_maps() -> None:
    struct_type = pa.struct([("x", pa.int64()), ("when", pa.timestamp("s")), ("f", pa.float64())])
    structs = [
        {"x": 1, "when": dt.datetime(2023, 1, 1), "f": float("nan")},
        None,
        {"x": None, "when": None, "f": 2.0},
    ]
    assert column(structs, struct_type) == [
        {"x": 1, "when": "2023-01-01T00:00:00", "f": None},
        None,
        {"x": None, "when": None, "f": 2.0},
    ]
    nested = pa.list_(pa.list_(pa.float64()))
    assert column([[[1.0, float("inf")], []], None, [], [None]], nested) == [
        [[1.0, None], []],
        None,
        [],
        [None],
    ]
    assert column([["a", None]], pa.large_list(pa.string())) == [["a", None]]
    assert column([[1, 2], None, [3, 4]], pa.list_(pa.int64(), 2)) == [[1, 2], None, [3, 4]]
    string_keys = pa.map_(pa.string(), pa.int64())
    assert column([[("a", 1), ("b", None)], None], string_keys) == [{"a": 1, "b": None}, None]
    int_keys = pa.map_(pa.int32(), pa.string())
    assert column([[(1, "one")], []], int_keys) == [[[1, "one"]], []]
    list_of_structs = pa.list_(pa.struct([("b", pa.binary())]))
    assert column([[{"b": b"\x01"}, None]], list_of_structs) == [[{"b": "AQ=="}, None]]


def test_sliced_arrays_keep_their_own_rows() -> None:
    table = pa.table({"l": pa.array([[1], [2, 3], [4]]), "s": pa.array([{"a": 1}, None, {"a": 3}])})
    batch = table.to_batches()[0].slice(1, 2)
    assert [orjson.loads(t) for t in rows.payloads(batch).to_pylist()] == [
        {"l": [2, 3], "s": None},
        {"l": [4], "s": {"a": 3}},
    ]


def test_dictionary_encoded_columns_are_decoded() -> None:
    values = pa.array(["N", "Y", None, "N"]).dictionary_encode()
    assert payload_of(pa.table({"c": values})) == [{"c": "N"}, {"c": "Y"}, {"c": None}, {"c": "N"}]


def test_column_names_are_kept_as_is_and_in_order() -> None:
    table = pa.table({'we"ird\\name': [1], "Zürich": [2], "": [3]})
    out = rows.payloads(table.to_batches()[0]).to_pylist()[0]
    assert list(orjson.loads(out)) == ['we"ird\\name', "Zürich", ""]


def test_duplicate_column_names_are_refused_rather_than_dropped() -> None:
    batch = pa.RecordBatch.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    with pytest.raises(rows.SchemaError, match="duplicate"):
        rows.payloads(batch)


def test_event_bodies_wrap_each_row_with_its_event_id() -> None:
    batch = pa.table({"VendorID": [2, 1], "x": [None, 1.5]}).to_batches()[0]
    bodies = rows.event_bodies(
        batch,
        file_name="yellow_tripdata_2023-01.parquet",
        first_row=41,
        event_type="YellowTaxiTripRecords",
        schema_version="0-0-1",
    )
    assert [orjson.loads(b) for b in bodies] == [
        {
            "event_type": "YellowTaxiTripRecords",
            "schema_version": "0-0-1",
            "payload": {"VendorID": 2, "x": None},
            "event_id": "yellow_tripdata_2023-01.parquet:41",
        },
        {
            "event_type": "YellowTaxiTripRecords",
            "schema_version": "0-0-1",
            "payload": {"VendorID": 1, "x": 1.5},
            "event_id": "yellow_tripdata_2023-01.parquet:42",
        },
    ]


def test_odd_file_names_still_give_valid_json() -> None:
    batch = pa.table({"a": [1]}).to_batches()[0]
    body = rows.event_bodies(
        batch, file_name='we"ird\\.parquet', first_row=0, event_type="t", schema_version="v"
    )[0]
    assert orjson.loads(body)["event_id"] == 'we"ird\\.parquet:0'


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
            st.one_of(st.none(), st.text()),
            st.one_of(st.none(), st.booleans()),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_any_ints_floats_strings_round_trip(values: list[tuple[object, ...]]) -> None:
    names = ["i", "f", "s", "b"]
    types = [pa.int64(), pa.float64(), pa.string(), pa.bool_()]
    columns = zip(names, types, strict=True)
    table = pa.table({n: pa.array([v[k] for v in values], t) for k, (n, t) in enumerate(columns)})
    expected = [
        {
            n: (None if isinstance(x, float) and not math.isfinite(x) else x)
            for n, x in zip(names, v, strict=True)
        }
        for v in values
    ]
    assert payload_of(table) == expected
