"""Collector replicas as real processes on 127.0.0.1 (`python -m collector`, as in the image)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from devstack.service import LocalService


@dataclass
class CollectorProcess(LocalService):
    """One `python -m collector` configured through its COLLECTOR_* environment."""

    module: ClassVar[str] = "collector"

    dead_letter_topic: str = "raw-events-dlq"
    collector_id: str = "collector-0"

    def settings(self) -> dict[str, str]:
        return {
            "DEAD_LETTER_TOPIC": self.dead_letter_topic,
            "ID": self.collector_id,
            # Local replicas take requests without a key unless a test or the demo sets keys.
            "ALLOW_ANONYMOUS": "true",
        }

    def start(self, timeout_s: float = 30.0, wait_ready: bool = True) -> None:
        """Start the process and wait until /healthz (and, by default, /readyz) answers 200."""
        self.spawn(capture=False)
        self.wait_for("/readyz" if wait_ready else "/healthz", timeout_s)

    def get(self, path: str, timeout_s: float = 2.0) -> int:
        """The status code of GET `path`, or 0 when nothing answers."""
        return self.fetch(path, timeout_s)[0]

    def signal(self, signum: int) -> None:
        if self.process is not None:
            self.process.signal(signum)

    def wait(self, timeout_s: float = 30.0) -> int:
        """Wait for the process to exit and return its exit code."""
        assert self.process is not None
        return self.process.finish(timeout_s)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (a graceful drain), SIGKILL after the deadline; the exit code, if it ran."""
        if self.process is None:
            return None
        self.process.stop(timeout_s)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL at once: a crashed replica."""
        if self.process is not None:
            self.process.kill()
