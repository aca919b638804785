"""The producer: conversion speed against the tutorial's pandas loop, pacing, and peak memory."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.parquet as pq

from bench.procs import WORK
from devstack.proc import ROOT
from devstack.service import http_get
from producer.rows import event_bodies

EVENT_TYPE = "YellowTaxiTripRecords"
SCHEMA_VERSION = "0-0-1"


def convert_ours(path: Path) -> tuple[int, float, list[bytes]]:
    """producer/rows.py over the whole file, streamed: rows, seconds, the last batch's bodies."""
    start = time.perf_counter()
    rows = 0
    bodies: list[bytes] = []
    for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
        bodies = event_bodies(
            batch,
            file_name=path.name,
            first_row=rows,
            event_type=EVENT_TYPE,
            schema_version=SCHEMA_VERSION,
        )
        rows += batch.num_rows
    return rows, time.perf_counter() - start, bodies


def convert_pandas(path: Path, max_rows: int) -> tuple[int, float, list[bytes]]:
    """The tutorial's way: the whole file into pandas, iterrows, json.dumps(default=str)."""
    start = time.perf_counter()
    frame = pd.read_parquet(path).head(max_rows)
    bodies = []
    for index, row in frame.iterrows():
        event = {
            "event_type": EVENT_TYPE,
            "schema_version": SCHEMA_VERSION,
            "payload": row.to_dict(),
            "event_id": f"{path.name}:{index}",
        }
        bodies.append(json.dumps(event, default=str).encode())
    return len(bodies), time.perf_counter() - start, bodies


def invalid_share(bodies: list[bytes]) -> float:
    """The share of bodies that are not strict JSON (bare NaN, for one)."""
    bad = 0
    for body in bodies:
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:
            bad += 1
    return bad / len(bodies) if bodies else 0.0


def conversion(path: Path, pandas_rows: int, repeats: int) -> dict[str, Any]:
    """Rows per second, ours vs pandas iterrows, medians of `repeats` passes each."""
    convert_ours(path)  # warm-up: first calls of the Arrow kernels
    ours = [convert_ours(path) for _ in range(repeats)]
    theirs = [convert_pandas(path, pandas_rows) for _ in range(repeats)]
    ours_rate = statistics.median(rows / seconds for rows, seconds, _ in ours)
    pandas_rate = statistics.median(rows / seconds for rows, seconds, _ in theirs)
    return {
        "file": path.name,
        "file_rows": ours[0][0],
        "pandas_rows": theirs[0][0],
        "ours_rows_per_s": ours_rate,
        "pandas_rows_per_s": pandas_rate,
        "ratio": ours_rate / pandas_rate,
        "ours_invalid_json_share": invalid_share(ours[-1][2]),
        "pandas_invalid_json_share": invalid_share(theirs[-1][2]),
        "pandas_timestamp_sample": _timestamp_sample(theirs[-1][2]),
        "ours_timestamp_sample": _timestamp_sample(ours[-1][2]),
    }


def _timestamp_sample(bodies: list[bytes]) -> str:
    for body in bodies:
        text = body.decode()
        marker = '"tpep_pickup_datetime": "' if '": "' in text else '"tpep_pickup_datetime":"'
        if marker in text:
            return text.split(marker, 1)[1].split('"', 1)[0]
    return "?"


def make_sample(out_dir: Path, rows: int) -> Path:
    """The January sample file with `rows` rows, written by `python -m producer sample`."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "producer",
            "sample",
            str(out_dir),
            "--rows",
            str(rows),
            "--months",
            "2023-01",
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
        timeout=600,
    )
    return out_dir / "yellow_tripdata_2023-01.parquet"


def multiply(path: Path, times: int, out: Path) -> Path:
    """The same rows `times` over, one row group at a time (the writer never holds the whole)."""
    source = pq.ParquetFile(path)
    with pq.ParquetWriter(out, source.schema_arrow) as writer:
        for _ in range(times):
            for group in range(source.num_row_groups):
                writer.write_table(
                    pa.Table.from_batches([*source.read_row_group(group).to_batches()])
                )
    return out


def replay_command(
    path: Path, sink_url: str, rate_per_s: float, batch_size: int, max_records: int | None = None
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "producer",
        "replay",
        str(path),
        "--collector-url",
        sink_url,
        "--rate",
        f"{rate_per_s:g}",
        "--batch-size",
        str(batch_size),
    ]
    if max_records is not None:
        cmd += ["--max-records", str(max_records)]
    return cmd


def replay(
    path: Path,
    sink_url: str,
    rate_per_s: float,
    batch_size: int,
    max_records: int | None = None,
) -> dict[str, Any]:
    """Run `python -m producer replay` as its own process; its summary, wall time and peak RSS."""
    cmd = replay_command(path, sink_url, rate_per_s, batch_size, max_records)
    log = (WORK / "producer.log").open("ab")
    start = time.perf_counter()
    with log:
        process = subprocess.Popen(
            cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log
        )
        assert process.stdout is not None
        out = process.stdout.read()
        # wait4 gives this child's own resource usage, peak RSS included.
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall_s = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"producer exited {process.returncode}: {out.decode()[-500:]}")
    summary: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return {**summary, "wall_s": wall_s, "max_rss_mib": usage.ru_maxrss / 1024}


def sink_stats(sink_url: str, reset: bool = False) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(
        sink_url + ("/stats/reset" if reset else "/stats"), timeout=10
    ) as r:
        stats: dict[str, Any] = json.loads(r.read())
    return stats


def pacing(
    path: Path, sink_url: str, rate_per_s: float, duration_s: float, batch_size: int
) -> dict[str, Any]:
    """Replay `rate_per_s * duration_s` events at `rate_per_s`; the rate the sink saw."""
    if http_get(sink_url + "/stats")[0] != 200:
        raise RuntimeError("the sink does not answer")
    sink_stats(sink_url, reset=True)
    records = round(rate_per_s * duration_s)
    summary = replay(path, sink_url, rate_per_s, batch_size, max_records=records)
    stats = sink_stats(sink_url)
    achieved = schedule_rate(stats["arrivals"])
    return {
        "rate_per_s": rate_per_s,
        "batch_size": batch_size,
        "events": stats["events"],
        "achieved_per_s": achieved,
        "error": achieved / rate_per_s - 1,
        "producer_summary": summary,
    }


def schedule_rate(arrivals: list[tuple[float, int]]) -> float:
    """Events per second as the least-squares slope of events sent so far against arrival time.

    A slope over every request, not (last - first) alone, so one late answer at either end
    does not pass for a pacing error.
    """
    if len(arrivals) < 2:
        return 0.0
    times, sent = [], []
    total = 0
    for at_s, count in sorted(arrivals):
        times.append(at_s)
        sent.append(total)
        total += count
    mean_t, mean_n = statistics.fmean(times), statistics.fmean(sent)
    spread = sum((t - mean_t) ** 2 for t in times)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (n - mean_n) for t, n in zip(times, sent, strict=True)) / spread


def memory(paths: list[Path], sink_url: str, batch_size: int) -> list[dict[str, Any]]:
    """Peak RSS of a full replay, as fast as the sink takes it, for each file."""
    results = []
    for path in paths:
        sink_stats(sink_url, reset=True)
        summary = replay(path, sink_url, 0, batch_size)
        results.append(
            {
                "file": path.name,
                "rows": pq.ParquetFile(path).metadata.num_rows,
                "file_mib": path.stat().st_size / 2**20,
                "max_rss_mib": summary["max_rss_mib"],
                "events_per_s": summary.get("records", 0) / summary["wall_s"],
                "summary": summary,
            }
        )
    return results


if __name__ == "__main__":
    # `python -m bench.producer_bench convert FILE SECONDS`: conversion passes for py-spy to
    # sample, long enough that start-up imports are a small part of the profile.
    if sys.argv[1:2] == ["convert"]:
        until = time.monotonic() + float(sys.argv[3])
        while time.monotonic() < until:
            convert_ours(Path(sys.argv[2]))
