"""How the events spread over the collector pods: each pod's own `collector_events_accepted_total`
read through the API server's pod proxy (no port-forward), over a window with steady pods."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from collector.settings import Settings
from devstack.k8s_e2e.kubectl import NAMESPACE, kubectl_json, run, wait_for
from devstack.k8s_e2e.report import Report
from devstack.k8s_e2e.status import collector_minimum, rollout_status
from devstack.k8s_scale import readings
from devstack.reporting import say

SPREAD_WINDOW_S = 30.0
# Every pod's share within this many percentage points of an even one.
SPREAD_POINTS = 10.0


def ready_collectors() -> list[str]:
    """Collector pods that are ready and not being deleted."""
    pods = kubectl_json("pods", "-l", "app.kubernetes.io/name=collector")["items"]
    return sorted(
        p["metadata"]["name"]
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions", [])
        )
    )


def pod_metrics_text(pod: str) -> str:
    """A collector pod's /metrics, through the API server's pod proxy."""
    path = f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}:8000/proxy/metrics"
    return run(["kubectl", "get", "--raw", path], check=False, timeout_s=30).stdout


def accepted_by_pod(pods: list[str]) -> dict[str, float]:
    """`collector_events_accepted_total` of each pod that answered."""
    counts = {}
    for pod in pods:
        text = pod_metrics_text(pod)
        if readings.ACCEPTED in text:
            counts[pod] = readings.counter(text, readings.ACCEPTED)
    return counts


def max_connection_age_s() -> float:
    """The collectors' COLLECTOR_MAX_CONNECTION_AGE_S (their ConfigMap, else the default)."""
    settings = kubectl_json("configmap", "-l", "app.kubernetes.io/part-of=event-collector")
    for item in settings.get("items", []):
        value = (item.get("data") or {}).get("COLLECTOR_MAX_CONNECTION_AGE_S")
        if value is not None:
            return float(value)
    return float(Settings.model_fields["max_connection_age_s"].default)


def measure_spread(report: Report, running: Callable[[], bool]) -> None:
    """Each steady collector's events/s over a window, once every connection has had time to
    move (its maximum age) since the last pod came or went."""
    minimum = collector_minimum()
    wait_for(f"{minimum} ready collectors", functools.partial(rollout_status, minimum),
             timeout_s=300)  # fmt: skip
    settle_s = 1.1 * max_connection_age_s()
    say(f"    spread: {settle_s:.0f}s for every connection to move, then {SPREAD_WINDOW_S:.0f}s")
    time.sleep(settle_s)
    pods = ready_collectors()
    before, started = accepted_by_pod(pods), time.monotonic()
    time.sleep(SPREAD_WINDOW_S)
    after, seconds = accepted_by_pod(pods), time.monotonic() - started
    if not running() or set(ready_collectors()) != set(pods):
        report.spread_note = "not measured: the replay ended or a pod changed during the window"
        return
    report.spread = {
        p: (after[p] - before[p]) / seconds for p in pods if p in before and p in after
    }
    off = readings.off_even_points(report.spread)
    report.spread_note = (
        f"{len(report.spread)} collectors and three producers, {settle_s:.0f} s after the last "
        f"pod came or went (1.1x the maximum connection age), over {seconds:.0f} s: the most "
        f"uneven pod is {off:.1f} points from an even share (target: within {SPREAD_POINTS:g})."
    )
    say("    " + report.spread_note)


def spread_failure(report: Report) -> str | None:
    """Why the spread fails the run (not measured, or a pod too far from even), else None."""
    if not report.spread:
        return f"the spread over the collectors was {report.spread_note}"
    if readings.off_even_points(report.spread) > SPREAD_POINTS:
        return report.spread_note
    return None
