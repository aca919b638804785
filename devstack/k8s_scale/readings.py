"""What the cluster says, read and turned into numbers: nothing here runs a command.

A collector's own counters (`/metrics`, through the API server's pod proxy) give events; the
metrics API (metrics-server) gives CPU per pod and node, as `kubectl top` shows it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ACCEPTED = "collector_events_accepted_total"
REQUESTS = "collector_http_requests_total"


def counter(text: str, name: str) -> float:
    """The sum of every sample of counter `name` in a Prometheus text exposition."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def server_errors(text: str) -> float:
    """Requests answered 5xx, from `collector_http_requests_total{status="5.."}`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(REQUESTS + "{") and re.search(r'status="5\d\d"', line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def cpu_m(quantity: str) -> float:
    """A metrics API CPU quantity ("123456789n", "12m", "1") in millicores."""
    if quantity.endswith("n"):
        return int(quantity[:-1]) / 1e6
    if quantity.endswith("u"):
        return int(quantity[:-1]) / 1e3
    if quantity.endswith("m"):
        return float(quantity[:-1])
    return float(quantity) * 1000


def pod_cpu_m(pod_metrics: Mapping[str, Any]) -> dict[str, float]:
    """Millicores per pod, summed over its containers, from a PodMetricsList."""
    return {
        item["metadata"]["name"]: sum(cpu_m(c["usage"]["cpu"]) for c in item["containers"])
        for item in pod_metrics.get("items", [])
    }


def node_cpu_m(node_metrics: Mapping[str, Any]) -> float:
    return sum(cpu_m(item["usage"]["cpu"]) for item in node_metrics.get("items", []))


@dataclass
class Window:
    """Readings over a measuring window: counters at both ends, CPU samples in between."""

    seconds: float = 0.0
    accepted_before: dict[str, float] = field(default_factory=dict)
    accepted_after: dict[str, float] = field(default_factory=dict)
    cpu_samples: list[dict[str, float]] = field(default_factory=list)
    node_cpu_samples: list[float] = field(default_factory=list)

    def events_per_s(self) -> dict[str, float]:
        """Events/s per collector pod over the window (pods present at both ends)."""
        if self.seconds <= 0:
            return {}
        return {
            pod: (self.accepted_after[pod] - before) / self.seconds
            for pod, before in self.accepted_before.items()
            if pod in self.accepted_after
        }

    def mean_cpu_m(self, pods: list[str]) -> dict[str, float]:
        means = {}
        for pod in pods:
            values = [s[pod] for s in self.cpu_samples if pod in s]
            means[pod] = sum(values) / len(values) if values else 0.0
        return means


def shares(per_pod: Mapping[str, float]) -> dict[str, float]:
    """Each pod's share of the total, in percent."""
    total = sum(per_pod.values())
    return {pod: 100 * n / total if total else 0.0 for pod, n in per_pod.items()}


def off_even_points(per_pod: Mapping[str, float]) -> float:
    """How far the most uneven pod's share is from an even one, in percentage points."""
    if not per_pod:
        return 0.0
    even = 100 / len(per_pod)
    return max(abs(share - even) for share in shares(per_pod).values())
