"""The production overlay is safe to apply: no producer Job unless asked for, every Secret
required, a Job that creates the four topics (run here against the real broker), and the
Strimzi topics component checked against Strimzi's KafkaTopic schema."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]

from devstack.gate import run as gate_run
from devstack.gate.run import K8S_DIR
from devstack.gate.tools import kustomize_binary, render
from devstack.kafka import Broker
from producer.cli import _parser
from producer.sample import file_name as sample_file_name
from tests.deploy.test_manifests_run import find

pytestmark = pytest.mark.tools

Manifest = dict[str, Any]
TOPICS = ["raw-events", "raw-events-dlq", "validated-events", "validated-events-dlq"]
STRIMZI_SCHEMA = Path(__file__).parent / "strimzi" / "kafkatopic-v1beta2.schema.yaml"


def rendered(overlay: Path) -> list[Manifest]:
    objects, problems = render(overlay, kustomize_binary())
    assert problems == []
    return objects


@pytest.fixture(scope="module")
def production() -> list[Manifest]:
    return rendered(K8S_DIR / "overlays" / "production")


def _containers(objects: list[Manifest]) -> list[Manifest]:
    return [
        container
        for o in objects
        if o["kind"] in ("Deployment", "Job")
        for container in o["spec"]["template"]["spec"]["containers"]
    ]


def _secret_refs(objects: list[Manifest]) -> list[dict[str, Any]]:
    return [
        item["valueFrom"]["secretKeyRef"]
        for container in _containers(objects)
        for item in container.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    ]


def _topics_job_env(objects: list[Manifest]) -> dict[str, str]:
    (container,) = find(objects, "Job", "create-topics")["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item["value"] for item in container["env"] if "value" in item}


def test_no_producer_job_and_every_secret_is_required(production: list[Manifest]) -> None:
    jobs = {o["metadata"]["name"] for o in production if o["kind"] == "Job"}
    assert jobs == {"create-topics"}
    refs = _secret_refs(production)
    assert {(r["name"], r["key"]) for r in refs} == {
        ("kafka-client", "properties.json"), ("collector-api-keys", "keys"),
    }  # fmt: skip
    # A missing Secret keeps the pod from starting, visibly, instead of running open.
    assert [r for r in refs if r.get("optional")] == []


def test_the_tlc_replay_is_an_opt_in_component(tmp_path: Path) -> None:
    k8s = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, k8s)
    kustomization = k8s / "overlays" / "production" / "kustomization.yaml"
    text = kustomization.read_text(encoding="utf-8")
    kustomization.write_text(
        text.replace("configMapGenerator:", "components:\n  - ../../components/tlc-replay\n"
                     "configMapGenerator:", 1),
        encoding="utf-8",
    )  # fmt: skip
    objects = rendered(k8s / "overlays" / "production")
    job = find(objects, "Job", "producer")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("registry.example.com/event-collector/producer:")
    [key] = [i for i in container["env"] if i["name"] == "PRODUCER_API_KEY"]
    assert key["valueFrom"]["secretKeyRef"] == {"name": "collector-api-keys", "key": "producer"}


def _run_topics_job(container: Manifest, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert container["command"][0] == "python"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA", "TOPICS"))}
    return subprocess.run(
        [sys.executable, *container["command"][1:], *container["args"]],
        env={**clean, **env}, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


@pytest.mark.kafka
@pytest.mark.slow
def test_the_topics_job_creates_the_four_topics_and_can_run_again(
    production: list[Manifest], kafka: Broker
) -> None:
    settings = _topics_job_env(production)
    assert settings["TOPICS"].split() == TOPICS
    assert (settings["REPLICATION_FACTOR"], settings["MIN_INSYNC_REPLICAS"]) == ("3", "2")
    (container,) = find(production, "Job", "create-topics")["spec"]["template"]["spec"][
        "containers"
    ]
    suffix = uuid.uuid4().hex[:8]
    names = [f"{name}-{suffix}" for name in TOPICS]
    # The rendered script and partitions; one broker here, so replication factor 1.
    env = {**settings, "TOPICS": " ".join(names), "REPLICATION_FACTOR": "1",
           "MIN_INSYNC_REPLICAS": "1", "BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "KAFKA_PROPERTIES": "{}"}  # fmt: skip
    first = _run_topics_job(container, env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split("\n")[:4] == [f"created {name}" for name in names]
    again = _run_topics_job(container, env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split("\n")[:4] == [f"already there {name}" for name in names]
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    listed = admin.list_topics(timeout=10).topics
    assert {len(listed[name].partitions) for name in names} == {int(settings["PARTITIONS"])}
    resource = ConfigResource(ConfigResource.Type.TOPIC, names[0])
    config = admin.describe_configs([resource])[resource].result(timeout=10)
    assert config["min.insync.replicas"].value == "1"
    assert config["max.message.bytes"].value == settings["MAX_MESSAGE_BYTES"] == "2097152"
    # More replicas than brokers: the Job fails, naming the topic and the reason.
    failed = _run_topics_job(
        container, {**env, "TOPICS": f"more-{suffix}", "REPLICATION_FACTOR": "3"}
    )
    assert failed.returncode != 0
    assert f"could not create topic more-{suffix}: " in failed.stderr


def test_strimzi_topics_match_the_job_and_strimzis_schema(
    production: list[Manifest], tmp_path: Path
) -> None:
    # As k8s/README.md shows: an overlay of its own, in the Kafka cluster's namespace.
    overlay = tmp_path / "kafka-topics"
    overlay.mkdir()
    component = os.path.relpath(K8S_DIR / "components" / "strimzi-topics", overlay)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: kafka\n"
        f"components:\n  - {component}\n",
        encoding="utf-8",
    )
    topics = rendered(overlay)
    schema = yaml.safe_load(STRIMZI_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema_rs.validator_for(schema)
    for topic in topics:
        assert [e.message for e in validator.iter_errors(topic)] == [], topic["metadata"]["name"]
        assert topic["metadata"]["namespace"] == "kafka"
    settings = _topics_job_env(production)
    assert [t["metadata"]["name"] for t in topics] == settings["TOPICS"].split()
    for topic in topics:
        assert topic["spec"]["partitions"] == int(settings["PARTITIONS"])
        assert topic["spec"]["replicas"] == int(settings["REPLICATION_FACTOR"])
        assert topic["spec"]["config"] == {
            "min.insync.replicas": settings["MIN_INSYNC_REPLICAS"],
            "max.message.bytes": settings["MAX_MESSAGE_BYTES"],
        }
    # The schema check can fail: a misspelt field and too few replicas are both caught.
    broken = copy.deepcopy(topics[0])
    broken["spec"]["partition"] = broken["spec"].pop("partitions")
    broken["spec"]["replicas"] = 0
    assert len(list(validator.iter_errors(broken))) == 2


def test_the_readmes_in_cluster_check_is_valid_and_its_commands_parse() -> None:
    readme = (K8S_DIR / "README.md").read_text(encoding="utf-8")
    manifest = readme.split("apply -f - <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    digest = "sha256:" + "0" * 64
    job, egress, ingress = yaml.safe_load_all(manifest.replace("sha256:<digest>", digest))
    for obj in (job, egress, ingress):
        assert gate_run.validate_schemas([obj], gate_run.KUBERNETES_VERSIONS) == []
    pod = job["spec"]["template"]["spec"]
    containers = pod["initContainers"] + pod["containers"]
    commands = [c["args"] for c in containers]
    assert [c[0] for c in commands] == ["sample", "replay", "reconcile"]
    for args in commands:  # the image's entrypoint is `python -m producer`
        _parser().parse_args(args)
    # The file the sample step writes is the one replayed and reconciled.
    written = f"/data/{sample_file_name(commands[0][commands[0].index('--months') + 1])}"
    assert written in commands[1]
    assert written in commands[2]
    # Its own policies let it reach the collector and Kafka, and the collector admit it.
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert egress["spec"]["podSelector"]["matchLabels"] == pod_labels
    assert ingress["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == pod_labels
    assert ingress["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "collector"}
