"""What the hostile-input tests and `make fuzz` share: reading an answer's root_ids, what the two
topics hold, a liveness watch while an attack runs, and the final reconciliation."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from devstack.kafka import read_topic
from devstack.proc import rss_bytes
from tests.conftest import Topics

LIVENESS_TIMEOUT_S = 2.0  # the liveness probe's timeoutSeconds in k8s/base
RSS_GROWTH_BYTES = 150 * 2**20


def answer_ids(answer: httpx.Response) -> tuple[list[str], list[str]]:
    """(accepted, dead-lettered) root_ids an answer names: a 202, 400 or 422, single or batch."""
    if answer.status_code not in (202, 400, 422):
        return [], []
    reply = answer.json()
    if "results" not in reply:
        return ([reply["root_id"]], []) if answer.status_code == 202 else ([], [reply["root_id"]])
    results = reply["results"]
    return (
        [r["root_id"] for r in results if r["status"] == "accepted"],
        [r["root_id"] for r in results if r["status"] == "rejected"],
    )


def raw_of(dead_letter: dict[str, Any]) -> bytes:
    """The bytes a dead-letter record keeps, from `raw` or `raw_base64`."""
    if "raw" in dead_letter:
        return str(dead_letter["raw"]).encode()
    return base64.b64decode(dead_letter["raw_base64"])


def on_topic(bootstrap_servers: str, topic: str) -> dict[str, bytes]:
    """Every record's value on `topic` by its root_id (each must be there once)."""
    values = [m.value() or b"" for m in read_topic(bootstrap_servers, topic, 60)]
    by_id = {orjson.loads(value)["root_id"]: value for value in values}
    assert len(by_id) == len(values), "a root_id is on the topic twice"
    return by_id


@dataclass
class Ledger:
    """Every root_id the collector named, to be found on its topic at the end."""

    accepted: list[str] = field(default_factory=list)
    dead_lettered: list[str] = field(default_factory=list)

    def note(self, answer: httpx.Response) -> None:
        accepted, dead_lettered = answer_ids(answer)
        self.accepted += accepted
        self.dead_lettered += dead_lettered

    def reconcile(self, bootstrap_servers: str, topics: Topics) -> dict[str, int]:
        """Each 202 on the raw topic, each 400/422 on the dead-letter topic, nothing else."""
        raw = on_topic(bootstrap_servers, topics.raw)
        dead = on_topic(bootstrap_servers, topics.dead_letter)
        assert sorted(raw) == sorted(self.accepted), "raw topic and 202s disagree"
        assert sorted(dead) == sorted(self.dead_lettered), "dead-letter topic and 4xx disagree"
        return {"raw": len(raw), "dead_letter": len(dead)}


class LivenessWatch:
    """Polls /healthz on its own connection while an attack runs: the slowest answer, failures,
    and the process's peak RSS."""

    def __init__(self, url: str, pid: int | None, every_s: float = 0.2) -> None:
        self.url, self.pid, self.every_s = url, pid, every_s
        self.rss_before = rss_bytes(pid)
        self.rss_peak = self.rss_before
        self.slowest_s = 0.0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LivenessWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=LIVENESS_TIMEOUT_S) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    status = client.get("/healthz").status_code
                    if status != 200:
                        self.failures.append(f"/healthz {status}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"/healthz {type(exc).__name__}")
                self.slowest_s = max(self.slowest_s, time.monotonic() - started)
                self.rss_peak = max(self.rss_peak, rss_bytes(self.pid))
                self._stop.wait(self.every_s)

    @property
    def rss_growth(self) -> int:
        return self.rss_peak - self.rss_before

    def assert_healthy(self) -> None:
        assert self.failures == [], self.failures
        assert self.slowest_s < LIVENESS_TIMEOUT_S
        assert self.rss_growth < RSS_GROWTH_BYTES
