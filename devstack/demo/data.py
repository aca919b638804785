"""The demo's data: sample month files, or the first rows of given ones, and the reconciliation
of topics with them (`python -m producer sample` and `reconcile`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from devstack.demo.summary import parse_summary
from devstack.proc import ROOT
from devstack.reporting import say
from producer import source


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


def reconcile(
    bootstrap_servers: str, files: Sequence[str], topics: tuple[str, str]
) -> dict[str, Any] | None:
    """`python -m producer reconcile` of `files` against a raw and a dead-letter topic: its
    closing JSON line, or None (said, with its stderr) when it printed none."""
    command = [
        sys.executable,
        "-m",
        "producer",
        "reconcile",
        *files,
        "--bootstrap-servers",
        bootstrap_servers,
        "--raw-topic",
        topics[0],
        "--dead-letter-topic",
        topics[1],
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    parsed = parse_summary(result.stdout)
    if not parsed:
        say(f"    reconcile printed no summary (exit {result.returncode}):")
        say(result.stderr[-2000:])
        return None
    return parsed
