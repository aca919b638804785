"""Replay in process against a mock collector: every row once, paced, retried, stoppable."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from producer.replay import Summary, replay
from producer.settings import ReplaySettings
from tests.producer.conftest import SAMPLE_ROWS, MockCollector

Handler = Callable[[httpx.Request], httpx.Response]


def run(
    samples: list[Path],
    handler: Handler,
    *,
    stop_after_s: float | None = None,
    stderr: io.StringIO | None = None,
    **overrides: object,
) -> Summary:
    settings = ReplaySettings(
        collector_url="http://collector", backoff_base_s=0.01, backoff_cap_s=0.05, **overrides
    )
    paths = [(p.name, p) for p in samples]

    async def main() -> Summary:
        stop = asyncio.Event()
        if stop_after_s is not None:
            asyncio.get_running_loop().call_later(stop_after_s, stop.set)
        client = MockCollector(handler, "http://collector")
        return await replay(paths, settings, client, stop=stop, stderr=stderr or io.StringIO())

    return asyncio.run(main())


class Recorder:
    """Keeps the events of each accepted request; thread-safe enough for one event loop."""

    def __init__(self, status: Callable[[], int] = lambda: 202) -> None:
        self.events: list[dict[str, object]] = []
        self.paths: list[str] = []
        self.status = status
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        status = self.status()
        body = orjson.loads(request.content)
        with self.lock:
            self.paths.append(request.url.path)
            if status == 202:
                self.events.extend(body if isinstance(body, list) else [body])
        return httpx.Response(status)

    def ids(self) -> list[str]:
        return [str(e["event_id"]) for e in self.events]


def all_ids(samples: list[Path], rows: int = SAMPLE_ROWS) -> list[str]:
    return [f"{p.name}:{i}" for p in samples for i in range(rows)]


def test_every_row_becomes_one_event_with_its_id(samples: list[Path]) -> None:
    recorder = Recorder()
    summary = run(samples, recorder)
    assert sorted(recorder.ids()) == sorted(all_ids(samples))
    assert set(recorder.paths) == {"/api/v1/collect"}
    out = summary.as_dict()
    assert {k: out[k] for k in ("records", "accepted", "rejected", "failed")} == {
        "records": 900, "accepted": 900, "rejected": 0, "failed": 0,
    }  # fmt: skip
    assert out["files"] == [p.name for p in samples]
    first = next(e for e in recorder.events if e["event_id"] == f"{samples[0].name}:0")
    expected = pq.read_table(samples[0]).slice(0, 1).to_pylist()[0]
    assert first["event_type"] == "YellowTaxiTripRecords"
    assert first["schema_version"] == "0-0-1"
    assert isinstance(first["payload"], dict)
    assert list(first["payload"]) == list(expected)


def test_max_records_stops_early(samples: list[Path]) -> None:
    recorder = Recorder()
    summary = run(samples, recorder, max_records=123)
    assert sorted(recorder.ids()) == sorted(all_ids(samples[:1], 123))
    assert summary.stats.records == 123


def test_batch_endpoint_carries_every_row(samples: list[Path]) -> None:
    recorder = Recorder()
    summary = run(samples, recorder, batch_size=50)
    assert sorted(recorder.ids()) == sorted(all_ids(samples))
    assert set(recorder.paths) == {"/api/v1/collect/batch"}
    assert len(recorder.paths) == 900 // 50
    assert summary.stats.accepted == 900


@pytest.mark.parametrize("batch_size", [1, 25])
def test_a_collector_down_for_a_while_still_gets_everything(
    samples: list[Path], batch_size: int
) -> None:
    up_at = time.monotonic() + 0.8

    def flaky() -> int:
        return 503 if time.monotonic() < up_at else 202

    recorder = Recorder(flaky)

    def handler(request: httpx.Request) -> httpx.Response:
        if time.monotonic() < up_at - 0.4:
            raise httpx.ConnectError("connection refused")
        return recorder(request)

    summary = run(samples, handler, batch_size=batch_size, max_attempts=1000)
    assert sorted(recorder.ids()) == sorted(all_ids(samples))
    assert summary.stats.failed == 0
    assert summary.stats.retries > 0


def test_rejections_are_final_and_do_not_fail_the_run(samples: list[Path]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        row = int(orjson.loads(request.content)["event_id"].rsplit(":", 1)[1])
        return httpx.Response(422 if row % 10 == 0 else 202)

    summary = run(samples[:1], handler)
    assert (summary.stats.accepted, summary.stats.rejected, summary.stats.failed) == (270, 30, 0)


def test_stop_finishes_in_flight_sends_and_reports(samples: list[Path]) -> None:
    recorder = Recorder()
    summary = run(samples, recorder, rate_per_s=500, stop_after_s=0.4)
    assert summary.stopped
    assert 50 < summary.stats.records < 900
    assert summary.stats.accepted == summary.stats.records == len(recorder.events)
    assert summary.stats.failed == 0


def test_plain_progress_lines_when_not_a_terminal(samples: list[Path]) -> None:
    stderr = io.StringIO()
    run(samples, Recorder(), rate_per_s=1000, progress_interval_s=0.2, stderr=stderr)
    lines = [line for line in stderr.getvalue().splitlines() if line.startswith("progress:")]
    assert len(lines) >= 3
    assert lines[-1].startswith("progress: 900/900 done, accepted 900")


def test_a_file_that_cannot_be_read_on_ends_with_an_error_in_the_summary(
    samples: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "dup.parquet"
    table = pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4])], names=["a", "a"])
    pq.write_table(table, broken)
    recorder = Recorder()
    summary = run([samples[0], broken], recorder)
    assert summary.error is not None
    assert summary.error.startswith("dup.parquet: ")  # names the file
    assert "duplicate" in summary.error
    assert summary.as_dict()["error"] == summary.error
    # What was read before the bad file was still sent.
    assert sorted(recorder.ids()) == sorted(all_ids(samples[:1]))
    assert summary.stats.accepted == SAMPLE_ROWS


def test_a_slow_first_request_is_not_caught_up_on_with_a_burst(samples: list[Path]) -> None:
    arrivals: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            time.sleep(0.3)  # the first connection and lazy imports, exaggerated
        return httpx.Response(202)

    summary = run(samples, handler, rate_per_s=100, max_records=60, concurrency=8)
    assert summary.stats.accepted == 60
    after_first = [t - arrivals[0] - 0.3 for t in arrivals[1:]]
    # Without a fresh start, 0.2 s of credit would send ~20 events at once after the stall.
    assert sum(1 for t in after_first if t < 0.05) <= 7, after_first
    # The rate itself is held exact in fake time (test_pacing) and measured by `make bench`.
