"""`python -m producer` as a process: flags and environment, exit codes, SIGTERM, URLs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from devstack.proc import ROOT, ManagedProcess, wait_until
from producer.settings import ReplaySettings
from tests.producer.conftest import SAMPLE_ROWS, StandIn


def producer(*args: str, env: dict[str, str] | None = None, timeout_s: float = 60) -> Any:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PRODUCER_")}
    clean.pop("JOB_COMPLETION_INDEX", None)
    return subprocess.run(
        [sys.executable, "-m", "producer", *args],
        cwd=ROOT, env={**clean, **(env or {})}, capture_output=True, text=True,
        timeout=timeout_s, check=False,
    )  # fmt: skip


def summary_of(stdout: str) -> dict[str, Any]:
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout
    parsed = orjson.loads(lines[0])
    assert isinstance(parsed, dict)
    return parsed


def test_settings_come_from_the_environment_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODUCER_DATA_URLS", "a.parquet, b.parquet c.parquet")
    monkeypatch.setenv("PRODUCER_RATE", "250")
    monkeypatch.setenv("PRODUCER_BATCH_SIZE", "10")
    monkeypatch.setenv("PRODUCER_MAX_RECORDS", "5")
    monkeypatch.setenv("PRODUCER_CONCURRENCY", "3")
    monkeypatch.setenv("PRODUCER_COLLECTOR_URL", "http://env:1")
    settings = ReplaySettings(collector_url="http://flag:2")
    assert settings.data_urls == ["a.parquet", "b.parquet", "c.parquet"]
    assert (settings.rate_per_s, settings.batch_size, settings.max_records) == (250, 10, 5)
    assert (settings.concurrency, settings.collector_url) == (3, "http://flag:2")
    assert settings.event_type == "YellowTaxiTripRecords"
    assert settings.schema_version == "0-0-1"
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    assert ReplaySettings().selected_files() == ["b.parquet"]
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "3")
    with pytest.raises(ValueError, match="JOB_COMPLETION_INDEX=3"):
        ReplaySettings().selected_files()


def test_replay_prints_one_json_summary_and_exits_0(samples: list[Path], stand_in: StandIn) -> None:
    result = producer("replay", *map(str, samples), "--collector-url", stand_in.url)
    assert result.returncode == 0, result.stderr
    summary = summary_of(result.stdout)
    assert {k: summary[k] for k in ("records", "accepted", "rejected", "failed")} == {
        "records": 900, "accepted": 900, "rejected": 0, "failed": 0,
    }  # fmt: skip
    assert summary["seconds"] > 0
    assert sorted(stand_in.event_ids) == sorted(
        f"{p.name}:{i}" for p in samples for i in range(SAMPLE_ROWS)
    )
    assert "progress:" in result.stderr


def test_indexed_job_replays_its_own_file_from_the_environment(
    samples: list[Path], stand_in: StandIn
) -> None:
    env = {
        "PRODUCER_DATA_URLS": ",".join(map(str, samples)),
        "PRODUCER_COLLECTOR_URL": stand_in.url,
        "PRODUCER_BATCH_SIZE": "40",
        "PRODUCER_API_KEY": "s3cret",
        "JOB_COMPLETION_INDEX": "2",
    }
    result = producer("replay", env=env)
    assert result.returncode == 0, result.stderr
    assert summary_of(result.stdout)["files"] == [samples[2].name]
    assert {i.rsplit(":", 1)[0] for i in stand_in.event_ids} == {samples[2].name}
    assert len(stand_in.event_ids) == SAMPLE_ROWS
    assert set(stand_in.paths) == {"/api/v1/collect/batch"}
    assert set(stand_in.authorizations) == {"Bearer s3cret"}


def test_failures_give_exit_code_1(samples: list[Path], stand_in: StandIn) -> None:
    # 409: final, yet not a sign that the URL or key is wrong, so the whole file is sent.
    stand_in.answer = lambda body: 409
    result = producer("replay", str(samples[0]), "--collector-url", stand_in.url)
    assert result.returncode == 1
    summary = summary_of(result.stdout)
    assert (summary["failed"], summary["accepted"]) == (SAMPLE_ROWS, 0)


def test_nothing_listening_fails_after_the_retry_budget(samples: list[Path]) -> None:
    result = producer(
        "replay", str(samples[0]), "--collector-url", "http://127.0.0.1:9",
        "--max-records", "5", "--max-retry-s", "0.5", "--backoff-base-s", "0.05",
    )  # fmt: skip
    assert result.returncode == 1
    assert summary_of(result.stdout)["failed"] == 5


def test_usage_errors_exit_2_with_a_message(samples: list[Path]) -> None:
    result = producer("replay", "--collector-url", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "no files" in result.stderr
    missing = producer("replay", "/nonexistent.parquet", "--collector-url", "http://x")
    assert missing.returncode == 2
    assert "error:" in missing.stderr
    bad = producer("replay", str(samples[0]), "--rate", "-3")
    assert bad.returncode == 2
    assert "rate" in bad.stderr


def test_replay_from_an_http_url(
    samples: list[Path], stand_in: StandIn, file_server: Callable[[Path], str]
) -> None:
    url = file_server(samples[1]) + "?download=1"
    result = producer("replay", url, "--collector-url", stand_in.url)
    assert result.returncode == 0, result.stderr
    assert summary_of(result.stdout)["files"] == [samples[1].name]
    assert sorted(stand_in.event_ids) == sorted(f"{samples[1].name}:{i}" for i in range(300))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_replay_checks_each_files_sha256_and_refuses_a_mismatch(
    samples: list[Path], stand_in: StandIn, file_server: Callable[[Path], str]
) -> None:
    url = file_server(samples[1])
    good = producer(
        "replay", str(samples[0]), url, "--collector-url", stand_in.url,
        "--sha256", f"{samples[0]}={sha256_of(samples[0])}",
        "--sha256", f"{samples[1].name}={sha256_of(samples[1]).upper()}",  # by file name
    )  # fmt: skip
    assert good.returncode == 0, good.stderr
    assert summary_of(good.stdout)["accepted"] == 2 * SAMPLE_ROWS
    stand_in.event_ids.clear()
    wrong = sha256_of(samples[0])
    for location in (str(samples[1]), url):  # a local file and a download alike
        refused = producer(
            "replay", str(samples[0]), location, "--collector-url", stand_in.url,
            "--sha256", f"{samples[1].name}={wrong}",
        )  # fmt: skip
        assert refused.returncode == 2
        assert f"sha256 is {sha256_of(samples[1])}, expected {wrong}; not replaying it" in (
            refused.stderr
        )
        assert refused.stdout == ""
    assert stand_in.event_ids == []  # nothing was sent, not even from the good file


def test_sha256_flags_are_checked_before_anything_is_read(samples: list[Path]) -> None:
    typo = producer(
        "replay", str(samples[0]), "--collector-url", "http://127.0.0.1:9",
        "--sha256", f"yellow_tripdata_1999-01.parquet={'0' * 64}",
    )  # fmt: skip
    assert typo.returncode == 2
    assert "--sha256 names files that are not replayed: yellow_tripdata_1999-01.parquet" in (
        typo.stderr
    )
    short = producer("replay", str(samples[0]), "--sha256", f"{samples[0].name}=abc")
    assert short.returncode == 2
    assert "is not FILE_OR_URL=<64 hex digits>" in short.stderr


def test_sha256_from_the_environment(samples: list[Path], stand_in: StandIn) -> None:
    env = {
        "PRODUCER_DATA_URLS": ",".join(map(str, samples)),
        "PRODUCER_SHA256": " ".join(f"{p.name}={sha256_of(p)}" for p in samples),
        "PRODUCER_COLLECTOR_URL": stand_in.url,
        "JOB_COMPLETION_INDEX": "1",
    }
    assert producer("replay", env=env).returncode == 0
    env["PRODUCER_SHA256"] = f"{samples[1].name}={'0' * 64}"
    assert producer("replay", env=env).returncode == 2


# SIGTERM (Kubernetes stopping a pod) ends a drained replay with 0; Ctrl-C with 130, as a shell
# reports an interrupted command, so `replay && reconcile` does not carry on.
@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_a_signal_stops_reading_finishes_in_flight_and_prints_the_summary(
    samples: list[Path], stand_in: StandIn, signum: signal.Signals, exit_code: int
) -> None:
    stand_in.delay_s = 0.3  # every request is in flight for a while
    process = ManagedProcess(
        [sys.executable, "-m", "producer", "replay", *map(str, samples),
         "--collector-url", stand_in.url, "--rate", "100", "--concurrency", "8"],
        "producer replay", capture=True, own_session=False, die_with_parent=False,
    )  # fmt: skip
    process.spawn()
    # At most 20 s for the first 20 events; whatever has arrived then, the signal.
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: len(stand_in.event_ids) >= 20, 20, "20 events", every_s=0.05)
    process.signal(signum)
    process.finish(30)
    stdout, stderr = process.output, process.errors
    assert process.returncode == exit_code, stderr
    assert ("interrupted (Ctrl-C)" in stderr) is (signum == signal.SIGINT)
    summary = summary_of(stdout)
    assert summary["stopped"] is True
    assert 20 <= summary["records"] < 900
    # Every send that had started was finished: what the collector took is what was counted.
    assert summary["accepted"] == summary["records"] == len(stand_in.event_ids)


def test_sample_writes_three_deterministic_month_files(tmp_path: Path) -> None:
    first = producer("sample", str(tmp_path / "a"), "--rows", "200", "--seed", "5")
    second = producer("sample", "--out-dir", str(tmp_path / "b"), "--rows", "200", "--seed", "5")
    assert first.returncode == second.returncode == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == [
        "yellow_tripdata_2023-01.parquet",
        "yellow_tripdata_2023-02.parquet",
        "yellow_tripdata_2023-03.parquet",
    ]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
