"""Why a Kafka client got nowhere, in one line, from what its error callback was told."""

from __future__ import annotations

from confluent_kafka import KafkaError

from kafkaconn.reasons import ReasonWatch

AUTH = (
    "sasl_ssl://b:9093/bootstrap: SASL authentication error: Authentication failed during "
    "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
)


def test_a_refusal_outlives_the_all_brokers_down_that_follows_it() -> None:
    watch = ReasonWatch("b:9093")
    watch(KafkaError(KafkaError._AUTHENTICATION, AUTH + " (after 312ms in state AUTH_REQ)"))
    watch(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    watch(KafkaError(KafkaError._TRANSPORT, "b:9093/bootstrap: Disconnected"))
    assert watch.refused
    assert str(watch.explain("reading t")) == (
        f"reading t: {AUTH} (check the SASL mechanism, user name and password)"
    )


def test_why_a_connection_failed_says_more_than_all_brokers_down() -> None:
    watch = ReasonWatch("b:1")
    watch(KafkaError(KafkaError._TRANSPORT, "b:1/bootstrap: Connection refused (after 0ms in "
                     "state CONNECT, 3 identical error(s) suppressed)"))  # fmt: skip
    watch(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert not watch.refused
    assert str(watch.explain("connecting")) == (
        "connecting: b:1/bootstrap: Connection refused (is Kafka running at b:1?)"
    )


def test_silence_is_said_too() -> None:
    assert str(ReasonWatch("b:1").explain("connecting")) == (
        "connecting: no answer from Kafka at b:1 in time"
    )
