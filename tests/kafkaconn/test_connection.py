"""The one Kafka connection model: what each component reads, and the client config it builds."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from collector.settings import Settings as CollectorSettings
from kafkaconn import KafkaConnection
from producer.settings import ReconcileSettings
from validator.settings import Settings as ValidatorSettings

SECURED = {
    "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9093,kafka-2:9093",
    "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "collector",
    "KAFKA_SASL_PASSWORD": "s3cret-pw",
    "KAFKA_PROPERTIES": '{"client.id": "mine", "ssl.endpoint.identification.algorithm": "none"}',
}


@pytest.mark.parametrize(
    ("prefix", "settings"),
    [
        ("COLLECTOR_", CollectorSettings),
        ("VALIDATOR_", ValidatorSettings),
        ("PRODUCER_", ReconcileSettings),
    ],
)
def test_every_component_reads_the_same_variables_under_its_own_prefix(
    prefix: str, settings: type[CollectorSettings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    for name, value in {**SECURED, "KAFKA_CA_FILE": str(ca)}.items():
        monkeypatch.setenv(prefix + name, value)
    monkeypatch.setenv("COLLECTOR_ALLOW_ANONYMOUS", "true")
    read = settings()
    config = read.kafka.client_config({"client.id": "default", "acks": "all"})
    assert config == {
        "acks": "all",
        "bootstrap.servers": "kafka-1:9093,kafka-2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "collector",
        "sasl.password": "s3cret-pw",
        "ssl.ca.location": str(ca),
        # the properties win over the client's defaults and over the named settings
        "client.id": "mine",
        "ssl.endpoint.identification.algorithm": "none",
    }
    assert "s3cret-pw" not in repr(read)
    assert "s3cret-pw" not in str(read.kafka)


def test_reconcile_still_reads_its_old_bootstrap_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODUCER_BOOTSTRAP_SERVERS", "old:9092")
    assert ReconcileSettings().kafka.bootstrap_servers == "old:9092"
    monkeypatch.setenv("PRODUCER_KAFKA_BOOTSTRAP_SERVERS", "new:9092")
    assert ReconcileSettings().kafka.bootstrap_servers == "new:9092"
    assert ReconcileSettings(kafka={"bootstrap_servers": "flag:9092"}).kafka.bootstrap_servers == (
        "flag:9092"
    )


def test_a_plain_connection_adds_nothing_but_the_servers() -> None:
    assert KafkaConnection(bootstrap_servers="b:1").client_config({"linger.ms": 5}) == {
        "linger.ms": 5,
        "bootstrap.servers": "b:1",
    }


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"KAFKA_SASL_USERNAME": "u", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
          "KAFKA_SASL_MECHANISM": "PLAIN"},
         "KAFKA_SASL_PASSWORD is needed with KAFKA_SASL_USERNAME"),
        ({"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p", "KAFKA_SASL_MECHANISM": "PLAIN"},
         "KAFKA_SASL_USERNAME is set but KAFKA_SECURITY_PROTOCOL is not"),
        ({"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p",
          "KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
         "KAFKA_SASL_MECHANISM is needed"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "Input should be 'PLAINTEXT', 'SSL'"),
        ({"KAFKA_PROPERTIES": "{not json"}, "not valid JSON"),
        ({"KAFKA_PROPERTIES": "[1]"}, "must be a JSON object"),
    ],
)  # fmt: skip
def test_settings_that_do_not_fit_are_refused(
    env: dict[str, str], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv("VALIDATOR_" + name, value)
    with pytest.raises(ValidationError, match=says):
        ValidatorSettings()


def test_the_sasl_mechanism_may_come_from_the_properties(monkeypatch: pytest.MonkeyPatch) -> None:
    properties = '{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", '
    properties += '"sasl.username": "u", "sasl.password": "p"}'
    monkeypatch.setenv("VALIDATOR_KAFKA_PROPERTIES", properties)
    assert ValidatorSettings().kafka.client_config()["sasl.mechanism"] == "PLAIN"
