"""Replicas die mid-replay (SIGKILL) or are stopped (SIGTERM): HAProxy routes around them."""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from devstack.balancer import Balancer
from devstack.demo.summary import collector_id_of
from devstack.kafka import Broker, read_topic, topic_count
from devstack.proc import wait_until
from tests.conftest import Topics, finish_replay
from tests.e2e.conftest import Replicas, reconcile, start_replay


@pytest.mark.kafka
@pytest.mark.slow
def test_killed_and_stopped_replicas_lose_nothing(
    kafka: Broker,
    topics: Topics,
    replicas: Replicas,
    balancer: Callable[..., Balancer],
    sample_files: list[str],
    tmp_path: Path,
) -> None:
    fleet = replicas.start(3)
    killed, stopped, survivor = fleet
    front = balancer(fleet)
    files = sample_files[:2]
    producers = [
        start_replay([f], front.url, 300, log=tmp_path / f"producer-{i}.log")
        for i, f in enumerate(files)
    ]
    wait_until(lambda: topic_count(kafka.bootstrap_servers, topics.raw) >= 800, 30, "800 events")

    killed.kill()  # SIGKILL: requests in flight on it die with it
    # The replay goes on through the others before the next fault.
    at_kill = topic_count(kafka.bootstrap_servers, topics.raw)
    wait_until(
        lambda: topic_count(kafka.bootstrap_servers, topics.raw) >= at_kill + 100,
        30,
        "100 events after the kill",
    )
    stopped.signal(signal.SIGTERM)  # a graceful drain: unready, finish in flight, flush, exit
    assert stopped.wait(timeout_s=30) == 0
    front.wait_until({killed.collector_id: "DOWN", stopped.collector_id: "DOWN"}, timeout_s=10)
    assert front.server_states()[survivor.collector_id].startswith("UP")
    assert all(p.alive() for p in producers), "the replay ended before the faults"

    summaries = [finish_replay(p, timeout_s=120) for p in producers]
    for summary in summaries:
        assert summary["exit"] == 0
        assert (summary["records"], summary["accepted"], summary["failed"]) == (2000, 2000, 0)

    report = reconcile(files, kafka, topics)
    print(f"replica faults: producers {summaries}; reconcile {report}")
    assert report["missing"] == 0
    assert report["unexpected"] == 0
    assert report["exit"] == 0

    # Duplicates (an event Kafka took whose answer died with its replica, then sent again) carry
    # the same event_id; counting copies per id gives the reconciliation's figure.
    raw = read_topic(kafka.bootstrap_servers, topics.raw)
    copies = Counter(json.loads(m.value() or b"")["event_id"] for m in raw)
    assert len(copies) == 4000
    assert sum(1 for n in copies.values() if n > 1) == report["duplicates"]
    handled = Counter(collector_id_of(m) for m in raw)
    assert set(handled) == {r.collector_id for r in fleet}
    # The survivor carried the rest of the replay alone.
    assert handled[survivor.collector_id] > handled[killed.collector_id]
