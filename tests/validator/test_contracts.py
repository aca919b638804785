"""The contract files: each valid 2020-12, versions backward compatible, real rows accepted."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.schemas import TAXI_EVENT
from producer import rows, sample, source
from validator import contracts
from validator.cli import main
from validator.settings import DEFAULT_CONTRACTS_DIR

YELLOW = ("YellowTaxiTripRecords", "0-0-1")


@pytest.fixture(scope="module")
def registry() -> contracts.Registry:
    return contracts.Registry.load(DEFAULT_CONTRACTS_DIR)


def good_payload() -> dict[str, Any]:
    """The collector's documented taxi example: the contract must accept what the docs show."""
    return copy.deepcopy(TAXI_EVENT["payload"])


def test_the_shipped_contracts_pass_the_check() -> None:
    assert contracts.check(DEFAULT_CONTRACTS_DIR) == []
    assert main(["contracts", "check"]) == 0


def test_every_sample_row_as_the_producer_sends_it_is_valid(
    registry: contracts.Registry, tmp_path: Path
) -> None:
    contract = registry.get(*YELLOW)
    assert contract is not None
    (path,) = sample.write_samples(tmp_path, rows=3000, months=("2023-01",))
    checked = 0
    for part in source.iter_row_batches(path):
        for text in rows.payloads(part.batch).to_pylist():
            assert contract.problems(orjson.loads(text)) == [], text
            checked += 1
    assert checked == 3000


@pytest.mark.parametrize(
    "change",
    [
        {"fare_amount": -52.0, "total_amount": -55.5},  # refunds
        {"Airport_fee": 1.25},  # the 2022 spelling
        {"airport_fee": None, "passenger_count": None, "RatecodeID": None},  # flex fare
        {"store_and_fwd_flag": None, "congestion_surcharge": None, "payment_type": 0},
        {"tpep_pickup_datetime": "2023-01-01T00:32:10.123456Z"},  # zoned, with a fraction
        {"RatecodeID": 99.0},  # unknown rate code, as in the files
    ],
)
def test_what_real_files_hold_on_purpose_is_accepted(
    registry: contracts.Registry, change: dict[str, Any]
) -> None:
    contract = registry.get(*YELLOW)
    assert contract is not None
    assert contract.problems({**good_payload(), **change}) == []


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"fare_amount": "9.30"}, "/fare_amount"),
        ({"PULocationID": 0}, "/PULocationID"),
        ({"DOLocationID": 1.5}, "/DOLocationID"),
        ({"tpep_pickup_datetime": "yesterday"}, "/tpep_pickup_datetime"),
        ({"tpep_dropoff_datetime": None}, "/tpep_dropoff_datetime"),
        ({"store_and_fwd_flag": "maybe"}, "/store_and_fwd_flag"),
        ({"payment_type": 9}, "/payment_type"),
        ({"surprise": 1}, "/"),
    ],
)
def test_what_is_structurally_wrong_is_rejected_with_its_pointer(
    registry: contracts.Registry, change: dict[str, Any], pointer: str
) -> None:
    contract = registry.get(*YELLOW)
    assert contract is not None
    problems = contract.problems({**good_payload(), **change})
    assert problems
    assert any(p.startswith(pointer + ":") for p in problems), problems


def test_a_missing_required_field_is_named(registry: contracts.Registry) -> None:
    contract = registry.get(*YELLOW)
    assert contract is not None
    payload = good_payload()
    del payload["total_amount"]
    assert any("total_amount" in p for p in contract.problems(payload))


def _write(root: Path, version: str, schema: dict[str, Any]) -> None:
    folder = root / "Thing"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{version}.json").write_text(json.dumps(schema))


BASE: dict[str, Any] = {
    "$schema": contracts.DIALECT,
    "type": "object",
    "required": ["a"],
    "properties": {
        "a": {"type": "integer", "minimum": 0},
        "b": {"type": ["string", "null"], "enum": ["x", "y", None]},
    },
}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s["properties"].pop("b"), "/b: field removed"),
        (lambda s: s["required"].append("b"), "/b: newly required"),
        (lambda s: s["properties"]["a"].update(type="string"), "/a: type narrowed"),
        (lambda s: s["properties"]["a"].update(minimum=1), "/a: minimum narrowed"),
        (lambda s: s["properties"]["b"]["enum"].remove("y"), "/b: enum narrowed"),
        (lambda s: s.update(additionalProperties=False), "additional properties newly forbidden"),
    ],
)
def test_an_incompatible_new_version_is_reported(
    tmp_path: Path, mutate: Any, expected: str
) -> None:
    new = copy.deepcopy(BASE)
    mutate(new)
    _write(tmp_path, "1-0-0", BASE)
    _write(tmp_path, "1-0-1", new)
    problems = contracts.check(tmp_path)
    assert len(problems) == 1
    assert "Thing/1-0-1 is not backward compatible with 1-0-0" in problems[0]
    assert expected in problems[0]
    assert main(["contracts", "check", "--dir", str(tmp_path)]) == 1


def test_widening_is_compatible(tmp_path: Path) -> None:
    new = copy.deepcopy(BASE)
    new["properties"]["a"] = {"type": "number"}
    new["properties"]["c"] = {"type": "string"}
    new["properties"]["b"]["enum"].append("z")
    _write(tmp_path, "1-0-0", BASE)
    _write(tmp_path, "1-0-1", new)
    assert contracts.check(tmp_path) == []


def test_versions_are_ordered_numerically(tmp_path: Path) -> None:
    for version in ("1-0-10", "1-0-9", "1-0-2"):
        _write(tmp_path, version, BASE)
    assert [v for _, v, _ in contracts.contract_files(tmp_path)] == ["1-0-2", "1-0-9", "1-0-10"]


def test_an_invalid_schema_fails_the_meta_schema_check(tmp_path: Path) -> None:
    _write(tmp_path, "1-0-0", {"$schema": contracts.DIALECT, "type": "objekt"})
    problems = contracts.check(tmp_path)
    assert len(problems) == 1
    assert "not a valid schema" in problems[0]


def test_another_dialect_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "1-0-0", {"$schema": "http://json-schema.org/draft-07/schema#"})
    assert "must be" in contracts.check(tmp_path)[0]
