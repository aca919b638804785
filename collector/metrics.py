"""Prometheus metrics of one collector process, in a registry of its own."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

# Kafka acknowledgements: ~1 ms on a quiet local broker, seconds when the cluster struggles.
_ACK_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The collector's counters, histogram and gauges; label children cached for the hot path."""

    def __init__(
        self,
        queue_depth: Callable[[], float],
        kafka_up: Callable[[], float],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "collector_http_requests",
            "HTTP requests answered, by route and status code",
            ["route", "status"],
            registry=self.registry,
        )
        self.events_accepted = Counter(
            "collector_events_accepted",
            "Events acknowledged by Kafka on the raw topic",
            registry=self.registry,
        )
        self.events_dead_lettered = Counter(
            "collector_events_dead_lettered",
            "Rejected events acknowledged by Kafka on the dead-letter topic, by error code",
            ["code"],
            registry=self.registry,
        )
        self.events_failed = Counter(
            "collector_events_failed",
            "Events not stored (the client was told to retry, or 413), by reason",
            ["reason"],
            registry=self.registry,
        )
        self.kafka_ack_seconds = Histogram(
            "collector_kafka_ack_seconds",
            "Time from handing a request's records to the producer until Kafka acknowledged all",
            buckets=_ACK_BUCKETS_S,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "collector_requests_rate_limited",
            "Collect requests answered 429 because their API key was over its rate limit",
            registry=self.registry,
        )
        self.unauthorized = Counter(
            "collector_requests_unauthorized",
            "Collect requests answered 401, by reason: missing (no Authorization header), "
            "malformed (not `Bearer <key>`), wrong_key",
            ["reason"],
            registry=self.registry,
        )
        self.connections_closed = Counter(
            "collector_connections_closed",
            "Keep-alive connections closed after an answer, by reason (max_age, draining)",
            ["reason"],
            registry=self.registry,
        )
        self._gauges(queue_depth, kafka_up)
        self._children: dict[tuple[str, ...], MetricWrapperBase] = {}

    def _gauges(self, queue_depth: Callable[[], float], kafka_up: Callable[[], float]) -> None:
        """The gauges: read from the sink when scraped, or set by the app."""
        self.send_queue_depth = Gauge(
            "collector_send_queue_depth",
            "Records in the producer's queue, not yet acknowledged",
            registry=self.registry,
        )
        self.send_queue_depth.set_function(queue_depth)
        self.kafka_up = Gauge(
            "collector_kafka_up",
            "1 when the last check reached the broker and found the topics, else 0",
            registry=self.registry,
        )
        self.kafka_up.set_function(kafka_up)
        self.body_limit_bytes = Gauge(
            "collector_body_limit_bytes",
            "The body limit in force: COLLECTOR_MAX_BODY_BYTES, or less when a topic's "
            "max.message.bytes cannot hold the records of larger bodies",
            registry=self.registry,
        )
        # Set by the app: 1 while /readyz answers 200 (Kafka reachable, not draining).
        self.ready = Gauge(
            "collector_ready",
            "1 while this collector takes events (Kafka reachable, not draining), else 0",
            registry=self.registry,
        )

    def request(self, route: str, status: int) -> None:
        """Count one answered request."""
        key = (route, str(status))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(*key)
        child.inc()  # type: ignore[attr-defined]

    def dead_lettered(self, code: str, count: int = 1) -> None:
        """Count rejected events that reached the dead-letter topic."""
        self.events_dead_lettered.labels(code).inc(count)

    def failed(self, reason: str, count: int = 1) -> None:
        """Count events that were not stored."""
        self.events_failed.labels(reason).inc(count)

    def connection_closed(self, reason: str) -> None:
        """Count a keep-alive connection told `Connection: close` (its age, or draining)."""
        self.connections_closed.labels(reason).inc()

    def render(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
