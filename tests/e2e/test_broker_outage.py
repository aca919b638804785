"""The broker stops in the middle of a replay and comes back: 503s, back-off, nothing lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from devstack.balancer import Balancer
from devstack.kafka import Broker, topic_count
from devstack.proc import wait_until
from tests.conftest import Topics, finish_replay, producer_retries
from tests.e2e.conftest import Replicas, reconcile, start_replay

# Readiness is checked every half second here (2 s by default) so the test can watch it turn.
FAST_READINESS = {"COLLECTOR_READINESS_INTERVAL_S": "0.5", "COLLECTOR_ACK_TIMEOUT_S": "2"}


@pytest.mark.kafka
@pytest.mark.slow
def test_broker_stopped_mid_replay_and_started_again_loses_nothing(
    kafka: Broker,
    topics: Topics,
    replicas: Replicas,
    balancer: Callable[..., Balancer],
    sample_files: list[str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    fleet = replicas.start(2, env=FAST_READINESS)
    front = balancer(fleet)
    files = sample_files[:1]
    producer = start_replay(
        files,
        front.url,
        250,
        "--max-attempts",
        "1000",
        "--max-retry-s",
        "150",
        "--backoff-cap-s",
        "2",
        "--progress-interval-s",
        "0.2",
        log=tmp_path / "producer.log",
    )
    # A failure below must not leave the producer running into the next test on this worker.
    request.addfinalizer(lambda: producer.stop(timeout_s=5))
    wait_until(lambda: topic_count(kafka.bootstrap_servers, topics.raw) >= 300, 30, "300 events")

    kafka.stop()
    try:
        for replica in fleet:
            replica.wait_for("/readyz", timeout_s=20, status=503)
            assert replica.get("/healthz") == 200  # alive, only not ready
        probe = httpx.post(
            fleet[0].url + "/api/v1/collect",
            json={
                "event_type": "Probe",
                "schema_version": "1",
                "payload": {},
                "event_id": "outage-probe:0",
            },
            timeout=15,
        )
        assert probe.status_code == 503
        assert int(probe.headers["retry-after"]) >= 0
        # Through the balancer too: every replica is down, the client is told to come back.
        front.wait_until({r.collector_id: "DOWN" for r in fleet}, timeout_s=10)
        refused = httpx.post(front.url + "/api/v1/collect", content=b"{}", timeout=15)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        # The producer backs off and tries again, rather than giving up, while the broker is down.
        retried = producer_retries(tmp_path / "producer.log")
        wait_until(
            lambda: (
                producer_retries(tmp_path / "producer.log") >= retried + 10 or not producer.alive()
            ),
            60,
            "ten more retries",
        )
        assert producer.alive(), "the producer gave up instead of backing off"
    finally:
        kafka.start()

    # The broker's restart and the collectors' reconnection take longer on a loaded machine.
    for replica in fleet:
        replica.wait_for("/readyz", timeout_s=120)
    summary = finish_replay(producer, timeout_s=180)
    assert summary["exit"] == 0
    assert (summary["records"], summary["accepted"], summary["failed"]) == (2000, 2000, 0)
    assert summary["retries"] > 0  # it did back off and resume

    report = reconcile(files, kafka, topics)
    print(f"broker outage: producer {summary}; reconcile {report}")
    assert report["missing"] == 0
    assert report["unexpected"] == 0
    assert report["raw"] >= 2000 + report["duplicates"]
    assert report["exit"] == 0
