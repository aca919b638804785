"""Whether what an overlay starts fits the node it is meant for: every pod's requests summed at
the peak of an apply (rollouts included), against a 2-CPU laptop node (pure functions).

Hand-written because no linter knows it: it needs the whole overlay at once (what runs at the
same time). A real cluster showed the need: pods stayed Pending.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Manifest = dict[str, Any]

# A laptop cluster (kind, minikube, a one-node cluster) on a 2-CPU machine: its control plane, DNS
# and CNI already request about 0.95 CPU on kind (apiserver 250m, controller-manager 200m, etcd,
# scheduler, kindnet and two CoreDNS 100m each), so an overlay meant for it gets the rest.
SMALL_NODE_CPU_M = 1000
SMALL_NODE_MEMORY_MI = 3072
SMALL_NODE_OVERLAYS = ("local", "e2e", "scale")


def cpu_m(quantity: str | int | float | None) -> int:
    """A CPU quantity ("250m", "1", 0.5) in millicores."""
    if quantity is None:
        return 0
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


_MEMORY_UNITS = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "K": 1e3 / 2**20, "M": 1e6 / 2**20,
                 "G": 1e9 / 2**20}  # fmt: skip


def memory_mi(quantity: str | int | None) -> float:
    """A memory quantity ("768Mi", "1Gi", "512M", bytes) in MiB."""
    if quantity is None:
        return 0.0
    text = str(quantity)
    for suffix in sorted(_MEMORY_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _MEMORY_UNITS[suffix]
    return float(text) / 2**20


def _pod_requests(pod_spec: Manifest) -> tuple[int, float]:
    """What the scheduler reserves for a pod: its containers' sum or its largest init container."""

    def requests(containers: Iterable[Manifest]) -> list[tuple[int, float]]:
        out = []
        for c in containers:
            r = c.get("resources", {}).get("requests", {})
            out.append((cpu_m(r.get("cpu")), memory_mi(r.get("memory"))))
        return out

    main = requests(pod_spec.get("containers", []))
    init = requests(pod_spec.get("initContainers", []))
    cpu = max([sum(c for c, _ in main), *(c for c, _ in init)])
    memory = max([sum(m for _, m in main), *(m for _, m in init)])
    return cpu, memory


def _surge(deployment: Manifest, replicas: int) -> int:
    strategy = deployment["spec"].get("strategy", {})
    if strategy.get("type") == "Recreate":
        return 0
    surge = strategy.get("rollingUpdate", {}).get("maxSurge", "25%")
    if isinstance(surge, str) and surge.endswith("%"):
        return -(-replicas * int(surge[:-1]) // 100)  # rounded up, as Kubernetes does
    return int(surge)


def pods_at_peak(objects: list[Manifest]) -> list[tuple[str, int, int, float]]:
    """(workload, pods, CPU m and MiB per pod) for all an apply starts, rollouts included.

    Deployments count their HPA's minimum (or their replicas) plus the pods a rolling update adds;
    Jobs their parallelism.
    """
    hpa_min = {
        h["spec"]["scaleTargetRef"]["name"]: int(h["spec"].get("minReplicas", 1))
        for h in objects
        if h.get("kind") == "HorizontalPodAutoscaler"
    }
    rows = []
    for obj in objects:
        kind, name = obj.get("kind"), obj.get("metadata", {}).get("name", "?")
        spec = obj.get("spec", {})
        if kind == "Deployment":
            replicas = hpa_min.get(name, int(spec.get("replicas", 1)))
            count = replicas + _surge(obj, replicas)
        elif kind == "StatefulSet":
            count = int(spec.get("replicas", 1))
        elif kind == "Job":
            count = int(spec.get("parallelism", 1))
        else:
            continue
        cpu, memory = _pod_requests(spec["template"]["spec"])
        rows.append((f"{kind}/{name}", count, cpu, memory))
    return rows


def small_node_fit(objects: list[Manifest]) -> list[str]:
    """Problems when everything the overlay starts would not schedule on a 2-CPU laptop node."""
    rows = pods_at_peak(objects)
    cpu = sum(n * c for _, n, c, _ in rows)
    memory = sum(n * m for _, n, _, m in rows)
    detail = ", ".join(f"{w} {n}x{c}m" for w, n, c, _ in rows)
    problems = []
    if cpu > SMALL_NODE_CPU_M:
        problems.append(
            f"requests {cpu}m CPU at peak, more than the {SMALL_NODE_CPU_M}m a 2-CPU laptop node "
            f"has left after its control plane ({detail}): pods would stay Pending"
        )
    if memory > SMALL_NODE_MEMORY_MI:
        problems.append(
            f"requests {memory:.0f}Mi memory at peak, more than {SMALL_NODE_MEMORY_MI}Mi"
        )
    return problems
