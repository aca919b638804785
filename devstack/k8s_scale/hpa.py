"""The HPA acting: from one collector, a fixed load that needs more than one (the producer Job's
three month files of single events), watched until the HPA has scaled up, the load has ended and
it has scaled back down; a timeline of replicas, utilisation and events/s."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field

from devstack.k8s_e2e.kubectl import E2EError, kubectl, resume_job, wait_for
from devstack.k8s_e2e.spread import accepted_by_pod, ready_collectors
from devstack.k8s_e2e.status import deployment_status, job_state, last_line, producer_pods
from devstack.k8s_scale.cluster import (
    Manifest,
    apply,
    errors_by_pod,
    hpa_status,
    pick,
    sample_data,
    scale_collectors,
)
from devstack.k8s_scale.report import Report, Tick
from devstack.reporting import say

MONTHS = ("2023-01", "2023-02", "2023-03")
TICK_S = 5.0


def prepare(objects: list[Manifest], report: Report, rate_per_s: float, load_s: float) -> None:
    """The month files sized and the producers paced so that the load lasts `load_s`."""
    rows = int(rate_per_s / len(MONTHS) * load_s)
    report.hpa_rate_per_s, report.hpa_rows = rate_per_s, rows
    for obj in sample_data(objects):
        obj["data"]["rows"] = str(rows)
    producer = pick(objects, "Job", "producer")
    for variable in producer["spec"]["template"]["spec"]["containers"][0]["env"]:
        if variable["name"] == "PRODUCER_RATE":
            variable["value"] = f"{rate_per_s / len(MONTHS):.0f}"
        if variable["name"] == "PRODUCER_BATCH_SIZE":
            variable["value"] = "1"


@dataclass
class Watch:
    """The HPA stage's readings, one tick every TICK_S."""

    report: Report
    minimum: int
    started: float = field(default_factory=time.monotonic)
    errors: dict[str, float] = field(default_factory=dict)
    # 5xx each pod had counted before this stage (a pod kept from the curve): not this stage's.
    errors_before: dict[str, float] = field(default_factory=dict)
    last_counts: dict[str, float] = field(default_factory=dict)
    last_t: float = field(default_factory=time.monotonic)

    def tick(self) -> bool:
        """One reading into the timeline; True once the HPA is back at its minimum after the
        load."""
        now = time.monotonic()
        pods = ready_collectors()
        counts = accepted_by_pod(pods)
        for pod, errors in errors_by_pod(pods).items():
            self.errors[pod] = max(errors, self.errors.get(pod, 0.0))
        elapsed = now - self.last_t
        rate = sum(
            (n - self.last_counts[p]) / elapsed for p, n in counts.items() if p in self.last_counts
        )
        new_pods = [p for p in counts if p not in self.last_counts and self.last_counts]
        self.last_counts, self.last_t = counts, now
        current, desired, utilisation = hpa_status()
        tick = Tick(now - self.started, len(pods), desired, utilisation, rate, dict(counts))
        self.report.timeline.append(tick)
        if self.report.load_ended_s is None and job_state("producer")["succeeded"] >= len(MONTHS):
            self.report.load_ended_s = tick.t_s
        say(
            f"  [{tick.t_s:4.0f}s] replicas {tick.ready} (desired {desired}), cpu "
            f"{utilisation if utilisation is not None else '-'}% of request, {rate:,.0f} events/s"
            + (f", new: {', '.join(new_pods)}" if new_pods else "")
            + ("" if self.report.load_ended_s is None else ", load over")
        )
        ended = self.report.load_ended_s is not None
        return ended and current == desired == self.minimum and len(pods) == current


def hpa_stage(
    objects: list[Manifest],
    report: Report,
    rate_per_s: float,
    load_s: float,
    down_timeout_s: float,
) -> None:
    """The HPA from one replica through a fixed load and back; the timeline into `report`."""
    prepare(objects, report, rate_per_s, load_s)
    hpa = pick(objects, "HorizontalPodAutoscaler", "collector")
    scale_collectors(1)
    kubectl("scale", "deployment/validator", "--replicas=1")
    wait_for("the validator", functools.partial(deployment_status, "validator"), timeout_s=300)
    producer, reconcile = (
        pick(objects, "Job", "producer"),
        pick(objects, "Job", "producer-reconcile"),
    )
    apply([*sample_data(objects), hpa, producer, reconcile])
    resume_job("producer")
    watch = Watch(report, int(hpa["spec"]["minReplicas"]))
    watch.errors_before = errors_by_pod(ready_collectors())
    while True:
        time.sleep(TICK_S)
        if watch.tick():
            break
        t = time.monotonic() - watch.started
        if report.load_ended_s is not None and t - report.load_ended_s > down_timeout_s:
            report.notes.append(
                f"the HPA had not scaled back down {down_timeout_s:.0f}s after the load"
            )
            break
        if report.load_ended_s is None and t > load_s * 4 + 600:
            raise E2EError("the producers did not finish in time")
    report.server_errors = int(
        sum(max(0.0, n - watch.errors_before.get(p, 0.0)) for p, n in watch.errors.items())
    )
    for index, pod in sorted(producer_pods().items()):
        summary = json.loads(last_line(pod, starting="{") or "{}")
        report.producers.append({"index": index, **summary})
