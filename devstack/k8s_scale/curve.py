"""The scaling curve: the load Job (producers at `--rate 0`) against a fixed number of collectors
with a CPU limit and the HPA off; events/s, each pod's share and CPU, and the load's own CPU."""

from __future__ import annotations

import time

from devstack.k8s_e2e.kubectl import kubectl, wait_for
from devstack.k8s_e2e.spread import accepted_by_pod, ready_collectors
from devstack.k8s_scale.cluster import Manifest, apply, load_pods, measure, pick, scale_collectors
from devstack.k8s_scale.report import Stage
from devstack.reporting import say

REPLICAS = (1, 2, 3)
LOAD_PODS = 2


def restart_load(objects: list[Manifest]) -> None:
    """A fresh load Job, resumed, once its pods run and the collectors count accepted events."""
    kubectl("delete", "job", "load", "--ignore-not-found", "--wait=true", timeout_s=120)
    job = pick(objects, "Job", "load")
    job["spec"]["suspend"] = False
    apply([job])

    def sending() -> str | None:
        pods = load_pods()
        if len(pods) < LOAD_PODS:
            return f"{len(pods)} of {LOAD_PODS} load pods running"
        counts = accepted_by_pod(ready_collectors())
        return None if sum(counts.values()) > 0 else "nothing accepted yet"

    wait_for("the load sending", sending, timeout_s=300)


def curve_stage(objects: list[Manifest], replicas: int, warm_s: float, window_s: float) -> Stage:
    scale_collectors(replicas)
    restart_load(objects)
    say(f"    warming up {warm_s:.0f}s, then measuring {window_s:.0f}s")
    time.sleep(warm_s)
    window = measure(window_s)
    per_pod = window.events_per_s()
    collectors = sorted(per_pod)
    load = load_pods()
    cpu = window.mean_cpu_m([*collectors, *load])
    stage = Stage(
        replicas=replicas,
        events_per_s=sum(per_pod.values()),
        per_pod=per_pod,
        cpu_m={pod: cpu[pod] for pod in collectors},
        load_cpu_m={pod: cpu[pod] for pod in load},
        node_cpu_m=sum(window.node_cpu_samples) / max(1, len(window.node_cpu_samples)),
    )
    kubectl("delete", "job", "load", "--wait=true", timeout_s=120)
    say(f"    {replicas} replica(s): {stage.events_per_s:,.0f} events/s; " + stage.line())
    return stage
