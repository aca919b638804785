"""The validator's throughput: exactly once against the at-least-once ceiling and raw consume.

Same raw topic of taxi envelopes, same process shape (one Python process pinned to the server CPU,
the broker on the other), three loops each on a fresh consumer group:
- `raw`: consume only (the ceiling of reading in Python);
- `alo`: consume, judge with the same contracts, produce, flush, commit offsets (at least once);
- `eos`: the validator itself (`validator.loop.Validator`): one transaction per batch with the
  offsets and the seen-ids changelog in it.
Rates count from the first record to the last one committed (group join and restore excluded).

`python -m bench.validator_bench` starts its own broker and writes its section of
bench/results.md; `make bench` runs it after the collector's benchmarks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer

from bench import procs
from devstack.kafka import Broker
from devstack.proc import ROOT, free_port

TARGET_EOS_PER_S = 20_000
SECTION_START = "<!-- validator benchmark: start -->"
SECTION_END = "<!-- validator benchmark: end -->"
MODES = ("judge", "raw", "alo", "eos")
BATCH = 20_000  # records per consume() in every loop: the validator's default batch


def envelope(i: int) -> bytes:
    """A raw-topic record as the collector writes it, for row `i` of a taxi month."""
    payload = {
        "VendorID": 2, "tpep_pickup_datetime": "2023-01-01T00:32:10",
        "tpep_dropoff_datetime": "2023-01-01T00:40:36", "passenger_count": 1.0,
        "trip_distance": 0.97, "RatecodeID": 1.0, "store_and_fwd_flag": "N",
        "PULocationID": 161, "DOLocationID": 141, "payment_type": 2, "fare_amount": 9.3,
        "extra": 1.0, "mta_tax": 0.5, "tip_amount": 0.0, "tolls_amount": 0.0,
        "improvement_surcharge": 1.0, "total_amount": 14.3, "congestion_surcharge": 2.5,
        "airport_fee": 0.0,
    }  # fmt: skip
    return orjson.dumps(
        {
            "event_type": "YellowTaxiTripRecords",
            "schema_version": "0-0-1",
            "payload": payload,
            "event_id": f"yellow_tripdata_2023-01.parquet:{i}",
            "collector_timestamp": "2026-11-21T14:47:03.123456Z",
            "root_id": str(uuid.UUID(int=i)),
            "collector_id": "collector-1",
        }
    )


def fill(bootstrap: str, topic: str, records: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "lz4",
                         "queue.buffering.max.messages": 500_000})  # fmt: skip
    for i in range(records):
        while True:
            try:
                producer.produce(topic, envelope(i), key=f"yellow_tripdata_2023-01.parquet:{i}")
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(120)


# ---------------------------------------------------------------- the three loops (one process)


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "isolation.level": "read_committed"})  # fmt: skip


def loop_raw(bootstrap: str, topic: str, records: int) -> dict[str, float]:
    consumer = _consumer(bootstrap, f"bench-raw-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([topic])
    seen, first = 0, 0.0
    while seen < records:
        batch = consumer.consume(BATCH, 0.1)
        if batch and not first:
            first = time.perf_counter()
        seen += sum(1 for m in batch if m.error() is None)
    elapsed = time.perf_counter() - first
    consumer.close()
    return {"records": seen, "seconds": elapsed}


def loop_judge(records: int) -> dict[str, float]:
    """The validation alone, in memory: parse, look up the contract, validate, splice."""
    from validator.contracts import Registry
    from validator.settings import DEFAULT_CONTRACTS_DIR
    from validator.verdict import Source, judge

    registry = Registry.load(DEFAULT_CONTRACTS_DIR)
    values = [envelope(i) for i in range(min(records, 50_000))]
    start = time.perf_counter()
    for value in values:
        judge(b"k", value, Source("raw", 0, 0, 0), registry=registry, validator_id="bench",
              now_text="2026-11-21T14:47:04.000001Z")  # fmt: skip
    return {"records": len(values), "seconds": time.perf_counter() - start}


def loop_alo(bootstrap: str, topic: str, records: int, out: str, dlq: str) -> dict[str, float]:
    from console.timestamps import rfc3339_at
    from validator.contracts import Registry
    from validator.settings import DEFAULT_CONTRACTS_DIR
    from validator.verdict import Invalid, Source, judge

    registry = Registry.load(DEFAULT_CONTRACTS_DIR)
    consumer = _consumer(bootstrap, f"bench-alo-{uuid.uuid4().hex[:8]}")
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 5, "compression.type": "lz4"})  # fmt: skip
    consumer.subscribe([topic])
    seen, first = 0, 0.0
    while seen < records:
        batch = [m for m in consumer.consume(BATCH, 0.1) if m.error() is None]
        if not batch:
            continue
        if not first:
            first = time.perf_counter()
        now_text = rfc3339_at(time.time())
        for m in batch:
            v = judge(m.key(), m.value(), Source(topic, m.partition() or 0, m.offset() or 0, 0),
                      registry=registry, validator_id="bench", now_text=now_text)  # fmt: skip
            producer.produce(dlq if isinstance(v, Invalid) else out, v.value, key=v.key)
        producer.flush(60)  # at least once: offsets only after the outputs are acknowledged
        consumer.commit(asynchronous=False)
        seen += len(batch)
    elapsed = time.perf_counter() - first
    consumer.close()
    return {"records": seen, "seconds": elapsed}


def loop_eos(bootstrap: str, topic: str, records: int, out: str, dlq: str) -> dict[str, float]:
    from validator.contracts import Registry
    from validator.loop import Validator
    from validator.settings import Settings

    run = uuid.uuid4().hex[:8]
    settings = Settings(
        kafka={"bootstrap_servers": bootstrap}, raw_topic=topic, validated_topic=out,
        dead_letter_topic=dlq, dedup_topic=f"bench-dedup-{run}", group_id=f"bench-eos-{run}",
        validator_id="bench",
    )  # fmt: skip
    validator = Validator(settings, Registry.load(settings.contracts_dir))
    thread = threading.Thread(target=validator.run, daemon=True)
    thread.start()
    first = 0.0
    while validator.counts.consumed < records:
        if validator.counts.transactions and not first:
            # The first commit: count from here, minus what that first transaction held.
            first = time.perf_counter()
            base = validator.counts.consumed
        time.sleep(0.01)
        if not thread.is_alive():
            raise RuntimeError("the validator stopped")
    elapsed = time.perf_counter() - first
    done = validator.counts.consumed - base
    validator.stop.set()
    thread.join(60)
    return {"records": done, "seconds": elapsed, "transactions": validator.counts.transactions,
            "validated": validator.counts.validated,
            "commit_share": validator.counts.commit_s / elapsed}  # fmt: skip


# ---------------------------------------------------------------- the harness


def measure(mode: str, bootstrap: str, topic: str, records: int) -> dict[str, Any]:
    """Run one loop in its own process on the server CPU; its rate in events/s."""
    run = uuid.uuid4().hex[:8]
    cmd = ["taskset", "-c", procs.cpu_list(procs.SERVER_CPUS), sys.executable, "-m",
           "bench.validator_bench", "loop", mode, bootstrap, topic, str(records), run]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                            check=False)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{mode} loop failed: {result.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["events_per_s"] = figures["records"] / figures["seconds"]
    return figures


def section(figures: dict[str, list[dict[str, Any]]], records: int, seconds: float) -> str:
    def median(mode: str) -> float:
        rates = sorted(f["events_per_s"] for f in figures[mode])
        return rates[len(rates) // 2]

    judged, raw, alo, eos = median("judge"), median("raw"), median("alo"), median("eos")
    share = eos / alo if alo else 0.0
    runs = len(figures["eos"])
    lines = [
        SECTION_START,
        "## Validator: exactly once against at least once",
        "",
        f"One Python process pinned to CPU {procs.cpu_list(procs.SERVER_CPUS)} (the broker on "
        f"the other), {records:,} taxi envelopes on a raw topic of 3 partitions, median of "
        f"{runs} runs per loop (measured in {seconds:.0f} s). `python -m bench.validator_bench`.",
        "",
        "| loop | events/s | vs at least once |",
        "|---|---:|---:|",
        f"| validation alone, in memory (parse, contract, splice; no Kafka) | {judged:,.0f} "
        f"| {judged / alo:.2f}x |",
        f"| raw consume (read only, no parsing) | {raw:,.0f} | {raw / alo:.2f}x |",
        f"| at least once: same validation, produce, flush, commit | {alo:,.0f} | 1.00x |",
        f"| **exactly once** (the validator: transaction per batch, dedup changelog) "
        f"| **{eos:,.0f}** | {share:.2f}x |",
        "",
        f"- target ≥ {TARGET_EOS_PER_S:,} events/s with exactly once: "
        f"{'met' if eos >= TARGET_EOS_PER_S else 'NOT met'} ({eos:,.0f}).",
        f"- target ≥ half the at-least-once ceiling: {'met' if share >= 0.5 else 'NOT met'} "
        f"({share:.0%}).",
        f"- each exactly-once run committed about "
        f"{figures['eos'][0]['records'] / max(1, figures['eos'][0]['transactions']):,.0f} "
        "records per transaction, with one seen-ids changelog record per partition and batch.",
        "- every run, events/s: "
        + "; ".join(
            f"{mode} " + ", ".join(f"{f['events_per_s']:,.0f}" for f in figures[mode])
            for mode in MODES
        )
        + f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs when written: "
        "the machine is shared, so runs vary).",
        "- where exactly once spends its time: sending offsets and committing took "
        + ", ".join(f"{f['commit_share']:.0%}" for f in figures["eos"])
        + " of each run; the rest is per-record work on one core (parse, validate, splice, "
        "produce, and librdkafka's own threads), whose in-memory part alone is the first row.",
        SECTION_END,
    ]
    return "\n".join(lines)


def write_section(text: str, path: Path = ROOT / "bench" / "results.md") -> None:
    """Replace this benchmark's section of results.md (or append it); other sections stay."""
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    if SECTION_START in current and SECTION_END in current:
        head, rest = current.split(SECTION_START, 1)
        tail = rest.split(SECTION_END, 1)[1]
        updated = head + text + tail
    else:
        updated = current.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(updated)


def run(*, quick: bool = False) -> None:
    """Start a broker of its own, fill a raw topic, measure each loop `runs` times, write."""
    records = 60_000 if quick else 300_000
    runs = 1 if quick else 3
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-validator-") as state:
        broker = Broker(Path(state), port=free_port(), controller_port=free_port(),
                        die_with_parent=True)  # fmt: skip
        broker.start()
        try:
            pid = broker.running_pid()
            if pid is not None:
                procs.pin_tree(pid, procs.LOAD_CPUS)
            topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
            broker.create_topics([topic])
            fill(broker.bootstrap_servers, topic, records)
            figures: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
            for _ in range(runs):
                for mode in MODES:
                    figures[mode].append(measure(mode, broker.bootstrap_servers, topic, records))
                    print(f"{mode}: {figures[mode][-1]['events_per_s']:,.0f} events/s",
                          file=sys.stderr, flush=True)  # fmt: skip
        finally:
            broker.stop()
    write_section(section(figures, records, time.monotonic() - started))


def main(argv: list[str]) -> int:
    if argv[:1] == ["loop"]:
        mode, bootstrap, topic, records, run_id = argv[1:6]
        out, dlq = f"bench-validated-{run_id}", f"bench-validated-dlq-{run_id}"
        if mode in ("alo", "eos"):
            from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

            admin = AdminClient({"bootstrap.servers": bootstrap})
            for future in admin.create_topics([NewTopic(out, 3, 1), NewTopic(dlq, 3, 1)]).values():
                future.result(60)
        if mode == "judge":
            figures = loop_judge(int(records))
        elif mode == "raw":
            figures = loop_raw(bootstrap, topic, int(records))
        elif mode == "alo":
            figures = loop_alo(bootstrap, topic, int(records), out, dlq)
        else:
            figures = loop_eos(bootstrap, topic, int(records), out, dlq)
        print(json.dumps(figures))
        return 0
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    run(quick=quick)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
