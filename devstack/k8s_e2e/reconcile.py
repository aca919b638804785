"""After the replay: wait for the validator, run the reconcile Job in the cluster, and hold its
two JSON lines (the raw topics, the validated ones) to "every row, exactly once"."""

from __future__ import annotations

import functools
import json
from typing import Any

from devstack.k8s_e2e.kubectl import E2EError, kubectl, kubectl_json, resume_job, wait_for
from devstack.k8s_e2e.report import Report
from devstack.k8s_e2e.status import job_state
from devstack.reporting import say, table


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


def reconcile_job_status(failed: list[str]) -> str | None:
    """None once the reconcile Job has ended; a failure is noted in `failed`."""
    state = job_state("producer-reconcile")
    if state["failed"]:
        failed.append("failed")
        return None
    return None if state["succeeded"] else f"{state['active']} active"


def reconcile_in_cluster(report: Report) -> None:
    wait_for("the validator to catch up (consumer group lag 0)", validator_lag, timeout_s=600)
    resume_job("producer-reconcile")
    failed: list[str] = []
    wait_for("the reconcile Job", functools.partial(reconcile_job_status, failed), timeout_s=900)
    note_restarts(report)
    report.reconciliation = _json_line("reconcile")
    report.validated = _json_line("reconcile-validated")
    say(table(["replica", "events", "share"], report.shares()))
    note_uneven_shares(report)
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


def note_uneven_shares(report: Report) -> None:
    shares = [n for _, n, _ in report.shares()]
    if len(shares) > 1 and max(shares) > 2 * sum(shares) / len(shares):
        report.notes.append(
            "the replicas' shares over the whole run are uneven: the pods replaced by the "
            "rolling restart and the deletion took events only part of the time (the spread "
            "over three steady collectors is measured on its own)"
        )
