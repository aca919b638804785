"""No record on the raw topic stops the validator: the largest event the collector accepts goes
through both stages, a record an output topic cannot hold is dead-lettered with the reason, and a
record Kafka refuses at commit time is dead-lettered bare after a few tries; the stream goes on."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)

from devstack.collector import CollectorProcess
from devstack.kafka import TOPIC_MAX_MESSAGE_BYTES, Broker, read_topic
from devstack.proc import process_alive, wait_until
from devstack.validator import ValidatorProcess, wait_caught_up
from tests.conftest import Topics

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# A contract that takes any payload, so the largest events can be validated, not only rejected.
ANYTHING = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}


@dataclass
class Line:
    """A collector and a validator on fresh topics."""

    kafka: Broker
    raw: Topics
    validated: str
    dead_letter: str
    collector: CollectorProcess
    validator: ValidatorProcess

    def validated_records(self) -> list[Any]:
        return read_topic(self.kafka.bootstrap_servers, self.validated, 60)

    def dead_letters(self) -> list[dict[str, Any]]:
        records = read_topic(self.kafka.bootstrap_servers, self.dead_letter, 60)
        return [orjson.loads(m.value()) for m in records]

    def caught_up(self) -> None:
        wait_caught_up(
            self.kafka.bootstrap_servers, self.validator.group_id, self.raw.raw, timeout_s=120
        )

    def still_running(self) -> None:
        pid = self.validator.pid
        assert pid is not None
        assert process_alive(pid)
        assert self.validator.fetch("/healthz")[0] == 200
        assert self.validator.fetch("/readyz")[0] == 200


def _contracts(root: Path) -> Path:
    folder = root / "contracts"
    (folder / "Anything").mkdir(parents=True)
    (folder / "Anything" / "1.json").write_text(json.dumps(ANYTHING))
    return folder


def _line(kafka: Broker, topics: Topics, tmp_path: Path, validated_max: int) -> Iterator[Line]:
    suffix = uuid.uuid4().hex[:10]
    validated, dead_letter = f"validated-{suffix}", f"validated-dlq-{suffix}"
    kafka.create_topics([validated, dead_letter])
    _set_max_bytes(kafka, validated, validated_max)
    collector = CollectorProcess(
        kafka.bootstrap_servers, topics.raw, topics.dead_letter,
        log_path=tmp_path / "collector.log",
    )  # fmt: skip
    validator = ValidatorProcess(
        kafka.bootstrap_servers, raw_topic=topics.raw, validated_topic=validated,
        dead_letter_topic=dead_letter, dedup_topic=f"dedup-{suffix}", group_id=f"v-{suffix}",
        validator_id="v-1", log_path=tmp_path / "validator.log",
        env={"VALIDATOR_CONTRACTS_DIR": str(_contracts(tmp_path)),
             "VALIDATOR_BATCH_MAX_RECORDS": "20"},
    )  # fmt: skip
    collector.start()
    validator.start()
    try:
        yield Line(kafka, topics, validated, dead_letter, collector, validator)
    finally:
        validator.stop()
        collector.stop()


def _set_max_bytes(kafka: Broker, topic: str, value: int) -> None:
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    entry = ConfigEntry(
        "max.message.bytes", str(value), incremental_operation=AlterConfigOpType.SET
    )
    resource = ConfigResource("topic", topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


@pytest.fixture
def line(kafka: Broker, topics: Topics, tmp_path: Path) -> Iterator[Line]:
    yield from _line(kafka, topics, tmp_path, TOPIC_MAX_MESSAGE_BYTES)


@pytest.fixture
def narrow_line(kafka: Broker, topics: Topics, tmp_path: Path) -> Iterator[Line]:
    """The validated topic holds 128 KiB records, the raw topic 2 MiB: a broken chain."""
    yield from _line(kafka, topics, tmp_path, 131_072)


def _event(event_type: str, size: int, event_id: str) -> bytes:
    """An event whose body is exactly `size` bytes, of random text (lz4 cannot shrink it below
    a topic's limit, as it does a run of one letter)."""
    empty = orjson.dumps(
        {
            "event_type": event_type,
            "schema_version": "1",
            "payload": {"s": ""},
            "event_id": event_id,
        }
    )
    noise = base64.b64encode(os.urandom(size))[: size - len(empty)]
    return empty.replace(b'"s":""', b'"s":"' + noise + b'"')


def _body_limit(collector: CollectorProcess) -> int:
    _, metrics = collector.fetch("/metrics")
    line = next(
        row for row in metrics.decode().splitlines() if row.startswith("collector_body_limit_bytes")
    )
    return int(float(line.split()[1]))


def test_the_largest_event_the_collector_accepts_is_validated_or_dead_lettered(line: Line) -> None:
    limit = _body_limit(line.collector)
    assert limit == 1_048_576  # the topics hold what COLLECTOR_MAX_BODY_BYTES lets in
    with httpx.Client(base_url=line.collector.url, timeout=30) as client:
        answers = [
            client.post("/api/v1/collect", content=_event("Anything", limit, "big-valid")),
            # No contract takes it as it is: dead-lettered by the validator, with its bytes.
            client.post("/api/v1/collect", content=_event("YellowTaxiTripRecords", limit, "big")),
            client.post("/api/v1/collect", content=_event("Anything", limit + 1, "over")),
            client.post("/api/v1/collect", content=_event("Anything", 200, "small")),
        ]
    assert [a.status_code for a in answers] == [202, 202, 413, 202]
    line.caught_up()
    line.still_running()
    validated = {orjson.loads(m.value())["event_id"]: m for m in line.validated_records()}
    assert set(validated) == {"big-valid", "small"}
    assert len(validated["big-valid"].value()) > limit
    [dead] = line.dead_letters()
    assert (dead["event_id"], dead["error"]["code"]) == ("big", "unknown_contract")
    assert len(dead["raw"]) > limit


def test_a_record_the_validated_topic_cannot_hold_is_dead_lettered_and_the_stream_goes_on(
    narrow_line: Line,
) -> None:
    line = narrow_line
    log = line.validator.log_path
    assert log is not None
    assert "size chain broken" in log.read_text()
    with httpx.Client(base_url=line.collector.url, timeout=30) as client:
        sizes = {"a": 1_000, "b": 600_000, "c": 1_000}
        statuses = [
            client.post("/api/v1/collect", content=_event("Anything", size, name)).status_code
            for name, size in sizes.items()
        ]
    assert statuses == [202, 202, 202]
    line.caught_up()
    line.still_running()
    validated = [orjson.loads(m.value())["event_id"] for m in line.validated_records()]
    assert sorted(validated) == ["a", "c"]
    [dead] = line.dead_letters()
    assert (dead["event_id"], dead["error"]["code"]) == ("b", "record_too_large")
    assert orjson.loads(dead["raw"])["event_id"] == "b"  # the dead-letter topic holds it whole


def test_a_record_kafka_refuses_at_commit_is_dead_lettered_bare_after_a_few_tries(
    line: Line,
) -> None:
    # The validated topic shrinks after the validator read its limits: the producer's check
    # passes, the broker refuses, every transaction holding the record aborts.
    _set_max_bytes(line.kafka, line.validated, 65_536)
    raw = Producer({"bootstrap.servers": line.kafka.bootstrap_servers})
    for name, size in [("a", 500), ("b", 200_000), ("c", 500), ("d", 500)]:
        body = _event("Anything", size, name)[:-1] + b',"root_id":"r-' + name.encode() + b'"}'
        raw.produce(line.raw.raw, key=name.encode(), value=body)
    assert raw.flush(30) == 0
    wait_until(lambda: len(line.dead_letters()) >= 1, 180, "a bare dead letter")
    line.caught_up()
    line.still_running()
    [dead] = line.dead_letters()
    assert dead["error"]["code"] == "unwritable"
    assert dead["raw_bytes"] > 200_000
    assert "raw" not in dead
    offsets = {m.key(): m.offset() for m in read_topic(line.kafka.bootstrap_servers, line.raw.raw)}
    assert (dead["source"]["offset"], dead["source"]["topic"]) == (offsets[b"b"], line.raw.raw)
    validated = sorted(orjson.loads(m.value())["event_id"] for m in line.validated_records())
    assert validated == ["a", "c", "d"]
