"""The whole system as processes on 127.0.0.1: collector replicas, HAProxy, producers, Kafka."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack.balancer import Backend, Balancer
from devstack.collector import CollectorProcess
from devstack.demo.data import sample_files as make_samples
from devstack.kafka import Broker, Cluster
from devstack.proc import ManagedProcess
from tests.conftest import Topics, reconcile_topics
from tests.conftest import start_replay as replay_process

SAMPLE_ROWS = 2_000


@dataclass
class Replicas:
    """Collector replicas started for one test; all stopped (or killed) when it ends."""

    kafka: Broker | Cluster
    topics: Topics
    log_dir: Path
    started: list[CollectorProcess]

    def start(self, count: int, env: dict[str, str] | None = None) -> list[CollectorProcess]:
        made = [
            CollectorProcess(
                self.kafka.bootstrap_servers,
                raw_topic=self.topics.raw,
                dead_letter_topic=self.topics.dead_letter,
                collector_id=f"collector-{len(self.started) + i + 1}",
                log_path=self.log_dir / f"collector-{len(self.started) + i + 1}.log",
                env=env or {},
            )
            for i in range(count)
        ]
        self.started.extend(made)
        for replica in made:
            replica.start(wait_ready=False)
        for replica in made:
            replica.wait_for("/readyz", timeout_s=60)
        return made


@contextlib.contextmanager
def _replicas_of(kafka: Broker | Cluster, topics: Topics, tmp_path: Path) -> Iterator[Replicas]:
    """Replicas started in the block; each one stopped (drained) at its end."""
    made = Replicas(kafka, topics, tmp_path, [])
    try:
        yield made
    finally:
        for replica in made.started:
            replica.stop(timeout_s=20)


@pytest.fixture
def replicas(kafka: Broker, topics: Topics, tmp_path: Path) -> Iterator[Replicas]:
    with _replicas_of(kafka, topics, tmp_path) as made:
        yield made


@pytest.fixture
def cluster_replicas(
    kafka_cluster: Cluster, cluster_topics: Topics, tmp_path: Path
) -> Iterator[Replicas]:
    """Collector replicas writing to the three-broker cluster's topics."""
    with _replicas_of(kafka_cluster, cluster_topics, tmp_path) as made:
        yield made


@pytest.fixture
def balancer(tmp_path: Path) -> Iterator[Callable[..., Balancer]]:
    """Start HAProxy in front of given replicas (waits until every one is UP)."""
    started: list[Balancer] = []

    def start(backends: Sequence[CollectorProcess], **options: Any) -> Balancer:
        made = Balancer(
            tmp_path / f"haproxy-{len(started)}",
            [Backend(r.collector_id, r.port) for r in backends],
            **options,
        )
        started.append(made)
        made.start()
        made.wait_until({r.collector_id: "UP" for r in backends}, timeout_s=20)
        return made

    try:
        yield start
    finally:
        for made in started:
            made.stop()


@pytest.fixture(scope="session")
def sample_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Three sample months of SAMPLE_ROWS rows each, made by `python -m producer sample`."""
    files = make_samples(tmp_path_factory.mktemp("samples"), SAMPLE_ROWS)
    assert len(files) == 3
    return files


def start_replay(
    files: Sequence[str], url: str, rate_per_s: float, *extra: str, log: Path | None = None
) -> ManagedProcess:
    """`python -m producer replay` at `rate_per_s`; its summary is read by `finish_replay`."""
    return replay_process(files, url, "--rate", f"{rate_per_s:g}", *extra, log=log)


def reconcile(files: Sequence[str], kafka: Broker | Cluster, topics: Topics) -> dict[str, Any]:
    """`python -m producer reconcile` over the test's topics; its JSON line, with 'exit'."""
    return reconcile_topics(files, kafka.bootstrap_servers, (topics.raw, topics.dead_letter))
