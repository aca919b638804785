"""Re-drive exactly once against the real broker: a fixed contract, a SIGKILL in the middle and a
rerun, a third run over the same range, all while the validator runs; and the pandas bare-NaN
bodies parked by the collector, re-driven through a transformation and reconciled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest
from confluent_kafka import Producer

from devstack.collector import CollectorProcess
from devstack.kafka import Broker, read_topic
from devstack.proc import ROOT
from devstack.validator import ValidatorProcess, wait_caught_up
from producer.sample import write_samples
from tests.conftest import Topics, reconcile_topics
from tests.dlq.test_decide import NAN_TO_NULL, write_contract

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

EVENTS = 1_500  # x = i % 20: half pass the narrow contract (x <= 9), all pass the fixed one
BATCH = 25


def dlq_env(kafka: Broker, contracts: Path, **topics: str) -> dict[str, str]:
    env = {**os.environ, "DLQ_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "DLQ_CONTRACTS_DIR": str(contracts), "DLQ_BATCH_RECORDS": str(BATCH),
           "DLQ_READ_TIMEOUT_S": "120"}  # fmt: skip
    env.update({f"DLQ_{name.upper()}": value for name, value in topics.items()})
    return env


def run_dlq(env: dict[str, str], *args: str) -> Any:
    result = subprocess.run([sys.executable, "-m", "dlq", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=240, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def produce_raw(kafka: Broker, topic: str, ids: range, x_of: Any = lambda i: i % 20) -> None:
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for i in ids:
        envelope = {"event_type": "Trip", "schema_version": "1-0-0", "payload": {"x": x_of(i)},
                    "event_id": f"t:{i}", "collector_timestamp": "2026-12-05T00:00:00.000000Z",
                    "root_id": str(uuid.uuid4()), "collector_id": "c-0"}  # fmt: skip
        producer.produce(topic, key=f"t:{i}", value=orjson.dumps(envelope))
    assert producer.flush(30) == 0


def test_redrive_after_a_contract_fix_is_exactly_once_through_a_kill_and_reruns(
    kafka: Broker, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:10]
    raw, validated, parked = f"raw-{suffix}", f"validated-{suffix}", f"validated-dlq-{suffix}"
    kafka.create_topics([raw, validated, parked])
    narrow = write_contract(tmp_path / "narrow", 9)
    fixed = write_contract(tmp_path / "fixed", 100)
    produce_raw(kafka, raw, range(EVENTS))
    group = f"validator-{suffix}"
    validator = ValidatorProcess(
        kafka.bootstrap_servers, raw_topic=raw, validated_topic=validated,
        dead_letter_topic=parked, dedup_topic=f"dedup-{suffix}", group_id=group,
        validator_id="v-0", log_path=tmp_path / "validator.log",
        env={"VALIDATOR_CONTRACTS_DIR": str(narrow)},
    )  # fmt: skip
    validator.start()
    try:
        wait_caught_up(kafka.bootstrap_servers, group, raw, timeout_s=120)
        env = dlq_env(kafka, fixed, validated_topic=validated, validated_dead_letter_topic=parked)
        groups = run_dlq(env, "inspect", "--json")
        assert [(g["reason"], g["event_type"], g["count"]) for g in groups] == [
            ("invalid_payload", "Trip", EVENTS // 2)
        ]
        shown = run_dlq(env, "show", "--event-id", "t:19", "--json")
        assert (shown["reason"], orjson.loads(shown["raw"])["payload"]) == (
            "invalid_payload",
            {"x": 19},
        )
        dry = run_dlq(env, "redrive", "--dry-run")
        assert (dry["selected"], dry["redriven"], dry["transactions"]) == (EVENTS // 2,) * 2 + (0,)
        assert len(read_topic(kafka.bootstrap_servers, validated, 60)) == EVENTS // 2

        # A first run killed (SIGKILL) after a few committed transactions, mid-transaction.
        with subprocess.Popen([sys.executable, "-m", "dlq", "redrive"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) as first:  # fmt: skip
            assert first.stderr is not None
            for line in first.stderr:
                if line.startswith("committed transaction 4:"):
                    break
            first.send_signal(signal.SIGKILL)
            first.wait(30)
        before_rerun = len(read_topic(kafka.bootstrap_servers, validated, 60)) - EVENTS // 2
        # Meanwhile clients resend some parked events (dropped by the validator as duplicates)
        # and send new good ones.
        produce_raw(kafka, raw, range(10, 200, 20))
        produce_raw(kafka, raw, range(EVENTS, EVENTS + 100), lambda i: 1)
        rerun = run_dlq(env, "redrive")
        third = run_dlq(env, "redrive")
        wait_caught_up(kafka.bootstrap_servers, group, raw, timeout_s=120)
    finally:
        validator.stop()
    assert BATCH * 4 <= before_rerun < EVENTS // 2, before_rerun
    assert (rerun["already_redriven"], rerun["redriven"]) == (
        before_rerun,
        EVENTS // 2 - before_rerun,
    )
    assert (third["redriven"], third["already_redriven"]) == (0, EVENTS // 2)
    records = read_topic(kafka.bootstrap_servers, validated, 60)
    keys = Counter(m.key() for m in records)
    assert len(keys) == EVENTS + 100
    assert max(keys.values()) == 1  # every event exactly once
    origins = {dict(m.headers() or {}).get("redriven_from") for m in records} - {None}
    assert len(origins) == EVENTS // 2
    print(
        f"\nkilled run committed {before_rerun} of {EVENTS // 2}; the rerun added "
        f"{rerun['redriven']} at {rerun['rate_per_s']} events/s; the third run added 0"
    )


def tutorial_bodies(path: Path) -> list[bytes]:
    """What the tutorial's producer sends: pandas rows through `json.dumps`, NaN and all."""
    frame = pd.read_parquet(path)
    bodies = []
    for index, row in frame.iterrows():
        event = {"event_type": "YellowTaxiTripRecords", "schema_version": "0-0-1",
                 "payload": row.to_dict(), "event_id": f"{path.name}:{index}"}  # fmt: skip
        bodies.append(json.dumps(event, default=str).encode())
    return bodies


def test_pandas_nan_bodies_are_redriven_through_a_transformation_and_reconcile(
    kafka: Broker, topics: Topics, tmp_path: Path
) -> None:
    (month,) = write_samples(tmp_path, rows=1_200, months=("2023-01",))
    bodies = tutorial_bodies(month)
    collector = CollectorProcess(kafka.bootstrap_servers, topics.raw, topics.dead_letter,
                                 log_path=tmp_path / "collector.log")  # fmt: skip
    collector.start()
    try:
        with httpx.Client(base_url=collector.url, timeout=10) as client:
            statuses = Counter(client.post("/api/v1/collect", content=body,
                                           headers={"Content-Type": "application/json"}
                                           ).status_code for body in bodies)  # fmt: skip
    finally:
        collector.stop()
    nan_rows = sum(b"NaN" in body for body in bodies)
    assert nan_rows > 10
    assert statuses == {202: len(bodies) - nan_rows, 400: nan_rows}
    env = dlq_env(kafka, ROOT / "contracts", raw_topic=topics.raw,
                  raw_dead_letter_topic=topics.dead_letter)  # fmt: skip
    before = reconcile_topics([month], kafka.bootstrap_servers, (topics.raw, topics.dead_letter))
    assert (before["dead_letter"], before["missing"], before["duplicates"]) == (nan_rows, 0, 0)
    untransformed = run_dlq(env, "redrive", "--stage", "collector")
    assert untransformed["still_parked_by_reason"] == {"needs_transform": nan_rows}
    done = run_dlq(env, "redrive", "--stage", "collector", "--transform", str(NAN_TO_NULL))
    assert (done["redriven"], done["redriven_by_reason"]) == (nan_rows, {"invalid_json": nan_rows})
    again = run_dlq(env, "redrive", "--stage", "collector", "--transform", str(NAN_TO_NULL))
    assert (again["redriven"], again["already_redriven"]) == (0, nan_rows)
    after = reconcile_topics([month], kafka.bootstrap_servers, (topics.raw, topics.dead_letter))
    assert after["exit"] == 0
    assert (after["expected"], after["raw"], after["dead_letter"], after["redriven"]) == (
        len(bodies),
        len(bodies),
        0,
        nan_rows,
    )
    assert (after["missing"], after["duplicates"], after["unexpected"]) == (0, 0, 0)
    redriven = [m for m in read_topic(kafka.bootstrap_servers, topics.raw, 60)
                if dict(m.headers() or {}).get("redriven_from")]  # fmt: skip
    payload = orjson.loads(redriven[0].value())["payload"]  # strict JSON, NaN written as null
    assert None in payload.values()
