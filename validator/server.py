"""Probes and metrics over HTTP, beside the loop: `/healthz`, `/readyz`, `/metrics`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from validator.loop import Validator


class _Counts(Collector):
    def __init__(self, validator: Validator) -> None:
        self.validator = validator

    def collect(self) -> Iterator[Metric]:
        counts = self.validator.counts
        records = CounterMetricFamily(
            "validator_records", "Raw records handled, by outcome", labels=["outcome"]
        )
        records.add_metric(["validated"], counts.validated)
        records.add_metric(["dead_letter"], counts.dead_letter)
        records.add_metric(["duplicate"], counts.duplicates)
        yield records
        reasons = CounterMetricFamily(
            "validator_dead_letters", "Dead-letter records, by reason", labels=["reason"]
        )
        for reason, n in sorted(counts.by_reason.items()):
            reasons.add_metric([reason], n)
        yield reasons
        yield CounterMetricFamily(
            "validator_transactions", "Committed transactions", value=counts.transactions
        )
        yield CounterMetricFamily(
            "validator_aborted_transactions", "Aborted transactions", value=counts.aborted
        )
        yield CounterMetricFamily(
            "validator_commit_seconds",
            "Time spent sending offsets and committing transactions",
            value=counts.commit_s,
        )
        yield GaugeMetricFamily(
            "validator_assigned_partitions",
            "Raw partitions this process owns",
            value=counts.assigned_partitions,
        )


def serve(validator: Validator, host: str, port: int) -> ThreadingHTTPServer:
    """Start the probe server on a daemon thread; the caller shuts it down."""
    registry = CollectorRegistry()
    registry.register(_Counts(validator))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                # Liveness: the process answers; never asks Kafka.
                self._send(200, b"ok\n", "text/plain")
            elif path == "/readyz":
                ready = validator.ready.is_set()
                self._send(
                    200 if ready else 503, b"ready\n" if ready else b"not ready\n", "text/plain"
                )
            elif path == "/metrics":
                self._send(200, generate_latest(registry), "text/plain; version=0.0.4")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes every few seconds would drown the log."""

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="probes", daemon=True).start()
    return server
