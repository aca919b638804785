"""The load on the apps under test: wrk's closed loop, the open loop at fixed rates, py-spy while
wrk keeps a server busy, and the apps started and stopped around them."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Iterator
from typing import Any

from bench import load, procs
from bench.harness import Plan, Results, Target, progress
from bench.procs import LOAD_CPUS, WORK, Server
from devstack.proc import ROOT, ManagedProcess


def check_answers(target: Target) -> None:
    """One request first: the app must answer as expected before it is timed."""
    status, answer = procs.post(target.url, target.body.read_bytes(), encoding=target.encoding)
    if status != target.expect_status:
        raise RuntimeError(
            f"{target.label}: expected {target.expect_status}, got {status}: {answer[:300]!r}"
        )


def closed_loop(
    plan: Plan, targets: list[Target], results: Results, cpus: frozenset[int], phase: str
) -> None:
    """wrk on every target, round-robin so that a noisy moment hits each of them alike."""
    for target in targets:
        check_answers(target)
        load.wrk(
            target.url,
            target.body,
            plan.warmup_s,
            target.server.pid,
            cpus,
            target.connections,
            target.encoding,
        )
    for run in range(plan.runs):
        for target in targets:
            result = load.wrk(
                target.url,
                target.body,
                plan.run_s,
                target.server.pid,
                cpus,
                target.connections,
                target.encoding,
            )
            target.runs.append(result)
            progress(
                f"{phase} run {run + 1}/{plan.runs} {target.label}: "
                f"{result.requests_per_s * target.events_per_request:,.0f} events/s"
                + (f" ({result.non_2xx} non-2xx)" if result.non_2xx else "")
            )
    for target in targets:
        summary = load.ClosedLoop(target.runs, target.events_per_request)
        results.closed[target.key] = summary.as_dict()
        results.labels[target.key] = target.label


def open_loop(plan: Plan, schedule: list[tuple[Target, float]], results: Results) -> None:
    """Each (target, rate) `open_loop_runs` times, round-robin; medians of each percentile."""
    runs: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(schedule))}
    for run in range(plan.open_loop_runs):
        for i, (target, rate_per_s) in enumerate(schedule):
            result = load.open_loop(target.url, target.body, rate_per_s, plan.open_loop_s)
            runs[i].append(result)
            progress(
                f"open loop run {run + 1}/{plan.open_loop_runs} {target.label} at "
                f"{rate_per_s:,.0f} req/s: p50 {result['p50_ms']:.1f} ms, "
                f"p99 {result['p99_ms']:.1f} ms, {result['ok']}/{result['scheduled']} 2xx"
            )
    for i, (target, rate_per_s) in enumerate(schedule):
        row: dict[str, Any] = {
            "key": target.key,
            "label": target.label,
            "events_per_request": target.events_per_request,
            "rate_per_s": rate_per_s,
            "runs": runs[i],
            "scheduled": sum(r["scheduled"] for r in runs[i]),
            "ok": sum(r["ok"] for r in runs[i]),
        }
        for key in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "send_late_p99_ms"):
            row[key] = statistics.median(r[key] for r in runs[i])
        row["p99_ms_min_max"] = (
            min(r["p99_ms"] for r in runs[i]),
            max(r["p99_ms"] for r in runs[i]),
        )
        results.open_loop.append(row)


def profile(plan: Plan, target: Target, results: Results) -> None:
    """py-spy on the server while wrk keeps it busy: where its CPU goes."""
    out = WORK / f"profile-{target.key}.txt"
    wrk = ManagedProcess(
        [
            "taskset",
            "-c",
            procs.cpu_list(LOAD_CPUS),
            load.ensure_wrk(),
            "-t1",
            "-c32",
            f"-d{plan.profile_s + 2:g}s",
            "-s",
            str(load.LUA),
            target.url,
        ],
        "wrk",
        env={**os.environ, "BENCH_BODY": str(target.body)},
        log_path=WORK / f"wrk-profile-{target.key}.log",
        own_session=False,
    )
    wrk.spawn()
    try:
        time.sleep(0.5)
        results.profiles[target.key] = procs.py_spy(target.server.pid, plan.profile_s, out)
    finally:
        wrk.finish(plan.profile_s + 60)
    progress(f"profiled {target.label} ({out.relative_to(ROOT)})")


@contextlib.contextmanager
def running(servers: list[Server], cpus: frozenset[int]) -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        for server in servers:
            server.start(cpus)
            started.append(server)
        yield started
    finally:
        for server in started:
            server.stop()
