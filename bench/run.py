"""`make bench`: every measurement in one run, against one real broker, then bench/results.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from bench import events, load, machine, procs, producer_bench, replicas, report, validator_bench
from bench.harness import STARTED, Plan, Results, Target, attempt, progress
from bench.loops import closed_loop, open_loop, profile, running
from bench.procs import ALL_CPUS, LOAD_CPUS, SERVER_CPUS, WORK, Server
from devstack.kafka import Broker, topic_count
from devstack.proc import ROOT, free_port


def collector(name: str, bootstrap: str, raw: str, dlq: str, workers: int) -> Server:
    """Our collector as the image runs it: `python -m collector`, configured by COLLECTOR_*."""
    server = Server(name, [sys.executable, "-m", "collector"], ready_path="/readyz")
    server.env = {
        "COLLECTOR_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "COLLECTOR_RAW_TOPIC": raw,
        "COLLECTOR_DEAD_LETTER_TOPIC": dlq,
        "COLLECTOR_ID": name,
        "COLLECTOR_HOST": "127.0.0.1",
        "COLLECTOR_PORT": str(server.port),
        "COLLECTOR_WORKERS": str(workers),
        "COLLECTOR_ALLOW_ANONYMOUS": "true",
    }
    return server


def accepted_events(results: Results, keys: list[str]) -> int:
    """Acknowledged (2xx) events the load generators counted for `keys`."""
    total = 0
    for key in keys:
        closed = results.closed.get(key)
        if closed:
            per = (
                closed["events_per_s"] / closed["requests_per_s"] if closed["requests_per_s"] else 0
            )
            total += round(sum(r["requests"] - r["non_2xx"] for r in closed["runs"]) * per)
    for row in results.open_loop:
        if row["key"] in keys:
            total += row["ok"] * row["events_per_request"]
    return total


OURS_KEYS = ("ours_single", "ours_batch", "ours_single_gzip", "ours_batch_gzip", "ours_single_c128")


def baseline_targets(servers: list[Server], bodies: dict[str, Path]) -> list[Target]:
    """The ceilings and the tutorial collector, on the servers `uvicorn_app` made for them."""
    return [
        Target("bare", "bare ASGI (ceiling)", servers[0], "/", bodies["single"], 1, 200),
        Target("hello", "FastAPI hello (ceiling)", servers[1], "/api/v1/collect",
               bodies["single"], 1, 200),
        Target("tutorial", "tutorial collector (BASELINE, no Kafka)", servers[2],
               "/api/v1/collect", bodies["single"], 1, 200),
    ]  # fmt: skip


def collector_targets(ours: Server, bodies: dict[str, Path]) -> list[Target]:
    """Our collector: single events and batches, plain and gzipped, and a -c128 run."""
    return [
        Target("ours_single", "our collector, single events, 1 worker", ours,
               "/api/v1/collect", bodies["single"], 1, 202),
        Target("ours_batch", "our collector, batches of 100, 1 worker", ours,
               "/api/v1/collect/batch", bodies["batch"], events.BATCH_SIZE, 202),
        # Compressed bodies (Content-Encoding: gzip), as SDKs send them: the cost of decoding.
        Target("ours_single_gzip", "our collector, single events gzipped, 1 worker", ours,
               "/api/v1/collect", bodies["single_gzip"], 1, 202, encoding="gzip"),
        Target("ours_batch_gzip", "our collector, batches of 100 gzipped, 1 worker", ours,
               "/api/v1/collect/batch", bodies["batch_gzip"], events.BATCH_SIZE, 202,
               encoding="gzip"),
        # Not a target: with more clients in flight, is -c32 bound by the Kafka round trip?
        Target("ours_single_c128", "our collector, single events, 1 worker, wrk -c128 "
               "(for insight only)", ours, "/api/v1/collect", bodies["single"], 1, 202,
               connections=128),
    ]  # fmt: skip


def run_servers(plan: Plan, broker: Broker, bodies: dict[str, Path], results: Results) -> None:
    """Ceilings, baseline and our collector with one worker, each server alone on its core."""
    bootstrap = broker.bootstrap_servers
    broker.create_topics(["bench-raw-1", "bench-dlq-1"])
    servers = [
        procs.uvicorn_app("bare-asgi", "bench.ceilings:bare_asgi", ["--lifespan", "off"]),
        procs.uvicorn_app("fastapi-hello", "bench.ceilings:fastapi_hello"),
        procs.uvicorn_app("tutorial", "bench.baseline.tutorial_collector:app"),
    ]
    ours = collector("bench-collector-1", bootstrap, "bench-raw-1", "bench-dlq-1", workers=1)
    targets, ours_targets = baseline_targets(servers, bodies), collector_targets(ours, bodies)
    progress(f"starting the apps on CPU {procs.cpu_list(SERVER_CPUS)}")
    with running(servers, SERVER_CPUS):
        try:
            ours.start(SERVER_CPUS)
        except Exception as exc:
            results.errors.append(f"our collector did not start: {str(exc).strip()[:400]}")
            progress(f"our collector did not start: {exc}")
            ours_targets = []
        try:
            under_load(plan, targets, ours_targets, results)
        finally:
            ours.stop()
    if ours_targets:
        held = topic_count(bootstrap, "bench-raw-1")
        acked = accepted_events(results, list(OURS_KEYS))
        results.kafka_check = {"acknowledged_at_least": acked, "on_raw_topic": held}
        progress(f"raw topic holds {held:,} records; load generators saw {acked:,} acknowledged")


def under_load(
    plan: Plan, targets: list[Target], ours_targets: list[Target], results: Results
) -> None:
    """Closed loop on every target, open loop at fixed rates, then our collector profiled."""
    closed_loop(plan, targets + ours_targets, results, LOAD_CPUS, "pinned")
    schedule = [
        (target, float(rate))
        for target in targets + ours_targets[:1]
        for rate in plan.single_rates_per_s
    ]
    if ours_targets:
        # Batches at half of what the closed loop reached: a steady, not saturated, load.
        batch_rps = results.closed["ours_batch"]["requests_per_s"]
        schedule.append((ours_targets[1], float(max(1, round(batch_rps / 2)))))
    open_loop(plan, schedule, results)
    for target in ours_targets[:2]:
        attempt(results, f"profile {target.label}", partial(profile, plan, target, results))


def run_replicas(plan: Plan, broker: Broker, bodies: dict[str, Path], results: Results) -> None:
    """One, two and three collectors behind HAProxy, nothing pinned: CPU per event, not speed."""
    bootstrap = broker.bootstrap_servers
    broker.create_topics(["bench-raw-r", "bench-dlq-r"])
    procs.pin_tree(broker_pid(broker), ALL_CPUS)
    progress("one, two and three collectors behind HAProxy on all CPUs")
    try:
        replicas.run_replicas(
            plan,
            lambda name: collector(name, bootstrap, "bench-raw-r", "bench-dlq-r", workers=1),
            bodies["single"],
            results,
        )
    finally:
        procs.pin_tree(broker_pid(broker), LOAD_CPUS)


def run_raw_kafka(plan: Plan, broker: Broker, results: Results) -> None:
    broker.create_topics(["bench-raw-kafka"])
    cmd = ["taskset", "-c", procs.cpu_list(SERVER_CPUS), sys.executable, "-m", "bench.kafka_raw",
           broker.bootstrap_servers, "bench-raw-kafka", f"{plan.raw_kafka_s:g}"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT, timeout=300)
    results.raw_kafka = json.loads(out.stdout)
    progress(f"raw confluent-kafka produce: {results.raw_kafka['messages_per_s']:,.0f} messages/s")


def run_producer(plan: Plan, results: Results) -> None:
    """Conversion vs pandas, pacing against a fast local sink, peak memory against file size."""
    sample_dir = WORK / "sample"
    sample = producer_bench.make_sample(sample_dir, plan.sample_rows)
    progress(f"sample file {sample.name}: {plan.sample_rows:,} rows")
    conversion = producer_bench.conversion(sample, plan.pandas_rows, plan.conversion_repeats)
    results.producer["conversion"] = conversion
    progress(
        f"conversion: ours {conversion['ours_rows_per_s']:,.0f} rows/s, pandas iterrows "
        f"{conversion['pandas_rows_per_s']:,.0f} rows/s ({conversion['ratio']:.1f}x)"
    )
    out = WORK / "profile-conversion.txt"
    attempt(results, "profile conversion", lambda: _profile_conversion(plan, sample, out, results))

    sink = procs.uvicorn_app("sink", "bench.sink:app", ["--lifespan", "off"])
    with running([sink], SERVER_CPUS), procs.pinned(LOAD_CPUS):
        pacing = []
        for batch_size, rates in ((1, plan.pacing_rates_per_s),
                                  (events.BATCH_SIZE, plan.batch_pacing_rates_per_s)):  # fmt: skip
            for rate in rates:
                row = producer_bench.pacing(sample, sink.url, rate, plan.pacing_s, batch_size)
                pacing.append(row)
                progress(
                    f"pacing at {rate:,} events/s, {batch_size} per request: "
                    f"{row['achieved_per_s']:,.1f} ({row['error']:+.2%})"
                )
        results.producer["pacing"] = pacing
        attempt(results, "profile replay", lambda: _profile_replay(plan, sample, sink.url, results))
        small = producer_bench.make_sample(WORK / "memory", plan.memory_rows)
        large = producer_bench.multiply(small, 10, WORK / "memory" / "yellow_tripdata_10x.parquet")
        rows = producer_bench.memory([small, large], sink.url, events.BATCH_SIZE)
        results.producer["memory"] = rows
        progress(
            "peak memory: "
            + ", ".join(f"{r['rows']:,} rows {r['max_rss_mib']:.0f} MiB" for r in rows)
        )


def _profile_replay(plan: Plan, sample: Path, sink_url: str, results: Results) -> None:
    """py-spy on a replay of single events as fast as it goes: what limits the producer."""
    out = WORK / "profile-replay.txt"
    records = 1000 if plan.quick else 5000
    py_spy = Path(sys.executable).with_name("py-spy")
    subprocess.run(
        [str(py_spy), "record", "--rate", "250", "--format", "raw", "--output", str(out), "--",
         *producer_bench.replay_command(sample, sink_url, 0, 1, records)],
        check=True, capture_output=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    results.profiles["replay"] = procs.summarise_stacks(out.read_text())
    progress(f"profiled the producer's replay ({out.relative_to(ROOT)})")


def _profile_conversion(plan: Plan, sample: Path, out: Path, results: Results) -> None:
    py_spy = Path(sys.executable).with_name("py-spy")
    subprocess.run(
        [str(py_spy), "record", "--rate", "250", "--format", "raw", "--output", str(out), "--",
         sys.executable, "-m", "bench.producer_bench", "convert", str(sample),
         f"{plan.profile_s * 2:g}"],
        check=True, capture_output=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    results.profiles["conversion"] = procs.summarise_stacks(out.read_text())


def broker_pid(broker: Broker) -> int:
    pid = broker.running_pid()
    if pid is None:
        raise RuntimeError("the broker is not running")
    return pid


def main() -> int:
    plan = Plan.from_env()
    WORK.mkdir(parents=True, exist_ok=True)
    mode = "quick" if plan.quick else "full"
    progress(f"benchmark ({mode} mode); load average {os.getloadavg()[0]:.2f}")
    load.ensure_wrk()
    load.ensure_openloop()
    results = Results(plan, machine.facts())
    bodies = {"single": WORK / "single.json", "batch": WORK / "batch.json"}
    bodies["single"].write_bytes(events.single_body())
    bodies["batch"].write_bytes(events.batch_body())
    bodies["single_gzip"] = WORK / "single.json.gz"
    bodies["batch_gzip"] = WORK / "batch.json.gz"
    bodies["single_gzip"].write_bytes(events.gzipped(events.single_body()))
    bodies["batch_gzip"].write_bytes(events.gzipped(events.batch_body()))
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as state:
        broker = Broker(
            Path(state), port=free_port(), controller_port=free_port(), die_with_parent=True
        )
        progress(f"starting Kafka on {broker.bootstrap_servers}")
        broker.start()
        try:
            procs.pin_tree(broker_pid(broker), LOAD_CPUS)
            progress(f"Kafka is up; pinned to CPU {procs.cpu_list(LOAD_CPUS)}")
            attempt(results, "raw produce rate", lambda: run_raw_kafka(plan, broker, results))
            attempt(results, "servers", lambda: run_servers(plan, broker, bodies, results))
            attempt(results, "replicas", lambda: run_replicas(plan, broker, bodies, results))
        finally:
            broker.stop()
    attempt(results, "producer", lambda: run_producer(plan, results))
    results.seconds = time.monotonic() - STARTED
    one, five, _ = os.getloadavg()
    results.load_after = f"{one:.2f} (1 min), {five:.2f} (5 min)"
    paths = report.write(results)
    progress(f"wrote {', '.join(str(p.relative_to(ROOT)) for p in paths)}")
    # Its own broker and its own section of results.md, written after the report above.
    progress("validator: exactly once against at least once (python -m bench.validator_bench)")
    attempt(results, "validator", lambda: validator_bench.run(quick=plan.quick))
    for error in results.errors:
        progress(f"not measured: {error}")
    return 0 if not results.errors else 1


if __name__ == "__main__":
    sys.exit(main())
