"""Validator processes on 127.0.0.1 (`python -m validator`, as in the image): demo and tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from devstack.kafka import ROOT, VALIDATED_TOPICS, die_with_parent, free_port


@dataclass
class ValidatorProcess:
    """One `python -m validator` configured through its VALIDATOR_* environment."""

    bootstrap_servers: str
    raw_topic: str = "raw-events"
    validated_topic: str = VALIDATED_TOPICS[0]
    dead_letter_topic: str = VALIDATED_TOPICS[1]
    dedup_topic: str = "validator-dedup-changelog"
    group_id: str = "validator"
    validator_id: str = "validator-0"
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    die_with_parent: bool = True
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "VALIDATOR_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "VALIDATOR_RAW_TOPIC": self.raw_topic,
            "VALIDATOR_VALIDATED_TOPIC": self.validated_topic,
            "VALIDATOR_DEAD_LETTER_TOPIC": self.dead_letter_topic,
            "VALIDATOR_DEDUP_TOPIC": self.dedup_topic,
            "VALIDATOR_GROUP_ID": self.group_id,
            "VALIDATOR_ID": self.validator_id,
            "VALIDATOR_HOST": "127.0.0.1",
            "VALIDATOR_PORT": str(self.port),
            **self.env,
        }

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the process and wait until /readyz answers 200 (transactions initialised)."""
        # The last line of stdout is the summary; logs (stderr) go to the log file.
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "validator"],
                env=self.environment(),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                preexec_fn=die_with_parent if self.die_with_parent else None,
            )
        finally:
            if not isinstance(log, int):
                log.close()
        self.wait_for("/readyz", timeout_s)

    def get(self, path: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
        """(status, body) of GET `path`, or (0, b"") when nothing answers."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout_s) as response:  # noqa: S310
                return int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, b""
        except (OSError, urllib.error.URLError):
            return 0, b""

    def wait_for(self, path: str, timeout_s: float, status: int = 200) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(
                    f"validator {self.validator_id} exited with {self._process.returncode}"
                )
            if self.get(path)[0] == status:
                return
            time.sleep(0.1)
        raise TimeoutError(f"validator {self.validator_id}: {path} not {status} in {timeout_s}s")

    def metric(self, name: str) -> float:
        """The sum of every sample of one metric from /metrics (0 when absent)."""
        status, body = self.get("/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total if status == 200 else 0.0

    def kill(self) -> None:
        """SIGKILL at once: a crashed validator, with whatever transaction it had open."""
        if self._process is not None:
            self._process.kill()
            self._process.communicate()

    def stop(self, timeout_s: float = 60.0) -> dict[str, Any] | None:
        """SIGTERM (commit the batch in hand, leave the group), SIGKILL after the deadline.

        Returns the counts the process printed on a clean exit.
        """
        if self._process is None or self._process.poll() is not None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._process.pid, signal.SIGTERM)
        try:
            stdout, _ = self._process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()
            return None
        lines = stdout.decode().strip().splitlines()
        counts = orjson.loads(lines[-1]) if lines and self._process.returncode == 0 else None
        return counts if isinstance(counts, dict) else None


def lag(bootstrap_servers: str, group_id: str, topic: str) -> int:
    """Records of `topic` not yet committed by `group_id` (all of them when nothing is)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap_servers, "group.id": group_id, "log_level": 3}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
        behind = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            position = tp.offset if tp.offset >= 0 else low
            behind += max(0, high - position)
        return behind
    finally:
        consumer.close()


def wait_caught_up(
    bootstrap_servers: str, group_id: str, topic: str, timeout_s: float = 120.0
) -> None:
    """Until `group_id` has committed every record now on `topic`."""
    deadline = time.monotonic() + timeout_s
    while (behind := lag(bootstrap_servers, group_id, topic)) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group_id} still {behind} records behind on {topic}")
        time.sleep(0.5)
