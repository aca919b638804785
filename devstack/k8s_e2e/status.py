"""What the cluster says about the project's workloads. Each `*_status` function is a status to
wait for (`kubectl.wait_for`): a line saying what is missing, or None once it is there."""

from __future__ import annotations

from devstack.k8s_e2e.kubectl import E2EError, diagnose, kubectl, kubectl_json
from devstack.reporting import say


def statefulset_status(name: str) -> str | None:
    s = kubectl_json("statefulset", name)
    want, ready = s["spec"].get("replicas", 1), s["status"].get("readyReplicas", 0)
    return None if ready >= want else f"{ready}/{want} ready"


def deployment_status(name: str) -> str | None:
    d = kubectl_json("deployment", name)
    want, ready = d["spec"].get("replicas", 1), d["status"].get("readyReplicas", 0)
    return None if ready >= want else f"{ready}/{want} ready"


def job_state(name: str) -> dict[str, int]:
    status = kubectl_json("job", name)["status"]
    return {k: int(status.get(k, 0)) for k in ("active", "succeeded", "failed")}


def job_status(name: str, completions: int = 1) -> str | None:
    """None once `completions` pods succeeded; E2EError (with diagnostics) if the Job failed."""
    job = kubectl_json("job", name)
    for condition in job["status"].get("conditions", []):
        if condition["type"] == "Failed" and condition["status"] == "True":
            say(diagnose())
            raise E2EError(f"job {name} failed: {condition.get('message', '')}")
    state = job_state(name)
    if state["succeeded"] >= completions:
        return None
    return ", ".join(f"{n} {k}" for k, n in state.items())


def rollout_status(minimum: int) -> str | None:
    """None once the collectors' rollout is over: every replica runs the newest template and is
    ready, and there are at least `minimum`."""
    d = kubectl_json("deployment", "collector")
    s, want = d["status"], max(minimum, d["spec"].get("replicas", 1))
    fresh = d["metadata"]["generation"] <= s.get("observedGeneration", 0)
    updated, ready, total = (s.get(k, 0) for k in ("updatedReplicas", "readyReplicas", "replicas"))
    if fresh and updated >= want and ready >= want and total == updated:
        return None
    return f"{ready} ready, {updated} updated, {total} in all (want {want})"


def collector_minimum() -> int:
    """The replicas the HPA keeps at least (metrics-server or not, it scales up to its minimum)."""
    return int(kubectl_json("hpa", "collector")["spec"].get("minReplicas", 1))


def collector_pods() -> list[str]:
    pods = kubectl_json("pods", "-l", "app.kubernetes.io/name=collector")["items"]
    return sorted(p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp"))


def producer_pods() -> dict[int, str]:
    """The producer Job's pods by completion index (the newest pod of each index)."""
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
    """The last line, of the producer container's last 20, that starts with `starting`."""
    text = kubectl("logs", pod, "-c", "producer", "--tail=20", check=False)
    lines = [line for line in text.splitlines() if line.startswith(starting)]
    return lines[-1] if lines else ""
