"""The CI workflow, linted by actionlint (which runs shellcheck on its `run:` scripts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from devstack.go_tools import ACTIONLINT, go_tool
from devstack.proc import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
SHELLCHECK = Path(sys.executable).parent / "shellcheck"


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(go_tool(*ACTIONLINT)), "-shellcheck", str(SHELLCHECK), "-no-color", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_workflow_passes_actionlint() -> None:
    done = actionlint(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


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
