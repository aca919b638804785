"""The validator's Deployment: sized by the raw topic's partitions, in both overlays, and its
command and environment (ConfigMaps and the downward API resolved) run here against the broker."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from devstack.gate.run import run_gate
from devstack.kafka import Broker, read_topic
from devstack.proc import ManagedProcess, free_port
from tests.conftest import Topics
from tests.deploy.test_manifests_run import (
    Manifest,
    clean_environ,
    command_line,
    find,
    http_status,
    resolve_env,
)
from tests.validator.test_verdict import envelope

pytestmark = pytest.mark.tools  # kustomize renders the overlays

POD_NAME = "validator-5c8d7-q4m2n"


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    return run_gate(stages=()).rendered


def test_every_overlay_runs_the_validator_no_wider_than_the_raw_topic(
    rendered: dict[str, list[Manifest]],
) -> None:
    for overlay in ("local", "production"):
        objects = rendered[overlay]
        deployment = find(objects, "Deployment", "validator")
        find(objects, "PodDisruptionBudget", "validator")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        egress = [
            o
            for o in objects
            if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "validator-egress-kafka"
        ]
        assert len(egress) == 1, overlay
    local = rendered["local"]
    topics_job = find(local, "Job", "kafka-topics")["spec"]["template"]["spec"]["containers"][0]
    partitions = int(next(e["value"] for e in topics_job["env"] if e["name"] == "PARTITIONS"))
    assert "validated-events validated-events-dlq" in topics_job["args"][0]
    replicas = find(local, "Deployment", "validator")["spec"]["replicas"]
    assert 1 <= replicas <= partitions


@pytest.mark.kafka
@pytest.mark.slow
def test_the_deployments_command_validates_an_event(
    kafka: Broker, topics: Topics, rendered: dict[str, list[Manifest]], tmp_path: Path
) -> None:
    objects = rendered["local"]
    container = find(objects, "Deployment", "validator")["spec"]["template"]["spec"]["containers"][
        0
    ]
    env = resolve_env(container, objects, POD_NAME)
    assert env["VALIDATOR_ID"] == POD_NAME
    assert env["VALIDATOR_RAW_TOPIC"] == "raw-events"
    http_port = next(p for p in container["ports"] if p["name"] == "http")["containerPort"]
    assert int(env["VALIDATOR_PORT"]) == http_port, "the validator listens where probes look"
    suffix = uuid.uuid4().hex[:8]
    validated, dead_letter = f"validated-{suffix}", f"validated-dlq-{suffix}"
    kafka.create_topics([validated, dead_letter])
    port = free_port()
    env |= {
        "VALIDATOR_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "VALIDATOR_RAW_TOPIC": topics.raw,
        "VALIDATOR_VALIDATED_TOPIC": validated,
        "VALIDATOR_DEAD_LETTER_TOPIC": dead_letter,
        "VALIDATOR_DEDUP_TOPIC": f"dedup-{suffix}",
        "VALIDATOR_GROUP_ID": f"validator-{suffix}",
        "VALIDATOR_HOST": "127.0.0.1",
        "VALIDATOR_PORT": str(port),
    }
    environ = {k: v for k, v in clean_environ().items() if not k.startswith("VALIDATOR_")}
    log_path = tmp_path / "validator.log"
    process = ManagedProcess(
        command_line(container), "the validator", env={**environ, **env}, log_path=log_path
    )
    process.spawn()
    try:
        base = f"http://127.0.0.1:{port}"
        ready = base + container["readinessProbe"]["httpGet"]["path"]
        process.wait_ready(lambda: http_status(ready) == 200, 60, "readiness")
        assert http_status(base + container["livenessProbe"]["httpGet"]["path"]) == 200
        producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
        event = envelope()
        producer.produce(topics.raw, orjson.dumps(event), key=event["event_id"])
        assert producer.flush(30) == 0
        process.wait_ready(
            lambda: read_topic(kafka.bootstrap_servers, validated), 60, "a validated record"
        )
        out = read_topic(kafka.bootstrap_servers, validated)
        record = orjson.loads(out[0].value())
        assert record["validator_id"] == POD_NAME
        assert record["contract"] == "YellowTaxiTripRecords/0-0-1"
    finally:
        process.signal(signal.SIGTERM)
        assert process.finish(60) == 0
