"""The CI workflow, linted by actionlint (which runs shellcheck on its `run:` scripts)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devstack.go_tools import ACTIONLINT
from devstack.proc import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
SHELLCHECK = Path(sys.executable).parent / "shellcheck"


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ACTIONLINT.binary()), "-shellcheck", str(SHELLCHECK), "-no-color", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.tools  # actionlint: `make tools` builds it
def test_the_workflow_passes_actionlint() -> None:
    done = actionlint(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.tools  # actionlint: `make tools` builds it
def test_actionlint_finds_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "ci.yml"
    broken.parent.mkdir(parents=True)
    text = WORKFLOW.read_text(encoding="utf-8")
    broken.write_text(text.replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-2404", 1))
    done = actionlint(broken)
    assert done.returncode == 1
    assert "ubuntu-2404" in done.stdout


def test_the_workflow_runs_the_make_targets() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    runs = {
        job: " ".join(step.get("run", "") for step in spec["steps"])
        for job, spec in workflow["jobs"].items()
    }
    assert "make test" in runs["test"]
    assert "make images" in runs["images"]
    assert "make k8s-e2e" in runs["k8s-e2e"]
    # make k8s-e2e runs on kubectl's current context: the job makes one first.
    assert runs["k8s-e2e"].index("kind create cluster") < runs["k8s-e2e"].index("make k8s-e2e")


def test_every_action_is_pinned_by_commit_with_its_tag_beside_it() -> None:
    uses = re.findall(r"^\s*(?:- )?uses: (\S+)(.*)$", WORKFLOW.read_text(), flags=re.MULTILINE)
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r" # v\d+(\.\d+)*", comment), f"{action}: tag comment {comment!r}"


def test_every_container_is_pinned_by_digest() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    containers = [spec["container"] for spec in workflow["jobs"].values() if "container" in spec]
    assert containers
    for container in containers:
        image = container["image"] if isinstance(container, dict) else container
        assert re.fullmatch(r"\S+@sha256:[0-9a-f]{64}", image), image


def test_the_workflow_audits_every_lock_and_keeps_the_sboms() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    audit = " ".join(step.get("run", "") for step in workflow["jobs"]["audit"]["steps"])
    assert "--require-hashes -r requirements/audit.txt" in audit
    # --strict: a package it cannot look up fails the audit instead of passing unaudited.
    assert "pip-audit --strict --require-hashes" in audit
    assert "for lock in requirements/*.txt" in audit
    for job in ("images", "k8s-e2e"):
        kept = [
            step["with"]["path"]
            for step in workflow["jobs"][job]["steps"]
            if step.get("uses", "").startswith("actions/upload-artifact@")
        ]
        assert any(".artifacts/sbom/" in path for path in kept), job
