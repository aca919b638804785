"""Reconciling: topic records against file rows (pure core, then the CLI on a real broker)."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer

from devstack.kafka import Broker
from devstack.proc import ROOT
from producer import rows
from producer.reconcile import Reconciler
from tests.conftest import Topics

FILE = "f.parquet"


def envelope(event_id: str, payload: dict[str, Any] | None = None, **extra: Any) -> bytes:
    body = {
        "event_type": "YellowTaxiTripRecords", "schema_version": "0-0-1",
        "payload": payload if payload is not None else {"row": event_id},
        "event_id": event_id, "collector_timestamp": "2026-01-01T00:00:00.000000Z",
        "root_id": "r", "collector_id": "c", **extra,
    }  # fmt: skip
    return orjson.dumps(body)


def raw(reconciler: Reconciler, event_id: str, **kwargs: Any) -> None:
    reconciler.add_raw(event_id.encode(), envelope(event_id, **kwargs))


def test_a_complete_replay_reconciles() -> None:
    r = Reconciler({FILE: 3, "g.parquet": 1})
    for i in range(3):
        raw(r, f"{FILE}:{i}")
    raw(r, "g.parquet:0")
    assert r.report() == {
        "expected": 4, "raw": 4, "dead_letter": 0, "missing": 0, "duplicates": 0,
        "unexpected": 0, "other_files": 0, "redriven": 0,
    }  # fmt: skip
    assert r.ok


def test_missing_and_duplicated_rows_are_counted() -> None:
    r = Reconciler({FILE: 4})
    for i in (0, 1, 1, 1, 3):
        raw(r, f"{FILE}:{i}")
    report = r.report()
    assert (report["missing"], report["duplicates"], report["raw"]) == (1, 1, 5)
    assert not r.ok


def test_records_are_counted_per_collector_on_request() -> None:
    r = Reconciler({FILE: 3, "g.parquet": 1})
    raw(r, f"{FILE}:0", collector_id="collector-a")
    raw(r, f"{FILE}:1", collector_id="collector-b")
    raw(r, f"{FILE}:1", collector_id="collector-a")
    raw(r, "other.parquet:0", collector_id="collector-c")  # not ours: not counted
    assert "by_collector" not in r.report()
    assert r.report(by_collector=True)["by_collector"] == {"collector-a": 2, "collector-b": 1}


def test_rows_that_do_not_exist_and_malformed_records_are_unexpected() -> None:
    r = Reconciler({FILE: 2})
    raw(r, f"{FILE}:0")
    raw(r, f"{FILE}:1")
    raw(r, f"{FILE}:2")  # past the end of the file
    raw(r, f"{FILE}:x")  # not a row number
    r.add_raw(f"{FILE}:1".encode(), b"{not json")  # ours by key, unreadable
    r.add_raw(b"someone-else", envelope(f"{FILE}:0"))  # key is not the event id
    r.add_raw(f"{FILE}:0".encode(), orjson.dumps({"event_id": f"{FILE}:0"}))  # no payload
    assert r.report()["unexpected"] == 5
    assert r.report()["missing"] == 0
    assert not r.ok


def test_other_files_are_ignored_but_counted() -> None:
    r = Reconciler({FILE: 1})
    raw(r, f"{FILE}:0")
    raw(r, "other.parquet:0")
    r.add_raw(b"uuid-key", orjson.dumps({"payload": {}, "event_type": "x"}))  # no event id
    r.add_raw(None, b"garbage")
    assert (r.report()["other_files"], r.report()["unexpected"]) == (3, 0)
    assert r.ok


def test_dead_letter_records_of_our_rows_count_as_delivered() -> None:
    r = Reconciler({FILE: 3})
    raw(r, f"{FILE}:0")
    single = {"raw": orjson.dumps({"event_id": f"{FILE}:1", "extra": 1}).decode()}
    batch = [{"event_id": f"{FILE}:9"}, {"event_id": f"{FILE}:2", "payload": 1}]
    in_batch = {"raw": orjson.dumps(batch).decode(), "batch_index": 1}
    not_utf8 = {"raw_base64": base64.b64encode(b"\xff\xfe").decode()}
    for record in (single, in_batch, not_utf8, {"raw": "{broken"}):
        r.add_dead_letter(b"k", orjson.dumps(record))
    report = r.report()
    assert (report["dead_letter"], report["missing"], report["other_files"]) == (2, 0, 2)
    assert r.ok


def test_payload_checks_compare_with_the_source_rows() -> None:
    batch = pa.table({"a": [1, 2, 3], "b": [0.5, None, float("nan")]}).to_batches()[0]
    texts = rows.payloads(batch).to_pylist()
    r = Reconciler({FILE: 3}, check_payloads=True, event_type="YellowTaxiTripRecords")
    raw(r, f"{FILE}:0", payload={"b": 0.5, "a": 1})  # key order does not matter
    raw(r, f"{FILE}:1", payload={"a": 2, "b": 0})  # wrong value
    raw(r, f"{FILE}:2", payload={"a": 3, "b": None})
    raw(r, f"{FILE}:2", payload={"a": 3, "b": None}, event_type="Other")  # a bad duplicate
    r.expect_payloads(FILE, 0, texts)
    report = r.report()
    assert report["payload_mismatches"] == 2
    assert report["unexpected"] == 2
    assert not r.ok


@pytest.mark.kafka
def test_reconcile_cli_reads_real_topics(kafka: Broker, topics: Topics, tmp_path: Path) -> None:
    path = tmp_path / FILE
    pq.write_table(pa.table({"a": [1, 2, 3, 4], "t": ["x", None, "z", "w"]}), path)
    batch = pq.read_table(path).to_batches()[0]
    payloads = [orjson.loads(t) for t in rows.payloads(batch).to_pylist()]
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for i in (0, 1, 1):
        producer.produce(topics.raw, envelope(f"{FILE}:{i}", payloads[i]), key=f"{FILE}:{i}")
    producer.produce(topics.raw, envelope("other.parquet:0"), key="other.parquet:0")
    dead = {"raw": orjson.dumps({"event_id": f"{FILE}:2"}).decode(), "root_id": "r"}
    producer.produce(topics.dead_letter, orjson.dumps(dead), key="r")
    assert producer.flush(30) == 0

    said: list[str] = []

    def reconcile(*extra: str) -> tuple[int, dict[str, Any]]:
        result = run_reconcile(str(path), "--bootstrap-servers", kafka.bootstrap_servers,
                               "--raw-topic", topics.raw, "--dead-letter-topic",
                               topics.dead_letter, "--check-payloads", *extra)  # fmt: skip
        said[:] = result.stderr.splitlines()
        lines = result.stdout.strip().splitlines()
        return result.returncode, orjson.loads(lines[-1]) if lines else {}

    code, report = reconcile()
    assert code == 1
    assert report == {
        "expected": 4, "raw": 3, "dead_letter": 1, "missing": 1, "duplicates": 1,
        "unexpected": 0, "other_files": 1, "redriven": 0, "payload_mismatches": 0,
    }  # fmt: skip
    assert said == [
        "verdict: NOT all there: 1 of 4 rows missing (3 raw and 1 dead-lettered)",
        "  1 rows arrived more than once (a retried send; same event_id, so a consumer can drop "
        "the copies)",
        f"  first missing: {FILE}:3",
        f"  first duplicates: {FILE}:1",
    ]
    code, report = reconcile("--max-records", "3")
    assert (code, report["missing"], report["expected"]) == (0, 0, 3)
    assert said[0] == "verdict: all 3 rows are there (3 raw and 1 dead-lettered)"
    code, report = reconcile("--raw-topic", "no-such-topic")
    assert (code, report) == (2, {})
    [line] = said
    assert line.startswith("error: topic no-such-topic: ")


def run_reconcile(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "producer", "reconcile", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("servers", "why"),
    [
        ("127.0.0.1:1", "Connect to ipv4#127.0.0.1:1 failed: Connection refused"),
        ("kafka.invalid:9092", "Failed to resolve 'kafka.invalid:9092'"),
    ],
)
def test_reconcile_without_kafka_says_why_in_one_line_and_exits_3(
    servers: str, why: str, tmp_path: Path
) -> None:
    path = tmp_path / FILE
    pq.write_table(pa.table({"a": [1]}), path)
    result = run_reconcile(str(path), "--bootstrap-servers", servers)
    assert result.returncode == 3
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: reading raw-events: {servers}/bootstrap: {why}")
    assert line.endswith(f"(is Kafka running at {servers}?)")
    assert result.stdout == ""


def test_a_redriven_dead_letter_counts_once_as_its_raw_record() -> None:
    r = Reconciler({FILE: 2})
    raw(r, f"{FILE}:0")
    # The raw topic is read first: the re-driven record names the dead-letter record it replaces.
    r.add_raw(f"{FILE}:1".encode(), envelope(f"{FILE}:1"),
              [("redriven_from", b"raw-events-dlq/0/7")])  # fmt: skip
    parked = orjson.dumps({"error": {"code": "invalid_json"}, "raw": f'{{"event_id": "{FILE}:1"}}'})
    r.add_dead_letter(b"k", parked, "raw-events-dlq/0/7")
    report = r.report()
    assert (report["raw"], report["dead_letter"], report["redriven"]) == (2, 0, 1)
    assert (report["missing"], report["duplicates"]) == (0, 0)
    # A parked record not re-driven still counts as its row's fate (here a second copy), even
    # with a bare NaN in its body.
    nan = orjson.dumps({"error": {"code": "invalid_json"},
                        "raw": f'{{"event_id": "{FILE}:1", "payload": {{"x": NaN}}}}'})  # fmt: skip
    r.add_dead_letter(b"k", nan, "raw-events-dlq/0/8")
    assert (r.report()["dead_letter"], r.report()["duplicates"]) == (1, 1)


def test_the_redriven_header_is_the_one_the_dlq_tool_writes() -> None:
    from dlq.records import REDRIVEN_FROM
    from producer.reconcile import REDRIVEN_FROM as READ

    assert READ == REDRIVEN_FROM
