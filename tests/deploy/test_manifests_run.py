"""The command lines the manifests give Kubernetes work: run them here against the real broker.

The rendered local overlay's collector Deployment and producer Job are parsed; their command, args
and environment (ConfigMaps and the downward API resolved) are run as-is, with only cluster names
swapped for local ones: the `kafka` Service for the test broker, the `collector` Service for the
collector started here, the month URLs for sample files, the topics for fresh ones.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from devstack.gate.run import run_gate
from devstack.kafka import Broker, read_topic
from devstack.proc import ROOT, ManagedProcess, free_port
from tests.conftest import Topics

POD_NAME = "collector-7d9f5-x2k8p"
ROWS_PER_MONTH = 200

Manifest = dict[str, Any]


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name} not rendered exactly once"
    return matches[0]


def resolve_env(container: Manifest, objects: list[Manifest], pod_name: str) -> dict[str, str]:
    """The environment Kubernetes would give this container (optional Secrets absent)."""
    config_maps = {
        o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"
    }
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]
        if "fieldRef" in ref:
            assert ref["fieldRef"]["fieldPath"] == "metadata.name"
            env[item["name"]] = pod_name
        elif "configMapKeyRef" in ref:
            key_ref = ref["configMapKeyRef"]
            env[item["name"]] = config_maps[key_ref["name"]][key_ref["key"]]
        else:
            assert ref["secretKeyRef"].get("optional"), f"{item['name']}: a required Secret"
    return env


def command_line(container: Manifest) -> list[str]:
    """The container's command and args, with this interpreter for the image's `python`."""
    argv = [*container["command"], *container.get("args", [])]
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


def service_port(objects: list[Manifest], name: str) -> int:
    ports = find(objects, "Service", name)["spec"]["ports"]
    return int(ports[0]["port"])


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("COLLECTOR_", "PRODUCER_"))}


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.mark.kafka
@pytest.mark.slow
def test_the_manifests_commands_deliver_every_month(
    kafka: Broker, topics: Topics, tmp_path: Path
) -> None:
    objects = run_gate(stages=()).rendered["local"]
    deployment = find(objects, "Deployment", "collector")
    collector = deployment["spec"]["template"]["spec"]["containers"][0]
    job = find(objects, "Job", "producer")
    producer = job["spec"]["template"]["spec"]["containers"][0]

    # The collector, as the Deployment starts it.
    env = resolve_env(collector, objects, POD_NAME)
    assert env["COLLECTOR_ID"] == POD_NAME
    assert env["COLLECTOR_KAFKA_BOOTSTRAP_SERVERS"] == f"kafka:{service_port(objects, 'kafka')}"
    http_port = next(p for p in collector["ports"] if p["name"] == "http")["containerPort"]
    assert int(env["COLLECTOR_PORT"]) == http_port, "the collector listens where probes look"
    assert (env["COLLECTOR_RAW_TOPIC"], env["COLLECTOR_DEAD_LETTER_TOPIC"]) == (
        "raw-events",
        "raw-events-dlq",
    )
    port = free_port()
    env |= {
        "COLLECTOR_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "COLLECTOR_RAW_TOPIC": topics.raw,
        "COLLECTOR_DEAD_LETTER_TOPIC": topics.dead_letter,
        "COLLECTOR_HOST": "127.0.0.1",
        "COLLECTOR_PORT": str(port),
    }
    base_url = f"http://127.0.0.1:{port}"
    ready_path = collector["readinessProbe"]["httpGet"]["path"]
    live_path = collector["livenessProbe"]["httpGet"]["path"]
    log_path = tmp_path / "collector.log"
    server = ManagedProcess(
        command_line(collector), "the collector", env={**clean_environ(), **env}, log_path=log_path
    )
    server.spawn()
    try:
        server.wait_ready(lambda: http_status(base_url + ready_path) == 200, 60, "readiness")
        assert http_status(base_url + live_path) == 200

        # The producers, as the Indexed Job starts them: one process per completion index.
        producer_env = resolve_env(producer, objects, "producer-0")
        urls = producer_env["PRODUCER_DATA_URLS"].split(",")
        assert len(urls) == job["spec"]["completions"] == 3
        assert producer_env["PRODUCER_COLLECTOR_URL"] == "http://collector"
        assert service_port(objects, "collector") == 80
        sample = subprocess.run(
            [
                *(sys.executable, "-m", "producer", "sample", str(tmp_path / "data")),
                *("--rows", str(ROWS_PER_MONTH)),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        local = {Path(line).name: line for line in sample.stdout.split()}
        files = [local[url.rsplit("/", 1)[1]] for url in urls]
        producer_env |= {"PRODUCER_COLLECTOR_URL": base_url, "PRODUCER_DATA_URLS": ",".join(files)}
        runs = [
            ManagedProcess(
                command_line(producer),
                f"producer {index}",
                env={**clean_environ(), **producer_env, "JOB_COMPLETION_INDEX": str(index)},
                capture=True,
            )
            for index in range(job["spec"]["completions"])
        ]
        for run in runs:
            run.spawn()
        for run in runs:
            run.finish(120)
            assert run.returncode == 0, run.errors[-2000:]
            summary = json.loads(run.output.strip().splitlines()[-1])
            assert summary["records"] == summary["accepted"] == ROWS_PER_MONTH, summary
            assert summary["rejected"] == summary["failed"] == 0, summary
    finally:
        server.signal(signal.SIGTERM)
        code = server.finish(40)
    assert code == 0, "the collector drains and exits cleanly on SIGTERM"

    messages = read_topic(kafka.bootstrap_servers, topics.raw)
    envelopes = [orjson.loads(m.value() or b"null") for m in messages]
    expected = {f"{url.rsplit('/', 1)[1]}:{row}" for url in urls for row in range(ROWS_PER_MONTH)}
    assert {e["event_id"] for e in envelopes} == expected
    assert len(envelopes) == len(expected), "each row exactly once"
    assert {e["collector_id"] for e in envelopes} == {POD_NAME}
    assert read_topic(kafka.bootstrap_servers, topics.dead_letter) == []
