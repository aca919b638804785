"""Shared fixtures: one real Kafka broker (and, for replication tests, one cluster of three) per
test session, fresh topics per test."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack.kafka import FAST_FAILOVER, Broker, Cluster
from devstack.proc import ROOT, ManagedProcess, free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the broker, so `-m "not kafka"` (make check) leaves it out.

    `make test` spreads the tests over two pytest-xdist workers (`--dist loadgroup`), each with
    its own session broker on free ports; the tests of the three-broker cluster form one group,
    so one worker starts the cluster and runs them all while the other runs the rest.
    """
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if {"kafka", "kafka_cluster"} & fixtures:
            item.add_marker(pytest.mark.kafka)
        if "kafka_cluster" in fixtures:
            item.add_marker(pytest.mark.xdist_group("kafka_cluster"))


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real single-node KRaft broker on free ports, started on first use, always stopped."""
    broker = Broker(
        tmp_path_factory.mktemp("kafka"),
        port=free_port(),
        controller_port=free_port(),
        die_with_parent=True,
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass(frozen=True)
class Topics:
    raw: str
    dead_letter: str


@pytest.fixture
def topics(kafka: Broker) -> Topics:
    """A raw and a dead-letter topic of three partitions each, new for every test."""
    suffix = uuid.uuid4().hex[:10]
    made = Topics(raw=f"raw-events-{suffix}", dead_letter=f"raw-events-dlq-{suffix}")
    kafka.create_topics([made.raw, made.dead_letter])
    return made


def producer_retries(log: Path) -> int:
    """The retries a running producer has made so far, from the last progress line in its log."""
    text = log.read_text() if log.exists() else ""
    counts = re.findall(r"^progress: .*, retries (\d+),", text, flags=re.MULTILINE)
    return int(counts[-1]) if counts else 0


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three brokers and a controller on free ports, failing over in seconds; always stopped."""
    cluster = Cluster(
        tmp_path_factory.mktemp("kafka-cluster"),
        ports=(free_port(), free_port(), free_port()),
        controller_port=free_port(),
        overrides=FAST_FAILOVER,
        die_with_parent=True,
    )
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_topics(kafka_cluster: Cluster) -> Topics:
    """A raw and a dead-letter topic (3 partitions, 3 replicas, 2 in sync), new for every test.

    Every broker is running and unpaused first, whatever the test before did to them.
    """
    kafka_cluster.heal()
    suffix = uuid.uuid4().hex[:10]
    made = Topics(raw=f"raw-events-{suffix}", dead_letter=f"raw-events-dlq-{suffix}")
    kafka_cluster.create_topics([made.raw, made.dead_letter])
    kafka_cluster.wait_in_sync([made.raw, made.dead_letter])
    return made


def start_replay(
    files: Sequence[str | Path], url: str, *extra: str, log: Path | None = None
) -> ManagedProcess:
    """`python -m producer replay` as a process; its summary is read by `finish_replay`. Its
    stderr goes to `log` (else it is kept for `errors`)."""
    process = ManagedProcess(
        [sys.executable, "-m", "producer", "replay", *map(str, files), "--collector-url", url,
         *extra],
        "producer replay", log_path=log, capture=True, own_session=False, die_with_parent=False,
    )  # fmt: skip
    process.spawn()
    return process


def finish_replay(process: ManagedProcess, timeout_s: float = 120) -> dict[str, Any]:
    """Wait for a replay, return its closing JSON summary (with its exit code as 'exit')."""
    code = process.finish(timeout_s)
    lines = process.output.strip().splitlines()
    summary = json.loads(lines[-1]) if lines else {}
    assert isinstance(summary, dict)
    summary["exit"] = code
    return summary


def reconcile_topics(
    files: Sequence[str | Path],
    bootstrap_servers: str,
    topics: tuple[str, str],
    *extra: str,
    timeout_s: float = 120,
) -> dict[str, Any]:
    """`python -m producer reconcile` of `files` against a raw and a dead-letter topic; its JSON
    line, with its exit code as 'exit'."""
    result = subprocess.run(
        [sys.executable, "-m", "producer", "reconcile", *map(str, files),
         "--bootstrap-servers", bootstrap_servers,
         "--raw-topic", topics[0], "--dead-letter-topic", topics[1], *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    assert result.stdout.strip(), result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(summary, dict)
    summary["exit"] = result.returncode
    return summary


def run_service(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m <module>` with `env` and none of this environment's `<MODULE>_*` variables, to
    its end (a service that starts is stopped by the 60 s timeout, failing the test)."""
    prefix = module.upper() + "_"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(prefix)}
    return subprocess.run(
        [sys.executable, "-m", module],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
