"""The producer Indexed Job's replay of three month files, watched, with the faults injected
while it runs (a rolling restart of the collectors, then a deleted collector pod) and the spread
over the collectors measured once they are steady again."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field

from devstack.k8s_e2e.kubectl import E2EError, diagnose, kubectl, resume_job, wait_for
from devstack.k8s_e2e.report import Report
from devstack.k8s_e2e.spread import measure_spread
from devstack.k8s_e2e.status import (
    collector_minimum,
    collector_pods,
    job_state,
    job_status,
    last_line,
    producer_pods,
    rollout_status,
)
from devstack.proc import wait_until
from devstack.reporting import say

MONTHS = ("2023-01", "2023-02", "2023-03")
PROGRESS_EVERY_S = 5.0
REPLAY_TIMEOUT_S = 1800


@dataclass
class Replay:
    """One run of the producer Job: started, faulted, watched to its end, its summaries kept."""

    report: Report
    started: float = field(default_factory=time.monotonic)
    last_progress: float = 0.0

    def run(self, *, faults: bool) -> None:
        resume_job("producer")
        self.started = time.monotonic()
        if faults:
            self.inject_faults()
        measure_spread(self.report, self.running)
        self.wait_finished()
        self.progress()
        for index, pod in sorted(producer_pods().items()):
            summary = json.loads(last_line(pod, starting="{") or "{}")
            self.report.producers.append({"index": index, **summary})

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.started:4.0f}s"

    def progress(self) -> None:
        """What each producer pod said last, and how many collectors run."""
        state = job_state("producer")
        lines = [
            f"  [{self.elapsed()}] producers: {state['active']} running, "
            f"{state['succeeded']} done, {state['failed']} failed; collectors "
            f"{len(collector_pods())}"
        ]
        for index, pod in sorted(producer_pods().items()):
            line = last_line(pod, starting="progress") or "(starting)"
            lines.append(f"         producer-{index}: {line}")
        say("\n".join(lines))

    @staticmethod
    def running() -> bool:
        return job_state("producer")["active"] > 0

    @staticmethod
    def sending_status() -> str | None:
        """None once every producer pod has said its first progress line."""
        pods = producer_pods()
        started = len(pods) >= len(MONTHS)
        if started and all(last_line(p, starting="progress") for p in pods.values()):
            return None
        return "starting"

    def inject_faults(self) -> None:
        # Let every producer get going before the first fault.
        wait_for("three producers sending", self.sending_status, timeout_s=300)
        self.progress()
        self.restart_collectors()
        self.progress()
        if not self.delete_a_collector():
            self.report.notes.append(
                "the faults came after the replay had ended: raise the sample rows"
            )

    def restart_collectors(self) -> None:
        say(f"  [{self.elapsed()}] fault 1: kubectl rollout restart deployment/collector")
        before = collector_pods()
        kubectl("rollout", "restart", "deployment/collector")
        active = self.running()
        rollout = functools.partial(rollout_status, collector_minimum())
        wait_for("the restarted collectors", rollout, timeout_s=300)
        during = "the producers ran" if active else "NO producer ran"
        what = f"`kubectl rollout restart deployment/collector` replaced {', '.join(before)}"
        self.report.faults.append((f"at {self.elapsed()}", f"{what} while {during}"))

    def delete_a_collector(self) -> bool:
        """Delete the first collector pod; whether the producers were still running."""
        victim = collector_pods()[0]
        say(f"  [{self.elapsed()}] fault 2: kubectl delete pod {victim}")
        active = self.running()
        kubectl("delete", "pod", victim, "--wait=false")
        during = "the producers ran" if active else "NO producer ran"
        self.report.faults.append(
            (f"at {self.elapsed()}", f"`kubectl delete pod {victim}` while {during}")
        )
        return active

    def finished(self) -> bool:
        """Whether every month's pod succeeded; progress every PROGRESS_EVERY_S until then."""
        if job_status("producer", len(MONTHS)) is None:
            return True
        if time.monotonic() - self.last_progress >= PROGRESS_EVERY_S:
            self.progress()
            self.last_progress = time.monotonic()
        return False

    def wait_finished(self) -> None:
        remaining_s = REPLAY_TIMEOUT_S - (time.monotonic() - self.started)
        try:
            wait_until(self.finished, remaining_s, "the producers", every_s=1)
        except TimeoutError:
            say(diagnose())
            raise E2EError("the producers did not finish within 30 minutes") from None
