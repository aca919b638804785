"""`make k8s-e2e` without a cluster, and its report (a real run: docs/k8s-e2e.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.k8s_e2e import images, kubectl
from devstack.k8s_e2e.report import Report
from devstack.proc import ROOT


def test_without_a_cluster_it_says_so_in_one_line_and_exits_1(tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "no-such-kubeconfig")}
    done = subprocess.run(
        [sys.executable, "-m", "devstack.k8s_e2e", "--report", str(tmp_path / "r.md")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("make k8s-e2e:")]
    assert len(errors) == 1
    assert "kubectl" in errors[0]  # no kubectl, or no context: either way it names the cause
    assert "Traceback" not in done.stderr
    assert "FAILED" in (tmp_path / "r.md").read_text()


@pytest.mark.parametrize(
    ("context", "wanted", "loader"),
    [("kind-events", "auto", "kind"), ("minikube", "auto", "minikube"), ("any", "none", "none"),
     ("kind-x", "ctr", "ctr")],
)  # fmt: skip
def test_images_are_loaded_the_way_the_cluster_needs(
    context: str, wanted: str, loader: str
) -> None:
    assert images.choose_loader(context, wanted) == loader


def test_the_report_shows_phases_producers_reconciliation_and_shares() -> None:
    report = Report(context="kind-events", server_version="v1.33.1", loader="kind")
    report.phases = [("build", 10.0), ("replay", 70.5)]
    report.producers = [{"index": 0, "records": 5, "accepted": 5, "rejected": 0, "failed": 0,
                         "retries": 1, "seconds": 2.0}]  # fmt: skip
    report.reconciliation = {"missing": 0, "by_collector": {"c-1": 3, "c-2": 1}}
    text = report.markdown()
    assert "| **total** | **80.5** |" in text
    assert report.shares() == [("c-1", 3, "75.0%"), ("c-2", 1, "25.0%")]
    assert "c-1           3  75.0%" in text
    assert '"missing": 0' in text
    report.spread = {"c-1": 95.0, "c-2": 105.0, "c-3": 100.0}
    report.front_door = "`POST http://198.18.0.1:31234/api/v1/collect` from this machine: 202"
    text = report.markdown()
    assert "c-2           105  35.0%" in text
    assert "from this machine: 202" in text


def test_a_wait_that_times_out_prints_events_and_logs_of_pods_not_ready(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pods = {"items": [
        {"metadata": {"name": "collector-a"}, "status": {"phase": "Pending", "conditions": []}},
        {"metadata": {"name": "kafka-0"},
         "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}},
    ]}  # fmt: skip
    asked: list[tuple[str, ...]] = []

    def run_kubectl(*args: str, **_: object) -> str:
        asked.append(args)
        return f"output of {' '.join(args[:2])}"

    monkeypatch.setattr(kubectl, "kubectl_json", lambda *args: pods)
    monkeypatch.setattr(kubectl, "kubectl", run_kubectl)
    with pytest.raises(kubectl.E2EError, match=r"collectors not ready after 0s \(1/2 ready\)"):
        kubectl.wait_for("collectors", lambda: "1/2 ready", timeout_s=0, every_s=0)
    err = capsys.readouterr().err
    assert "--- events of collector-a" in err
    assert "--- logs of collector-a" in err
    assert "kafka-0" not in err  # ready pods are left out
    assert ("logs", "collector-a", "--all-containers", "--tail=40") in asked
