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
from pathlib import Path
from typing import Any

from devstack.balancer import Backend, Balancer
from devstack.collector import CollectorProcess
from devstack.kafka import FAST_FAILOVER, Cluster, read_topic
from devstack.proc import ROOT, free_port, rss_bytes

OUT_DIR = ROOT / "bench"
WORK_DIR = ROOT / ".cache" / "soak"
RAW, DEAD_LETTER = "soak-raw", "soak-dlq"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(minutes: float, rate_per_s: float, every_s: float) -> dict[str, Any]:
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    WORK_DIR.mkdir(parents=True)
    duration_s = minutes * 60
    # Enough rows for the whole time at the asked rate; the replay is stopped when time is up.
    rows = int(rate_per_s * duration_s / 3 * 1.2) + 100
    say(f"making three sample files of {rows} rows")
    subprocess.run(
        [sys.executable, "-m", "producer", "sample", "--out-dir", str(WORK_DIR / "data"),
         "--rows", str(rows)],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    files = sorted(str(p) for p in (WORK_DIR / "data").glob("*.parquet"))

    cluster = Cluster(
        WORK_DIR / "kafka",
        ports=(free_port(), free_port(), free_port()),
        overrides=FAST_FAILOVER,
        die_with_parent=True,
    )
    replicas: list[CollectorProcess] = []
    balancer: Balancer | None = None
    recorder: subprocess.Popen[bytes] | None = None
    producers: list[subprocess.Popen[str]] = []
    try:
        say("starting three brokers and a controller")
        cluster.start()
        cluster.create_topics([RAW, DEAD_LETTER])
        cluster.wait_in_sync([RAW, DEAD_LETTER])
        for i in range(1, 4):
            replica = CollectorProcess(
                cluster.bootstrap_servers,
                raw_topic=RAW,
                dead_letter_topic=DEAD_LETTER,
                collector_id=f"collector-{i}",
                log_path=WORK_DIR / f"collector-{i}.log",
            )
            replica.start()
            replicas.append(replica)
        balancer = Balancer(
            WORK_DIR / "haproxy", [Backend(r.collector_id, r.port) for r in replicas]
        )
        balancer.start()
        balancer.wait_until({r.collector_id: "UP" for r in replicas}, timeout_s=30)
        recorder_port = free_port()
        answers = WORK_DIR / "answers.jsonl"
        recorder = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.recorder", "--upstream", balancer.url,
             "--port", str(recorder_port), "--out", str(answers)],
            cwd=ROOT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(3)

        say(f"replaying three files at {rate_per_s:g} events/s in all for {minutes:g} min")
        started = time.time()
        for i, file in enumerate(files):
            command = [
                sys.executable, "-m", "producer", "replay", file,
                "--collector-url", f"http://127.0.0.1:{recorder_port}",
                "--rate", f"{rate_per_s / 3:g}", "--max-attempts", "1000",
                "--max-retry-s", "300", "--backoff-cap-s", "2", "--progress-interval-s", "10",
            ]  # fmt: skip
            with (WORK_DIR / f"producer-{i + 1}.log").open("w") as log:
                producers.append(
                    subprocess.Popen(
                        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True
                    )
                )

        samples: list[dict[str, Any]] = []
        restarts: list[dict[str, Any]] = []
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.wait(5):
                samples.append(
                    {
                        "t": time.time() - started,
                        "rss": {r.collector_id: rss_bytes(r.pid) for r in replicas},
                        "load": os.getloadavg()[0],
                    }
                )

        def running() -> bool:
            return any(p.poll() is None for p in producers)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        deadline = started + duration_s
        turn = 0
        while running() and time.time() < deadline:
            next_at = started + every_s * (turn + 1)
            while running() and time.time() < min(next_at, deadline):
                time.sleep(1)
            if not running() or time.time() >= deadline:
                break
            broker = cluster.brokers[turn % 3]
            replica = replicas[turn % 3]
            say(f"restarting broker {broker.node_id} and {replica.collector_id}")
            at = time.time() - started
            replica.signal(signal.SIGTERM)
            broker.stop()
            replica.stop(timeout_s=30)
            replica.start(wait_ready=False)
            broker.start()
            replica.wait_for("/readyz", timeout_s=120)
            cluster.wait_in_sync([RAW, DEAD_LETTER], timeout_s=300)
            restarts.append(
                {"t": at, "broker": broker.node_id, "replica": replica.collector_id,
                 "back_after_s": round(time.time() - started - at, 1)}
            )  # fmt: skip
            turn += 1
        # Time is up: each producer stops reading, finishes what is in flight and reports; what
        # it sent is a prefix of its file, reconciled below against that many rows.
        for producer in producers:
            producer.send_signal(signal.SIGTERM)
        summaries = []
        for producer in producers:
            stdout, _ = producer.communicate(timeout=600)
            summaries.append(json.loads(stdout.strip().splitlines()[-1]))
        stop_sampling.set()
        sampler.join()
        recorder.send_signal(signal.SIGTERM)
        recorder.wait(timeout=30)

        say("reconciling")
        reports = []
        for file, summary in zip(files, summaries, strict=True):
            reconcile = subprocess.run(
                [sys.executable, "-m", "producer", "reconcile", file,
                 "--bootstrap-servers", cluster.bootstrap_servers,
                 "--raw-topic", RAW, "--dead-letter-topic", DEAD_LETTER,
                 "--max-records", str(summary["records"]), "--read-timeout-s", "300"],
                cwd=ROOT, capture_output=True, text=True, check=False,
            )  # fmt: skip
            reports.append(json.loads(reconcile.stdout.strip().splitlines()[-1]))
        keys = ("records", "accepted", "rejected", "failed", "retries")
        summary = {k: sum(s[k] for s in summaries) for k in keys}
        summary["seconds"] = max(s["seconds"] for s in summaries)
        summary["rate_per_s"] = round(summary["accepted"] / summary["seconds"], 1)
        keys = ("expected", "raw", "dead_letter", "missing", "duplicates", "unexpected")
        report = {k: sum(r[k] for r in reports) for k in keys}
        records = [json.loads(line) for line in answers.read_text().splitlines() if line]
        raw = read_topic(cluster.bootstrap_servers, RAW, timeout_s=300)
        root_ids = Counter(json.loads(m.value() or b"")["root_id"] for m in raw)
        accepted = {root for a in records for _, root in a["accepted"]}
        return {
            "minutes": minutes,
            "rate_per_s": rate_per_s,
            "every_s": every_s,
            "producer": summary,
            "reconcile": report,
            "accepted_not_on_topic": len(accepted - set(root_ids)),
            "duplicate_root_ids": sum(1 for n in root_ids.values() if n > 1),
            "restarts": restarts,
            "samples": samples,
            "answers": [
                (a["start"] - started, a["end"] - a["start"], a["status"], len(a["accepted"]))
                for a in records
            ],
            "cpus": os.cpu_count(),
        }
    finally:
        for producer in producers:
            if producer.poll() is None:
                producer.kill()
        if recorder is not None and recorder.poll() is None:
            recorder.kill()
        for replica in replicas:
            replica.stop(timeout_s=20)
        if balancer is not None:
            balancer.stop()
        cluster.stop()


def write_report(result: dict[str, Any], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bucket_s = 10.0
    answers = result["answers"]
    end_s = max((t + w for t, w, _, _ in answers), default=0.0)
    buckets = int(end_s // bucket_s) + 1
    accepted = [0] * buckets
    waits: list[list[float]] = [[] for _ in range(buckets)]
    for t, wait, _, n in answers:
        index = int((t + wait) // bucket_s)
        accepted[index] += n
        waits[index].append(wait)
    xs = [(i + 0.5) * bucket_s / 60 for i in range(buckets)]
    rates = [n / bucket_s for n in accepted]
    p99s = [percentile(w, 0.99) * 1000 for w in waits]

    fig, (ax_rate, ax_p99, ax_rss) = plt.subplots(3, 1, figsize=(10, 10), sharex=True)
    ax_rate.plot(xs, rates)
    ax_rate.set_ylabel("202 events/s (10 s)")
    ax_p99.plot(xs, p99s)
    ax_p99.set_ylabel("p99 request ms (10 s)")
    ax_p99.set_yscale("log")
    samples = result["samples"]
    for name in sorted({n for s in samples for n in s["rss"]}):
        ax_rss.plot(
            [s["t"] / 60 for s in samples],
            [s["rss"].get(name, 0) / 2**20 for s in samples],
            label=name,
        )
    ax_rss.set_ylabel("collector RSS MiB")
    ax_rss.set_xlabel("minutes")
    ax_rss.legend()
    for restart in result["restarts"]:
        for ax in (ax_rate, ax_p99, ax_rss):
            ax.axvline(restart["t"] / 60, color="grey", linestyle=":")
    fig.suptitle(
        f"soak: {result['rate_per_s']:g} events/s, 3 replicas, 3 brokers; dotted: a broker and "
        "a replica restarted"
    )
    fig.tight_layout()
    fig.savefig(out_dir / "soak.png", dpi=80)

    all_waits = [w for _, w, _, _ in answers]
    statuses = Counter(str(s) for _, _, s, _ in answers)
    producer, report = result["producer"], result["reconcile"]

    def rss_line(name: str) -> str:
        values = [s["rss"].get(name, 0) / 2**20 for s in samples if s["rss"].get(name)]
        if not values:
            return f"| {name} | - | - | - |"
        return f"| {name} | {values[0]:.0f} | {max(values):.0f} | {values[-1]:.0f} |"

    loads = [s["load"] for s in samples]
    lines = [
        "# Soak run",
        "",
        f"{result['minutes']:g} minutes at {result['rate_per_s']:g} events/s asked (three "
        "producers, one file each) through three collector replicas behind HAProxy into three "
        f"brokers (topics with three replicas, `min.insync.replicas=2`); every "
        f"{result['every_s']:g} s one broker and one replica were restarted (SIGTERM, then "
        "started again). Written by `make soak`.",
        "",
        f"Machine: {result['cpus']} CPUs, 1-minute load average during the run "
        f"{min(loads, default=0):.1f} to {max(loads, default=0):.1f}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| events sent / accepted / failed | {producer['records']} / {producer['accepted']} / "
        f"{producer['failed']} |",
        f"| replay seconds, events/s | {producer['seconds']:.0f}, {producer['rate_per_s']} |",
        f"| client retries | {producer['retries']} |",
        f"| answers by status | {dict(statuses)} |",
        f"| request p50 / p99 / max | {percentile(all_waits, 0.5) * 1000:.0f} ms / "
        f"{percentile(all_waits, 0.99) * 1000:.0f} ms / "
        f"{max(all_waits, default=0) * 1000:.0f} ms |",
        f"| reconciliation | expected {report['expected']}, raw {report['raw']}, missing "
        f"{report['missing']}, unexpected {report['unexpected']}, duplicates by event_id "
        f"{report['duplicates']} |",
        f"| 202 root_ids not on the raw topic | {result['accepted_not_on_topic']} |",
        f"| root_ids written twice | {result['duplicate_root_ids']} |",
        "",
        "Restarts (minute: broker, replica, seconds until both were back and every replica in "
        "sync):",
        "",
        *(
            f"- {r['t'] / 60:.1f}: broker {r['broker']}, {r['replica']}, {r['back_after_s']} s"
            for r in result["restarts"]
        ),
        "",
        "Collector RSS (MiB; a restarted replica starts again from its first value):",
        "",
        "| replica | first | max | last |",
        "|---|---|---|---|",
        *(rss_line(name) for name in sorted({n for s in samples for n in s["rss"]})),
        "",
        "![soak](soak.png)",
        "",
    ]
    (out_dir / "soak.md").write_text("\n".join(lines))
    say(f"wrote {out_dir / 'soak.md'} and {out_dir / 'soak.png'}")


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
    say("soak passed" if ok else "soak FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
