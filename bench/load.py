"""Load generators: wrk for closed-loop throughput, bench/openloop for latency at a fixed rate."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import LOAD_CPUS, WORK, busy_shares, cpu_list, cpu_times, tree_cpu_s
from devstack.proc import ROOT

LUA = ROOT / "bench" / "post.lua"
OPENLOOP_SRC = ROOT / "bench" / "openloop" / "main.go"
OPENLOOP_BIN = WORK / "openloop"
_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def _apt_install(package: str) -> None:
    print(f"installing {package} with apt-get", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", package], check=True, env=env, capture_output=True
    )


def _can_apt() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def ensure_wrk() -> str:
    """wrk from Debian: installed with apt-get when missing and we are root, else say how."""
    if not shutil.which("wrk") and _can_apt():
        _apt_install("wrk")
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed: `sudo apt-get install wrk` (Debian/Ubuntu), then retry")
    return found


def _go() -> str | None:
    return shutil.which("go") or next(
        (p for p in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go") if Path(p).exists()), None
    )


def ensure_openloop() -> Path:
    """Build the open-loop generator with Go (standard library only; Debian's golang-go does)."""
    if OPENLOOP_BIN.exists() and OPENLOOP_BIN.stat().st_mtime >= OPENLOOP_SRC.stat().st_mtime:
        return OPENLOOP_BIN
    if _go() is None and _can_apt():
        _apt_install("golang-go")
    go = _go()
    if go is None:
        raise SystemExit("Go is needed to build bench/openloop: `sudo apt-get install golang-go`")
    WORK.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [go, "build", "-o", str(OPENLOOP_BIN), str(OPENLOOP_SRC)],
        check=True,
        cwd=OPENLOOP_SRC.parent,
        env={**os.environ, "CGO_ENABLED": "0"},
    )
    return OPENLOOP_BIN


@dataclass(frozen=True)
class WrkRun:
    requests_per_s: float  # successful (2xx) responses only
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    server_cpu_s: float
    requests: int
    cpu_busy: dict[str, float]  # per CPU ("cpu0", ...) and machine-wide ("cpu"), 0 to 1


def parse_wrk(text: str) -> dict[str, float]:
    """The figures we use from wrk's report."""
    found: dict[str, float] = {}
    if m := re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", text):
        found["requests"] = float(m.group(1))
        found["seconds"] = float(m.group(2)) * (60.0 if m.group(3) == "m" else _UNITS_S[m.group(3)])
    found["non_2xx"] = (
        float(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0.0
    )
    found["socket_errors"] = float(
        sum(int(n) for n in m.groups())
        if (
            m := re.search(
                r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
            )
        )
        else 0
    )
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        if m := re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE):
            found[key] = float(m.group(1)) * _UNITS_S[m.group(2)] * 1000
    return found


def wrk(
    url: str,
    body: Path,
    duration_s: float,
    server_pid: int | Sequence[int],
    cpus: frozenset[int] = LOAD_CPUS,
    connections: int = 32,
    encoding: str | None = None,
) -> WrkRun:
    """One closed-loop run: wrk -t1 -c32 POSTing `body` (with `Content-Encoding: encoding`);
    the server's CPU is that of `server_pid`'s process tree (of each, for several replicas)."""
    pids = [server_pid] if isinstance(server_pid, int) else list(server_pid)
    cmd = [
        "taskset", "-c", cpu_list(cpus), ensure_wrk(), "-t1", f"-c{connections}",
        f"-d{duration_s:g}s", "--latency", "--timeout", "10s", "-s", str(LUA), url,
    ]  # fmt: skip
    cpu_before, machine_before = sum(map(tree_cpu_s, pids)), cpu_times()
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENCH_BODY": str(body), "BENCH_ENCODING": encoding or ""},
        timeout=duration_s + 60,
    ).stdout
    cpu_used = sum(map(tree_cpu_s, pids)) - cpu_before
    busy = busy_shares(machine_before, cpu_times())
    figures = parse_wrk(out)
    if "requests" not in figures:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    ok = max(0.0, figures["requests"] - figures["non_2xx"])
    return WrkRun(
        requests_per_s=ok / figures["seconds"],
        non_2xx=int(figures["non_2xx"]),
        socket_errors=int(figures["socket_errors"]),
        p50_ms=figures.get("p50_ms", 0.0),
        p99_ms=figures.get("p99_ms", 0.0),
        server_cpu_s=cpu_used,
        requests=int(figures["requests"]),
        cpu_busy=busy,
    )


@dataclass(frozen=True)
class ClosedLoop:
    """Medians over several wrk runs."""

    runs: list[WrkRun]
    events_per_request: int

    @property
    def requests_per_s(self) -> float:
        return statistics.median(r.requests_per_s for r in self.runs)

    @property
    def events_per_s(self) -> float:
        return self.requests_per_s * self.events_per_request

    @property
    def spread(self) -> tuple[float, float]:
        rates = [r.requests_per_s * self.events_per_request for r in self.runs]
        return min(rates), max(rates)

    @property
    def p50_ms(self) -> float:
        return statistics.median(r.p50_ms for r in self.runs)

    @property
    def p99_ms(self) -> float:
        return statistics.median(r.p99_ms for r in self.runs)

    @property
    def non_2xx(self) -> int:
        return sum(r.non_2xx for r in self.runs)

    def busy(self, cpu: str) -> float:
        """Median share of `cpu` ("cpu1", or "cpu" for the whole machine) busy during the runs."""
        return statistics.median(r.cpu_busy.get(cpu, 0.0) for r in self.runs)

    @property
    def cpu_us_per_event(self) -> float:
        events = sum(r.requests for r in self.runs) * self.events_per_request
        return sum(r.server_cpu_s for r in self.runs) / events * 1e6 if events else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests_per_s": self.requests_per_s,
            "events_per_s": self.events_per_s,
            "events_per_s_min_max": self.spread,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "non_2xx": self.non_2xx,
            "cpu_us_per_event": self.cpu_us_per_event,
            "busy": {cpu: self.busy(cpu) for cpu in self.runs[0].cpu_busy} if self.runs else {},
            "runs": [r.__dict__ for r in self.runs],
        }


def open_loop(
    url: str, body: Path, rate_per_s: float, duration_s: float, cpus: frozenset[int] = LOAD_CPUS
) -> dict[str, Any]:
    """Requests sent on a fixed schedule; latency from the scheduled time (see openloop/main.go)."""
    cmd = [
        "taskset",
        "-c",
        cpu_list(cpus),
        str(ensure_openloop()),
        "-url",
        url,
        "-body",
        str(body),
        "-rate",
        f"{rate_per_s:g}",
        "-duration",
        f"{duration_s:g}s",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=duration_s + 60)
    result: dict[str, Any] = json.loads(out.stdout)
    return result
