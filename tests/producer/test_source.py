"""Reading files as streams: names from paths and URLs, flat memory however large the file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from devstack.proc import ROOT
from producer import source
from producer.sample import write_month


def test_file_names_of_paths_and_urls() -> None:
    assert source.file_name("/data/yellow_tripdata_2023-01.parquet") == (
        "yellow_tripdata_2023-01.parquet"
    )
    url = "https://d37ci6vzurychx.cloudfront.net/trip-data/yellow_tripdata_2023-02.parquet?x=1"
    assert source.file_name(url) == "yellow_tripdata_2023-02.parquet"
    assert source.file_name("http://h/a%20b.parquet") == "a b.parquet"


def test_batches_are_numbered_across_row_groups(tmp_path: Path) -> None:
    path = write_month(tmp_path, "2023-01", rows=250, row_group_rows=100)
    parts = list(source.iter_row_batches(path, batch_rows=60))
    assert [p.first_row for p in parts] == [0, 60, 120, 180, 240]
    assert [p.batch.num_rows for p in parts] == [60, 60, 60, 60, 10]


def test_urls_are_downloaded_to_a_temporary_file_that_is_removed(
    tmp_path: Path, file_server: Callable[[Path], str]
) -> None:
    path = write_month(tmp_path, "2023-01", rows=50)
    with source.local_copy(file_server(path)) as local:
        assert local.read_bytes() == path.read_bytes()
    assert not local.exists()


_MEASURE = """
import resource, sys
from pathlib import Path
from producer import rows, source
events = 0
for part in source.iter_row_batches(Path(sys.argv[1]), batch_rows=5000):
    events += len(rows.event_bodies(part.batch, file_name="f", first_row=part.first_row,
                                    event_type="t", schema_version="v"))
print(events, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_kib(path: Path) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    return int(out[0]), int(out[1])


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    small = write_month(tmp_path / "small", "2023-01", rows=12_000, row_group_rows=6_000)
    large = write_month(tmp_path / "large", "2023-01", rows=120_000, row_group_rows=6_000)
    small_events, small_kib = peak_rss_kib(small)
    large_events, large_kib = peak_rss_kib(large)
    assert (small_events, large_events) == (12_000, 120_000)
    print(f"peak RSS: {small_kib} KiB for 12k rows, {large_kib} KiB for 120k rows")
    assert large_kib < 1.5 * small_kib, (small_kib, large_kib)
