"""The command line without a broker: settings from the environment, one-line failures, and the
counters a run pushes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import Counter

import pytest
from prometheus_client import generate_latest

from devstack.proc import ROOT
from dlq.metrics import redrive_registry
from dlq.redrive import Summary
from dlq.settings import Settings, listed


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dlq(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dlq", *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def test_an_unreachable_broker_is_one_line_and_exit_3() -> None:
    done = dlq("inspect", DLQ_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{closed_port()}",
               DLQ_READ_TIMEOUT_S="2")  # fmt: skip
    assert (done.returncode, done.stderr.count("\n")) == (3, 1), done.stderr
    assert done.stderr.startswith("dlq: cannot read validated-events-dlq:"), done.stderr
    assert "DLQ_KAFKA_BOOTSTRAP_SERVERS" in done.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["show", "--since", "yesterday"], "dlq: bad input"),
        (["redrive", "--transform", "missing.json"], "dlq: bad transformation"),
    ],
)
def test_bad_input_is_one_line_and_exit_4(args: list[str], says: str) -> None:
    done = dlq(*args, DLQ_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{closed_port()}")
    assert (done.returncode, done.stderr.count("\n")) == (4, 1), done.stderr
    assert done.stderr.startswith(says)


def test_a_jobs_env_sets_the_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLQ_STAGE", "collector")
    monkeypatch.setenv("DLQ_REASON", "invalid_json, invalid_event")
    monkeypatch.setenv("DLQ_TRANSFORM", "")
    monkeypatch.setenv("DLQ_DRY_RUN", "true")
    settings = Settings()
    assert (settings.stage, settings.transform, settings.dry_run) == ("collector", None, True)
    assert listed(settings.reason) == {"invalid_json", "invalid_event"}
    monkeypatch.setenv("DLQ_STAGE", "somewhere")
    with pytest.raises(ValueError, match="stage"):
        Settings()


def test_the_pushed_counters_say_what_a_run_did_by_reason() -> None:
    summary = Summary("validator", dry_run=False, already_redriven=4,
                      redriven_by_reason=Counter({"invalid_payload": 7}),
                      still_parked=Counter({"unknown_contract": 2}))  # fmt: skip
    text = generate_latest(redrive_registry(summary)).decode()
    assert ('dlq_redrive_records_total{outcome="redriven",reason="invalid_payload",'
            'stage="validator"} 7.0') in text  # fmt: skip
    assert ('dlq_redrive_records_total{outcome="still_parked",reason="unknown_contract",'
            'stage="validator"} 2.0') in text  # fmt: skip
    assert 'outcome="already_redriven",reason="",stage="validator"} 4.0' in text


def test_the_tool_loads_without_the_collectors_web_stack_or_the_producers() -> None:
    # The validator image ships it with the `validator` extra only: no FastAPI, no pyarrow.
    unwanted = "{'fastapi', 'starlette', 'uvicorn', 'pyarrow', 'httpx'}"
    code = f"import sys, dlq.cli; print(sorted({unwanted} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert done.stdout.strip() == "[]"
