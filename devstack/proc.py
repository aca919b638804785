"""Local processes, whatever they run: the repository's root, ports on 127.0.0.1, one way to wait,
and one managed process (spawn, probe, stop, kill, pid file, ownership) that the broker, the
services, HAProxy, the demo's producers, the bench and the tests all start theirs with."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from signal import SIGKILL, SIGTERM
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def port_or_free(preferred: int) -> int:
    """`preferred` when nothing listens there, else any free port."""
    return preferred if not port_open(preferred) else free_port()


def wait_until(
    condition: Callable[[], object], timeout_s: float, what: str, *, every_s: float = 0.1
) -> None:
    """Poll `condition` until it returns something true; TimeoutError naming `what` after
    `timeout_s`. Whatever `condition` raises ends the wait at once."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout_s:g}s")
        time.sleep(every_s)


def die_with_parent() -> None:
    # Runs in the child between fork and exec: the kernel sends SIGTERM to the child when the
    # process that started it dies, so an interrupted or killed test run leaves nothing behind.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, SIGTERM)


def rss_bytes(pid: int | None) -> int:
    """Resident memory of a process and its children (uvicorn workers), from /proc; 0 if gone."""
    total, pending = 0, [pid] if pid else []
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        pending.extend(int(child) for child in children)
    return total


def process_alive(pid: int, process: subprocess.Popen[Any] | None = None) -> bool:
    """Whether `pid` (or `process`, when we started it) still runs; a zombie counts as gone."""
    if process is not None:
        return process.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of a process we did not start is gone for our purposes.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    return False


def owned(pid: int | None, marks: Sequence[bytes]) -> bool:
    """Whether `pid` runs a command line holding every one of `marks` (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, TypeError):
        return False
    return pid is not None and all(mark in cmdline for mark in marks)


class ProcessExited(RuntimeError):
    """A managed process ended while it was awaited."""


@dataclass
class ManagedProcess:
    """One local process: spawned, probed until ready, stopped (a signal, SIGKILL after a
    deadline) or killed; found again by another process from its pid file, and signalled only
    while its command line still holds `owner_marks`."""

    argv: Sequence[str]
    name: str
    # The whole environment (None: this process's own).
    env: Mapping[str, str] | None = None
    cwd: Path = ROOT
    # Its output, appended (None: discarded); with `capture`, stderr only.
    log_path: Path | None = None
    # Keep stdout apart (text), for `output` once it has ended: a closing JSON line; with no
    # `log_path`, stderr too, for `errors`.
    capture: bool = False
    pid_file: Path | None = None
    owner_marks: tuple[bytes, ...] = ()
    die_with_parent: bool = True
    own_session: bool = True
    # Signal its whole process group (what it started too), not the process alone.
    signal_group: bool = False
    output: str = field(default="", repr=False)
    errors: str = field(default="", repr=False)
    _process: subprocess.Popen[str] | None = field(default=None, repr=False)
    _adopted: int | None = field(default=None, repr=False)

    @classmethod
    def adopt(cls, pid: int | None, name: str, owner_marks: tuple[bytes, ...]) -> ManagedProcess:
        """A process another run started, known by its pid."""
        return cls([], name, owner_marks=owner_marks, _adopted=pid)

    def spawn(self) -> None:
        log: IO[bytes] | int = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        if self.capture and self.log_path is None:
            log = subprocess.PIPE
        try:
            self._process = subprocess.Popen(
                list(self.argv),
                env=None if self.env is None else dict(self.env),
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.capture else log,
                stderr=log if self.capture else subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=self.own_session,
                preexec_fn=die_with_parent if self.die_with_parent else None,
            )
        finally:
            if not isinstance(log, int):
                log.close()
        if self.pid_file is not None:
            self.pid_file.write_text(f"{self._process.pid}\n")

    @property
    def started(self) -> bool:
        return self._process is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else self.running_pid()

    @property
    def returncode(self) -> int | None:
        return self._process.poll() if self._process is not None else None

    def running_pid(self) -> int | None:
        """The pid while it runs: ours, else the pid file's or the adopted one if still ours."""
        if self._process is not None:
            return self._process.pid if self._process.poll() is None else None
        pid = self._adopted
        if pid is None and self.pid_file is not None:
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int(self.pid_file.read_text().split()[0])
        return pid if owned(pid, self.owner_marks) and process_alive(pid or 0) else None

    def alive(self) -> bool:
        return self.running_pid() is not None

    def signal(self, signum: int) -> None:
        if (pid := self.running_pid()) is None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self.signal_group and self.own_session:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)

    def wait_ready(self, probe: Callable[[], object], timeout_s: float, what: str) -> None:
        """Until `probe` returns something true; ProcessExited at once if the process ends."""
        wait_until(functools.partial(self._ready, probe), timeout_s, what)

    def _ready(self, probe: Callable[[], object]) -> bool:
        if self._process is not None and self._process.poll() is not None:
            where = f"; last lines of {self.log_path}:\n{self.log_tail()}" if self.log_path else ""
            raise ProcessExited(f"{self.name} exited with {self._process.returncode}{where}")
        return bool(probe())

    def finish(self, timeout_s: float) -> int:
        """Wait for it to end by itself; its exit code. Killed, and TimeoutExpired, if it does
        not end within `timeout_s`."""
        assert self._process is not None
        try:
            self._collect(self._process.communicate(timeout=timeout_s))
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        return self._process.returncode

    def stop(self, timeout_s: float = 30.0, signum: int | None = SIGTERM) -> bool:
        """`signum` (None: none, it was sent already), SIGKILL after `timeout_s`; wait until it
        has gone. False if nothing was running."""
        if self.running_pid() is None:
            self._forget()
            return False
        if signum is not None:
            self.signal(signum)
        if self._process is not None:
            try:
                self._collect(self._process.communicate(timeout=timeout_s))
            except subprocess.TimeoutExpired:
                self.kill()
        else:
            with contextlib.suppress(TimeoutError):
                wait_until(lambda: not self.alive(), timeout_s, self.name)
            if self.alive():
                self.kill()
        self._forget()
        return True

    def kill(self) -> None:
        """SIGKILL at once (a crash); wait until it has gone."""
        self.signal(SIGKILL)
        if self._process is not None:
            self._collect(self._process.communicate())
        else:
            wait_until(lambda: not self.alive(), 60, f"{self.name} killed", every_s=0.05)
        self._forget()

    def _collect(self, streams: tuple[str | None, str | None]) -> None:
        self.output, self.errors = streams[0] or "", streams[1] or ""

    def _forget(self) -> None:
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
