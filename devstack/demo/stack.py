"""`make demo`: the whole system on one machine, end to end, then a summary and a reconciliation.

A real Kafka broker, collector replicas as separate processes behind HAProxy (standing in for the
Kubernetes Service), three producers replaying one month each at a throttled rate, a summary table
and `python -m producer reconcile`. With `--keep` the stack stays up until `make demo-down`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow.parquet as pq
from confluent_kafka import Consumer, Message, TopicPartition

from devstack.balancer import Backend, Balancer, BalancerUnavailable
from devstack.collector import CollectorProcess
from devstack.demo import validated as demo_validated
from devstack.kafka import (
    DEFAULT_TOPICS,
    VALIDATED_TOPICS,
    Broker,
    Cluster,
    KafkaSetupError,
    read_topic,
)
from devstack.proc import ROOT, free_port, port_open, process_alive
from devstack.validator import ValidatorProcess
from producer import source

DEMO_DIR = ROOT / ".demo"
RAW_TOPIC, DEAD_LETTER_TOPIC = DEFAULT_TOPICS
DEFAULT_REPLICAS = 3
DEFAULT_ROWS = 5_000
DEFAULT_RATE_PER_S = 300.0
DEFAULT_BATCH_SIZE = 10
PROGRESS_EVERY_S = 3.0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the summary (pure)


@dataclass(frozen=True)
class ProducerResult:
    """One producer's closing JSON line, plus how its process ended."""

    name: str
    exit_code: int
    summary: Mapping[str, Any]

    @property
    def rate_per_s(self) -> float:
        if "rate_per_s" in self.summary:
            return float(self.summary["rate_per_s"])
        seconds = float(self.summary.get("seconds") or 0)
        return float(self.summary.get("records", 0)) / seconds if seconds > 0 else 0.0


def parse_summary(stdout: str) -> dict[str, Any]:
    """The last JSON object line a producer printed on stdout ({} when there is none)."""
    for line in reversed(stdout.splitlines()):
        with contextlib.suppress(ValueError):
            parsed = json.loads(line)
            if isinstance(parsed, dict):
                return parsed
    return {}


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: first column left-aligned, numbers right-aligned with separators."""

    def cell(value: object) -> str:
        if isinstance(value, bool) or value is None:
            return "-" if value is None else str(value)
        if isinstance(value, int):
            return f"{value:,}"
        if isinstance(value, float):
            return f"{value:,.1f}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = [values[0].ljust(widths[0])]
        padded += [v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def render_summary(
    producers: Sequence[ProducerResult],
    topic_counts: Mapping[str, int],
    replica_counts: Mapping[str, int],
    reconcile: Mapping[str, Any] | None,
) -> str:
    """The closing report of a demo run."""
    fields = ("records", "accepted", "rejected", "failed", "retries")
    producer_rows: list[list[object]] = [
        [p.name, *(int(p.summary.get(f, 0)) for f in fields), float(p.summary.get("seconds", 0)),
         round(p.rate_per_s), p.exit_code]
        for p in producers
    ]  # fmt: skip
    if len(producers) > 1:
        producer_rows.append(
            ["total", *(sum(int(p.summary.get(f, 0)) for p in producers) for f in fields),
             max(float(p.summary.get("seconds", 0)) for p in producers),
             round(sum(p.rate_per_s for p in producers)), None]
        )  # fmt: skip
    total_events = sum(replica_counts.values())
    replica_rows = [
        [name, count, f"{100 * count / total_events:.1f}%" if total_events else "-"]
        for name, count in sorted(replica_counts.items())
    ]
    parts = [
        "Producers",
        table(["file", *fields, "seconds", "events/s", "exit"], producer_rows),
        "",
        "Topics",
        table(["topic", "messages"], [[t, n] for t, n in topic_counts.items()]),
        "",
        "Replicas (collector_id of the envelopes on the raw topic)",
        table(["replica", "events", "share"], replica_rows),
        "",
        "Reconciliation (python -m producer reconcile)",
    ]
    if reconcile is None:
        parts.append("  did not run")
    else:
        parts.append("  " + json.dumps(dict(reconcile)))
        parts.append("  " + verdict(reconcile))
    return "\n".join(parts)


def verdict(reconcile: Mapping[str, Any]) -> str:
    """One sentence on whether anything was lost."""
    missing, unexpected = int(reconcile.get("missing", -1)), int(reconcile.get("unexpected", 0))
    duplicates = int(reconcile.get("duplicates", 0))
    if missing == 0 and unexpected == 0:
        extra = f" ({duplicates:,} duplicates, recognised by event_id)" if duplicates else ""
        return f"OK: every one of {int(reconcile.get('expected', 0)):,} rows is on Kafka{extra}."
    return f"NOT OK: {missing:,} missing, {unexpected:,} unexpected."


# ---------------------------------------------------------------- reading the topics


def topic_count(bootstrap_servers: str, topic: str) -> int:
    """Messages on `topic` now (sum of high minus low watermarks), without reading them."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "demo-watermarks"})
    try:
        partitions = consumer.list_topics(topic, timeout=5).topics[topic].partitions
        total = 0
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)
            total += high - low
        return total
    finally:
        consumer.close()


def collector_id_of(message: Message) -> str:
    """The replica that accepted an envelope: its header, else the envelope's field."""
    headers = message.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    for key, value in pairs:
        if key == "collector_id" and value is not None:
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        return str(json.loads(message.value() or b"{}").get("collector_id", "?"))
    return "?"


def events_per_replica(messages: Sequence[Message]) -> Counter[str]:
    return Counter(collector_id_of(m) for m in messages)


# ---------------------------------------------------------------- producers as processes


_PROGRESS_SPLIT = re.compile(r"[\r\n]+")


@dataclass
class ProducerProcess:
    """One `python -m producer replay` whose stderr is logged and shown as progress."""

    name: str
    command: list[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    latest: str = ""
    _process: subprocess.Popen[bytes] | None = None
    _stdout: bytes = b""
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self._process.stdout is not None
        assert self._process.stderr is not None
        self._threads = [
            threading.Thread(target=self._read_stderr, args=(self._process.stderr,), daemon=True),
            threading.Thread(target=self._read_stdout, args=(self._process.stdout,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_stderr(self, stream: IO[bytes]) -> None:
        with self.log_path.open("wb") as log:
            pending = ""
            while chunk := stream.read1(4096):  # type: ignore[attr-defined]
                log.write(chunk)
                log.flush()
                *done, pending = _PROGRESS_SPLIT.split(pending + chunk.decode(errors="replace"))
                for text in done:
                    if text.strip():
                        self.latest = text.strip()

    def _read_stdout(self, stream: IO[bytes]) -> None:
        self._stdout = stream.read()

    def poll(self) -> int | None:
        return self._process.poll() if self._process is not None else 0

    def terminate(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def result(self, timeout_s: float = 60.0) -> ProducerResult:
        assert self._process is not None
        try:
            code = self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            code = self._process.wait()
        for thread in self._threads:
            thread.join(timeout=5)
        return ProducerResult(self.name, code, parse_summary(self._stdout.decode(errors="replace")))


# ---------------------------------------------------------------- the stack


def month_name(path_or_url: str) -> str:
    """A short label for a data file: 'yellow_tripdata_2023-01' for any path or URL of it."""
    base = path_or_url.rstrip("/").rsplit("/", 1)[-1]
    return base.removesuffix(".parquet")


def port_or_free(preferred: int) -> int:
    """`preferred` when nothing listens there, else any free port."""
    return preferred if not port_open(preferred) else free_port()


@dataclass
class Stack:
    """Everything the demo starts, in the order it must be stopped."""

    state_dir: Path
    keep: bool = False
    broker: Broker | Cluster | None = None
    replicas: list[CollectorProcess] = field(default_factory=list)
    balancer: Balancer | None = None
    producers: list[ProducerProcess] = field(default_factory=list)
    validators: list[ValidatorProcess] = field(default_factory=list)

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def collector_url(self) -> str | None:
        return self.balancer.url if self.balancer is not None else None

    def start_broker(self, port: int, brokers: int = 1) -> Broker | Cluster:
        kafka_dir = self.state_dir / "kafka"
        # A fresh broker each run, so the reconciliation sees this run's events only.
        shutil.rmtree(kafka_dir, ignore_errors=True)
        if brokers == 3:
            ports = (port_or_free(port), port_or_free(port + 1), port_or_free(port + 2))
            self.broker = Cluster(kafka_dir, ports=ports, die_with_parent=not self.keep)
            say(
                f"==> starting Kafka: three brokers on {self.broker.bootstrap_servers} and a "
                f"controller; topics with 3 replicas, min.insync.replicas 2 (state in {kafka_dir})"
            )
        else:
            self.broker = Broker(kafka_dir, port=port_or_free(port), die_with_parent=not self.keep)
            say(f"==> starting Kafka on {self.broker.bootstrap_servers} (state in {kafka_dir})")
        started = time.monotonic()
        self.broker.start()
        self.broker.create_topics(DEFAULT_TOPICS)
        self.broker.create_topics(VALIDATED_TOPICS)
        say(
            f"    up in {time.monotonic() - started:.0f}s; topics "
            f"{', '.join(DEFAULT_TOPICS)} created"
        )
        self._save()
        return self.broker

    def start_replicas(self, count: int) -> None:
        assert self.broker is not None
        say(f"==> starting {count} collector replicas (python -m collector)")
        for index in range(1, count + 1):
            replica = CollectorProcess(
                self.broker.bootstrap_servers,
                collector_id=f"collector-{index}",
                log_path=self.logs / f"collector-{index}.log",
                die_with_parent=not self.keep,
            )
            self.replicas.append(replica)
            replica.start(wait_ready=False)
            self._save()
        for replica in self.replicas:
            replica.wait_for("/readyz", timeout_s=60)
            say(f"    {replica.collector_id} ready on {replica.url} (pid {replica.pid})")

    def start_balancer(self, port: int) -> None:
        backends = [Backend(r.collector_id, r.port) for r in self.replicas]
        balancer = Balancer(
            self.state_dir / "haproxy",
            backends,
            port=port_or_free(port),
            die_with_parent=not self.keep,
        )
        say(f"==> starting HAProxy on {balancer.url} in front of the replicas")
        try:
            balancer.start()
        except BalancerUnavailable as exc:
            say(f"    no load balancer: {exc}")
            say("    falling back: each producer talks to one replica directly (round-robin).")
            return
        self.balancer = balancer
        self._save()
        balancer.wait_until({b.name: "UP" for b in backends}, timeout_s=30)
        say("    every replica is UP (health check: GET /readyz)")

    def url_for(self, index: int) -> str:
        """Where producer `index` sends: the balancer, or one replica each when there is none."""
        if self.balancer is not None:
            return self.balancer.url
        return self.replicas[index % len(self.replicas)].url

    def _save(self) -> None:
        """Record what runs, so `demo down` can stop a kept stack from another process."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "broker_dir": str(self.broker.state_dir) if self.broker else None,
            "broker_port": int(self.broker.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])
            if self.broker
            else None,
            "cluster": isinstance(self.broker, Cluster),
            "collectors": {r.collector_id: r.pid for r in self.replicas if r.pid},
            "haproxy": self.balancer.pid if self.balancer else None,
            "validators": {v.validator_id: v.pid for v in self.validators if v.pid},
            "url": self.collector_url or (self.replicas[0].url if self.replicas else None),
        }
        self.stack_file.write_text(json.dumps(state, indent=2) + "\n")

    def stop(self) -> None:
        """Producers, then replicas (each drains), then the balancer, then the broker."""
        for producer in self.producers:
            producer.terminate()
        for replica in self.replicas:
            replica.signal(signal.SIGTERM)
        for replica in self.replicas:
            replica.stop(timeout_s=30)
        if self.balancer is not None:
            self.balancer.stop()
        for validator in self.validators:
            validator.stop(timeout_s=30)
        if self.broker is not None:
            self.broker.stop()
        self.stack_file.unlink(missing_ok=True)


def stop_recorded(state_dir: Path) -> bool:
    """Stop a stack left running by `demo --keep`, from its stack.json. False if there is none."""
    stack_file = state_dir / "stack.json"
    try:
        state = json.loads(stack_file.read_text())
    except (OSError, ValueError):
        return False

    def ours(pid: int | None, marker: bytes) -> int | None:
        # Only signal a pid that is still the process we started (pids get reused).
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, TypeError):
            return None
        return pid if marker in cmdline else None

    targets = [ours(pid, b"collector") for pid in state.get("collectors", {}).values()]
    targets.append(ours(state.get("haproxy"), b"haproxy"))
    targets += [ours(pid, b"validator") for pid in state.get("validators", {}).values()]
    for pid in filter(None, targets):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for pid in filter(None, targets):
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if state.get("broker_dir"):
        kafka = Cluster if state.get("cluster") else Broker
        kafka(Path(state["broker_dir"])).stop()
    stack_file.unlink(missing_ok=True)
    return True


# ---------------------------------------------------------------- the run


def sample_files(out_dir: Path, rows: int) -> list[str]:
    """Three month files made by `python -m producer sample`."""
    shutil.rmtree(out_dir, ignore_errors=True)
    say(f"==> making three sample month files of {rows:,} rows (python -m producer sample)")
    result = subprocess.run(
        [sys.executable, "-m", "producer", "sample", str(out_dir), "--rows", str(rows)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"python -m producer sample failed:\n{result.stderr[-2000:]}")
    files = sorted(str(p) for p in out_dir.glob("*.parquet"))
    say("    " + ", ".join(Path(f).name for f in files))
    return files


def first_rows(locations: Sequence[str], out_dir: Path, rows: int) -> list[str]:
    """Local copies of the first `rows` rows of each file or URL, under the same file names.

    A real TLC month holds millions of rows; replaying and reconciling the same leading rows
    keeps the demo short, and the event ids (`<file name>:<row>`) stay those of the full file.
    """
    for location in locations:
        if not source.is_url(location) and out_dir.resolve() in Path(location).resolve().parents:
            raise RuntimeError(f"{location} is inside {out_dir}, which the demo rewrites")
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    copies = []
    for location in locations:
        name = source.file_name(location)
        say(f"==> taking the first {rows:,} rows of {location}")
        with source.local_copy(location) as path:
            parquet = pq.ParquetFile(path)
            copy = out_dir / name
            with pq.ParquetWriter(copy, parquet.schema_arrow) as writer:
                left = rows
                for batch in parquet.iter_batches(batch_size=min(rows, 65_536)):
                    writer.write_batch(batch.slice(0, left))
                    left -= min(left, batch.num_rows)
                    if left == 0:
                        break
        copies.append(str(copy))
    return copies


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
            sys.executable, "-m", "producer", "replay", data,
            "--collector-url", stack.url_for(index), "--rate", f"{rate_per_s:g}",
            "--batch-size", str(batch_size), "--progress-interval-s", f"{PROGRESS_EVERY_S:g}",
        ]  # fmt: skip
        producer = ProducerProcess(
            month_name(data), command, stack.logs / f"producer-{month_name(data)}.log"
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
    lines = [f"  [{elapsed_s:4.0f}s] on {RAW_TOPIC}: {on_kafka}; replicas ready {ready}/"
             f"{len(stack.replicas)}"]  # fmt: skip
    for producer in stack.producers:
        state = "done" if producer.poll() is not None else "running"
        latest = producer.latest[-110:] or "(starting)"
        lines.append(f"         {producer.name} ({state}): {latest}")
    return "\n".join(lines)


def reconcile(stack: Stack, files: Sequence[str]) -> dict[str, Any] | None:
    assert stack.broker is not None
    command = [
        sys.executable, "-m", "producer", "reconcile", *files,
        "--bootstrap-servers", stack.broker.bootstrap_servers,
        "--raw-topic", RAW_TOPIC, "--dead-letter-topic", DEAD_LETTER_TOPIC,
    ]  # fmt: skip
    say("==> reconciling the topics with the files (python -m producer reconcile)")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    parsed = parse_summary(result.stdout)
    if not parsed:
        say(f"    reconcile printed no summary (exit {result.returncode}):")
        say(result.stderr[-2000:])
        return None
    return parsed


def run(args: argparse.Namespace) -> int:
    state_dir: Path = args.dir
    if stop_recorded(state_dir):
        say("==> stopped the stack left running by an earlier `make demo KEEP=1`")
    stack = Stack(state_dir, keep=args.keep)
    stack.logs.mkdir(parents=True, exist_ok=True)
    given = [f for f in re.split(r"[\s,]+", args.data or "") if f]
    ok = False
    try:
        stack.start_broker(args.kafka_port, args.brokers)
        stack.start_replicas(args.replicas)
        if args.no_balancer:
            say("==> no load balancer (--no-balancer): each producer talks to one replica")
        else:
            stack.start_balancer(args.port)
        assert stack.broker is not None
        say("==> starting the validator (python -m validator)")
        stack.validators.append(
            demo_validated.start_validator(
                stack.broker.bootstrap_servers, stack.logs, keep=args.keep
            )
        )
        stack._save()
        if not given:
            files = sample_files(state_dir / "data", args.rows)
        elif args.rows:
            files = first_rows(given, state_dir / "first-rows", args.rows)
        else:
            files = given
        results = run_producers(stack, files, args.rate, args.batch_size)
        assert stack.broker is not None
        say("==> counting what is on Kafka")
        raw = read_topic(stack.broker.bootstrap_servers, RAW_TOPIC, timeout_s=120)
        topic_counts = {
            RAW_TOPIC: len(raw),
            DEAD_LETTER_TOPIC: topic_count(stack.broker.bootstrap_servers, DEAD_LETTER_TOPIC),
        }
        report = reconcile(stack, files)
        print()
        print(render_summary(results, topic_counts, events_per_replica(raw), report), flush=True)
        say("==> waiting for the validator, then reconciling the validated topics")
        counts, validated = demo_validated.settle(
            stack.validators[0], stack.broker.bootstrap_servers, files
        )
        print()
        print(demo_validated.render(counts, validated), flush=True)
        ok = (
            demo_validated.ok(validated)
            and report is not None
            and int(report.get("missing", -1)) == 0
            and int(report.get("unexpected", -1)) == 0
            and all(r.exit_code == 0 for r in results)
        )
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
    up.add_argument("--data", default=os.environ.get("DATA", ""),
                    help="TLC parquet files or URLs, space- or comma-separated "
                         "(default: three generated sample months)")  # fmt: skip
    up.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows per file")
    up.add_argument("--rate", type=float, default=DEFAULT_RATE_PER_S, help="events/s per producer")
    up.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="events per request")
    up.add_argument("--replicas", type=int, default=DEFAULT_REPLICAS)
    up.add_argument("--port", type=int, default=8080, help="the balancer's port (if free)")
    up.add_argument("--kafka-port", type=int, default=9092, help="the broker's port (if free)")
    up.add_argument(
        "--brokers", type=int, choices=(1, 3), default=int(os.environ.get("BROKERS", "1")),
        help="3: three brokers and a controller, topics replicated three times",
    )  # fmt: skip
    up.add_argument("--no-balancer", action="store_true",
                    help="skip HAProxy: each producer talks to one replica")  # fmt: skip
    args = parser.parse_args(argv)
    if args.command == "down":
        print("demo stack stopped" if stop_recorded(args.dir) else "no demo stack is running")
        return 0
    with sigterm_as_interrupt():
        return run(args)
