"""What `make k8s-scale` reads from and does to the cluster: the overlay rendered with the run's
CPU limit, the collectors' counters and CPU, the load pods, the HPA's status."""

from __future__ import annotations

import json
import time
from typing import Any

import yaml

from devstack.k8s_e2e.kubectl import NAMESPACE, E2EError, kubectl, kubectl_json, run, wait_for
from devstack.k8s_e2e.spread import accepted_by_pod, pod_metrics_text, ready_collectors
from devstack.k8s_scale import readings
from devstack.proc import ROOT

OVERLAY = ROOT / "k8s" / "overlays" / "scale"
Manifest = dict[str, Any]


def has_metrics_api() -> bool:
    done = run(["kubectl", "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes"], check=False)
    return done.returncode == 0 and '"items"' in done.stdout


def render(cpu_limit: str) -> list[Manifest]:
    """The overlay as kustomize builds it, with the run's CPU limit on the collectors."""
    text = run(["kubectl", "kustomize", str(OVERLAY.relative_to(ROOT))]).stdout
    objects = [o for o in yaml.safe_load_all(text) if o]
    for obj in objects:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "collector":
            container = obj["spec"]["template"]["spec"]["containers"][0]
            container["resources"]["limits"]["cpu"] = cpu_limit
    return objects


def pick(objects: list[Manifest], kind: str, name: str) -> Manifest:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"].startswith(name):
            return obj
    raise E2EError(f"the overlay has no {kind} {name}")


def sample_data(objects: list[Manifest]) -> list[Manifest]:
    """The ConfigMap(s) saying how many rows the HPA stage's month files have."""
    return [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("sample-data")
    ]


def apply(objects: list[Manifest]) -> None:
    path = ROOT / ".k8s-scale" / "apply.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    kubectl("apply", "-f", str(path), timeout_s=300)


def errors_by_pod(pods: list[str]) -> dict[str, float]:
    return {pod: readings.server_errors(pod_metrics_text(pod)) for pod in pods}


def pod_cpu() -> dict[str, float]:
    path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/pods"
    done = run(["kubectl", "get", "--raw", path], check=False, timeout_s=30)
    return readings.pod_cpu_m(json.loads(done.stdout)) if done.returncode == 0 else {}


def node_cpu() -> float:
    done = run(["kubectl", "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes"], check=False)
    return readings.node_cpu_m(json.loads(done.stdout)) if done.returncode == 0 else 0.0


def load_pods() -> list[str]:
    pods = kubectl_json("pods", "-l", "app.kubernetes.io/component=load")["items"]
    return sorted(p["metadata"]["name"] for p in pods if p["status"].get("phase") == "Running")


def measure(seconds: float, every_s: float = 5.0) -> readings.Window:
    """Counters of the ready collectors at both ends of `seconds`, CPU sampled in between."""
    window = readings.Window()
    pods = ready_collectors()
    started = time.monotonic()
    window.accepted_before = accepted_by_pod(pods)
    while time.monotonic() - started < seconds:
        time.sleep(every_s)
        window.cpu_samples.append(pod_cpu())
        window.node_cpu_samples.append(node_cpu())
    window.accepted_after = accepted_by_pod(pods)
    window.seconds = time.monotonic() - started
    return window


def scale_collectors(replicas: int) -> None:
    """Exactly `replicas` collector pods, all ready (none still terminating)."""
    kubectl("scale", "deployment/collector", f"--replicas={replicas}")

    def exactly() -> str | None:
        ready = ready_collectors()
        everything = kubectl_json("pods", "-l", "app.kubernetes.io/name=collector")["items"]
        return None if len(ready) == replicas == len(everything) else f"{len(ready)} ready"

    wait_for(f"{replicas} collector(s)", exactly, timeout_s=300)


def hpa_status() -> tuple[int, int, int | None]:
    """The HPA's current and desired replicas, and the CPU utilisation it sees (% of request)."""
    status = kubectl_json("hpa", "collector")["status"]
    utilisation = next(
        (
            m["resource"]["current"].get("averageUtilization")
            for m in status.get("currentMetrics") or []
            if m.get("type") == "Resource"
        ),
        None,
    )
    return status.get("currentReplicas", 0), status.get("desiredReplicas", 0), utilisation


def node_capacity_m() -> float:
    """The CPU the nodes can give pods (allocatable), in millicores."""
    return sum(
        readings.cpu_m(str(node["status"]["allocatable"]["cpu"]))
        for node in kubectl_json("nodes")["items"]
    )
