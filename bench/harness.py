"""What one `make bench` run is made of: its plan, the targets under load, the results as they
come in, and how a part that fails is reported while the others still run."""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import load, procs
from bench.procs import Server
from devstack.reporting import say

STARTED = time.monotonic()


def progress(message: str) -> None:
    """One line on stderr, after the seconds since the run began."""
    say(f"[{time.monotonic() - STARTED:6.1f}s] {message}")


@dataclass(frozen=True)
class Plan:
    """How long and how often; BENCH_QUICK=1 gives a short run for development."""

    quick: bool
    runs: int
    run_s: float
    warmup_s: float
    open_loop_s: float
    open_loop_runs: int
    single_rates_per_s: tuple[int, ...]
    raw_kafka_s: float
    sample_rows: int
    pandas_rows: int
    conversion_repeats: int
    pacing_rates_per_s: tuple[int, ...]
    batch_pacing_rates_per_s: tuple[int, ...]
    pacing_s: float
    memory_rows: int
    profile_s: float

    @classmethod
    def from_env(cls) -> Plan:
        if os.environ.get("BENCH_QUICK", "") not in ("", "0"):
            return cls(
                quick=True, runs=2, run_s=2, warmup_s=1, open_loop_s=3, open_loop_runs=1,
                single_rates_per_s=(500, 1000), raw_kafka_s=2, sample_rows=20_000,
                pandas_rows=2_000, conversion_repeats=1, pacing_rates_per_s=(100, 500, 2000),
                batch_pacing_rates_per_s=(2000, 10_000), pacing_s=2, memory_rows=5_000,
                profile_s=2,
            )  # fmt: skip
        return cls(
            quick=False, runs=5, run_s=5, warmup_s=2, open_loop_s=5, open_loop_runs=3,
            single_rates_per_s=(500, 1000), raw_kafka_s=5, sample_rows=100_000,
            pandas_rows=10_000, conversion_repeats=3, pacing_rates_per_s=(100, 500, 2000),
            batch_pacing_rates_per_s=(2000, 10_000), pacing_s=5, memory_rows=20_000,
            profile_s=5,
        )  # fmt: skip


@dataclass
class Target:
    """One app and endpoint under load."""

    key: str
    label: str
    server: Server
    path: str
    body: Path
    events_per_request: int
    expect_status: int
    connections: int = 32
    encoding: str | None = None
    runs: list[load.WrkRun] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url + self.path


@dataclass
class Results:
    plan: Plan
    facts: dict[str, str]
    closed: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    open_loop: list[dict[str, Any]] = field(default_factory=list)
    raw_kafka: dict[str, Any] = field(default_factory=dict)
    kafka_check: dict[str, Any] = field(default_factory=dict)
    producer: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, list[procs.FunctionTime]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load_after: str = ""


def attempt(results: Results, what: str, step: Callable[[], None]) -> None:
    """Run one part; a part that fails is reported in the results, and the others still run."""
    try:
        step()
    except Exception as exc:
        progress(f"{what} FAILED: {exc}")
        traceback.print_exc(file=sys.stderr)
        results.errors.append(f"{what}: {type(exc).__name__}: {str(exc).strip()[:400]}")
