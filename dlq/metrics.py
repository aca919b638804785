"""The run's counters in Prometheus form, pushed to a Pushgateway when one is configured.

A re-drive is a Job that is gone before the next scrape, so its counts are pushed (grouped by
stage) rather than served; parked records by reason are counted live by the stages themselves
(`collector_events_dead_lettered_total`, `validator_dead_letters_total`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, push_to_gateway

from dlq.inspect import Group
from dlq.redrive import Summary


def redrive_registry(summary: Summary) -> CollectorRegistry:
    registry = CollectorRegistry()
    records = Counter(
        "dlq_redrive_records",
        "Parked records a re-drive looked at, by outcome and reason (parked reason when "
        "re-driven, the reason it still fails otherwise)",
        ["stage", "outcome", "reason"],
        registry=registry,
    )
    for reason, n in summary.redriven_by_reason.items():
        records.labels(summary.stage, "redriven", reason).inc(n)
    for reason, n in summary.still_parked.items():
        records.labels(summary.stage, "still_parked", reason).inc(n)
    records.labels(summary.stage, "already_redriven", "").inc(summary.already_redriven)
    records.labels(summary.stage, "already_present", "").inc(summary.already_present)
    return registry


def parked_registry(stage: str, groups: list[Group]) -> CollectorRegistry:
    registry = CollectorRegistry()
    parked = Gauge(
        "dlq_parked_records", "Records on a dead-letter topic when last inspected, by reason",
        ["stage", "reason"], registry=registry,
    )  # fmt: skip
    for group in groups:
        parked.labels(stage, group.reason).inc(group.count)
    return registry


def push(url: str | None, job: str, stage: str, registry: CollectorRegistry) -> None:
    if url:
        push_to_gateway(url, job=job, grouping_key={"stage": stage}, registry=registry)
