"""Every client of the project against a real broker that speaks only SASL_SSL with SCRAM-SHA-512
(certificates and users made by devstack/kafka/secure.py): the collector, the validator and
`producer reconcile` work with their own users, and a wrong password or an untrusted CA is said
in one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from devstack.collector import CollectorProcess
from devstack.kafka import Broker
from devstack.kafka.secure import Security, make_ca, secured_broker
from devstack.proc import ROOT, free_port, wait_until
from devstack.validator import ValidatorProcess
from kafkaconn.reading import read_to_end
from producer.sample import write_samples
from tests.conftest import finish_replay, start_replay

ROWS = 60

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Broker, Security]]:
    broker, security = secured_broker(
        tmp_path_factory.mktemp("kafka-sasl-ssl"), free_port(), controller_port=free_port(),
        die_with_parent=True,
    )  # fmt: skip
    broker.start()
    try:
        yield broker, security
    finally:
        broker.stop()


def env(prefix: str, secured: tuple[Broker, Security], user: str, **wrong: str) -> dict[str, str]:
    """`<prefix>_KAFKA_*` for `user`, with `wrong` fields replaced."""
    broker, security = secured
    connection = security.connection(broker.bootstrap_servers, user)
    values: dict[str, Any] = {
        **connection.model_dump(exclude={"properties"}),
        "sasl_password": security.passwords[user],
        **wrong,
    }
    return {f"{prefix}_KAFKA_{k.upper()}": str(v) for k, v in values.items()}


def reconcile(files: list[Path], topics: tuple[str, str], kafka: dict[str, str]) -> Any:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PRODUCER_")}
    return subprocess.run(
        [sys.executable, "-m", "producer", "reconcile", *map(str, files),
         "--raw-topic", topics[0], "--dead-letter-topic", topics[1]],
        env={**clean, **kafka}, cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_collector_validator_and_reconcile_work_over_sasl_ssl(
    secured: tuple[Broker, Security], tmp_path: Path
) -> None:
    broker, security = secured
    run = uuid.uuid4().hex[:8]
    raw, dlq, valid, invalid = (f"{name}-{run}" for name in ("raw", "raw-dlq", "ok", "ok-dlq"))
    broker.create_topics([raw, dlq, valid, invalid])
    files = write_samples(tmp_path / "data", rows=ROWS, months=("2023-01",))
    collector = CollectorProcess(
        broker.bootstrap_servers, raw, dlq, log_path=tmp_path / "collector.log",
        env={**env("COLLECTOR", secured, "collector"), "COLLECTOR_ALLOW_ANONYMOUS": "true"},
    )  # fmt: skip
    validator = ValidatorProcess(
        broker.bootstrap_servers, raw_topic=raw, validated_topic=valid, dead_letter_topic=invalid,
        dedup_topic=f"dedup-{run}", group_id=f"validator-{run}",
        env=env("VALIDATOR", secured, "validator"), log_path=tmp_path / "validator.log",
    )  # fmt: skip
    collector.start()  # ready: it reached both topics over SASL_SSL
    try:
        assert finish_replay(start_replay(files, collector.url))["exit"] == 0
        validator.start()
        admin = security.connection(broker.bootstrap_servers).client_config()
        wait_until(
            lambda: len(list(read_to_end(admin, valid, 30))) == ROWS, 90, "validated records"
        )
    finally:
        collector.stop()
        validator.stop()
    producer = env("PRODUCER", secured, "producer")
    for topics in ((raw, dlq), (valid, invalid)):
        result = reconcile(files, topics, producer)
        assert result.returncode == 0, result.stderr
        report = orjson.loads(result.stdout.splitlines()[-1])
        assert (report["raw"], report["missing"], report["unexpected"]) == (ROWS, 0, 0)
        assert result.stderr.splitlines() == [
            f"verdict: all {ROWS} rows are there ({ROWS} raw and 0 dead-lettered)"
        ]


@pytest.mark.parametrize(
    ("case", "reason", "hint"),
    [
        ("password", "SASL authentication error: Authentication failed",
         "(check the SASL mechanism, user name and password)"),
        ("ca", "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed",
         "(the broker's certificate is not signed by the CA file given)"),
    ],
)  # fmt: skip
def test_a_wrong_password_or_an_untrusted_ca_is_said_in_one_line(
    secured: tuple[Broker, Security], tmp_path: Path, case: str, reason: str, hint: str
) -> None:
    broker, _ = secured
    wrong = (
        {"sasl_password": "not-the-password"}
        if case == "password"
        else {"ca_file": str(make_ca(tmp_path / "other", "other-ca"))}
    )
    files = write_samples(tmp_path / "data", rows=3, months=("2023-01",))
    kafka = env("PRODUCER", secured, "producer", **wrong)
    result = reconcile(files, ("raw-events", "raw-events-dlq"), kafka)
    assert result.returncode == 3
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: reading raw-events: sasl_ssl://{broker.bootstrap_servers}/")
    assert reason in line
    assert line.endswith(hint)

    validator = ValidatorProcess(
        broker.bootstrap_servers, env=env("VALIDATOR", secured, "validator", **wrong),
        log_path=tmp_path / "validator.log",
    )  # fmt: skip
    collector = CollectorProcess(
        broker.bootstrap_servers, log_path=tmp_path / "collector.log",
        env={**env("COLLECTOR", secured, "collector", **wrong), "COLLECTOR_ALLOW_ANONYMOUS": "1"},
    )  # fmt: skip
    validator.spawn(capture=True)
    collector.start(wait_ready=False)
    try:
        logs = (tmp_path / "validator.log", tmp_path / "collector.log")
        wait_until(lambda: all(reason in log.read_text() for log in logs), 30, "the reason")
        time.sleep(3)  # long enough for librdkafka to retry and say it again
        assert (collector.get("/readyz"), validator.fetch("/readyz")[0]) == (503, 503)
    finally:
        collector.stop()
        validator.stop()
    # The validator says it once (it changes only when the reason does); the collector's sink
    # once per kind of error per 10 s, and librdkafka's own FAIL lines not at all.
    said = [line for line in logs[0].read_text().splitlines() if "certificate verify" in line
            or "Authentication failed" in line]  # fmt: skip
    assert len(said) == 1, said
    assert hint in said[0]
    said = [line for line in logs[1].read_text().splitlines() if "certificate verify" in line
            or "Authentication failed" in line]  # fmt: skip
    assert 1 <= len(said) <= 2, said
    assert all('"collector.sink"' in line for line in said), said
