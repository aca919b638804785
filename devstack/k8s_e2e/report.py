"""What a `make k8s-e2e` run did, phase by phase; written as Markdown at the end."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from devstack.k8s_scale import readings
from devstack.reporting import say, table

PRODUCER_FIELDS = ("index", "records", "accepted", "rejected", "failed", "retries", "seconds")


@dataclass
class Report:
    """What the run did, phase by phase; written as Markdown at the end."""

    context: str = ""
    server_version: str = ""
    loader: str = ""
    phases: list[tuple[str, float]] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)
    faults: list[tuple[str, str]] = field(default_factory=list)
    producers: list[dict[str, Any]] = field(default_factory=list)
    reconciliation: dict[str, Any] = field(default_factory=dict)
    validated: dict[str, Any] = field(default_factory=dict)
    front_door: str = ""
    # Events/s per collector pod over a window with three steady pods, after the faults.
    spread: dict[str, float] = field(default_factory=dict)
    spread_note: str = ""
    notes: list[str] = field(default_factory=list)

    def phase(self, name: str) -> Phase:
        return Phase(self, name)

    def shares(self) -> list[tuple[str, int, str]]:
        by_collector: dict[str, int] = self.reconciliation.get("by_collector", {})
        total = sum(by_collector.values()) or 1
        return [(k, n, f"{100 * n / total:.1f}%") for k, n in sorted(by_collector.items())]

    def markdown(self) -> str:
        out = [
            "# Kubernetes end-to-end run (`make k8s-e2e`)",
            "",
            f"Cluster: context `{self.context}`, server {self.server_version}; images loaded "
            f"with {self.loader}.",
            "",
            *self._phases(),
            *self._images(),
            "## Faults during the replay",
            "",
            *(f"- {when}: {what}" for when, what in self.faults),
            "",
            *self._producers(),
            *self._reconciliation(),
            *self._spread(),
            "",
            "## The front door",
            "",
            self.front_door or "(not reached)",
        ]
        if self.notes:
            out += ["", "## Notes", "", *(f"- {n}" for n in self.notes)]
        return "\n".join(out) + "\n"

    def _phases(self) -> list[str]:
        return [
            "## Phases",
            "",
            "| phase | seconds |",
            "|---|---:|",
            *(f"| {name} | {seconds:.1f} |" for name, seconds in self.phases),
            f"| **total** | **{sum(s for _, s in self.phases):.1f}** |",
            "",
        ]

    def _images(self) -> list[str]:
        return [
            "## Images",
            "",
            "| image | size |",
            "|---|---:|",
            *(f"| `{name}` | {size} |" for name, size in self.images),
            "",
        ]

    def _producers(self) -> list[str]:
        rows = [
            [p.get(k, "-") if k == "retries" else p.get(k) for k in PRODUCER_FIELDS]
            for p in self.producers
        ]
        return [
            "## Producers (each pod's closing JSON line)",
            "",
            "```",
            table(list(PRODUCER_FIELDS), rows),
            "```",
            "",
        ]

    def _reconciliation(self) -> list[str]:
        return [
            "## Reconciliation (Job `producer-reconcile` in the cluster)",
            "",
            "```",
            json.dumps(self.reconciliation),
            "```",
            "",
            "The validated topics (`--raw-topic validated-events --dead-letter-topic "
            "validated-events-dlq`, committed records only; duplicates must be 0 here):",
            "",
            "```",
            json.dumps(self.validated),
            "```",
            "",
            "Replicas (`collector_id` of the envelopes on the raw topic, the whole run, faults "
            "included):",
            "",
            "```",
            table(["replica", "events", "share"], self.shares()),
            "```",
        ]

    def _spread(self) -> list[str]:
        shares = readings.shares(self.spread)
        rows = [(p, round(rate), f"{shares[p]:.1f}%") for p, rate in sorted(self.spread.items())]
        return [
            "",
            "## Spread over three steady collectors",
            "",
            self.spread_note,
            "",
            "```",
            table(["replica", "events/s", "share"], rows),
            "```",
        ]


@dataclass
class Phase:
    """One timed phase of the run, said when it starts and ends (a `with` block)."""

    report: Report
    name: str
    started: float = 0.0

    def __enter__(self) -> Phase:
        self.started = time.monotonic()
        say(f"==> {self.name}")
        return self

    def __exit__(self, *exc: object) -> None:
        seconds = time.monotonic() - self.started
        self.report.phases.append((self.name, seconds))
        say(f"    ({seconds:.1f}s)")
