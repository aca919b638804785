"""Processes under test: CPU pinning, CPU-time accounting, start/stop of the apps, py-spy."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from devstack.proc import ROOT, ManagedProcess, ProcessExited, free_port
from devstack.service import http_get

WORK = ROOT / "bench" / ".work"
ALL_CPUS = frozenset(range(os.cpu_count() or 1))
# With 2 cores: the server under test gets the last one to itself; the load generator, the broker
# and this harness share the first. On 1 core nothing can be separated and everything shares it.
SERVER_CPUS = frozenset({max(ALL_CPUS)})
LOAD_CPUS = frozenset({min(ALL_CPUS)}) if len(ALL_CPUS) > 1 else ALL_CPUS
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_list(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


@contextlib.contextmanager
def pinned(cpus: frozenset[int]) -> Iterator[None]:
    """Run the block on `cpus`; processes started inside inherit it (affinity passes on fork)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def pin_tree(pid: int, cpus: frozenset[int]) -> None:
    """Move every thread of `pid` and of its descendants onto `cpus`."""
    for proc in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{proc}/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(tid), cpus)


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (worker processes of a server)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_cpu_s(pid: int) -> float:
    """User+system CPU seconds used so far by `pid` and its live descendants."""
    total = 0
    for proc in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLK_TCK


def cpu_times() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies per CPU ("cpu0", ...) and for the machine ("cpu"), from /proc/stat."""
    times = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if not line.startswith("cpu"):
            break
        name, *fields = line.split()
        values = [int(v) for v in fields[:8]]
        idle = values[3] + values[4]  # idle + iowait
        times[name] = (sum(values) - idle, sum(values))
    return times


def busy_shares(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> dict[str, float]:
    """How busy each CPU was between two `cpu_times()` readings, 0 to 1."""
    shares = {}
    for name, (busy, total) in after.items():
        busy0, total0 = before.get(name, (0, 0))
        shares[name] = (busy - busy0) / (total - total0) if total > total0 else 0.0
    return shares


def post(
    url: str, body: bytes, timeout_s: float = 10.0, encoding: str | None = None
) -> tuple[int, bytes]:
    """POST a JSON body (compressed with `encoding` when given); the status and the answer."""
    headers = {"Content-Type": "application/json"}
    if encoding:
        headers["Content-Encoding"] = encoding
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Server:
    """One app under test: a command that listens on `port` until SIGTERM."""

    name: str
    argv: list[str]
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    ready_path: str = "/"
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        pid = self.process.pid if self.process is not None else None
        assert pid is not None
        return pid

    def start(self, cpus: frozenset[int], timeout_s: float = 60.0) -> None:
        WORK.mkdir(parents=True, exist_ok=True)
        log_path = WORK / f"{self.name.replace(' ', '-')}.log"
        log_path.unlink(missing_ok=True)
        self.process = ManagedProcess(
            [arg.replace("{port}", str(self.port)) for arg in self.argv],
            self.name,
            env={**os.environ, **self.env},
            log_path=log_path,
            signal_group=True,
        )
        with pinned(cpus):
            self.process.spawn()
        try:
            self.process.wait_ready(self._answers, timeout_s, f"{self.name} on {self.ready_path}")
        except ProcessExited:
            tail = self.process.log_tail(4)
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}:\n{tail}"
            ) from None
        except TimeoutError:
            self.stop()
            raise TimeoutError(
                f"{self.name} did not answer on {self.ready_path} in {timeout_s:.0f}s"
            ) from None

    def _answers(self) -> bool:
        # Any answer means it listens; the collector's readiness also means Kafka is there.
        status = http_get(self.url + self.ready_path)[0]
        return bool(status) and (self.ready_path == "/" or status == 200)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process is not None:
            self.process.stop(timeout_s)


def uvicorn_app(name: str, app: str, extra: list[str] | None = None) -> Server:
    """An ASGI app served as the collector is: one uvicorn worker with uvloop and httptools."""
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        *(extra or []),
    ]
    return Server(name, argv)


@dataclass(frozen=True)
class FunctionTime:
    name: str
    self_share: float
    total_share: float


def py_spy(pid: int, duration_s: float, out: Path) -> list[FunctionTime]:
    """Sample `pid` (and its worker processes) with py-spy; the functions that took the most."""
    py_spy_bin = Path(sys.executable).with_name("py-spy")
    cmd = [
        str(py_spy_bin),
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--rate",
        "250",
        "--duration",
        str(max(1, round(duration_s))),
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
    ]
    subprocess.run(cmd, capture_output=True, check=True, timeout=duration_s + 60)
    return summarise_stacks(out.read_text())


def summarise_stacks(collapsed: str, top: int = 300) -> list[FunctionTime]:
    """Self and inclusive shares per function from py-spy's collapsed stacks, by self share."""
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        # The first frame is the process py-spy adds; alone, the thread ran no Python code.
        frames = [f for f in frames[1:] if f] or ["(native code, no Python frame)"]
        samples += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            total_counts[frame] += count
    if not samples:
        return []
    rows = [
        FunctionTime(name, self_counts[name] / samples, count / samples)
        for name, count in total_counts.items()
    ]
    rows.sort(key=lambda r: (r.self_share, r.total_share), reverse=True)
    return rows[:top]


def _short(frame: str) -> str:
    # "process_event (collector/envelope.py:42)" -> "process_event (collector/envelope.py)"
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name
