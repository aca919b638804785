"""Why a Kafka client got nowhere, in one line: from what librdkafka told its error callback, not
from its log (which says it again per broker, per retry)."""

from __future__ import annotations

import re
import threading

from confluent_kafka import KafkaError


class KafkaUnavailable(RuntimeError):
    """Kafka could not be reached, refused our credentials or our TLS, or did not answer in time."""


class TopicReadError(RuntimeError):
    """A topic to read does not exist (or cannot be described)."""


_REFUSALS = frozenset(
    {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError._SSL}
)


class ReasonWatch:
    """A librdkafka `error_cb` that keeps the latest reason in one line, so a command can say why
    it got nowhere instead of passing on librdkafka's log (which repeats it per broker, per try).
    """

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._reason: str | None = None
        self._refused = False
        self._lock = threading.Lock()

    def __call__(self, err: KafkaError) -> None:
        text = re.sub(r"\s*\(after \d+ms in state \w+.*?\)$", "", err.str())
        refused = err.code() in _REFUSALS or "SSL handshake failed" in text
        with self._lock:
            # A refusal, or why a connection failed, says more than the "all brokers down" after.
            if err.code() == KafkaError._ALL_BROKERS_DOWN and self._reason is not None:
                return
            if refused or not self._refused:
                self._reason, self._refused = text, refused

    @property
    def refused(self) -> bool:
        """The cluster answered but refused our credentials or we refused its certificate."""
        return self._refused

    def explain(self, doing: str) -> KafkaUnavailable:
        """The one-line error for a failed `doing` ("reading raw-events"), with what to check."""
        with self._lock:
            reason = self._reason
        if reason is None:
            return KafkaUnavailable(
                f"{doing}: no answer from Kafka at {self.bootstrap_servers} in time"
            )
        if "certificate verify failed" in reason:
            hint = "the broker's certificate is not signed by the CA file given"
        elif "SSL handshake failed" in reason:
            hint = "check the security protocol and the CA file"
        elif self._refused:
            hint = "check the SASL mechanism, user name and password"
        else:
            hint = f"is Kafka running at {self.bootstrap_servers}?"
        return KafkaUnavailable(f"{doing}: {reason} ({hint})")
