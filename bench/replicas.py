"""Scale on this machine, measured honestly: with two cores shared by wrk, the broker and the
collectors, more replicas cannot carry more events, but each event should cost the servers the
same CPU whether one, two or three replicas share the load (flat = it scales with cores). The
scaling curve itself needs cores of its own: `make k8s-scale` measures it on a cluster and writes
docs/k8s-scale.json, which this section quotes when it is there."""
# ruff: noqa: RUF001  (the multiplication sign is meant: prose for people)

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import load, procs
from bench.harness import Plan, Results, progress
from bench.loops import running
from bench.procs import ALL_CPUS, WORK, Server
from devstack.balancer import Backend, Balancer
from devstack.proc import ROOT

REPLICAS = (1, 2, 3)
K8S_SCALE = ROOT / "docs" / "k8s-scale.json"
# Server CPU per event at three replicas within this share of one replica's: "flat".
FLAT_WITHIN = 0.20


def replica_key(replicas: int) -> str:
    return f"r{replicas}_single"


def run_replicas(
    plan: Plan,
    make: Callable[[str], Server],
    body_path: Path,
    results: Results,
) -> None:
    """Single events through HAProxy to 1, 2 and 3 collectors (one worker each, unpinned); the
    servers' CPU per event is the sum over the replicas' process trees."""
    for replicas in REPLICAS:
        servers = [make(f"bench-replica-{replicas}-{i}") for i in range(replicas)]
        with running(servers, ALL_CPUS):
            balancer = Balancer(
                WORK / f"haproxy-{replicas}", [Backend(s.name, s.port) for s in servers]
            )
            balancer.start()
            try:
                balancer.wait_until({s.name: "UP" for s in servers})
                measure(plan, replicas, balancer.url, servers, body_path, results)
            finally:
                balancer.stop()


def measure(
    plan: Plan,
    replicas: int,
    url: str,
    servers: list[Server],
    body_path: Path,
    results: Results,
) -> None:
    key, pids = replica_key(replicas), [s.pid for s in servers]
    target_url = url + "/api/v1/collect"
    status, answer = procs.post(target_url, body_path.read_bytes())
    if status != 202:
        raise RuntimeError(f"{replicas} replicas behind HAProxy answered {status}: {answer!r}")
    load.wrk(target_url, body_path, plan.warmup_s, pids, ALL_CPUS)
    runs = []
    for run in range(plan.runs):
        result = load.wrk(target_url, body_path, plan.run_s, pids, ALL_CPUS)
        runs.append(result)
        events = result.requests_per_s
        cpu_us = result.server_cpu_s / max(1, result.requests) * 1e6
        progress(
            f"replicas run {run + 1}/{plan.runs}, {replicas} replica(s): {events:,.0f} events/s, "
            f"{cpu_us:.0f} µs server CPU per event"
        )
    results.closed[key] = load.ClosedLoop(runs, 1).as_dict()
    results.labels[key] = f"single events, {replicas} replica(s) behind HAProxy, unpinned"


def k8s_scale_curve() -> dict[str, Any] | None:
    """The last `make k8s-scale` run's curve (docs/k8s-scale.json), if one was written."""
    if not K8S_SCALE.exists():
        return None
    found: dict[str, Any] = json.loads(K8S_SCALE.read_text())
    return found


def cpu_us_per_event(results: Results) -> dict[int, float]:
    return {
        n: float(results.closed[replica_key(n)]["cpu_us_per_event"])
        for n in REPLICAS
        if replica_key(n) in results.closed
    }


def section(results: Results) -> list[str]:
    """The replicas table and, when there is one, the cluster's scaling curve."""
    lines = [
        "",
        "### Replicas on this machine: server CPU per event",
        "",
        "Single events through HAProxy (round robin, the local stand-in for a Service) to one, "
        "two and three collectors of one worker each, nothing pinned: wrk, the broker, HAProxy "
        "and the collectors share both cores, so events/s cannot grow here. What must hold is "
        "the cost: the servers' CPU per event (all replicas' processes) stays flat, so each "
        "added core carries as much as the first.",
        "",
        "| replicas | events/s | server CPU µs/event | vs one replica | machine CPU busy |",
        "|---|---|---|---|---|",
    ]
    costs = cpu_us_per_event(results)
    for n in REPLICAS:
        row = results.closed.get(replica_key(n))
        if row:
            versus = costs[n] / costs[1] if costs.get(1) else 0.0
            lines.append(
                f"| {n} | {row['events_per_s']:,.0f} | {costs[n]:.0f} | {versus:.2f}× | "
                f"{row['busy'].get('cpu', 0):.0%} |"
            )
    return lines + curve_lines()


def curve_lines() -> list[str]:
    curve = k8s_scale_curve()
    if curve is None:
        return ["", "No `make k8s-scale` run has written docs/k8s-scale.json yet."]
    rows = [
        f"| {s['replicas']} | {s['events_per_s']:,.0f} | "
        f"{s['events_per_s'] / curve['stages'][0]['events_per_s']:.2f}× |"
        for s in curve["stages"]
    ]
    return [
        "",
        f"The scaling curve from the last `make k8s-scale` ({curve['written']}, Kubernetes "
        f"{curve['server_version']}, collectors limited to {curve['cpu_limit']} CPU each; "
        "details in [docs/k8s-scale.md](../docs/k8s-scale.md)):",
        "",
        "| replicas | events/s | × one |",
        "|---|---|---|",
        *rows,
    ]


def flatness(results: Results) -> float | None:
    """Server CPU per event at three replicas against one (1.0 = flat)."""
    costs = cpu_us_per_event(results)
    return costs[3] / costs[1] if 1 in costs and 3 in costs and costs[1] else None


def curve_ratio(curve: dict[str, Any]) -> float | None:
    """Events/s at three replicas against one, from a k8s-scale.json."""
    by = {s["replicas"]: s["events_per_s"] for s in curve.get("stages", [])}
    return float(by[3] / by[1]) if by.get(1) and 3 in by else None
