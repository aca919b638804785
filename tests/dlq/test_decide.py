"""Parked records read, filtered, judged again and transformed: the pure core of `python -m dlq`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.envelope import Enveloper
from dlq.decide import NEEDS_TRANSFORM, TRANSFORM_DROPPED, TRANSFORM_FAILED, Judges, Out, Stay
from dlq.inspect import summarise, summary_table
from dlq.records import REDRIVEN_FROM, UNREADABLE, Filters, Parked, parse, parse_time
from dlq.transform import TransformError, load
from validator.contracts import Registry

ROOT = Path(__file__).resolve().parents[2]
NAN_TO_NULL = ROOT / "dlq" / "examples" / "nan_to_null.py"


def write_contract(root: Path, maximum: int) -> Path:
    """`Trip/1-0-0`: one integer `x` up to `maximum` (narrow, then fixed, in the tests)."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "properties": {"x": {"type": "integer", "maximum": maximum}}}  # fmt: skip
    (root / "Trip").mkdir(parents=True, exist_ok=True)
    (root / "Trip" / "1-0-0.json").write_bytes(orjson.dumps(schema))
    return root


def validator_parked(x: int, offset: int = 5, ts: int = 1_700_000_000_000) -> Parked:
    envelope = {"event_type": "Trip", "schema_version": "1-0-0", "payload": {"x": x},
                "event_id": f"f.parquet:{x}", "collector_timestamp": "2026-01-01T00:00:00.000000Z",
                "root_id": "r", "collector_id": "c"}  # fmt: skip
    record = {"error": {"code": "invalid_payload", "message": "the payload breaks Trip/1-0-0",
                        "details": ["/x: too big"]},
              "source": {"topic": "raw", "partition": 0, "offset": 3, "timestamp_ms": ts},
              "validator_id": "v-1", "validated_timestamp": "2026-01-01T00:00:01.000000Z",
              "event_id": f"f.parquet:{x}", "raw": orjson.dumps(envelope).decode()}  # fmt: skip
    return parse("vdlq", 1, offset, ts, orjson.dumps(record), [("event_type", b"Trip")])


def collector_parked(body: str, code: str = "invalid_json") -> Parked:
    record = {
        "root_id": "r",
        "collector_id": "c-1",
        "collector_timestamp": "2026-01-01T00:00:00.000000Z",
        "error": {"code": code, "message": "not JSON", "details": []},
        "raw": body,
    }
    return parse("rdlq", 0, 9, 1_700_000_000_000, orjson.dumps(record), None)


def judges(contracts: Path, transform: Any = None) -> Judges:
    return Judges(Registry.load(contracts), Enveloper("dlq-redrive"), "dlq-redrive",
                  "2026-01-02T00:00:00.000000Z", transform)  # fmt: skip


NAN_BODY = json.dumps({"event_type": "Trip", "schema_version": "1-0-0",
                       "payload": {"x": 1, "passenger_count": float("nan")},
                       "event_id": "f.parquet:7"})  # fmt: skip


def test_both_stages_records_are_read_into_one_shape() -> None:
    v = validator_parked(12)
    assert (v.stage, v.reason, v.stage_id, v.event_type, v.schema_version, v.event_id) == (
        "validator",
        "invalid_payload",
        "v-1",
        "Trip",
        "1-0-0",
        "f.parquet:12",
    )
    assert v.origin == "vdlq/1/5"
    c = collector_parked(NAN_BODY)
    # A bare NaN is not JSON, yet the type and id are read for the table (Python's reader).
    assert (c.stage, c.reason, c.stage_id, c.event_type, c.event_id) == (
        "collector",
        "invalid_json",
        "c-1",
        "Trip",
        "f.parquet:7",
    )
    assert c.body == NAN_BODY.encode()
    junk = parse("t", 0, 0, 0, b"\xff not a record", None)
    assert junk.reason == UNREADABLE
    assert junk.as_json()["raw_base64"]


def test_filters_select_by_reason_type_version_id_and_time() -> None:
    v = validator_parked(12, ts=parse_time("2026-01-01T10:00:00Z"))
    assert Filters().match(v)
    assert Filters(reasons=frozenset({"invalid_payload"}), event_types=frozenset({"Trip"}),
                   schema_versions=frozenset({"1-0-0"}),
                   event_ids=frozenset({"f.parquet:12"})).match(v)  # fmt: skip
    assert not Filters(reasons=frozenset({"unknown_contract"})).match(v)
    assert Filters(since_ms=parse_time("2026-01-01T10:00:00")).match(v)  # naive means UTC
    assert not Filters(until_ms=parse_time("2026-01-01T10:00:00Z")).match(v)
    assert not Filters(event_ids=frozenset({"f.parquet:13"})).match(v)


def test_the_summary_groups_and_counts(tmp_path: Path) -> None:
    records = [validator_parked(x, offset=x, ts=1_700_000_000_000 + x) for x in (11, 12, 13)]
    records.append(collector_parked(NAN_BODY))
    groups = summarise(records)
    assert [(g.reason, g.count) for g in groups] == [("invalid_payload", 3), ("invalid_json", 1)]
    assert (groups[0].first_ms, groups[0].last_ms) == (1_700_000_000_011, 1_700_000_000_013)
    text = summary_table(groups)
    assert "4 parked records in 2 groups" in text
    assert "vdlq/1/11" in text


def test_a_record_that_passes_the_fixed_contract_is_redriven_with_its_origin(
    tmp_path: Path,
) -> None:
    parked = validator_parked(12)
    narrow = judges(write_contract(tmp_path / "narrow", 9)).decide(parked)
    assert narrow == Stay(parked, "invalid_payload")
    fixed = judges(write_contract(tmp_path / "fixed", 100)).decide(parked)
    assert isinstance(fixed, Out)
    assert fixed.key == b"f.parquet:12"
    assert (REDRIVEN_FROM, b"vdlq/1/5") in fixed.headers
    assert ("event_type", b"Trip") in fixed.headers  # the raw record's own headers are kept
    value = orjson.loads(fixed.value)
    assert (value["contract"], value["validator_id"]) == ("Trip/1-0-0", "dlq-redrive")
    assert value["payload"] == {"x": 12}


def test_collector_dead_letters_need_a_transformation(tmp_path: Path) -> None:
    contracts = write_contract(tmp_path, 100)
    parked = collector_parked(NAN_BODY)
    assert judges(contracts).decide(parked) == Stay(parked, NEEDS_TRANSFORM)
    out = judges(contracts, load(NAN_TO_NULL)).decide(parked)
    assert isinstance(out, Out)
    envelope = orjson.loads(out.value)  # strict JSON now: the collector's own envelope
    assert envelope["payload"] == {"x": 1, "passenger_count": None}
    assert (envelope["collector_id"], out.key) == ("dlq-redrive", b"f.parquet:7")
    assert (REDRIVEN_FROM, b"rdlq/0/9") in out.headers
    # Still not an event after the transformation: the collector's own reason, still parked.
    wrong = collector_parked('{"event_type": "Trip", "surprise": NaN}', "invalid_json")
    assert judges(contracts, load(NAN_TO_NULL)).decide(wrong) == Stay(wrong, "invalid_event")


def test_transformations_that_fail_or_drop_leave_the_record_parked(tmp_path: Path) -> None:
    contracts = write_contract(tmp_path, 100)
    parked = collector_parked("{broken")

    def boom(body: bytes) -> bytes:
        raise ValueError(body)

    assert judges(contracts, boom).decide(parked) == Stay(parked, TRANSFORM_FAILED)
    assert judges(contracts, lambda body: None).decide(parked) == Stay(parked, TRANSFORM_DROPPED)


def test_a_json_patch_fixes_a_wrong_envelope(tmp_path: Path) -> None:
    patch = tmp_path / "fix.json"
    patch.write_text('[{"op": "move", "from": "/type", "path": "/event_type"}]')
    body = '{"type": "Trip", "schema_version": "1-0-0", "payload": {"x": 1}, "event_id": "e"}'
    parked = collector_parked(body, "invalid_event")
    out = judges(write_contract(tmp_path / "c", 100), load(patch)).decide(parked)
    assert isinstance(out, Out)
    assert orjson.loads(out.value)["event_type"] == "Trip"


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        ("p.json", '[{"op": "nope"}]', "not a JSON Patch"),
        ("p.json", "{", "not a JSON Patch"),
        ("p.py", "x = 1\n", "defines no transform"),
        ("p.txt", "", "is a .json"),
    ],
)
def test_an_unusable_transformation_is_one_clear_error(
    tmp_path: Path, name: str, text: str, error: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TransformError, match=error):
        load(path)


def test_a_run_skips_what_is_already_redriven_or_already_there(tmp_path: Path) -> None:
    from dlq.redrive import Redriver, Route
    from dlq.settings import Settings

    redriver = Redriver(Settings(), Route("validator", "vdlq", "validated"),
                        judges(write_contract(tmp_path, 100)), dry_run=True)  # fmt: skip
    parked = [validator_parked(x, offset=x) for x in (11, 12, 13, 13)]
    origins, keys = {"vdlq/1/11"}, {b"f.parquet:12"}
    out = list(redriver._decisions(parked, origins, keys))
    assert [o.parked.origin for o in out] == ["vdlq/1/13"]  # its second copy is already there
    summary = redriver.summary.as_json()
    assert (summary["selected"], summary["redriven"]) == (4, 1)
    assert (summary["already_redriven"], summary["already_present"]) == (1, 2)
