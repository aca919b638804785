"""`make k8s-e2e`: the whole mission on the cluster the current kubectl context points at.

Builds both images, loads them into the cluster (kind, minikube, or a containerd node), checks the
images as containers, dry-runs both overlays on the API server, applies `k8s/overlays/e2e`, waits
for Kafka, the topics Job and the collectors, replays three month files through the producer
Indexed Job while the collectors are restarted and a pod is deleted, reconciles the topics with the
files in a Job inside the cluster, writes a report, and deletes what it created. On the way it
posts an event from this machine through the collector's node port, and measures how evenly the
events spread over three steady collectors (each within 10 points of an even share).

Plain `kubectl` and `docker` commands, so every step can be read and run by hand.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import time
from pathlib import Path

from devstack.k8s_e2e.front_door import post_through_the_node_port
from devstack.k8s_e2e.images import build_images, container_checks, load_images
from devstack.k8s_e2e.kubectl import NAMESPACE, E2EError, kubectl, run, wait_for
from devstack.k8s_e2e.reconcile import reconcile_in_cluster
from devstack.k8s_e2e.replay import Replay
from devstack.k8s_e2e.report import Report
from devstack.k8s_e2e.spread import spread_failure
from devstack.k8s_e2e.status import (
    collector_minimum,
    deployment_status,
    job_status,
    rollout_status,
    statefulset_status,
)
from devstack.proc import ROOT
from devstack.reporting import say

OVERLAY = ROOT / "k8s" / "overlays" / "e2e"
DRY_RUN_OVERLAYS = ("local", "production")


def preflight(report: Report) -> None:
    """One clear line, and a non-zero exit, when there is no cluster or no Docker engine."""
    if shutil.which("kubectl") is None:
        raise E2EError("kubectl is not installed, so there is no cluster to run on")
    context = run(["kubectl", "config", "current-context"], check=False)
    if context.returncode != 0:
        raise E2EError("kubectl has no current context: point it at a cluster (kind, minikube...)")
    report.context = context.stdout.strip()
    server = run(["kubectl", "version", "-o", "json", "--request-timeout=10s"], check=False)
    if server.returncode != 0 or "serverVersion" not in server.stdout:
        raise E2EError(f"the cluster of context {report.context!r} is not reachable")
    report.server_version = json.loads(server.stdout)["serverVersion"]["gitVersion"]
    if shutil.which("docker") is None or run(["docker", "info"], check=False).returncode != 0:
        raise E2EError(
            "no Docker engine is reachable (`docker info` failed), so no image can be built"
        )
    say(f"    context {report.context}, Kubernetes {report.server_version}")


def server_dry_run(report: Report) -> None:
    """Both overlays through the API server's own validation and admission; no warning allowed."""
    run(["kubectl", "apply", "-f", "k8s/base/namespace.yaml"])
    for overlay in DRY_RUN_OVERLAYS:
        done = run(
            ["kubectl", "apply", "--dry-run=server", "-k", f"k8s/overlays/{overlay}"],
            check=False,
        )
        warnings = [line for line in done.stderr.splitlines() if line.strip()]
        if done.returncode != 0 or warnings:
            raise E2EError(f"server-side dry run of {overlay}: " + " | ".join(warnings))
        objects = len(done.stdout.strip().splitlines())
        say(f"    {overlay}: {objects} objects accepted, no warnings")
        report.notes.append(
            f"`kubectl apply --dry-run=server -k k8s/overlays/{overlay}`: "
            f"{objects} objects, no warnings"
        )


def apply_and_wait() -> None:
    """k8s/overlays/e2e applied; Kafka, the topics, the collectors and the validator ready."""
    say(f"    kubectl apply -k {OVERLAY.relative_to(ROOT)}")
    kubectl("apply", "-k", str(OVERLAY.relative_to(ROOT)))
    wait_for("Kafka (statefulset/kafka)", functools.partial(statefulset_status, "kafka"),
             timeout_s=600)  # fmt: skip
    wait_for("the topics (job/kafka-topics)", functools.partial(job_status, "kafka-topics"),
             timeout_s=600)  # fmt: skip
    wait_for(
        "the collectors (deployment/collector)",
        functools.partial(rollout_status, collector_minimum()),
        timeout_s=600,
    )
    wait_for("the validator (deployment/validator)",
             functools.partial(deployment_status, "validator"), timeout_s=600)  # fmt: skip


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(prog="python -m devstack.k8s_e2e", description=__doc__)
    made.add_argument(
        "--base-image",
        default=os.environ.get("PYTHON_IMAGE") or None,
        help="Python base image (default: the Dockerfiles' pinned one)",
    )
    made.add_argument(
        "--load",
        default=os.environ.get("LOAD") or "auto",
        choices=["auto", "kind", "minikube", "ctr", "none"],
    )
    made.add_argument("--keep", action="store_true", help="leave everything running")
    made.add_argument("--no-faults", action="store_true", help="replay without the faults")
    made.add_argument("--report", type=Path, default=ROOT / ".k8s-e2e" / "report.md")
    return made


def before_apply(report: Report, args: argparse.Namespace) -> None:
    with report.phase("checking the cluster and the Docker engine"):
        preflight(report)
    with report.phase("building the images and their SBOMs"):
        build_images(report, args.base_image)
    with report.phase("running the images as containers (read-only, user 10001)"):
        container_checks(report)
    with report.phase("loading the images into the cluster"):
        load_images(report, report.context, args.load)
    with report.phase("server-side dry run of the local and production overlays"):
        server_dry_run(report)


def after_apply(report: Report, args: argparse.Namespace) -> None:
    with report.phase("posting from this machine through the collector's node port"):
        post_through_the_node_port(report)
    with report.phase(
        "replaying three month files (job/producer)"
        + ("" if args.no_faults else " with a rolling restart and a pod deletion")
    ):
        Replay(report).run(faults=not args.no_faults)
    with report.phase("reconciling in the cluster (job/producer-reconcile)"):
        reconcile_in_cluster(report)
    failure = spread_failure(report)
    if failure:
        raise E2EError(failure)


def tear_down(report: Report, *, keep: bool) -> None:
    if not keep:
        with report.phase(f"deleting namespace {NAMESPACE}"):
            run(
                ["kubectl", "delete", "namespace", NAMESPACE, "--wait=true", "--timeout=300s"],
                check=False,
                timeout_s=360,
            )
    else:
        say(f"    left running (KEEP=1): kubectl delete namespace {NAMESPACE} removes it")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    report = Report()
    applied = False
    started = time.monotonic()
    try:
        before_apply(report, args)
        with report.phase("applying k8s/overlays/e2e and waiting for Kafka, topics, collectors"):
            applied = True
            apply_and_wait()
        after_apply(report, args)
        ok = True
    except E2EError as exc:
        say(f"make k8s-e2e: {exc}")
        report.notes.append(f"FAILED: {exc}")
        ok = False
    finally:
        if applied:
            tear_down(report, keep=args.keep)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(report.markdown())
    say(
        f"==> {'passed' if ok else 'FAILED'} in {time.monotonic() - started:.0f}s; "
        f"report in {args.report}"
    )
    return 0 if ok else 1
