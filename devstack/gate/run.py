"""The offline deployment gate: render every overlay, then hold manifests and Dockerfiles to policy.

Stages, each a list of findings (an empty list passes):
- yamllint on every YAML file under k8s/;
- kustomize (pinned, built with `go install` into .cache/ on first use) renders each overlay;
- strict schema validation (unknown fields fail, removed apiVersions fail) against several
  Kubernetes versions, with the schemas that `kubernetes-validate` ships;
- kube-score (pinned, built like kustomize): dangling Services, HPAs and NetworkPolicies,
  selectors against pod templates, replicas under an HPA, PDBs, probes, security context;
- checkov (pinned, in its own virtualenv .venv-checkov, created on first use, run offline);
- the checks no tool here does (`devstack.gate.checks`, each with its reason): ports, peers and
  references between objects, and the project's drain timing;
- hadolint on both Dockerfiles.
Every accepted finding and kube-score option lives in k8s/policy-exceptions.yaml with its reason;
the gate prints them all.

`python -m devstack.gate` runs it all and exits 1 on any finding.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devstack.gate import capacity, images
from devstack.gate.checks import CHECKS, Finding, Manifest, run_checks, selector_matches
from devstack.gate.tools import (
    CHECKOV_VERSION,
    Exception_,
    GateSetupError,
    Policy,
    checkov_binary,
    hadolint_binary,
    kube_score_binary,
    kustomize_binary,
    lint_yaml,
    load_policy,
    render,
    run_checkov,
    run_hadolint,
    run_kube_score,
    validate_schemas,
)
from devstack.go_tools import KUBE_SCORE, KUSTOMIZE
from devstack.proc import ROOT

__all__ = ["Finding", "GateSetupError", "Report", "main", "run_gate", "selector_matches"]

K8S_DIR = ROOT / "k8s"
DOCKERFILES = tuple(ROOT / f"Dockerfile.{name}" for name in ("collector", "producer", "validator"))
OVERLAYS = ("local", "production", "e2e", "monitored", "public", "scale")
# The minor versions still supported upstream or by the big managed offerings when this was pinned.
KUBERNETES_VERSIONS = ("1.33", "1.34", "1.35", "1.36", "1.37")
EXCEPTIONS_FILE = "policy-exceptions.yaml"
STAGES = (
    "yamllint", "render", "schema", "kube-score", "checkov", "cross-check", "policy", "fit",
    "hadolint",
)  # fmt: skip


@dataclass
class Report:
    """What one gate run found, and the policy (accepted findings, options) it honoured."""

    findings: list[Finding] = field(default_factory=list)
    policy: Policy = field(default_factory=Policy)
    rendered: dict[str, list[Manifest]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.findings

    @property
    def exceptions(self) -> tuple[Exception_, ...]:
        return self.policy.exceptions

    def messages(self) -> str:
        return "\n".join(str(finding) for finding in self.findings)


def load_exceptions(k8s_dir: Path) -> tuple[Exception_, ...]:
    """Every accepted finding, of every tool, from k8s/policy-exceptions.yaml."""
    return load_policy(k8s_dir / EXCEPTIONS_FILE).exceptions


def fit_findings(overlay: str, objects: list[Manifest]) -> list[Finding]:
    """What a real cluster showed: laptop overlays fit a 2-CPU node; images carry the version."""
    problems = images.image_tags(objects, images.project_version())
    if overlay in capacity.SMALL_NODE_OVERLAYS:
        problems += capacity.small_node_fit(objects)
    return [Finding("fit", "pods", message) for message in problems]


def _overlay_stages(
    objects: list[Manifest], overlay: str, wanted: set[str], policy: Policy, versions: Sequence[str]
) -> list[Finding]:
    findings: list[Finding] = []
    if "schema" in wanted:
        findings += validate_schemas(objects, versions)
    for stage in ("cross-check", "policy"):
        if stage in wanted:
            findings += run_checks(objects, stage)
    if "fit" in wanted:
        findings += fit_findings(overlay, objects)
    tagged = [Finding(f.stage, f"{overlay}: {f.where}", f.message) for f in findings]
    tagged = [f for f in tagged if not policy.accepts_finding(f)]
    if not {"kube-score", "checkov"} & wanted:
        return tagged
    with tempfile.TemporaryDirectory() as tmp:
        rendered = Path(tmp) / f"{overlay}.yaml"
        rendered.write_text(yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
        if "kube-score" in wanted:
            found = run_kube_score(rendered, policy, kube_score_binary(), versions[0])
            tagged += [Finding(f.stage, f"{overlay}: {f.where}", f.message) for f in found]
        if "checkov" in wanted:
            tagged += run_checkov(rendered, policy, checkov_binary(), overlay)
    return tagged


def run_gate(
    k8s_dir: Path = K8S_DIR,
    dockerfiles: Sequence[Path] = DOCKERFILES,
    stages: Iterable[str] = STAGES,
    versions: Sequence[str] = KUBERNETES_VERSIONS,
) -> Report:
    """Run the chosen stages on a k8s/ tree and Dockerfiles; rendering always runs."""
    wanted = set(stages)
    report = Report(policy=load_policy(k8s_dir / EXCEPTIONS_FILE))
    if "yamllint" in wanted:
        report.findings += lint_yaml(k8s_dir)
    kustomize = kustomize_binary()
    for overlay in OVERLAYS:
        objects, problems = render(k8s_dir / "overlays" / overlay, kustomize)
        report.findings += problems
        report.rendered[overlay] = objects
        if objects:
            report.findings += _overlay_stages(objects, overlay, wanted, report.policy, versions)
    if "hadolint" in wanted:
        report.findings += run_hadolint(dockerfiles, hadolint_binary())
        report.findings += [
            Finding("docker-context", "build context", message)
            for message in images.docker_context(dockerfiles)
        ]
    return report


def describe_policy(policy: Policy) -> str:
    """The tools, the accepted findings and the options, each with its reason, for the output."""
    lines = [
        f"tools: kustomize {KUSTOMIZE.version}, kube-score {KUBE_SCORE.version}, "
        f"checkov {CHECKOV_VERSION}",
        f"accepted findings and options ({EXCEPTIONS_FILE}):",
    ]
    for option, reason in policy.kube_score_options:
        lines.append(f"  kube-score {option}")
        lines.append(f"      why: {reason}")
    for e in policy.exceptions:
        lines.append(f"  {e.tool} {e.check_id} {e.title} -- on {', '.join(e.resources)}")
        lines.append(f"      why: {e.reason}")
    lines.append("hand-written checks (no tool here does them):")
    lines += [f"  [{c.stage}] {c.run.__name__}: {c.why}" for c in CHECKS]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.gate", description=__doc__)
    parser.add_argument("--k8s-dir", type=Path, default=K8S_DIR)
    parser.add_argument("--stage", action="append", choices=STAGES, help="only these stages")
    args = parser.parse_args(argv)
    try:
        report = run_gate(args.k8s_dir, stages=args.stage or STAGES)
    except GateSetupError as exc:
        print(f"deployment gate: {exc}", file=sys.stderr)
        return 2
    print(describe_policy(report.policy))
    for overlay, objects in report.rendered.items():
        print(f"rendered {overlay}: {len(objects)} objects")
    print(f"Kubernetes versions checked: {', '.join(KUBERNETES_VERSIONS)}")
    if report.findings:
        print(report.messages())
        print(f"deployment gate: FAILED with {len(report.findings)} finding(s)")
        return 1
    print("deployment gate: passed")
    return 0
