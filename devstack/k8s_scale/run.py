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
import os
import time
from pathlib import Path

from devstack.k8s_e2e import report as e2e_report
from devstack.k8s_e2e.images import build_images, load_images
from devstack.k8s_e2e.kubectl import NAMESPACE, E2EError, kubectl, run, wait_for
from devstack.k8s_e2e.reconcile import reconcile_in_cluster
from devstack.k8s_e2e.run import preflight
from devstack.k8s_e2e.spread import ready_collectors
from devstack.k8s_e2e.status import job_status, statefulset_status
from devstack.k8s_scale.cluster import (
    Manifest,
    apply,
    errors_by_pod,
    has_metrics_api,
    node_capacity_m,
    render,
)
from devstack.k8s_scale.curve import REPLICAS, curve_stage
from devstack.k8s_scale.hpa import hpa_stage
from devstack.k8s_scale.report import Report
from devstack.proc import ROOT
from devstack.reporting import say

# Applied later by the HPA stage, not with the rest.
LATER = {
    ("Job", "producer"),
    ("Job", "producer-reconcile"),
    ("HorizontalPodAutoscaler", "collector"),
}


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(prog="python -m devstack.k8s_scale", description=__doc__)
    made.add_argument("--base-image", default=os.environ.get("PYTHON_IMAGE") or None)
    made.add_argument(
        "--load", default=os.environ.get("LOAD") or "auto",
        choices=["auto", "kind", "minikube", "ctr", "none"],
    )  # fmt: skip
    made.add_argument("--cpu-limit", default=os.environ.get("CPU_LIMIT") or "250m")
    made.add_argument("--warm-s", type=float, default=20.0)
    made.add_argument("--window-s", type=float, default=40.0)
    made.add_argument("--hpa-load-s", type=float, default=180.0)
    # The HPA stage's rate, as a share of what one replica took in the curve.
    made.add_argument("--hpa-rate-share", type=float, default=1.0)
    made.add_argument("--down-timeout-s", type=float, default=900.0)
    made.add_argument("--keep", action="store_true")
    made.add_argument("--report", type=Path, default=ROOT / "docs" / "k8s-scale.md")
    return made


def prepare_cluster(e2e: e2e_report.Report, args: argparse.Namespace) -> None:
    with e2e.phase("checking the cluster, the Docker engine and the metrics API"):
        preflight(e2e)
        if not has_metrics_api():
            raise E2EError(
                f"the cluster of context {e2e.context!r} has no metrics API "
                "(metrics.k8s.io): the HPA and `kubectl top` need metrics-server "
                "(kind and minikube: install it, e.g. `minikube addons enable metrics-server`)"
            )
    with e2e.phase("building the images"):
        build_images(e2e, args.base_image)
    with e2e.phase("loading the images into the cluster"):
        load_images(e2e, e2e.context, args.load)


def apply_without_hpa(objects: list[Manifest]) -> None:
    """Everything but the HPA and the HPA stage's Jobs; Kafka and the topics ready."""
    apply(
        [
            o
            for o in objects
            if (o["kind"], o["metadata"]["name"]) not in LATER
            and not (o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("sample-data"))
        ]
    )
    kubectl("delete", "hpa", "collector", "--ignore-not-found")
    wait_for("Kafka", functools.partial(statefulset_status, "kafka"), timeout_s=600)
    wait_for("the topics", functools.partial(job_status, "kafka-topics"), timeout_s=600)
    # The validator would share the node's CPU with what is measured: off for the curve.
    kubectl("scale", "deployment/validator", "--replicas=0")


def reconcile(report: Report) -> None:
    held = e2e_report.Report()
    reconcile_in_cluster(held)
    report.reconciliation = held.reconciliation
    report.validated = held.validated
    report.notes += held.notes


def stages(e2e: e2e_report.Report, report: Report, args: argparse.Namespace) -> None:
    objects = render(args.cpu_limit)
    report.node_capacity_m = node_capacity_m()
    with e2e.phase("applying k8s/overlays/scale (HPA off for the curve)"):
        apply_without_hpa(objects)
    with e2e.phase("the scaling curve: the load against 1, 2 and 3 replicas"):
        for replicas in REPLICAS:
            report.curve.stages.append(curve_stage(objects, replicas, args.warm_s, args.window_s))
        report.curve_server_errors = int(sum(errors_by_pod(ready_collectors()).values()))
    rate = args.hpa_rate_share * report.curve.stages[0].events_per_s
    with e2e.phase("the HPA acting: a fixed load from one replica, up and back down"):
        hpa_stage(objects, report, rate, args.hpa_load_s, args.down_timeout_s)
    with e2e.phase("reconciling in the cluster (job/producer-reconcile)"):
        reconcile(report)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    report = Report(cpu_limit=args.cpu_limit, warm_s=args.warm_s, window_s=args.window_s)
    e2e = e2e_report.Report()
    applied = ok = False
    started = time.monotonic()
    try:
        prepare_cluster(e2e, args)
        report.context, report.server_version = e2e.context, e2e.server_version
        applied = True
        stages(e2e, report, args)
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
    if report.curve.stages:
        args.report.with_suffix(".json").write_text(report.as_json())
    say(f"==> {'passed' if ok else 'FAILED'} in {report.seconds:.0f}s; report in {args.report}")
    return 0 if ok else 1
