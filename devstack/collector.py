"""Collector replicas as real processes on 127.0.0.1 (`python -m collector`, as in the image)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from devstack.proc import ManagedProcess, free_port
from devstack.service import LocalService


@dataclass
class CollectorProcess(LocalService):
    """One `python -m collector` configured through its COLLECTOR_* environment."""

    module: ClassVar[str] = "collector"

    bootstrap_servers: str
    raw_topic: str = "raw-events"
    dead_letter_topic: str = "raw-events-dlq"
    collector_id: str = "collector-0"
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    die_with_parent: bool = True
    process: ManagedProcess | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_port()

    @property
    def ident(self) -> str:
        return self.collector_id

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "COLLECTOR_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "COLLECTOR_RAW_TOPIC": self.raw_topic,
            "COLLECTOR_DEAD_LETTER_TOPIC": self.dead_letter_topic,
            "COLLECTOR_ID": self.collector_id,
            "COLLECTOR_HOST": "127.0.0.1",
            "COLLECTOR_PORT": str(self.port),
            # Local replicas take requests without a key unless a test or the demo sets keys.
            "COLLECTOR_ALLOW_ANONYMOUS": "true",
            **self.env,
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
