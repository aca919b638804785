"""`make k8s-scale`: collectors scaled by hand (the curve) and by the HPA, on a real cluster.

1. The scaling curve: collectors with a CPU limit and the HPA off; the load Job (two producers
   sending single events as fast as they are taken) against 1, 2 and 3 replicas; events/s,
   each pod's share and CPU, and the load's own CPU, over a window after a warm-up.
2. The HPA acting: the HPA back, one replica, and three producers at a fixed rate that needs
   more than one pod; a timeline of replicas, utilisation and events/s until the HPA has scaled
   up, the load has ended and it has scaled back down; then a reconciliation of the raw and the
   validated topics in the cluster (0 missing, 0 duplicates validated) and the 5xx count.

It needs the metrics API (metrics-server): without it, it says so and stops.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

from devstack.k8s_e2e import report as e2e_report
from devstack.k8s_e2e.images import build_images, load_images
from devstack.k8s_e2e.kubectl import NAMESPACE, E2EError, kubectl, kubectl_json, run, wait_for
from devstack.k8s_e2e.reconcile import reconcile_in_cluster
from devstack.k8s_e2e.run import preflight
from devstack.k8s_e2e.spread import accepted_by_pod, pod_metrics_text, ready_collectors
from devstack.k8s_e2e.status import (
    deployment_status,
    job_state,
    job_status,
    last_line,
    producer_pods,
    statefulset_status,
)
from devstack.k8s_scale import readings
from devstack.k8s_scale.report import Report, Stage, Tick
from devstack.proc import ROOT
from devstack.reporting import say

OVERLAY = ROOT / "k8s" / "overlays" / "scale"
REPLICAS = (1, 2, 3)
LOAD_PODS = 2
MONTHS = ("2023-01", "2023-02", "2023-03")


def has_metrics_api() -> bool:
    done = run(["kubectl", "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes"], check=False)
    return done.returncode == 0 and '"items"' in done.stdout


def render(cpu_limit: str) -> list[dict[str, Any]]:
    """The overlay as kustomize builds it, with the run's CPU limit on the collectors."""
    text = run(["kubectl", "kustomize", str(OVERLAY.relative_to(ROOT))]).stdout
    objects = [o for o in yaml.safe_load_all(text) if o]
    for obj in objects:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "collector":
            container = obj["spec"]["template"]["spec"]["containers"][0]
            container["resources"]["limits"]["cpu"] = cpu_limit
    return objects


def pick(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"].startswith(name):
            return obj
    raise E2EError(f"the overlay has no {kind} {name}")


def apply(objects: list[dict[str, Any]]) -> None:
    path = ROOT / ".k8s-scale" / "apply.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    kubectl("apply", "-f", str(path), timeout_s=300)


# ---------------------------------------------------------------- readings from the cluster


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


# ---------------------------------------------------------------- 1. the scaling curve


def scale_collectors(replicas: int) -> None:
    kubectl("scale", "deployment/collector", f"--replicas={replicas}")

    def exactly() -> str | None:
        ready = ready_collectors()
        everything = kubectl_json("pods", "-l", "app.kubernetes.io/name=collector")["items"]
        return None if len(ready) == replicas == len(everything) else f"{len(ready)} ready"

    wait_for(f"{replicas} collector(s)", exactly, timeout_s=300)


def restart_load(objects: list[dict[str, Any]]) -> None:
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


def curve_stage(
    objects: list[dict[str, Any]], replicas: int, warm_s: float, window_s: float
) -> Stage:
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


# ---------------------------------------------------------------- 2. the HPA acting


def hpa_status() -> tuple[int, int, int | None]:
    hpa = kubectl_json("hpa", "collector")
    status = hpa["status"]
    utilisation = next(
        (
            m["resource"]["current"].get("averageUtilization")
            for m in status.get("currentMetrics") or []
            if m.get("type") == "Resource"
        ),
        None,
    )
    return status.get("currentReplicas", 0), status.get("desiredReplicas", 0), utilisation


def hpa_stage(
    objects: list[dict[str, Any]],
    report: Report,
    rate_per_s: float,
    load_s: float,
    down_timeout_s: float,
) -> None:
    """The HPA from one replica through a fixed load and back; the timeline into `report`."""
    rows = int(rate_per_s / len(MONTHS) * load_s)
    report.hpa_rate_per_s, report.hpa_rows = rate_per_s, rows
    for obj in objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("sample-data"):
            obj["data"]["rows"] = str(rows)
    producer = pick(objects, "Job", "producer")
    env = producer["spec"]["template"]["spec"]["containers"][0]["env"]
    for variable in env:
        if variable["name"] == "PRODUCER_RATE":
            variable["value"] = f"{rate_per_s / len(MONTHS):.0f}"
        if variable["name"] == "PRODUCER_BATCH_SIZE":
            variable["value"] = "1"
    hpa = pick(objects, "HorizontalPodAutoscaler", "collector")
    scale_collectors(1)
    kubectl("scale", "deployment/validator", "--replicas=1")
    wait_for("the validator", functools.partial(deployment_status, "validator"), timeout_s=300)
    configmap = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("sample-data")
    ]
    apply([*configmap, hpa, producer, pick(objects, "Job", "producer-reconcile")])
    kubectl("patch", "job", "producer", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    started = time.monotonic()
    errors: dict[str, float] = {}
    last_counts: dict[str, float] = {}
    last_t = started
    load_done_at: float | None = None
    while True:
        time.sleep(5)
        now = time.monotonic()
        pods = ready_collectors()
        counts = accepted_by_pod(pods)
        errors.update({p: e for p, e in errors_by_pod(pods).items() if e >= errors.get(p, 0)})
        rate = sum(
            (counts[p] - last_counts[p]) / (now - last_t) for p in counts if p in last_counts
        )
        new_pods = [p for p in counts if p not in last_counts]
        last_counts, last_t = counts, now
        current, desired, utilisation = hpa_status()
        tick = Tick(now - started, len(pods), desired, utilisation, rate, dict(counts))
        report.timeline.append(tick)
        state = job_state("producer")
        if load_done_at is None and state["succeeded"] >= len(MONTHS):
            load_done_at = now - started
            report.load_ended_s = load_done_at
        say(
            f"  [{tick.t_s:4.0f}s] replicas {tick.ready} (desired {desired}), cpu "
            f"{utilisation if utilisation is not None else '-'}% of request, "
            f"{rate:,.0f} events/s"
            + (f", new: {', '.join(new_pods)}" if new_pods and len(report.timeline) > 1 else "")
            + ("" if load_done_at is None else ", load over")
        )
        if (
            load_done_at is not None
            and current == desired == hpa["spec"]["minReplicas"]
            and len(pods) == current
        ):
            break
        if load_done_at is not None and now - started - load_done_at > down_timeout_s:
            report.notes.append(
                f"the HPA had not scaled back down {down_timeout_s:.0f}s after the load"
            )
            break
        if now - started > load_s * 4 + 600:
            raise E2EError("the producers did not finish in time")
    report.server_errors = int(sum(errors.values()))
    for index, pod in sorted(producer_pods().items()):
        summary = json.loads(last_line(pod, starting="{") or "{}")
        report.producers.append({"index": index, **summary})


def reconcile(report: Report) -> None:
    held = e2e_report.Report()
    reconcile_in_cluster(held)
    report.reconciliation = held.reconciliation
    report.validated = held.validated
    report.notes += held.notes


# ---------------------------------------------------------------- the whole run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.k8s_scale", description=__doc__)
    parser.add_argument("--base-image", default=os.environ.get("PYTHON_IMAGE") or None)
    parser.add_argument(
        "--load", default=os.environ.get("LOAD") or "auto",
        choices=["auto", "kind", "minikube", "ctr", "none"],
    )  # fmt: skip
    parser.add_argument("--cpu-limit", default=os.environ.get("CPU_LIMIT") or "250m")
    parser.add_argument("--warm-s", type=float, default=20.0)
    parser.add_argument("--window-s", type=float, default=40.0)
    parser.add_argument("--hpa-load-s", type=float, default=180.0)
    # The HPA stage's rate, as a share of what one replica took in the curve.
    parser.add_argument("--hpa-rate-share", type=float, default=1.0)
    parser.add_argument("--down-timeout-s", type=float, default=900.0)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--report", type=Path, default=ROOT / "docs" / "k8s-scale.md")
    args = parser.parse_args(argv)
    report = Report(cpu_limit=args.cpu_limit, warm_s=args.warm_s, window_s=args.window_s)
    e2e = e2e_report.Report()
    applied = False
    ok = False
    started = time.monotonic()
    try:
        with e2e.phase("checking the cluster, the Docker engine and the metrics API"):
            preflight(e2e)
            if not has_metrics_api():
                raise E2EError(
                    f"the cluster of context {e2e.context!r} has no metrics API "
                    "(metrics.k8s.io): the HPA and `kubectl top` need metrics-server "
                    "(kind and minikube: install it, e.g. `minikube addons enable metrics-server`)"
                )
        report.context, report.server_version = e2e.context, e2e.server_version
        with e2e.phase("building the images"):
            build_images(e2e, args.base_image)
        with e2e.phase("loading the images into the cluster"):
            load_images(e2e, e2e.context, args.load)
        objects = render(args.cpu_limit)
        with e2e.phase("applying k8s/overlays/scale (HPA off for the curve)"):
            applied = True
            later = {
                ("Job", "producer"),
                ("Job", "producer-reconcile"),
                ("HorizontalPodAutoscaler", "collector"),
            }
            apply(
                [
                    o
                    for o in objects
                    if (o["kind"], o["metadata"]["name"]) not in later
                    and not (
                        o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("sample-data")
                    )
                ]
            )
            kubectl("delete", "hpa", "collector", "--ignore-not-found")
            wait_for("Kafka", functools.partial(statefulset_status, "kafka"), timeout_s=600)
            wait_for("the topics", functools.partial(job_status, "kafka-topics"), timeout_s=600)
            # The validator would share the node's CPU with what is measured: off for the curve.
            kubectl("scale", "deployment/validator", "--replicas=0")
        with e2e.phase("the scaling curve: the load against 1, 2 and 3 replicas"):
            for replicas in REPLICAS:
                report.curve.stages.append(
                    curve_stage(objects, replicas, args.warm_s, args.window_s)
                )
        one = report.curve.stages[0].events_per_s
        with e2e.phase("the HPA acting: a fixed load from one replica, up and back down"):
            hpa_stage(
                objects, report, args.hpa_rate_share * one, args.hpa_load_s, args.down_timeout_s
            )
        with e2e.phase("reconciling in the cluster (job/producer-reconcile)"):
            reconcile(report)
        ok = report.passed()
    except E2EError as exc:
        say(f"make k8s-scale: {exc}")
        report.notes.append(f"FAILED: {exc}")
    finally:
        report.phases = e2e.phases
        if applied and not args.keep:
            run(["kubectl", "delete", "namespace", NAMESPACE, "--wait=true", "--timeout=300s"],
                check=False, timeout_s=360)  # fmt: skip
    report.seconds = time.monotonic() - started
    args.report.parent.mkdir(parents=True, exist_ok=True)
    plot = args.report.with_suffix(".png")
    report.plot(plot)
    args.report.write_text(report.markdown(plot.name))
    say(f"==> {'passed' if ok else 'FAILED'} in {report.seconds:.0f}s; report in {args.report}")
    return 0 if ok else 1
