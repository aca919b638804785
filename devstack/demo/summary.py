"""The demo's closing report, from the producers' and the reconciliation's JSON lines (pure)."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from devstack.reporting import table


@dataclass(frozen=True)
class ProducerResult:
    """One producer's closing JSON line, plus how its process ended."""

    name: str
    exit_code: int
    summary: Mapping[str, Any]

    @property
    def rate_per_s(self) -> float:
        if "rate_per_s" in self.summary:
            return float(self.summary["rate_per_s"])
        seconds = float(self.summary.get("seconds") or 0)
        return float(self.summary.get("records", 0)) / seconds if seconds > 0 else 0.0


def parse_summary(stdout: str) -> dict[str, Any]:
    """The last JSON object line a producer printed on stdout ({} when there is none)."""
    for line in reversed(stdout.splitlines()):
        with contextlib.suppress(ValueError):
            parsed = json.loads(line)
            if isinstance(parsed, dict):
                return parsed
    return {}


def render_summary(
    producers: Sequence[ProducerResult],
    topic_counts: Mapping[str, int],
    replica_counts: Mapping[str, int],
    reconcile: Mapping[str, Any] | None,
) -> str:
    """The closing report of a demo run."""
    fields = ("records", "accepted", "rejected", "failed", "retries")
    producer_rows: list[list[object]] = [
        [
            p.name,
            *(int(p.summary.get(f, 0)) for f in fields),
            float(p.summary.get("seconds", 0)),
            round(p.rate_per_s),
            p.exit_code,
        ]
        for p in producers
    ]
    if len(producers) > 1:
        producer_rows.append(
            [
                "total",
                *(sum(int(p.summary.get(f, 0)) for p in producers) for f in fields),
                max(float(p.summary.get("seconds", 0)) for p in producers),
                round(sum(p.rate_per_s for p in producers)),
                None,
            ]
        )
    total_events = sum(replica_counts.values())
    replica_rows = [
        [name, count, f"{100 * count / total_events:.1f}%" if total_events else "-"]
        for name, count in sorted(replica_counts.items())
    ]
    parts = [
        "Producers",
        table(["file", *fields, "seconds", "events/s", "exit"], producer_rows),
        "",
        "Topics",
        table(["topic", "messages"], [[t, n] for t, n in topic_counts.items()]),
        "",
        "Replicas (collector_id of the envelopes on the raw topic)",
        table(["replica", "events", "share"], replica_rows),
        "",
        "Reconciliation (python -m producer reconcile)",
    ]
    if reconcile is None:
        parts.append("  did not run")
    else:
        parts.append("  " + json.dumps(dict(reconcile)))
        parts.append("  " + verdict(reconcile))
    return "\n".join(parts)


def verdict(reconcile: Mapping[str, Any]) -> str:
    """One sentence on whether anything was lost."""
    missing, unexpected = int(reconcile.get("missing", -1)), int(reconcile.get("unexpected", 0))
    duplicates = int(reconcile.get("duplicates", 0))
    if missing == 0 and unexpected == 0:
        extra = f" ({duplicates:,} duplicates, recognised by event_id)" if duplicates else ""
        return f"OK: every one of {int(reconcile.get('expected', 0)):,} rows is on Kafka{extra}."
    return f"NOT OK: {missing:,} missing, {unexpected:,} unexpected."


def collector_id_of(message: Message) -> str:
    """The replica that accepted an envelope: its header, else the envelope's field."""
    headers = message.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    for key, value in pairs:
        if key == "collector_id" and value is not None:
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        return str(json.loads(message.value() or b"{}").get("collector_id", "?"))
    return "?"


def events_per_replica(messages: Sequence[Message]) -> Counter[str]:
    return Counter(collector_id_of(m) for m in messages)
