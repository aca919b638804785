"""`make demo` itself, small: its own broker, three replicas behind HAProxy, three producers."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from devstack.kafka import Broker
from devstack.proc import ROOT, free_port, process_alive


def _demo(
    command: str, state_dir: Path, *options: str, timeout_s: float
) -> subprocess.CompletedProcess[str]:
    """`python -m devstack.demo COMMAND --dir STATE_DIR OPTIONS...`, its output captured."""
    argv = [sys.executable, "-m", "devstack.demo", command, "--dir", str(state_dir), *options]
    return subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
    )


@pytest.mark.kafka
@pytest.mark.slow
def test_demo_runs_end_to_end_and_stops_everything(tmp_path: Path) -> None:
    state_dir = tmp_path / "demo"
    ports = ["--kafka-port", str(free_port()), "--port", str(free_port())]
    result = _demo("up", state_dir, "--rows", "400", "--rate", "200", *ports, timeout_s=240)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    out = result.stdout
    assert "OK: every one of 1,200 rows is on Kafka" in out
    for month in ("2023-01", "2023-02", "2023-03"):
        row = next(line for line in out.splitlines() if line.startswith(f"yellow_tripdata_{month}"))
        assert row.split()[1:5] == ["400", "400", "0", "0"]
    replicas = [line.split() for line in out.splitlines() if line.startswith("collector-")]
    assert len(replicas) == 3
    assert sum(int(r[1].replace(",", "")) for r in replicas) == 1200
    reconciliation = json.loads(out.split("Reconciliation")[1].splitlines()[1])
    assert reconciliation["missing"] == 0
    assert "OK: each of 1,200 rows exactly once" in out  # the validated topics, reconciled
    # Progress was shown while it ran, and everything it started has stopped.
    assert "HAProxy" in result.stderr
    assert "on raw-events:" in result.stderr
    assert "everything stopped" in result.stderr
    assert not (state_dir / "stack.json").exists()
    assert not (state_dir / "kafka" / "broker.pid").exists()


@pytest.mark.kafka
@pytest.mark.slow
def test_demo_keep_leaves_swagger_up_and_demo_down_stops_it(tmp_path: Path) -> None:
    state_dir = tmp_path / "demo"
    ports = ["--kafka-port", str(free_port()), "--port", str(free_port())]
    options = ["--keep", "--rows", "100", "--rate", "200", "--replicas", "2", *ports]
    up = _demo("up", state_dir, *options, timeout_s=240)
    try:
        assert up.returncode == 0, up.stdout + up.stderr[-3000:]
        printed = up.stdout + up.stderr
        docs = next(line.split()[-1] for line in printed.splitlines() if "Swagger UI" in line)
        assert "Stop it with: make demo-down" in printed
        # The demo's own process has exited; what it started still answers.
        with urllib.request.urlopen(docs, timeout=10) as response:
            assert response.status == 200
            assert b"swagger" in response.read().lower()
        state = json.loads((state_dir / "stack.json").read_text())
        broker_pid = Broker(Path(state["broker_dir"])).running_pid()
        pids = [*state["collectors"].values(), state["haproxy"], broker_pid]
        assert len(pids) == 4
        pids += state["validators"].values()
        assert len(pids) == 5
        dead = [pid for pid in pids if not (pid and process_alive(pid))]
        assert dead == [], f"not running: {dead} of {state}"
    finally:
        down = _demo("down", state_dir, timeout_s=120)
    assert "demo stack stopped" in down.stdout
    assert not any(process_alive(pid) for pid in pids if pid)
    assert not (state_dir / "stack.json").exists()
