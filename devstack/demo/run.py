"""`make demo`: the whole system on one machine, end to end, then a summary and a reconciliation.

A real Kafka broker, collector replicas as separate processes behind HAProxy (standing in for the
Kubernetes Service), three producers replaying one month each at a throttled rate, a summary table
and `python -m producer reconcile`. With `--keep` the stack stays up until `make demo-down`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from devstack.balancer import BalancerUnavailable
from devstack.demo import validated
from devstack.demo.data import first_rows, reconcile, sample_files
from devstack.demo.producers import ProducerProcess, file_stem
from devstack.demo.stack import Stack, stop_recorded
from devstack.demo.summary import ProducerResult, events_per_replica, render_summary
from devstack.kafka import DEFAULT_TOPICS, KafkaSetupError, read_topic, topic_count
from devstack.proc import ROOT
from devstack.reporting import say

DEMO_DIR = ROOT / ".demo"
RAW_TOPIC, DEAD_LETTER_TOPIC = DEFAULT_TOPICS
DEFAULT_REPLICAS = 3
DEFAULT_ROWS = 5_000
DEFAULT_RATE_PER_S = 300.0
DEFAULT_BATCH_SIZE = 10
PROGRESS_EVERY_S = 3.0


def run_producers(
    stack: Stack, files: Sequence[str], rate_per_s: float, batch_size: int
) -> list[ProducerResult]:
    """Replay each file with its own producer process, in parallel, showing progress."""
    assert stack.broker is not None
    say(
        f"==> replaying {len(files)} files in parallel (python -m producer replay), "
        f"{rate_per_s:g} events/s each, {batch_size} per request"
    )
    for index, data in enumerate(files):
        command = [
            sys.executable,
            "-m",
            "producer",
            "replay",
            data,
            "--collector-url",
            stack.url_for(index),
            "--rate",
            f"{rate_per_s:g}",
            "--batch-size",
            str(batch_size),
            "--progress-interval-s",
            f"{PROGRESS_EVERY_S:g}",
        ]
        producer = ProducerProcess(
            file_stem(data), command, stack.logs / f"producer-{file_stem(data)}.log"
        )
        stack.producers.append(producer)
        producer.start()
    started = time.monotonic()
    next_report = started + PROGRESS_EVERY_S
    while any(p.poll() is None for p in stack.producers):
        time.sleep(0.2)
        if time.monotonic() >= next_report:
            next_report += PROGRESS_EVERY_S
            say(progress_line(stack, time.monotonic() - started))
    say(progress_line(stack, time.monotonic() - started))
    return [p.result() for p in stack.producers]


def progress_line(stack: Stack, elapsed_s: float) -> str:
    """One periodic status line: events on Kafka so far, replicas ready, each producer's latest."""
    assert stack.broker is not None
    try:
        on_kafka = f"{topic_count(stack.broker.bootstrap_servers, RAW_TOPIC):,}"
    except Exception:  # noqa: BLE001 (a progress line never stops the demo)
        on_kafka = "?"
    ready = sum(1 for r in stack.replicas if r.get("/readyz", timeout_s=0.5) == 200)
    lines = [
        f"  [{elapsed_s:4.0f}s] on {RAW_TOPIC}: {on_kafka}; replicas ready {ready}/"
        f"{len(stack.replicas)}"
    ]
    for producer in stack.producers:
        state = "done" if producer.poll() is not None else "running"
        latest = producer.latest[-110:] or "(starting)"
        lines.append(f"         {producer.name} ({state}): {latest}")
    return "\n".join(lines)


def start_stack(stack: Stack, args: argparse.Namespace) -> None:
    """Kafka, the replicas, HAProxy (unless --no-balancer) and the validator."""
    stack.start_broker(args.kafka_port, args.brokers)
    stack.start_replicas(args.replicas)
    if args.no_balancer:
        say("==> no load balancer (--no-balancer): each producer talks to one replica")
    else:
        stack.start_balancer(args.port)
    assert stack.broker is not None
    say("==> starting the validator (python -m validator)")
    stack.validators.append(
        validated.start_validator(stack.broker.bootstrap_servers, stack.logs, keep=args.keep)
    )
    stack.save()


def data_files(args: argparse.Namespace) -> list[str]:
    """Three sample months, or the first --rows rows of the --data files (all of them: 0)."""
    given = [f for f in re.split(r"[\s,]+", args.data or "") if f]
    if not given:
        return sample_files(args.dir / "data", args.rows)
    if args.rows:
        return first_rows(given, args.dir / "first-rows", args.rows)
    return given


def report(stack: Stack, files: Sequence[str], results: list[ProducerResult]) -> bool:
    """Count, reconcile and print both summaries; whether every row arrived, and once."""
    assert stack.broker is not None
    bootstrap_servers = stack.broker.bootstrap_servers
    say("==> counting what is on Kafka")
    raw = read_topic(bootstrap_servers, RAW_TOPIC, timeout_s=120)
    topic_counts = {
        RAW_TOPIC: len(raw),
        DEAD_LETTER_TOPIC: topic_count(bootstrap_servers, DEAD_LETTER_TOPIC),
    }
    say("==> reconciling the topics with the files (python -m producer reconcile)")
    reconciled = reconcile(bootstrap_servers, files, DEFAULT_TOPICS)
    print()
    print(render_summary(results, topic_counts, events_per_replica(raw), reconciled), flush=True)
    say("==> waiting for the validator, then reconciling the validated topics")
    counts, reconciled_validated = validated.settle(stack.validators[0], bootstrap_servers, files)
    print()
    print(validated.render(counts, reconciled_validated), flush=True)
    return (
        validated.ok(reconciled_validated)
        and reconciled is not None
        and int(reconciled.get("missing", -1)) == 0
        and int(reconciled.get("unexpected", -1)) == 0
        and all(r.exit_code == 0 for r in results)
    )


def run(args: argparse.Namespace) -> int:
    if stop_recorded(args.dir):
        say("==> stopped the stack left running by an earlier `make demo KEEP=1`")
    stack = Stack(args.dir, keep=args.keep)
    stack.logs.mkdir(parents=True, exist_ok=True)
    ok = False
    try:
        start_stack(stack, args)
        files = data_files(args)
        results = run_producers(stack, files, args.rate, args.batch_size)
        ok = report(stack, files, results)
    except (KafkaSetupError, BalancerUnavailable, RuntimeError, TimeoutError) as exc:
        say(f"error: {exc}")
    except KeyboardInterrupt:
        say("interrupted")
    finally:
        if args.keep and ok:
            print()
            print(keep_message(stack), flush=True)
        else:
            say("==> shutting down (producers, then replicas drain, the balancer, Kafka)")
            stack.stop()
            say("    everything stopped")
    return 0 if ok else 1


def keep_message(stack: Stack) -> str:
    assert stack.broker is not None
    url = stack.collector_url or stack.replicas[0].url
    return "\n".join(
        [
            "The stack is still up:",
            f"  Swagger UI     {url}/api/v1/docs",
            f"  collect        POST {url}/api/v1/collect",
            f"  Kafka          {stack.broker.bootstrap_servers}",
            f"  topics         {', '.join(DEFAULT_TOPICS)}",
            *(f"  {r.collector_id:<14} {r.url}" for r in stack.replicas),
            f"  logs           {stack.logs}",
            "Stop it with: make demo-down",
        ]
    )


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (e.g. from a CI runner) tears the stack down like Ctrl-C does."""
    previous: Callable[..., Any] | int | None = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.demo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the demo (and keep the stack with --keep)")
    down = sub.add_parser("down", help="stop a stack kept by `up --keep`")
    for cmd in (up, down):
        cmd.add_argument("--dir", type=Path, default=DEMO_DIR, help="state folder")
    up.add_argument("--keep", action="store_true", help="leave the stack running at the end")
    up.add_argument(
        "--data",
        default=os.environ.get("DATA", ""),
        help="TLC parquet files or URLs, space- or comma-separated "
        "(default: three generated sample months)",
    )
    up.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows per file")
    up.add_argument("--rate", type=float, default=DEFAULT_RATE_PER_S, help="events/s per producer")
    up.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="events per request")
    up.add_argument("--replicas", type=int, default=DEFAULT_REPLICAS)
    up.add_argument("--port", type=int, default=8080, help="the balancer's port (if free)")
    up.add_argument("--kafka-port", type=int, default=9092, help="the broker's port (if free)")
    up.add_argument(
        "--brokers",
        type=int,
        choices=(1, 3),
        default=int(os.environ.get("BROKERS", "1")),
        help="3: three brokers and a controller, topics replicated three times",
    )
    up.add_argument(
        "--no-balancer",
        action="store_true",
        help="skip HAProxy: each producer talks to one replica",
    )
    args = parser.parse_args(argv)
    if args.command == "down":
        print("demo stack stopped" if stop_recorded(args.dir) else "no demo stack is running")
        return 0
    with sigterm_as_interrupt():
        return run(args)
