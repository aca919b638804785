"""What `python -m producer` tells a person: help, refusals, interrupted and unreachable runs."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import pytest

from console.settings_help import env_var
from kafkaconn import KafkaConnection
from producer.settings import ReconcileSettings, ReplaySettings
from tests.producer.conftest import SAMPLE_ROWS, StandIn
from tests.producer.test_cli import producer, summary_of
from tests.producer.test_replay import run


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    ("command", "model", "flags"),
    [("replay", ReplaySettings, {"rate_per_s": "--rate"}), ("reconcile", ReconcileSettings, {})],
)
def test_every_flag_names_its_default_and_variable(
    command: str, model: type[ReplaySettings | ReconcileSettings], flags: dict[str, str]
) -> None:
    result = producer(command, "--help")
    assert result.returncode == 0, result.stderr
    help_text = _flat(result.stdout)
    # The Kafka connection is one flag per field (PRODUCER_KAFKA_<FIELD>); the password and
    # extra properties only from the environment. `bootstrap_servers` is the older variable.
    kafka = [
        f"kafka_{name}"
        for name in KafkaConnection.model_fields
        if "kafka" in model.model_fields and name not in ("sasl_password", "properties")
    ]
    for name in [
        *(n for n in model.model_fields if n not in ("kafka", "bootstrap_servers")),
        *kafka,
    ]:
        if name in {"data_urls", "job_completion_index"}:
            assert f"env {env_var(model, name)}" in help_text or name == "job_completion_index"
            continue
        flag = flags.get(name, "--" + name.removeprefix("kafka_").replace("_", "-"))
        variable = f"PRODUCER_{name.upper()}" if name in kafka else env_var(model, name)
        # `--flag X  meaning (default: D; env VAR)`: the default and variable follow the flag.
        after = help_text.split(f" {flag} ", 1)[1]
        assert f"env {variable})" in after.split(" --", 1)[0], name
        assert "(default: " in after.split(" --", 1)[0], name
    assert "example:" in result.stdout
    assert f"python -m producer {command} " in result.stdout


def test_help_speaks_to_a_user_with_the_three_commands() -> None:
    result = producer("--help")
    assert result.returncode == 0
    for line in ("python -m producer sample", "python -m producer replay", "reconcile data/"):
        assert line in result.stdout
    sample_help = producer("sample", "--help").stdout
    assert "example:" in sample_help
    assert "(default: 1000)" in sample_help


@pytest.mark.parametrize("rows", ["0", "-5"])
def test_sample_refuses_fewer_than_one_row(tmp_path: Path, rows: str) -> None:
    result = producer("sample", str(tmp_path / "out"), "--rows", rows)
    assert result.returncode == 2
    assert "--rows: must be at least 1" in result.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_flags_are_an_error() -> None:
    result = producer("replay", "x.parquet", "--rte", "5")
    assert result.returncode == 2
    assert "unrecognized arguments: --rte" in result.stderr


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9", "ConnectError: Connection refused"),
        ("http://no-such-host.invalid:8000", "ConnectError: "),
    ],
)
def test_no_connection_stops_early_and_says_why(samples: list[Path], url: str, why: str) -> None:
    started = time.monotonic()
    result = producer(
        "replay", str(samples[0]), "--collector-url", url, "--unreachable-s", "1",
        "--progress-interval-s", "0.2", "--backoff-cap-s", "0.2",
    )  # fmt: skip
    assert result.returncode == 1
    # Well before the retry budget (120 s per event) would have run out.
    assert time.monotonic() - started < 30
    summary = summary_of(result.stdout)
    assert summary["error"].startswith(f"stopped early: could not connect to {url} for ")
    assert why in summary["error"]
    assert summary["stopped"] is True
    assert summary["records"] < SAMPLE_ROWS
    # The reason shows on the progress lines while it retries, before anything has failed.
    retrying = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("progress: 0/") and why in line
    ]
    assert retrying, result.stderr


def test_the_progress_line_shows_the_last_retry_reason_as_it_happens(samples: list[Path]) -> None:
    up_at = time.monotonic() + 1.0

    def handler(request: httpx.Request) -> httpx.Response:
        if time.monotonic() < up_at:
            body = {"status": "retry", "error": {"code": "ack_timeout", "message": "too slow"}}
            return httpx.Response(503, json=body, headers={"retry-after": "0"})
        return httpx.Response(202, json={"status": "accepted"})

    stderr = io.StringIO()
    summary = run(samples[:1], handler, progress_interval_s=0.1, max_attempts=1000, stderr=stderr)
    assert summary.stats.accepted == SAMPLE_ROWS
    assert summary.stats.reasons.by_key == {}  # nothing failed in the end
    lines = [line for line in stderr.getvalue().splitlines() if line.startswith("progress:")]
    assert any(
        '| last retry: 503 ack_timeout "too slow"' in line and " done, accepted 0," in line
        for line in lines
    ), lines


def test_a_replay_ends_with_a_table(samples: list[Path], stand_in: StandIn) -> None:
    stand_in.answer = lambda body: (
        422 if b'"event_id":"yellow_tripdata_2023-01.parquet:7"' in body else 202
    )
    result = producer("replay", str(samples[0]), "--collector-url", stand_in.url)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("files "))
    assert lines[header].split() == [
        "files", "records", "accepted", "rejected", "failed", "retries", "seconds", "events/s",
    ]  # fmt: skip
    row = lines[header + 2].split()
    assert row[:5] == [samples[0].name, "300", "299", "1", "0"]
    # A request on a keep-alive connection the server has just closed is sent again: counted.
    assert row[5].isdigit()
    assert any(line.split()[:3] == ["422", "unprocessable_entity", "rejected"] for line in lines)


def test_file_and_url_errors_name_the_file_or_url(tmp_path: Path) -> None:
    not_parquet = tmp_path / "notes.parquet"
    not_parquet.write_text("not parquet\n")
    result = producer("replay", str(not_parquet), "--collector-url", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert f"error: {not_parquet}: " in result.stderr
    url = "http://127.0.0.1:9/yellow_tripdata_2023-01.parquet"
    fetched = producer("reconcile", url)
    assert fetched.returncode == 2
    assert f"error: {url}: " in fetched.stderr
    assert "Connection refused" in fetched.stderr
