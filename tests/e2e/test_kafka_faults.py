"""Broker faults in a three-broker cluster under load: a 202 survives them, none is false.

Each test replays sample files with the real producer through a recording proxy, HAProxy and
collector replicas into topics with three replicas and `min.insync.replicas=2`, breaks the
cluster mid-replay, and ends with the reconciliation (0 missing, 0 unexpected), every root_id
answered 202 found on the raw topic, and no root_id written twice.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from devstack.balancer import Balancer
from devstack.collector import CollectorProcess
from devstack.kafka import Broker, Cluster, read_topic
from devstack.proc import ROOT, ManagedProcess, free_port, wait_until
from tests.conftest import Topics, finish_replay
from tests.e2e.conftest import SAMPLE_ROWS, Replicas, reconcile, start_replay

ACK_TIMEOUT_S = 5.0
# Readiness is checked every half second (2 s by default) so the tests can watch it turn.
COLLECTOR_ENV = {
    "COLLECTOR_READINESS_INTERVAL_S": "0.5",
    "COLLECTOR_ACK_TIMEOUT_S": f"{ACK_TIMEOUT_S:g}",
}
# A replay may wait out a whole outage: retry for minutes, at most two seconds apart.
PATIENT = ("--max-attempts", "1000", "--max-retry-s", "240", "--backoff-cap-s", "2")
RATE_PER_S = 150


@dataclass
class Recording:
    """The recording proxy in front of the balancer: its URL and, once stopped, its answers."""

    process: ManagedProcess
    url: str
    out: Path

    def answers(self) -> list[dict[str, Any]]:
        self.process.signal(signal.SIGTERM)
        self.process.finish(30)
        return [json.loads(line) for line in self.out.read_text().splitlines() if line]


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Callable[[str], Recording]]:
    started: list[Recording] = []

    def start(upstream: str) -> Recording:
        port = free_port()
        out = tmp_path / f"answers-{len(started)}.jsonl"
        process = ManagedProcess(
            [
                sys.executable,
                "-m",
                "tests.e2e.recorder",
                "--upstream",
                upstream,
                "--port",
                str(port),
                "--out",
                str(out),
            ],
            "the recording proxy",
            log_path=tmp_path / "recorder.log",
            own_session=False,
            die_with_parent=False,
        )
        process.spawn()
        made = Recording(process, f"http://127.0.0.1:{port}", out)
        started.append(made)
        wait_until(lambda: _answers_http(made.url), 30, "the recording proxy")
        return made

    try:
        yield start
    finally:
        for made in started:
            if made.process.alive():
                made.process.kill()


def _answers_http(url: str) -> bool:
    try:
        httpx.get(url + "/healthz", timeout=2)
    except httpx.HTTPError:
        return False
    return True


def high_watermarks(cluster: Cluster, topic: str) -> dict[int, int]:
    """Partition -> high watermark; partitions that do not answer now are left out."""
    consumer = Consumer(
        {"bootstrap.servers": cluster.bootstrap_servers, "group.id": "faults", "log_level": 0}
    )
    try:
        ends = {}
        for partition in cluster.metadata(topic).topics[topic].partitions:
            with contextlib.suppress(KafkaException):
                ends[partition] = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=3
                )[1]
        return ends
    finally:
        consumer.close()


def on_topic(cluster: Cluster, topic: str) -> int:
    return sum(high_watermarks(cluster, topic).values())


def busiest_leader(cluster: Cluster, topic: str) -> int:
    """The broker leading the partitions that hold the most records so far."""
    ends = high_watermarks(cluster, topic)
    load: Counter[int] = Counter()
    for partition, leader in cluster.leaders(topic).items():
        load[leader] += ends.get(partition, 0)
    return load.most_common(1)[0][0]


def leaders_avoid(cluster: Cluster, topic: str, node_id: int) -> bool:
    with contextlib.suppress(KafkaException):
        return all(leader not in (node_id, -1) for leader in cluster.leaders(topic).values())
    return False


def busiest_leader_after(cluster: Cluster, topic: str, records: int) -> Broker:
    """Once `topic` holds `records`, the broker leading its fullest partitions."""
    wait_until(lambda: on_topic(cluster, topic) >= records, 60, f"{records} events")
    return cluster.broker(busiest_leader(cluster, topic))


def writes_go_on_without(cluster: Cluster, topic: str, victim: Broker) -> None:
    """Until every partition of `topic` has a leader other than `victim`, then 300 more records."""
    wait_until(lambda: leaders_avoid(cluster, topic, victim.node_id), 60, "new leaders")
    at_failover = on_topic(cluster, topic)
    wait_until(lambda: on_topic(cluster, topic) >= at_failover + 300, 60, "writes go on")


@dataclass
class Load:
    """The replay under way: collector replicas, the recording proxy, the producer process."""

    fleet: list[CollectorProcess]
    recording: Recording
    producer: ManagedProcess


@pytest.fixture
def load(
    cluster_replicas: Replicas,
    balancer: Callable[..., Balancer],
    recorder: Callable[[str], Recording],
    tmp_path: Path,
) -> Iterator[Callable[..., Load]]:
    """Start two replicas behind HAProxy and the recording proxy, and a patient replay."""
    producers: list[ManagedProcess] = []

    def start(files: Sequence[str], rate_per_s: float = RATE_PER_S) -> Load:
        fleet = cluster_replicas.start(2, env=COLLECTOR_ENV)
        recording = recorder(balancer(fleet).url)
        producer = start_replay(files, recording.url, rate_per_s, *PATIENT, log=tmp_path / "p.log")
        producers.append(producer)
        return Load(fleet, recording, producer)

    try:
        yield start
    finally:
        for producer in producers:
            if producer.alive():
                producer.kill()


def settle(
    fault: str, files: Sequence[str], cluster: Cluster, topics: Topics, load: Load
) -> list[dict[str, Any]]:
    """Finish the replay, check what every fault test promises; the recorded answers."""
    summary = finish_replay(load.producer, timeout_s=300)
    answers = load.recording.answers()
    expected = SAMPLE_ROWS * len(files)
    assert summary["exit"] == 0, summary
    assert (summary["records"], summary["accepted"], summary["failed"]) == (expected, expected, 0)

    cluster.heal()  # every broker back, so the whole topic can be read
    report = reconcile(files, cluster, topics)
    raw = read_topic(cluster.bootstrap_servers, topics.raw)
    root_ids = Counter(json.loads(m.value() or b"")["root_id"] for m in raw)
    accepted = [root for answer in answers for _, root in answer["accepted"]]
    first_try: dict[str, float] = {}
    settled: dict[str, float] = {}
    for answer in sorted(answers, key=lambda a: a["start"]):
        for event_id in answer["event_ids"]:
            first_try.setdefault(event_id, answer["start"])
        for index, _ in answer["accepted"]:
            settled[answer["event_ids"][index]] = answer["end"]
    statuses = Counter(a["status"] for a in answers)
    figures = {
        "fault": fault,
        "events": len(first_try),
        "requests": len(answers),
        "accepted_202": len(accepted),
        "refused_503": statuses[503],
        "refusals": dict(Counter(a["error"] for a in answers if a["status"] != 202)),
        "other_statuses": {s: n for s, n in statuses.items() if s not in (202, 503)},
        "unanswered": sum(1 for a in answers if a["transport_error"]),
        "retries": summary["retries"],
        "missing": report["missing"],
        "unexpected": report["unexpected"],
        "duplicate_root_ids": sum(1 for n in root_ids.values() if n > 1),
        "duplicate_event_ids": report["duplicates"],
        "accepted_not_on_topic": len(set(accepted) - set(root_ids)),
        "longest_request_s": round(max(a["end"] - a["start"] for a in answers), 3),
        "longest_event_s": round(max(settled[e] - first_try[e] for e in settled), 3),
        "replay_s": summary["seconds"],
    }
    print("fault figures:", json.dumps(figures))
    with (ROOT / ".cache" / "fault-figures.jsonl").open("a") as out:
        out.write(json.dumps(figures) + "\n")

    assert report["missing"] == 0, report
    assert report["unexpected"] == 0, report
    assert report["exit"] == 0, report
    assert len(accepted) == len(set(accepted)) == expected  # one 202 per event, fresh root_ids
    assert figures["accepted_not_on_topic"] == 0, "a 202 was given for a record Kafka lost"
    assert figures["duplicate_root_ids"] == 0, "an envelope was written twice"
    assert sum(root_ids.values()) == report["raw"]
    return answers


@pytest.mark.kafka
@pytest.mark.slow
def test_leader_of_busiest_partitions_killed_mid_replay_and_restarted(
    kafka_cluster: Cluster,
    cluster_topics: Topics,
    load: Callable[..., Load],
    sample_files: list[str],
) -> None:
    files = sample_files[:1]
    replay = load(files)
    raw = cluster_topics.raw
    victim = busiest_leader_after(kafka_cluster, raw, 500)
    victim.kill()
    # Two replicas in sync still meet min.insync.replicas: writes go on without it.
    writes_go_on_without(kafka_cluster, raw, victim)
    assert replay.producer.alive(), "the replay ended before the broker came back"
    victim.start()
    kafka_cluster.wait_in_sync([raw])

    settle("leader SIGKILL", files, kafka_cluster, cluster_topics, replay)


@pytest.mark.kafka
@pytest.mark.slow
def test_rolling_restart_of_all_three_brokers_during_a_replay(
    kafka_cluster: Cluster,
    cluster_topics: Topics,
    load: Callable[..., Load],
    sample_files: list[str],
) -> None:
    files = sample_files
    # Slower and longer than the others: three restarts, each waiting for a full ISR, must fit.
    replay = load(files, rate_per_s=100)
    raw = cluster_topics.raw
    wait_until(lambda: on_topic(kafka_cluster, raw) >= 300, 60, "300 events")

    for broker in kafka_cluster.brokers:
        assert replay.producer.alive(), f"the replay ended before broker {broker.node_id}"
        before = on_topic(kafka_cluster, raw)
        assert broker.stop(), f"broker {broker.node_id} was not running"  # SIGTERM, clean
        broker.start()
        # As an operator would: the next broker only once every replica has caught up.
        kafka_cluster.wait_in_sync([raw, cluster_topics.dead_letter])
        assert on_topic(kafka_cluster, raw) > before, "no writes during this broker's restart"

    settle("rolling restart", files, kafka_cluster, cluster_topics, replay)


def _readiness(replica: CollectorProcess) -> dict[str, Any]:
    answer = httpx.get(replica.url + "/readyz", timeout=5)
    body = answer.json()
    assert isinstance(body, dict)
    return {**body, "code": answer.status_code}


@pytest.mark.kafka
@pytest.mark.slow
def test_two_of_three_brokers_down_refuses_with_503_until_one_returns(
    kafka_cluster: Cluster,
    cluster_topics: Topics,
    load: Callable[..., Load],
    sample_files: list[str],
) -> None:
    files = sample_files[:1]
    replay = load(files)
    raw = cluster_topics.raw
    wait_until(lambda: on_topic(kafka_cluster, raw) >= 400, 60, "400 events")

    first, second, survivor = kafka_cluster.brokers
    first.kill()
    second.kill()
    both_down = time.time()
    # min.insync.replicas=2 cannot be met: every replica says so and stops taking traffic.
    for replica in replay.fleet:
        wait_until(
            lambda r=replica: "min.insync.replicas" in _readiness(r).get("reason", ""),
            60,
            f"{replica.collector_id} unready for want of replicas in sync",
        )
        assert _readiness(replica)["code"] == 503
        assert replica.get("/healthz") == 200  # alive, only not ready
    probe = httpx.post(
        replay.fleet[0].url + "/api/v1/collect",
        json={"event_type": "Probe", "schema_version": "1", "payload": {}},
        timeout=ACK_TIMEOUT_S + 30,
    )
    assert probe.status_code == 503
    assert int(probe.headers["retry-after"]) >= 0
    time.sleep(3)  # the replay keeps trying meanwhile
    assert replay.producer.alive(), "the producer gave up instead of backing off"

    returning = time.time()
    first.start()
    for replica in replay.fleet:
        replica.wait_for("/readyz", timeout_s=120)

    answers = settle("two of three down", files, kafka_cluster, cluster_topics, replay)
    # Asked after both were gone, answered before one came back: never a 202.
    outage = [a for a in answers if a["start"] >= both_down and a["end"] <= returning]
    assert all(a["status"] != 202 and not a["accepted"] for a in outage)
    answered = [a for a in outage if not a["transport_error"]]
    assert answered, "no request was answered during the outage"
    assert all(a["status"] == 503 for a in answered), Counter(a["status"] for a in answered)
    assert all(a["retry_after"] is not None for a in answered)
    longest_s = max(a["end"] - a["start"] for a in answered)
    print(
        f"two of three down: {len(answered)} answers in the outage (and "
        f"{len(outage) - len(answered)} connections closed unanswered), longest {longest_s:.2f}s"
    )
    # Bounded by the ack timeout (plus a loaded machine's slack), not left hanging.
    assert longest_s < ACK_TIMEOUT_S + 10
    assert survivor.running_pid() is not None


@pytest.mark.kafka
@pytest.mark.slow
def test_paused_leader_is_slow_not_dead(
    kafka_cluster: Cluster,
    cluster_topics: Topics,
    load: Callable[..., Load],
    sample_files: list[str],
) -> None:
    files = sample_files[:1]
    replay = load(files)
    raw = cluster_topics.raw
    victim = busiest_leader_after(kafka_cluster, raw, 500)
    victim.pause()  # SIGSTOP: sockets stay open, nothing answers, heartbeats stop
    try:
        writes_go_on_without(kafka_cluster, raw, victim)
        assert replay.producer.alive(), "the replay ended before the broker was resumed"
    finally:
        victim.resume()
    kafka_cluster.wait_in_sync([raw])

    settle("leader SIGSTOP", files, kafka_cluster, cluster_topics, replay)
