"""bench/results.md, bench/results.json and bench/results.png from one run's figures."""
# ruff: noqa: RUF001  (the multiplication sign and the en dash are meant: prose for people)

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import events, replicas
from bench.plot import plot
from bench.procs import LOAD_CPUS, SERVER_CPUS, cpu_list
from bench.verdicts import events_per_s, ratio, verdicts
from devstack.proc import ROOT

if TYPE_CHECKING:
    from bench.harness import Results

# A full run's results are kept in git; a quick (development) run's go where git ignores them.
FULL_DIR = ROOT / "bench"
QUICK_DIR = ROOT / "bench" / ".work" / "quick"


def _busy(row: dict[str, Any], cpus: frozenset[int]) -> str:
    shares = [row["busy"].get(f"cpu{c}", 0.0) for c in sorted(cpus)]
    return "/".join(f"{share:.0%}" for share in shares)


def _mark(met: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: "not measured"}[met]


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "–" if value is None else format(value, spec)


def markdown(results: Results) -> str:
    lines = _header(results)
    lines += _closed_loop_section(results)
    lines += replicas.section(results)
    lines += _open_loop_section(results)
    lines += _producer_section(results)
    lines += _profile_section(results)
    lines += _kafka_check_section(results)
    lines += _method_section(results)
    lines += _machine_section(results)
    return "\n".join(lines) + "\n"


def _header(results: Results) -> list[str]:
    """The title, how the run was made, and the targets."""
    plan = results.plan
    mode = "QUICK mode: fewer, shorter runs, for development only" if plan.quick else "full run"
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {results.facts['date']}"
        f" ({mode},"
        f" {results.seconds / 60:.1f} minutes); every run replaces this file, "
        "[results.json](results.json) and the plot below.",
        "",
        "![throughput and latency](results.png)",
        "",
        "## Targets",
        "",
        "| target | measured (same run, medians) | |",
        "|---|---|---|",
    ]
    lines += [f"| {v.target} | {v.figure} | {_mark(v.met)} |" for v in verdicts(results)]
    not_met = [v for v in verdicts(results) if v.met is False]
    if not_met:
        lines += [
            "",
            "What limits the targets not met is in [Where the time goes](#where-the-time-goes).",
        ]
    return lines


def _closed_loop_section(results: Results) -> list[str]:
    """Throughput under wrk, every app, with the raw produce limit."""
    tutorial, hello = events_per_s(results, "tutorial"), events_per_s(results, "hello")
    plan = results.plan
    lines = [
        "",
        f"## Throughput: closed loop (wrk -t1 -c32, median of {plan.runs} runs "
        f"of {plan.run_s:g} s)",
        "",
        f"Each server pinned to CPU {cpu_list(SERVER_CPUS)}; wrk, the broker and this harness to "
        f"CPU {cpu_list(LOAD_CPUS)}. One uvicorn worker with uvloop and httptools everywhere.",
        "",
        "| app | req/s | events/s | events/s min–max | × tutorial | × FastAPI hello | "
        f"wrk p50 / p99 ms | server CPU µs/event | CPU {cpu_list(SERVER_CPUS)} / "
        f"CPU {cpu_list(LOAD_CPUS)} busy | non-2xx |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in (
        "bare",
        "hello",
        "tutorial",
        "ours_single",
        "ours_batch",
        "ours_single_gzip",
        "ours_batch_gzip",
        "ours_single_c128",
    ):
        row = results.closed.get(key)
        if not row:
            continue
        low, high = row["events_per_s_min_max"]
        lines.append(
            f"| {results.labels[key]} | {row['requests_per_s']:,.0f} | {row['events_per_s']:,.0f} "
            f"| {low:,.0f}–{high:,.0f} | {_fmt(ratio(row['events_per_s'], tutorial), '.2f')} "
            f"| {_fmt(ratio(row['events_per_s'], hello), '.2f')} "
            f"| {row['p50_ms']:.1f} / {row['p99_ms']:.1f} | {row['cpu_us_per_event']:.0f} "
            f"| {_busy(row, SERVER_CPUS)} / {_busy(row, LOAD_CPUS)} | {row['non_2xx']} |"
        )
    if results.raw_kafka:
        raw = results.raw_kafka
        lines.append(
            f"| raw confluent-kafka produce, one Python process ({raw['message_bytes']}-byte "
            f"messages, acks=all, lz4; the physical limit) | | {raw['messages_per_s']:,.0f} | | "
            f"{_fmt(ratio(raw['messages_per_s'], tutorial), '.1f')} | | | | | "
            f"{raw['failed']} failed |"
        )
    return lines


def _open_loop_section(results: Results) -> list[str]:
    """Latency at fixed rates."""
    plan = results.plan
    lines = [
        "",
        f"## Latency: open loop at fixed rates (median of {plan.open_loop_runs} runs of "
        f"{plan.open_loop_s:g} s each, round-robin)",
        "",
        "Requests leave on a fixed schedule whether or not earlier ones were answered, and each "
        "latency counts from the scheduled send time, so a stall shows in full (no coordinated "
        "omission). Up to 64 connections.",
        "",
        "| app | req/s | events/s | 2xx / sent | p50 ms | p90 ms | p99 ms | p99 min–max | "
        "p99.9 ms | max ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results.open_loop:
        lines.append(
            f"| {row['label']} | {row['rate_per_s']:,.0f} | "
            f"{row['rate_per_s'] * row['events_per_request']:,.0f} | "
            f"{row['ok']:,} / {row['scheduled']:,} | {row['p50_ms']:.1f} | {row['p90_ms']:.1f} | "
            f"{row['p99_ms']:.1f} | {row['p99_ms_min_max'][0]:.1f}–{row['p99_ms_min_max'][1]:.1f} "
            f"| {row['p999_ms']:.1f} | {row['max_ms']:.1f} |"
        )
    return lines


def _kafka_check_section(results: Results) -> list[str]:
    """Acknowledged events against what the raw topic holds."""
    lines: list[str] = []
    if results.kafka_check:
        check = results.kafka_check
        verdict = (
            "at least as many: ok"
            if check["on_raw_topic"] >= check["acknowledged_at_least"]
            else "FEWER: events were lost"
        )
        lines += [
            "",
            "## Nothing acknowledged was lost",
            "",
            f"The load generators counted {check['acknowledged_at_least']:,} events answered 202 "
            f"by the one-worker collector; its raw topic holds {check['on_raw_topic']:,} records "
            f"({verdict}; the warm-ups, the profiling runs and requests still in flight when wrk "
            "stopped add the rest).",
        ]
    return lines


def _machine_section(results: Results) -> list[str]:
    """The machine's facts, and what this run could not measure."""
    lines = ["", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in results.facts.items()]
    lines.append(f"| load average at end | {results.load_after} |")
    if results.errors:
        lines += ["", "## Not measured in this run", ""]
        lines += [
            f"- `{e.splitlines()[0]}`" + "".join(f"<br>`{x}`" for x in e.splitlines()[1:])
            for e in results.errors
        ]
    return lines


def _producer_section(results: Results) -> list[str]:
    producer = results.producer
    if not producer:
        return []
    lines = ["", "## Producer"]
    conversion = producer.get("conversion")
    if conversion:
        lines += [
            "",
            "Rows turned into event bodies, from the same sample file "
            f"({conversion['file_rows']:,} rows, written by the producer's sample generator); "
            f"pandas on its first {conversion['pandas_rows']:,} rows, as it is slow.",
            "",
            "| how | rows/s | ratio | invalid JSON bodies | a pickup time as written |",
            "|---|---|---|---|---|",
            f"| producer/rows.py (Arrow, column by column) | {conversion['ours_rows_per_s']:,.0f} "
            f"| {conversion['ratio']:.1f}× | {conversion['ours_invalid_json_share']:.1%} "
            f"| `{conversion['ours_timestamp_sample']}` |",
            f"| pandas iterrows + json.dumps(default=str) (the tutorial) "
            f"| {conversion['pandas_rows_per_s']:,.0f} | 1× | "
            f"{conversion['pandas_invalid_json_share']:.1%} (bare NaN) "
            f"| `{conversion['pandas_timestamp_sample']}` |",
        ]
    pacing = producer.get("pacing")
    if pacing:
        lines += [
            "",
            "Pacing: `python -m producer replay --rate R` against a fast local sink (a bare ASGI "
            "app on its own core answering 202); the achieved rate is the least-squares slope of "
            "events sent so far against arrival time at the sink, over every request.",
            "",
            "| target events/s | events per request | events | achieved events/s | error |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['rate_per_s']:,} | {r['batch_size']} | {r['events']:,} "
            f"| {r['achieved_per_s']:,.1f} | {r['error']:+.2%} |"
            for r in pacing
        ]
    memory = producer.get("memory")
    if memory:
        base = memory[0]["max_rss_mib"]
        lines += [
            "",
            "Peak memory (ru_maxrss of the producer process) for a full replay at `--rate 0` in "
            f"batches of {events.BATCH_SIZE}; the larger file is the smaller one ten times over:",
            "",
            "| file | rows | file MiB | peak RSS MiB | vs 1× | events/s |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['file']} | {r['rows']:,} | {r['file_mib']:.1f} | {r['max_rss_mib']:.0f} "
            f"| {r['max_rss_mib'] / base - 1:+.1%} | {r['events_per_s']:,.0f} |"
            for r in memory
        ]
    return lines


# Frames every sample passes through on the way in; they say nothing about where time goes.
_ENTRY_POINTS = frozenset({"<module>", "main", "serve", "run_replay"})


def _profile_section(results: Results) -> list[str]:
    if not results.profiles:
        return []
    names = {
        "ours_single": "our collector, single events (1 worker, under wrk)",
        "ours_batch": "our collector, batches of 100 (1 worker, under wrk)",
        "conversion": "producer/rows.py converting the sample file",
        "replay": "the producer replaying single events as fast as it can to the sink",
    }
    lines = [
        "",
        "## Where the time goes",
        "",
        "py-spy samples of the Python threads (native librdkafka threads are not sampled); "
        "self = the function itself, total = with what it calls. Raw stacks in bench/.work/.",
    ]
    for key, rows in results.profiles.items():
        lines += [
            "",
            f"**{names.get(key, key)}**",
            "",
            "| function | self | total |",
            "|---|---|---|",
        ]
        own = sorted(
            (
                r
                for r in rows
                if ("(collector/" in r.name or "(producer/" in r.name)
                and r.name.split(" (")[0] not in _ENTRY_POINTS
            ),
            key=lambda r: r.total_share,
            reverse=True,
        )[:6]
        lines += [f"| `{r.name}` | {r.self_share:.1%} | {r.total_share:.1%} |" for r in rows[:10]]
        if own:
            header = ["| function | self | total |", "|---|---|---|"]
            lines += ["", "the project's own functions, by total:", "", *header]
            lines += [f"| `{r.name}` | {r.self_share:.1%} | {r.total_share:.1%} |" for r in own]
    return lines


def _method_section(results: Results) -> list[str]:
    single, batch = events.single_body(), events.batch_body()
    return [
        "",
        "## How it was measured",
        "",
        f"- One real Apache Kafka broker (single KRaft node on free ports in a temp dir) for the "
        f"whole run. Bodies: one TLC yellow-taxi event of {len(single)} bytes; a batch of "
        f"{events.BATCH_SIZE} of them, {len(batch):,} bytes. wrk repeats one body, so single "
        "events carry one `event_id` (one Kafka key, one partition); batch elements have "
        f"{events.BATCH_SIZE} distinct ones.",
        f"- The machine has {os.cpu_count()} cores, and the server and the load generator compete "
        "for them. To be fair, each single-worker server is pinned to CPU "
        f"{cpu_list(SERVER_CPUS)} (its librdkafka threads included) while wrk (or the open-loop "
        f"generator), the Kafka broker and this harness share CPU {cpu_list(LOAD_CPUS)}; the "
        "replicas comparison is unpinned. Other work on the machine is not excluded: see the "
        "load averages below. "
        "Server CPU per event is user+system time of the server's processes during the timed runs.",
        "- Runs are round-robin across the apps (run 1 of each, then run 2 of each, ...), so a "
        "noisy moment on the shared machine falls on all of them alike; ratios are of medians "
        "from the same run.",
        "- wrk's own latency figures are closed-loop (a slow answer delays the next request), "
        "so they are reported only beside the throughput; the latency targets use bench/openloop, "
        "hand-written in Go with the standard library because wrk2 is not packaged for Debian.",
        "- The tutorial collector (bench/baseline/) is the baseline only: a pydantic model "
        "parameter, a new uuid4 and timestamp, an INFO log line per event, and no Kafka.",
    ]


def write(results: Results) -> list[Path]:
    out_dir = QUICK_DIR if results.plan.quick else FULL_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    md, png, json_path = out_dir / "results.md", out_dir / "results.png", out_dir / "results.json"
    md.write_text(markdown(results))
    plot(results, png)
    payload = {
        "facts": results.facts,
        "plan": results.plan.__dict__,
        "targets": [v.__dict__ for v in verdicts(results)],
        "closed_loop": results.closed,
        "open_loop": results.open_loop,
        "raw_kafka": results.raw_kafka,
        "kafka_check": results.kafka_check,
        "producer": results.producer,
        "profiles": {k: [r.__dict__ for r in v[:40]] for k, v in results.profiles.items()},
        "errors": results.errors,
        "seconds": results.seconds,
    }
    json_path.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    return [md, png, json_path]
