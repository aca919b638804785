"""`make soak`: ten minutes at a fixed rate through three collector replicas and three brokers,
with a broker and a replica restarted every two minutes; events/s, p99, collector RSS over time
(bench/soak.png) and the reconciliation (bench/soak.md).

    python -m bench.soak [--minutes 10] [--rate 100] [--every-s 120]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.soak_report import write_report
from devstack.balancer import Backend, Balancer
from devstack.collector import CollectorProcess
from devstack.demo.data import sample_files
from devstack.kafka import FAST_FAILOVER, Cluster, read_topic
from devstack.proc import ROOT, ManagedProcess, free_port, rss_bytes
from devstack.reporting import say

OUT_DIR = ROOT / "bench"
WORK_DIR = ROOT / ".cache" / "soak"
RAW, DEAD_LETTER = "soak-raw", "soak-dlq"


@dataclass
class Soak:
    """One soak run: the cluster, three replicas behind HAProxy, the recording proxy, three
    producers; a broker and a replica restarted every `every_s`, memory sampled every 5 s."""

    minutes: float
    rate_per_s: float
    every_s: float
    cluster: Cluster = field(init=False)
    replicas: list[CollectorProcess] = field(default_factory=list)
    balancer: Balancer | None = None
    recorder: ManagedProcess | None = None
    producers: list[ManagedProcess] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    restarts: list[dict[str, Any]] = field(default_factory=list)
    started: float = 0.0
    stop_sampling: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.cluster = Cluster(
            WORK_DIR / "kafka",
            ports=(free_port(), free_port(), free_port()),
            overrides=FAST_FAILOVER,
            die_with_parent=True,
        )

    @property
    def answers_file(self) -> Path:
        return WORK_DIR / "answers.jsonl"

    def start_stack(self) -> None:
        say("starting three brokers and a controller", stamp=True)
        self.cluster.start()
        self.cluster.create_topics([RAW, DEAD_LETTER])
        self.cluster.wait_in_sync([RAW, DEAD_LETTER])
        for i in range(1, 4):
            replica = CollectorProcess(
                self.cluster.bootstrap_servers,
                raw_topic=RAW,
                dead_letter_topic=DEAD_LETTER,
                collector_id=f"collector-{i}",
                log_path=WORK_DIR / f"collector-{i}.log",
            )
            replica.start()
            self.replicas.append(replica)
        backends = [Backend(r.collector_id, r.port) for r in self.replicas]
        self.balancer = Balancer(WORK_DIR / "haproxy", backends)
        self.balancer.start()
        self.balancer.wait_until({r.collector_id: "UP" for r in self.replicas}, timeout_s=30)

    def start_recorder(self) -> str:
        """The recording proxy in front of HAProxy (every answer kept); its URL."""
        assert self.balancer is not None
        port = free_port()
        self.recorder = ManagedProcess(
            [
                sys.executable,
                "-m",
                "tests.e2e.recorder",
                "--upstream",
                self.balancer.url,
                "--port",
                str(port),
                "--out",
                str(self.answers_file),
            ],
            "the recording proxy",
            log_path=WORK_DIR / "recorder.log",
            own_session=False,
            die_with_parent=False,
        )
        self.recorder.spawn()
        time.sleep(3)
        return f"http://127.0.0.1:{port}"

    def start_producers(self, files: list[str], url: str) -> None:
        say(
            f"replaying three files at {self.rate_per_s:g} events/s in all for "
            f"{self.minutes:g} min",
            stamp=True,
        )
        self.started = time.time()
        for i, file in enumerate(files):
            command = [
                sys.executable,
                "-m",
                "producer",
                "replay",
                file,
                "--collector-url",
                url,
                "--rate",
                f"{self.rate_per_s / 3:g}",
                "--max-attempts",
                "1000",
                "--max-retry-s",
                "300",
                "--backoff-cap-s",
                "2",
                "--progress-interval-s",
                "10",
            ]
            log = WORK_DIR / f"producer-{i + 1}.log"
            log.unlink(missing_ok=True)
            producer = ManagedProcess(
                command,
                f"producer {i + 1}",
                log_path=log,
                capture=True,
                own_session=False,
                die_with_parent=False,
            )
            producer.spawn()
            self.producers.append(producer)

    def sample(self) -> None:
        """Every 5 s until told to stop: each replica's RSS and the load average."""
        while not self.stop_sampling.wait(5):
            self.samples.append(
                {
                    "t": time.time() - self.started,
                    "rss": {r.collector_id: rss_bytes(r.pid) for r in self.replicas},
                    "load": os.getloadavg()[0],
                }
            )

    def running(self) -> bool:
        return any(p.alive() for p in self.producers)

    def restart_turns(self) -> None:
        """A broker and a replica restarted every `every_s` until time is up or the replay ends."""
        deadline = self.started + self.minutes * 60
        turn = 0
        while self.running() and time.time() < deadline:
            next_at = self.started + self.every_s * (turn + 1)
            while self.running() and time.time() < min(next_at, deadline):
                time.sleep(1)
            if not self.running() or time.time() >= deadline:
                break
            self.restart(turn)
            turn += 1

    def restart(self, turn: int) -> None:
        broker = self.cluster.brokers[turn % 3]
        replica = self.replicas[turn % 3]
        say(f"restarting broker {broker.node_id} and {replica.collector_id}", stamp=True)
        at = time.time() - self.started
        replica.signal(signal.SIGTERM)
        broker.stop()
        replica.stop(timeout_s=30)
        replica.start(wait_ready=False)
        broker.start()
        replica.wait_for("/readyz", timeout_s=120)
        self.cluster.wait_in_sync([RAW, DEAD_LETTER], timeout_s=300)
        self.restarts.append(
            {
                "t": at,
                "broker": broker.node_id,
                "replica": replica.collector_id,
                "back_after_s": round(time.time() - self.started - at, 1),
            }
        )

    def finish_producers(self) -> list[dict[str, Any]]:
        """Time is up: each producer stops reading, finishes what is in flight and reports; what
        it sent is a prefix of its file, reconciled against that many rows."""
        for producer in self.producers:
            producer.signal(signal.SIGTERM)
        summaries = []
        for producer in self.producers:
            producer.finish(600)
            summaries.append(json.loads(producer.output.strip().splitlines()[-1]))
        return summaries

    def reconcile(self, files: list[str], summaries: list[dict[str, Any]]) -> dict[str, Any]:
        say("reconciling", stamp=True)
        reports = []
        for file, summary in zip(files, summaries, strict=True):
            reconcile = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "producer",
                    "reconcile",
                    file,
                    "--bootstrap-servers",
                    self.cluster.bootstrap_servers,
                    "--raw-topic",
                    RAW,
                    "--dead-letter-topic",
                    DEAD_LETTER,
                    "--max-records",
                    str(summary["records"]),
                    "--read-timeout-s",
                    "300",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            reports.append(json.loads(reconcile.stdout.strip().splitlines()[-1]))
        keys = ("expected", "raw", "dead_letter", "missing", "duplicates", "unexpected")
        return {k: sum(r[k] for r in reports) for k in keys}

    def result(self, summaries: list[dict[str, Any]], report: dict[str, Any]) -> dict[str, Any]:
        keys = ("records", "accepted", "rejected", "failed", "retries")
        summary = {k: sum(s[k] for s in summaries) for k in keys}
        summary["seconds"] = max(s["seconds"] for s in summaries)
        summary["rate_per_s"] = round(summary["accepted"] / summary["seconds"], 1)
        records = [json.loads(line) for line in self.answers_file.read_text().splitlines() if line]
        raw = read_topic(self.cluster.bootstrap_servers, RAW, timeout_s=300)
        root_ids = Counter(json.loads(m.value() or b"")["root_id"] for m in raw)
        accepted = {root for a in records for _, root in a["accepted"]}
        return {
            "minutes": self.minutes,
            "rate_per_s": self.rate_per_s,
            "every_s": self.every_s,
            "producer": summary,
            "reconcile": report,
            "accepted_not_on_topic": len(accepted - set(root_ids)),
            "duplicate_root_ids": sum(1 for n in root_ids.values() if n > 1),
            "restarts": self.restarts,
            "samples": self.samples,
            "answers": [
                (a["start"] - self.started, a["end"] - a["start"], a["status"], len(a["accepted"]))
                for a in records
            ],
            "cpus": os.cpu_count(),
        }

    def stop(self) -> None:
        for producer in self.producers:
            if producer.alive():
                producer.kill()
        if self.recorder is not None and self.recorder.alive():
            self.recorder.kill()
        for replica in self.replicas:
            replica.stop(timeout_s=20)
        if self.balancer is not None:
            self.balancer.stop()
        self.cluster.stop()


def run(minutes: float, rate_per_s: float, every_s: float) -> dict[str, Any]:
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    WORK_DIR.mkdir(parents=True)
    # Enough rows for the whole time at the asked rate; the replay is stopped when time is up.
    duration_s = minutes * 60
    files = sample_files(WORK_DIR / "data", int(rate_per_s * duration_s / 3 * 1.2) + 100)
    soak = Soak(minutes, rate_per_s, every_s)
    try:
        soak.start_stack()
        soak.start_producers(files, soak.start_recorder())
        sampler = threading.Thread(target=soak.sample, daemon=True)
        sampler.start()
        soak.restart_turns()
        summaries = soak.finish_producers()
        soak.stop_sampling.set()
        sampler.join()
        assert soak.recorder is not None
        soak.recorder.stop(30)
        return soak.result(summaries, soak.reconcile(files, summaries))
    finally:
        soak.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=100.0, help="events/s")
    parser.add_argument("--every-s", type=float, default=120.0)
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    result = run(args.minutes, args.rate, args.every_s)
    (WORK_DIR / "result.json").write_text(json.dumps(result))
    write_report(result, args.out_dir)
    report = result["reconcile"]
    ok = (
        report["missing"] == 0
        and report["unexpected"] == 0
        and result["accepted_not_on_topic"] == 0
        and result["duplicate_root_ids"] == 0
        and result["producer"]["failed"] == 0
    )
    say("soak passed" if ok else "soak FAILED", stamp=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
