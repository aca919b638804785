"""Commands on the cluster: plain `kubectl` (and `docker`) runs, and waiting for a status with
the namespace's diagnostics when it does not come."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from devstack.proc import ROOT, wait_until
from devstack.reporting import say

NAMESPACE = "event-collector"
# How often a wait says what it still waits for.
SAY_WAITING_EVERY_S = 10


class E2EError(RuntimeError):
    """A step failed; the message says which and why."""


def run(
    cmd: Sequence[str],
    *,
    timeout_s: float = 600,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired as exc:
        raise E2EError(f"`{' '.join(cmd)}` did not finish within {timeout_s:.0f} s") from exc
    if check and done.returncode != 0:
        raise E2EError(f"`{' '.join(cmd)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done


def kubectl(*args: str, timeout_s: float = 120, check: bool = True) -> str:
    return run(["kubectl", "-n", NAMESPACE, *args], timeout_s=timeout_s, check=check).stdout


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json"))


def diagnose() -> str:
    """The namespace's pods, and events and logs of every pod that is not ready or failed."""
    out = [kubectl("get", "pods", "-o", "wide", check=False)]
    pods = kubectl_json("pods").get("items", [])
    for pod in pods:
        name, phase = pod["metadata"]["name"], pod["status"].get("phase")
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in pod["status"].get("conditions", [])
        )
        if phase == "Succeeded" or ready:
            continue
        out.append(f"--- events of {name}")
        out.append(
            kubectl(
                "get",
                "events",
                "--field-selector",
                f"involvedObject.name={name}",
                "--sort-by=.lastTimestamp",
                check=False,
            )
        )
        out.append(f"--- logs of {name}")
        out.append(kubectl("logs", name, "--all-containers", "--tail=40", check=False))
    return "\n".join(out)


class StatusWatch:
    """A status to wait for (a line while waiting, None once done), said now and then."""

    def __init__(self, what: str, status: Callable[[], str | None]) -> None:
        self.what = what
        self.status = status
        self.started = time.monotonic()
        self.last: str | None = None
        self.last_said = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def done(self) -> bool:
        self.last = self.status()
        if self.last is None:
            return True
        if self.elapsed() - self.last_said >= SAY_WAITING_EVERY_S:
            self.last_said = self.elapsed()
            say(f"    [{self.last_said:4.0f}s] waiting for {self.what}: {self.last}")
        return False


def wait_for(
    what: str, status: Callable[[], str | None], *, timeout_s: float, every_s: float = 3
) -> None:
    """Poll `status` until it returns None, printing progress; on a timeout, the diagnostics of
    the pods that are not ready, and E2EError."""
    watch = StatusWatch(what, status)
    try:
        wait_until(watch.done, timeout_s, what, every_s=every_s)
    except TimeoutError:
        say(diagnose())
        raise E2EError(f"{what} not ready after {timeout_s:.0f}s ({watch.last})") from None
    say(f"    {what}: ready after {watch.elapsed():.0f}s")


def resume_job(name: str) -> None:
    """Let a Job the overlay created suspended start its pods."""
    kubectl("patch", "job", name, "--type=merge", "-p", '{"spec":{"suspend":false}}')
