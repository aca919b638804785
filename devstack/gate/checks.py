"""The deployment gate's own checks: only what no linter it runs does, each with its reason.

kube-score covers dangling Services, HPAs and NetworkPolicies, selectors against pod templates,
replicas under an HPA, identical probes and PodDisruptionBudgets; checkov covers the pod security
context, resources and image pins. What they do not follow is here. A new check is a function
decorated with `@check(stage, why)`: it gets the rendered objects and their pod templates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

Manifest = dict[str, Any]
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


@dataclass(frozen=True)
class Finding:
    """One thing wrong: which stage found it, where, and what."""

    stage: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.stage}] {self.where}: {self.message}"


def name_of(obj: Manifest) -> str:
    """Kind/namespace/name, for messages."""
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


def namespace_of(obj: Manifest) -> str:
    return str((obj.get("metadata") or {}).get("namespace", "default"))


def selector_matches(selector: Manifest | None, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, operator, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


@dataclass(frozen=True)
class Pods:
    """One workload's pod template, in its namespace."""

    owner: str
    namespace: str
    labels: dict[str, str]
    spec: Manifest

    def containers(self) -> list[Manifest]:
        return [*self.spec.get("initContainers", []), *self.spec.get("containers", [])]

    def has_port(self, port: int | str) -> bool:
        ports = [p for c in self.containers() for p in c.get("ports", [])]
        if isinstance(port, str):
            return any(p.get("name") == port for p in ports)
        return any(int(p["containerPort"]) == port for p in ports)


def pods_of(objects: Iterable[Manifest]) -> list[Pods]:
    """The pod template of every workload."""
    pods = []
    for obj in objects:
        template = (obj.get("spec") or {}).get("template")
        if obj.get("kind") in WORKLOAD_KINDS and isinstance(template, dict):
            pods.append(
                Pods(
                    owner=name_of(obj),
                    namespace=namespace_of(obj),
                    labels=dict((template.get("metadata") or {}).get("labels") or {}),
                    spec=template.get("spec") or {},
                )
            )
    return pods


def _selected(selector: Manifest | None, namespace: str, pods: list[Pods]) -> list[Pods]:
    return [p for p in pods if p.namespace == namespace and selector_matches(selector, p.labels)]


CheckFn = Callable[[list[Manifest], list[Pods]], Iterator[Finding]]


@dataclass(frozen=True)
class Check:
    """A hand-written check: its stage, why no tool does it, and the function."""

    stage: str
    why: str
    run: CheckFn


CHECKS: list[Check] = []


def check(stage: str, why: str) -> Callable[[CheckFn], CheckFn]:
    """Register a check under `stage` ("cross-check" or "policy")."""

    def register(fn: CheckFn) -> CheckFn:
        CHECKS.append(Check(stage, why, fn))
        return fn

    return register


def run_checks(objects: list[Manifest], stage: str) -> list[Finding]:
    """Every registered check of `stage` on one overlay's objects."""
    pods = pods_of(objects)
    return [finding for c in CHECKS if c.stage == stage for finding in c.run(objects, pods)]


# --- cross-object checks -------------------------------------------------------------------------


@check("cross-check", "kube-score checks a Service's selector, not that its targetPort exists")
def service_target_ports(objects: list[Manifest], pods: list[Pods]) -> Iterator[Finding]:
    for obj in objects:
        spec = obj.get("spec") or {}
        if obj.get("kind") != "Service" or "selector" not in spec:
            continue
        chosen = _selected({"matchLabels": spec["selector"]}, namespace_of(obj), pods)
        for port in spec.get("ports", []) if chosen else []:
            target = port.get("targetPort", port.get("port"))
            if not any(p.has_port(target) for p in chosen):
                yield Finding(
                    "cross-check",
                    name_of(obj),
                    f"targetPort {target!r} is not a container port of {chosen[0].owner}",
                )


def _name(obj: Manifest) -> str:
    return str((obj.get("metadata") or {}).get("name"))


def _service_ports(objects: list[Manifest], namespace: str, name: str) -> set[object] | None:
    for obj in objects:
        if obj.get("kind") == "Service" and (namespace_of(obj), _name(obj)) == (namespace, name):
            ports = (obj.get("spec") or {}).get("ports", [])
            return {p.get("port") for p in ports} | {p.get("name") for p in ports}
    return None


@check(
    "cross-check",
    "kube-score checks an Ingress's Service, not its port; nothing here knows Gateway API routes",
)
def route_backends(objects: list[Manifest], pods: list[Pods]) -> Iterator[Finding]:
    for obj in objects:
        kind, namespace, spec = obj.get("kind"), namespace_of(obj), obj.get("spec") or {}
        backends: list[tuple[str, object]] = []
        if kind == "Ingress":
            for rule in spec.get("rules", []):
                for path in (rule.get("http") or {}).get("paths", []):
                    service = path.get("backend", {}).get("service", {})
                    port = service.get("port", {})
                    backends.append((service.get("name"), port.get("name", port.get("number"))))
        elif kind == "HTTPRoute":
            gateways = {
                _name(o): {listener.get("name") for listener in o["spec"].get("listeners", [])}
                for o in objects
                if o.get("kind") == "Gateway" and namespace_of(o) == namespace
            }
            for parent in spec.get("parentRefs", []):
                if parent.get("namespace", namespace) != namespace:
                    continue  # a shared Gateway elsewhere: not in this overlay
                listeners = gateways.get(parent.get("name"))
                if (
                    listeners is None
                    or parent.get("sectionName", next(iter(listeners), None)) not in listeners
                ):
                    yield Finding(
                        "cross-check",
                        name_of(obj),
                        f"parentRef {parent.get('name')!r} section {parent.get('sectionName')!r} "
                        "is no listener of a Gateway in this overlay",
                    )
            for rule in spec.get("rules", []):
                backends += [
                    (ref.get("name"), ref.get("port")) for ref in rule.get("backendRefs", [])
                ]
        for service, port in backends:
            ports = _service_ports(objects, namespace, str(service))
            if ports is None or port not in ports:
                yield Finding(
                    "cross-check",
                    name_of(obj),
                    f"backend {service}:{port} is no port of a Service in this overlay",
                )


@check("cross-check", "no linter here follows a NetworkPolicy's peers and ports to the pods")
def network_policy_peers(objects: list[Manifest], pods: list[Pods]) -> Iterator[Finding]:
    for obj in objects:
        if obj.get("kind") != "NetworkPolicy":
            continue
        spec, namespace = obj.get("spec") or {}, namespace_of(obj)
        applies_to = _selected(spec.get("podSelector"), namespace, pods)
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in spec.get(direction) or []:
                ports = [p["port"] for p in rule.get("ports") or [] if "port" in p]
                for peer in rule.get(peers_key) or []:
                    if "podSelector" not in peer or "namespaceSelector" in peer:
                        continue  # Pods elsewhere cannot be checked from this tree.
                    peers = _selected(peer["podSelector"], namespace, pods)
                    if not peers:
                        yield Finding(
                            "cross-check",
                            name_of(obj),
                            f"{direction} peer podSelector {peer['podSelector']} matches no pod "
                            "template",
                        )
                    elif direction == "egress":
                        yield from _unserved_ports(obj, direction, ports, peers)
                if direction == "ingress" and applies_to:
                    yield from _unserved_ports(obj, direction, ports, applies_to)


def _unserved_ports(
    policy: Manifest, direction: str, ports: list[int | str], pods: list[Pods]
) -> Iterator[Finding]:
    for port in ports:
        if not any(p.has_port(port) for p in pods):
            yield Finding(
                "cross-check",
                name_of(policy),
                f"{direction} port {port!r} is not a container port of {pods[0].owner}",
            )


@check(
    "cross-check", "kube-score takes the default-deny for every pod's policy; each needs its own"
)
def own_network_policy(objects: list[Manifest], pods: list[Pods]) -> Iterator[Finding]:
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]

    def spec(o: Manifest) -> Manifest:
        return o.get("spec") or {}

    for namespace in sorted({p.namespace for p in pods}):
        if not any(
            namespace_of(o) == namespace
            and not spec(o).get("podSelector")
            and {"Ingress", "Egress"} <= set(spec(o).get("policyTypes") or [])
            and not spec(o).get("ingress")
            and not spec(o).get("egress")
            for o in policies
        ):
            yield Finding(
                "cross-check",
                f"Namespace/{namespace}",
                "no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)",
            )
    for pod in pods:
        if not any(
            namespace_of(o) == pod.namespace
            and spec(o).get("podSelector")
            and selector_matches(spec(o).get("podSelector"), pod.labels)
            for o in policies
        ):
            yield Finding(
                "cross-check", pod.owner, "no NetworkPolicy selects these pods specifically"
            )


@check("cross-check", "kube-score does not follow ConfigMap, Secret and ServiceAccount references")
def config_refs(objects: list[Manifest], pods: list[Pods]) -> Iterator[Finding]:
    data: dict[tuple[str, str, str], set[str]] = {}
    for o in objects:
        if o.get("kind") in {"ConfigMap", "Secret"}:
            keys = {*(o.get("data") or {}), *(o.get("stringData") or {})}
            keys |= set(o.get("binaryData") or {})
            data[(str(o["kind"]), namespace_of(o), o["metadata"]["name"])] = keys
    accounts = {
        (namespace_of(o), o["metadata"]["name"])
        for o in objects
        if o.get("kind") == "ServiceAccount"
    }

    def refer(kind: str, ref: Manifest, pod: Pods) -> Iterator[Finding]:
        if ref.get("optional"):
            return
        keys = data.get((kind, pod.namespace, str(ref.get("name"))))
        if keys is None:
            yield Finding(
                "cross-check", pod.owner, f"refers to {kind} {ref.get('name')!r}: not found"
            )
        elif "key" in ref and ref["key"] not in keys:
            yield Finding(
                "cross-check",
                pod.owner,
                f"refers to key {ref['key']!r} of {kind} {ref.get('name')!r}: not there",
            )

    for pod in pods:
        account = pod.spec.get("serviceAccountName")
        if account and account != "default" and (pod.namespace, account) not in accounts:
            yield Finding("cross-check", pod.owner, f"ServiceAccount {account!r} not found")
        for container in pod.containers():
            for env in container.get("env") or []:
                source = env.get("valueFrom") or {}
                if "configMapKeyRef" in source:
                    yield from refer("ConfigMap", source["configMapKeyRef"], pod)
                if "secretKeyRef" in source:
                    yield from refer("Secret", source["secretKeyRef"], pod)
            for env_from in container.get("envFrom") or []:
                if "configMapRef" in env_from:
                    yield from refer("ConfigMap", env_from["configMapRef"], pod)
                if "secretRef" in env_from:
                    yield from refer("Secret", env_from["secretRef"], pod)
        for volume in pod.spec.get("volumes") or []:
            if "configMap" in volume:
                yield from refer("ConfigMap", volume["configMap"], pod)
            if "secret" in volume:
                yield from refer(
                    "Secret", {**volume["secret"], "name": volume["secret"].get("secretName")}, pod
                )


@check("cross-check", "no linter here checks that a probe's named port is declared")
def probe_ports(objects: list[Manifest], pods: list[Pods]) -> Iterator[Finding]:
    for pod in pods:
        for container in pod.containers():
            names = {port.get("name") for port in container.get("ports") or []}
            for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = container.get(probe_name) or {}
                for handler in ("httpGet", "tcpSocket", "grpc"):
                    port = (probe.get(handler) or {}).get("port")
                    if isinstance(port, str) and port not in names:
                        yield Finding(
                            "cross-check",
                            pod.owner,
                            f"container {container.get('name')}: {probe_name} uses port "
                            f"{port!r}, which the container does not name",
                        )


# --- the project's own pod rules -----------------------------------------------------------------


@check("policy", "the drain timing is this project's rule: a preStop pause within the grace period")
def pre_stop_within_grace(objects: list[Manifest], pods: list[Pods]) -> Iterator[Finding]:
    for pod in pods:
        grace_s = int(pod.spec.get("terminationGracePeriodSeconds", 30))
        for container in pod.spec.get("containers", []):
            pre_stop = (container.get("lifecycle") or {}).get("preStop") or {}
            pause_s = (pre_stop.get("sleep") or {}).get("seconds")
            if pause_s is not None and int(pause_s) >= grace_s:
                yield Finding(
                    "policy",
                    f"{pod.owner} container {container.get('name')}",
                    f"preStop pause {pause_s}s is not shorter than terminationGracePeriodSeconds "
                    f"{grace_s}s: the drain would be killed",
                )
