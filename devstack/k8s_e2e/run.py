"""`make k8s-e2e`: the whole mission on the cluster the current kubectl context points at.

Builds both images, loads them into the cluster (kind, minikube, or a containerd node), checks the
images as containers, dry-runs both overlays on the API server, applies `k8s/overlays/e2e`, waits
for Kafka, the topics Job and the collectors, replays three month files through the producer
Indexed Job while the collectors are restarted and a pod is deleted, reconciles the topics with the
files in a Job inside the cluster, writes a report, and deletes what it created.

Plain `kubectl` and `docker` commands, so every step can be read and run by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.gate.capacity import project_version
from devstack.proc import ROOT
from devstack.reporting import say, table

NAMESPACE = "event-collector"
OVERLAY = ROOT / "k8s" / "overlays" / "e2e"
DRY_RUN_OVERLAYS = ("local", "production")
IMAGES = {
    "collector": "Dockerfile.collector",
    "producer": "Dockerfile.producer",
    # The local overlay runs it too (never pulled): without it its pod would wait for an image.
    "validator": "Dockerfile.validator",
}
MONTHS = ("2023-01", "2023-02", "2023-03")
PROGRESS_EVERY_S = 5.0


class E2EError(RuntimeError):
    """A step failed; the message says which and why."""


def run(
    cmd: Sequence[str],
    *,
    timeout_s: float = 600,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired as exc:
        raise E2EError(f"`{' '.join(cmd)}` did not finish within {timeout_s:.0f} s") from exc
    if check and done.returncode != 0:
        raise E2EError(f"`{' '.join(cmd)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done


def kubectl(*args: str, timeout_s: float = 120, check: bool = True) -> str:
    return run(["kubectl", "-n", NAMESPACE, *args], timeout_s=timeout_s, check=check).stdout


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json"))


@dataclass
class Report:
    """What the run did, phase by phase; written as Markdown at the end."""

    context: str = ""
    server_version: str = ""
    loader: str = ""
    phases: list[tuple[str, float]] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)
    faults: list[tuple[str, str]] = field(default_factory=list)
    producers: list[dict[str, Any]] = field(default_factory=list)
    reconciliation: dict[str, Any] = field(default_factory=dict)
    validated: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def phase(self, name: str) -> _Phase:
        return _Phase(self, name)

    def shares(self) -> list[tuple[str, int, str]]:
        by_collector: dict[str, int] = self.reconciliation.get("by_collector", {})
        total = sum(by_collector.values()) or 1
        return [(k, n, f"{100 * n / total:.1f}%") for k, n in sorted(by_collector.items())]

    def markdown(self) -> str:
        out = [
            "# Kubernetes end-to-end run (`make k8s-e2e`)",
            "",
            f"Cluster: context `{self.context}`, server {self.server_version}; images loaded "
            f"with {self.loader}.",
            "",
            "## Phases",
            "",
            "| phase | seconds |",
            "|---|---:|",
            *(f"| {name} | {seconds:.1f} |" for name, seconds in self.phases),
            f"| **total** | **{sum(s for _, s in self.phases):.1f}** |",
            "",
            "## Images",
            "",
            "| image | size |",
            "|---|---:|",
            *(f"| `{name}` | {size} |" for name, size in self.images),
            "",
            "## Faults during the replay",
            "",
            *(f"- {when}: {what}" for when, what in self.faults),
            "",
            "## Producers (each pod's closing JSON line)",
            "",
            "```",
            table(
                ["index", "records", "accepted", "rejected", "failed", "retries", "seconds"],
                [
                    [
                        p.get("index"),
                        p.get("records"),
                        p.get("accepted"),
                        p.get("rejected"),
                        p.get("failed"),
                        p.get("retries", "-"),
                        p.get("seconds"),
                    ]
                    for p in self.producers
                ],
            ),
            "```",
            "",
            "## Reconciliation (Job `producer-reconcile` in the cluster)",
            "",
            "```",
            json.dumps(self.reconciliation),
            "```",
            "",
            "The validated topics (`--raw-topic validated-events --dead-letter-topic "
            "validated-events-dlq`, committed records only; duplicates must be 0 here):",
            "",
            "```",
            json.dumps(self.validated),
            "```",
            "",
            "Replicas (`collector_id` of the envelopes on the raw topic):",
            "",
            "```",
            table(["replica", "events", "share"], self.shares()),
            "```",
        ]
        if self.notes:
            out += ["", "## Notes", "", *(f"- {n}" for n in self.notes)]
        return "\n".join(out) + "\n"


@dataclass
class _Phase:
    report: Report
    name: str
    started: float = 0.0

    def __enter__(self) -> _Phase:
        self.started = time.monotonic()
        say(f"==> {self.name}")
        return self

    def __exit__(self, *exc: object) -> None:
        seconds = time.monotonic() - self.started
        self.report.phases.append((self.name, seconds))
        say(f"    ({seconds:.1f}s)")


# ---------------------------------------------------------------- the cluster and the engine


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


def image_name(component: str) -> str:
    return f"event-collector/{component}:{project_version()}"


def build_images(report: Report, base_image: str | None) -> None:
    for component, dockerfile in IMAGES.items():
        args = ["docker", "build", "-q", "-f", dockerfile, "-t", image_name(component)]
        if base_image:
            args += ["--build-arg", f"PYTHON_IMAGE={base_image}"]
        say(f"    docker build -f {dockerfile} -t {image_name(component)}")
        run([*args, "."], timeout_s=1800)
        size = int(
            run(["docker", "image", "inspect", "-f", "{{.Size}}", image_name(component)]).stdout
        )
        report.images.append((image_name(component), f"{size / 1e6:.0f} MB"))
        say(f"      {size / 1e6:.0f} MB")


def choose_loader(context: str, wanted: str) -> str:
    """How images reach this cluster's nodes: kind, minikube, or containerd's `ctr` on this node."""
    if wanted != "auto":
        return wanted
    if context.startswith("kind-"):
        return "kind"
    if context == "minikube":
        return "minikube"
    if shutil.which("ctr") and run(["ctr", "-n", "k8s.io", "version"], check=False).returncode == 0:
        return "ctr"
    raise E2EError(
        f"cannot tell how to load images into context {context!r}: set LOAD=kind, minikube, "
        "ctr (a containerd node on this machine) or none (images already on the nodes)"
    )


def load_images(report: Report, context: str, wanted: str) -> None:
    loader = choose_loader(context, wanted)
    report.loader = {
        "kind": "`kind load docker-image`",
        "minikube": "`minikube image load`",
        "ctr": "`docker save | ctr -n k8s.io images import -`",
        "none": "nothing (already on the nodes)",
    }[loader]
    for component in IMAGES:
        image = image_name(component)
        say(f"    {image} via {loader}")
        if loader == "kind":
            run(["kind", "load", "docker-image", image, "--name", context.removeprefix("kind-")])
        elif loader == "minikube":
            run(["minikube", "image", "load", image])
        elif loader == "ctr":
            saved = subprocess.run(
                ["docker", "save", image], capture_output=True, check=True, timeout=600
            ).stdout
            imported = subprocess.run(
                ["ctr", "-n", "k8s.io", "images", "import", "-"],
                input=saved,
                capture_output=True,
                timeout=600,
                check=False,
            )
            if imported.returncode != 0:
                raise E2EError(f"ctr import of {image} failed: {imported.stderr.decode().strip()}")


def container_checks(report: Report) -> None:
    """The images as they run anywhere: read-only root, user 10001 (tests/containers)."""
    env = {**os.environ, **{f"{c.upper()}_IMAGE": image_name(c) for c in IMAGES}}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/containers"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    say(f"    pytest tests/containers: {summary}")
    if done.returncode != 0:
        say(done.stdout[-4000:])
        raise E2EError("the images failed their checks as containers")
    report.notes.append(f"images as containers (tests/containers): {summary}")


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


# ---------------------------------------------------------------- waiting, with diagnostics


def diagnose() -> str:
    """The namespace's pods, and events and logs of every pod that is not ready or failed."""
    out = [kubectl("get", "pods", "-o", "wide", check=False)]
    pods = kubectl_json("pods").get("items", [])
    for pod in pods:
        name, phase = pod["metadata"]["name"], pod["status"].get("phase")
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in pod["status"].get("conditions", [])
        )
        if phase == "Succeeded" or ready:
            continue
        out.append(f"--- events of {name}")
        out.append(
            kubectl(
                "get",
                "events",
                "--field-selector",
                f"involvedObject.name={name}",
                "--sort-by=.lastTimestamp",
                check=False,
            )
        )
        out.append(f"--- logs of {name}")
        out.append(kubectl("logs", name, "--all-containers", "--tail=40", check=False))
    return "\n".join(out)


def wait_until(
    what: str, done: Callable[[], str | None], *, timeout_s: float, every_s: float = 3
) -> None:
    """Poll `done` (a status line while waiting, None when done), printing progress."""
    started = time.monotonic()
    last_said = 0.0
    while True:
        status = done()
        elapsed = time.monotonic() - started
        if status is None:
            say(f"    {what}: ready after {elapsed:.0f}s")
            return
        if elapsed > timeout_s:
            say(diagnose())
            raise E2EError(f"{what} not ready after {timeout_s:.0f}s ({status})")
        if elapsed - last_said >= 10:
            say(f"    [{elapsed:4.0f}s] waiting for {what}: {status}")
            last_said = elapsed
        time.sleep(every_s)


def statefulset_ready(name: str) -> Callable[[], str | None]:
    def check() -> str | None:
        s = kubectl_json("statefulset", name)
        want, ready = s["spec"].get("replicas", 1), s["status"].get("readyReplicas", 0)
        return None if ready >= want else f"{ready}/{want} ready"

    return check


def job_state(name: str) -> dict[str, int]:
    status = kubectl_json("job", name)["status"]
    return {k: int(status.get(k, 0)) for k in ("active", "succeeded", "failed")}


def job_complete(name: str, completions: int = 1) -> Callable[[], str | None]:
    def check() -> str | None:
        job = kubectl_json("job", name)
        for condition in job["status"].get("conditions", []):
            if condition["type"] == "Failed" and condition["status"] == "True":
                say(diagnose())
                raise E2EError(f"job {name} failed: {condition.get('message', '')}")
        state = job_state(name)
        if state["succeeded"] >= completions:
            return None
        return ", ".join(f"{n} {k}" for k, n in state.items())

    return check


def collectors_ready(minimum: int) -> Callable[[], str | None]:
    """The rollout is over: every replica runs the newest template and is ready."""

    def check() -> str | None:
        d = kubectl_json("deployment", "collector")
        s, want = d["status"], max(minimum, d["spec"].get("replicas", 1))
        fresh = d["metadata"]["generation"] <= s.get("observedGeneration", 0)
        updated, ready, total = (
            s.get(k, 0) for k in ("updatedReplicas", "readyReplicas", "replicas")
        )
        if fresh and updated >= want and ready >= want and total == updated:
            return None
        return f"{ready} ready, {updated} updated, {total} in all (want {want})"

    return check


def deployment_ready(name: str) -> Callable[[], str | None]:
    def check() -> str | None:
        d = kubectl_json("deployment", name)
        want, ready = d["spec"].get("replicas", 1), d["status"].get("readyReplicas", 0)
        return None if ready >= want else f"{ready}/{want} ready"

    return check


def collector_minimum() -> int:
    """The replicas the HPA keeps at least (metrics-server or not, it scales up to its minimum)."""
    return int(kubectl_json("hpa", "collector")["spec"].get("minReplicas", 1))


def collector_pods() -> list[str]:
    pods = kubectl_json("pods", "-l", "app.kubernetes.io/name=collector")["items"]
    return sorted(p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp"))


# ---------------------------------------------------------------- the replay and its faults


def producer_pods() -> dict[int, str]:
    pods = kubectl_json("pods", "-l", "app.kubernetes.io/name=producer")["items"]
    by_index: dict[int, str] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"]):
        index = (
            pod["metadata"].get("annotations", {}).get("batch.kubernetes.io/job-completion-index")
        )
        if index is not None:
            by_index[int(index)] = pod["metadata"]["name"]
    return by_index


def last_line(pod: str, *, starting: str = "") -> str:
    text = kubectl("logs", pod, "-c", "producer", "--tail=20", check=False)
    lines = [line for line in text.splitlines() if line.startswith(starting)]
    return lines[-1] if lines else ""


def replay_with_faults(report: Report, *, faults: bool) -> None:
    kubectl("patch", "job", "producer", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    started = time.monotonic()

    def elapsed() -> str:
        return f"{time.monotonic() - started:4.0f}s"

    def progress() -> bool:
        state = job_state("producer")
        lines = [
            f"  [{elapsed()}] producers: {state['active']} running, "
            f"{state['succeeded']} done, {state['failed']} failed; collectors "
            f"{len(collector_pods())}"
        ]
        for index, pod in sorted(producer_pods().items()):
            line = last_line(pod, starting="progress") or "(starting)"
            lines.append(f"         producer-{index}: {line}")
        say("\n".join(lines))
        return state["succeeded"] >= len(MONTHS)

    def running() -> bool:
        return job_state("producer")["active"] > 0

    if faults:
        # Let every producer get going before the first fault.
        def sending() -> str | None:
            pods = producer_pods()
            started = len(pods) >= len(MONTHS)
            return (
                None
                if started and all(last_line(p, starting="progress") for p in pods.values())
                else ("starting")
            )

        wait_until("three producers sending", sending, timeout_s=300)
        progress()
        say(f"  [{elapsed()}] fault 1: kubectl rollout restart deployment/collector")
        before = collector_pods()
        kubectl("rollout", "restart", "deployment/collector")
        active = running()
        wait_until("the restarted collectors", collectors_ready(collector_minimum()), timeout_s=300)
        during = "the producers ran" if active else "NO producer ran"
        what = f"`kubectl rollout restart deployment/collector` replaced {', '.join(before)}"
        report.faults.append((f"at {elapsed()}", f"{what} while {during}"))
        progress()
        victim = collector_pods()[0]
        say(f"  [{elapsed()}] fault 2: kubectl delete pod {victim}")
        active = running()
        kubectl("delete", "pod", victim, "--wait=false")
        during = "the producers ran" if active else "NO producer ran"
        report.faults.append((f"at {elapsed()}", f"`kubectl delete pod {victim}` while {during}"))
        if not active:
            report.notes.append("the faults came after the replay had ended: raise the sample rows")
    last = 0.0
    while True:
        check = job_complete("producer", len(MONTHS))
        if check() is None:
            break
        if time.monotonic() - last >= PROGRESS_EVERY_S:
            progress()
            last = time.monotonic()
        if time.monotonic() - started > 1800:
            say(diagnose())
            raise E2EError("the producers did not finish within 30 minutes")
        time.sleep(1)
    progress()
    for index, pod in sorted(producer_pods().items()):
        summary = json.loads(last_line(pod, starting="{") or "{}")
        report.producers.append({"index": index, **summary})


def validator_lag() -> str | None:
    """None once the validator has committed every raw record (its group's lag is 0)."""
    described = kubectl(
        "exec", "kafka-0", "--", "/opt/kafka/bin/kafka-consumer-groups.sh",
        "--bootstrap-server", "localhost:9092", "--describe", "--group", "validator",
        timeout_s=120, check=False,
    )  # fmt: skip
    lags = [line.split()[5] for line in described.splitlines() if line.startswith("validator ")]
    if not lags or not all(lag.isdigit() for lag in lags):
        return "no committed offsets yet"
    total = sum(int(lag) for lag in lags)
    return None if total == 0 else f"{total:,} raw records not yet validated"


def _json_line(container: str) -> dict[str, Any]:
    logs = kubectl("logs", "job/producer-reconcile", "-c", container, check=False)
    lines = [line for line in logs.splitlines() if line.startswith("{")]
    if not lines:
        say(logs[-4000:])
        raise E2EError(f"the reconcile Job's {container} printed no JSON line")
    say(f"    {container}: {lines[-1]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def note_restarts(report: Report) -> None:
    """Container restarts during the run: each one is a fault the manifests or the code let in."""
    restarted = [
        f"{pod['metadata']['name']} ({status['name']}: {status['restartCount']})"
        for pod in kubectl_json("pods")["items"]
        for status in pod["status"].get("containerStatuses", [])
        if status.get("restartCount", 0) > 0
    ]
    report.notes.append("container restarts: " + (", ".join(restarted) if restarted else "none"))
    say(f"    {report.notes[-1]}")


def reconcile_in_cluster(report: Report) -> None:
    wait_until("the validator to catch up (consumer group lag 0)", validator_lag, timeout_s=600)
    kubectl(
        "patch", "job", "producer-reconcile", "--type=merge", "-p", '{"spec":{"suspend":false}}'
    )
    failed: list[str] = []

    def check() -> str | None:
        state = job_state("producer-reconcile")
        if state["failed"]:
            failed.append("failed")
            return None
        return None if state["succeeded"] else f"{state['active']} active"

    wait_until("the reconcile Job", check, timeout_s=900)
    note_restarts(report)
    report.reconciliation = _json_line("reconcile")
    report.validated = _json_line("reconcile-validated")
    say(table(["replica", "events", "share"], report.shares()))
    shares = [n for _, n, _ in report.shares()]
    if len(shares) > 1 and max(shares) > 2 * sum(shares) / len(shares):
        report.notes.append(
            "the replicas' shares are uneven: a Service balances connections, not requests, and "
            "each producer keeps its keep-alive connections to the pod it first reached (a "
            "replica restarted or deleted mid-replay sends its clients elsewhere)"
        )
    r, v = report.reconciliation, report.validated
    if failed or r.get("missing") != 0 or r.get("unexpected") != 0:
        raise E2EError(
            f"the reconciliation found {r.get('missing')} missing and "
            f"{r.get('unexpected')} unexpected"
        )
    if v.get("missing") != 0 or v.get("unexpected") != 0 or v.get("duplicates") != 0:
        raise E2EError(
            f"the validated topics hold {v.get('missing')} missing, {v.get('duplicates')} "
            f"duplicates and {v.get('unexpected')} unexpected rows"
        )


# ---------------------------------------------------------------- the whole run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.k8s_e2e", description=__doc__)
    parser.add_argument(
        "--base-image",
        default=os.environ.get("PYTHON_IMAGE") or None,
        help="Python base image (default: the Dockerfiles' pinned one)",
    )
    parser.add_argument(
        "--load",
        default=os.environ.get("LOAD") or "auto",
        choices=["auto", "kind", "minikube", "ctr", "none"],
    )
    parser.add_argument("--keep", action="store_true", help="leave everything running")
    parser.add_argument("--no-faults", action="store_true", help="replay without the faults")
    parser.add_argument("--report", type=Path, default=ROOT / ".k8s-e2e" / "report.md")
    args = parser.parse_args(argv)
    report = Report()
    applied = False
    started = time.monotonic()
    try:
        with report.phase("checking the cluster and the Docker engine"):
            preflight(report)
        with report.phase("building the images"):
            build_images(report, args.base_image)
        with report.phase("running the images as containers (read-only, user 10001)"):
            container_checks(report)
        with report.phase("loading the images into the cluster"):
            load_images(report, report.context, args.load)
        with report.phase("server-side dry run of the local and production overlays"):
            server_dry_run(report)
        with report.phase("applying k8s/overlays/e2e and waiting for Kafka, topics, collectors"):
            applied = True
            say(f"    kubectl apply -k {OVERLAY.relative_to(ROOT)}")
            kubectl("apply", "-k", str(OVERLAY.relative_to(ROOT)))
            wait_until("Kafka (statefulset/kafka)", statefulset_ready("kafka"), timeout_s=600)
            wait_until("the topics (job/kafka-topics)", job_complete("kafka-topics"), timeout_s=600)
            wait_until(
                "the collectors (deployment/collector)",
                collectors_ready(collector_minimum()),
                timeout_s=600,
            )
            wait_until("the validator (deployment/validator)", deployment_ready("validator"),
                       timeout_s=600)  # fmt: skip
        with report.phase(
            "replaying three month files (job/producer)"
            + ("" if args.no_faults else " with a rolling restart and a pod deletion")
        ):
            replay_with_faults(report, faults=not args.no_faults)
        with report.phase("reconciling in the cluster (job/producer-reconcile)"):
            reconcile_in_cluster(report)
        ok = True
    except E2EError as exc:
        say(f"make k8s-e2e: {exc}")
        report.notes.append(f"FAILED: {exc}")
        ok = False
    finally:
        if applied and not args.keep:
            with report.phase(f"deleting namespace {NAMESPACE}"):
                run(
                    ["kubectl", "delete", "namespace", NAMESPACE, "--wait=true", "--timeout=300s"],
                    check=False,
                    timeout_s=360,
                )
        elif applied:
            say(f"    left running (KEEP=1): kubectl delete namespace {NAMESPACE} removes it")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(report.markdown())
    say(
        f"==> {'passed' if ok else 'FAILED'} in {time.monotonic() - started:.0f}s; "
        f"report in {args.report}"
    )
    return 0 if ok else 1
