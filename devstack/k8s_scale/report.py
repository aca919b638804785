"""The report of a `make k8s-scale` run: the scaling curve, the HPA's timeline, the
reconciliation; Markdown for docs/k8s-scale.md and a plot beside it."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.k8s_scale import readings

# Three replicas should carry at least 2.4x one (80% of each added pod's share).
RATIO_TARGET = 2.4
EVEN_POINTS = 10.0


@dataclass
class Stage:
    """One replica count of the curve, measured over a window."""

    replicas: int
    events_per_s: float
    per_pod: dict[str, float]
    cpu_m: dict[str, float]
    load_cpu_m: dict[str, float]
    node_cpu_m: float

    def cpu_us_per_event(self) -> float:
        """The collectors' CPU per event accepted (all pods together)."""
        total_m = sum(self.cpu_m.values())
        return total_m / self.events_per_s * 1000 if self.events_per_s else 0.0

    def line(self) -> str:
        shares = readings.shares(self.per_pod)
        pods = ", ".join(
            f"{pod[-5:]} {shares[pod]:.0f}% at {self.cpu_m.get(pod, 0):.0f}m"
            for pod in self.per_pod
        )
        load = ", ".join(f"{cpu:.0f}m" for cpu in self.load_cpu_m.values())
        return f"pods {pods}; load {load}; node {self.node_cpu_m:.0f}m"


@dataclass
class Curve:
    stages: list[Stage] = field(default_factory=list)

    def ratio(self) -> float:
        by = {s.replicas: s.events_per_s for s in self.stages}
        return by.get(3, 0.0) / by[1] if by.get(1) else 0.0


@dataclass
class Tick:
    """One reading of the HPA stage."""

    t_s: float
    ready: int
    desired: int
    utilisation: int | None
    events_per_s: float
    accepted: dict[str, float]


@dataclass
class Report:
    cpu_limit: str
    warm_s: float
    window_s: float
    context: str = ""
    server_version: str = ""
    node_capacity_m: float = 0.0
    curve: Curve = field(default_factory=Curve)
    timeline: list[Tick] = field(default_factory=list)
    hpa_rate_per_s: float = 0.0
    hpa_rows: int = 0
    load_ended_s: float | None = None
    server_errors: int = 0
    curve_server_errors: int = 0
    producers: list[dict[str, Any]] = field(default_factory=list)
    reconciliation: dict[str, Any] = field(default_factory=dict)
    validated: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    phases: list[tuple[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def max_replicas(self) -> int:
        return max((t.ready for t in self.timeline), default=0)

    def first_at(self, replicas: int) -> float | None:
        return next((t.t_s for t in self.timeline if t.ready >= replicas), None)

    def back_down_at(self) -> float | None:
        if self.load_ended_s is None:
            return None
        after = [t for t in self.timeline if t.t_s >= self.load_ended_s]
        low = min((t.ready for t in self.timeline), default=0)
        return next((t.t_s for t in after if t.ready == low), None)

    def passed(self) -> bool:
        r, v = self.reconciliation, self.validated
        return (
            self.curve.ratio() >= RATIO_TARGET
            and self.max_replicas() > 1
            and self.back_down_at() is not None
            and r.get("missing") == 0
            and r.get("unexpected") == 0
            and v.get("missing") == 0
            and v.get("duplicates") == 0
            and self.server_errors == 0
        )

    def as_json(self) -> str:
        """The curve and the HPA's figures for `make bench` to quote (docs/k8s-scale.json)."""
        return (
            json.dumps(
                {
                    "written": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "context": self.context,
                    "server_version": self.server_version,
                    "cpu_limit": self.cpu_limit,
                    "node_capacity_m": self.node_capacity_m,
                    "stages": [
                        {
                            "replicas": s.replicas,
                            "events_per_s": round(s.events_per_s, 1),
                            "per_pod": s.per_pod,
                            "cpu_m": s.cpu_m,
                            "load_cpu_m": s.load_cpu_m,
                        }
                        for s in self.curve.stages
                    ],
                    "ratio": round(self.curve.ratio(), 3),
                    "hpa_max_replicas": self.max_replicas(),
                    "hpa_back_down_s": self.back_down_at(),
                    "server_errors": self.server_errors,
                    "curve_server_errors": self.curve_server_errors,
                    "reconciliation": self.reconciliation,
                    "validated": self.validated,
                },
                indent=1,
            )
            + "\n"
        )

    def markdown(self, plot_name: str) -> str:
        out = [
            "# Horizontal scale on a real cluster (`make k8s-scale`)",
            "",
            f"Written by `make k8s-scale` (context `{self.context}`, Kubernetes "
            f"{self.server_version}); the whole run took {self.seconds / 60:.1f} minutes. "
            "Every run replaces this file and the plot.",
            "",
            f"![the scaling curve and the HPA's timeline]({plot_name})",
            "",
            *self._curve(),
            *self._hpa(),
            *self._reconciliation(),
        ]
        if self.phases:
            out += ["", "## Phases", "", "| phase | seconds |", "|---|---:|"]
            out += [f"| {name} | {seconds:.1f} |" for name, seconds in self.phases]
        if self.notes:
            out += ["", "## Notes", "", *(f"- {n}" for n in self.notes)]
        return "\n".join(out) + "\n"

    def _curve(self) -> list[str]:
        out = [
            "## The scaling curve",
            "",
            f"Collectors with a CPU limit of {self.cpu_limit} each and the HPA off; the load is "
            "two producer pods sending single events as fast as they are taken (`--rate 0`, 32 "
            f"connections each). Each row: {self.warm_s:.0f} s of warm-up, then "
            f"{self.window_s:.0f} s measured with the collectors' own counters "
            "(`collector_events_accepted_total`, read through the API server) and CPU from the "
            "metrics API. The validator is stopped while the curve is measured.",
            "",
            "| replicas | events/s | x one | each pod: share, CPU | collectors' CPU µs/event "
            "| load pods' CPU | node CPU |",
            "|---:|---:|---:|---|---:|---|---:|",
        ]
        one = self.curve.stages[0].events_per_s if self.curve.stages else 0.0
        for s in self.curve.stages:
            shares = readings.shares(s.per_pod)
            pods = "; ".join(
                f"{shares[p]:.1f}%, {s.cpu_m.get(p, 0):.0f}m" for p in sorted(s.per_pod)
            )
            load = ", ".join(f"{c:.0f}m" for c in s.load_cpu_m.values())
            times = s.events_per_s / one if one else 0.0
            out.append(
                f"| {s.replicas} | {s.events_per_s:,.0f} | {times:.2f} | {pods} | "
                f"{s.cpu_us_per_event():.0f} | {load} | {s.node_cpu_m:.0f}m |"
            )
        ratio = self.curve.ratio()
        verdict = "met" if ratio >= RATIO_TARGET else "not met"
        return [
            *out,
            "",
            f"Three replicas against one: **{ratio:.2f}x** "
            f"(target {RATIO_TARGET}x or more: {verdict}). 5xx answers while the curve was "
            f"measured (the load at `--rate 0` keeps every collector saturated): "
            f"{self.curve_server_errors}.",
            "",
            *self._limits(),
        ]

    def _limits(self) -> list[str]:
        """What the measurements say limited each row: the pods' CPU limit, the node, or
        neither (then the load)."""
        limit_m = readings.cpu_m(self.cpu_limit)
        out = []
        for s in self.curve.stages:
            at_limit = [c for c in s.cpu_m.values() if c >= 0.9 * limit_m]
            node = s.node_cpu_m / self.node_capacity_m if self.node_capacity_m else 0.0
            if node >= 0.9:
                why = (
                    f"the node's CPU was the limit ({s.node_cpu_m:.0f}m of "
                    f"{self.node_capacity_m:.0f}m busy): the collectors, the load, Kafka and the "
                    "cluster's own processes competed for it"
                )
            elif len(at_limit) == len(s.cpu_m):
                why = f"every collector ran at its CPU limit ({self.cpu_limit}): the pods were it"
            else:
                why = "neither the pods' limit nor the node was reached: the load was the limit"
            out.append(f"- {s.replicas} replica(s): {why}.")
        return [*out, ""] if out else []

    def _hpa(self) -> list[str]:
        out = [
            "## The HPA acting",
            "",
            f"The HPA back (1 to 3 replicas), one replica to start, then three producers at "
            f"{self.hpa_rate_per_s:,.0f} events/s together (single events; one replica's "
            f"measured rate), {self.hpa_rows:,} rows each. Time from the producers' start:",
            "",
            "| s | ready replicas | desired | CPU % of request | events/s |",
            "|---:|---:|---:|---:|---:|",
        ]
        for t in self.timeline:
            utilisation = "-" if t.utilisation is None else f"{t.utilisation}"
            out.append(
                f"| {t.t_s:.0f} | {t.ready} | {t.desired} | {utilisation} | {t.events_per_s:,.0f} |"
            )
        up = {n: self.first_at(n) for n in range(2, self.max_replicas() + 1)}
        ups = ", ".join(f"{n} replicas ready at {s:.0f} s" for n, s in up.items() if s is not None)
        down = self.back_down_at()
        return [
            *out,
            "",
            f"Up: {ups or 'never'}; the load ended at {self.load_ended_s or 0:.0f} s; back to "
            "the minimum at " + (f"{down:.0f} s." if down is not None else "— not within the run."),
            f"5xx answers counted by the collectors during this stage: {self.server_errors}.",
            "",
        ]

    def _reconciliation(self) -> list[str]:
        keys = ("index", "records", "accepted", "failed", "retries", "reconnects", "seconds")
        return [
            "Producers (each pod's closing JSON line):",
            "",
            "```",
            *(json.dumps({k: p.get(k) for k in keys}) for p in self.producers),
            "```",
            "",
            "## Reconciliation (Job `producer-reconcile` in the cluster)",
            "",
            "```",
            json.dumps(self.reconciliation),
            json.dumps(self.validated),
            "```",
        ]

    def plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        stages = self.curve.stages
        if stages:
            one = stages[0].events_per_s
            xs = [s.replicas for s in stages]
            left.plot(xs, [s.events_per_s for s in stages], "o-", label="measured")
            left.plot(xs, [one * x for x in xs], "--", color="grey", label="linear from one")
            left.plot(xs, [one * (1 + 0.8 * (x - 1)) for x in xs], ":", color="grey",
                      label="80% per added pod")  # fmt: skip
            left.set_xticks(xs)
        left.set(xlabel="collector replicas", ylabel="events/s", title="scaling curve")
        left.legend()
        if self.timeline:
            ts = [t.t_s for t in self.timeline]
            right.step(ts, [t.ready for t in self.timeline], where="post", label="ready replicas")
            right.set(xlabel="seconds", ylabel="replicas", title="the HPA acting")
            other = right.twinx()
            other.plot(
                ts, [t.events_per_s for t in self.timeline], color="tab:orange", label="events/s"
            )
            other.set_ylabel("events/s")
            if self.load_ended_s is not None:
                right.axvline(self.load_ended_s, color="grey", linestyle="--", label="load ends")
            right.legend(loc="upper right")
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
