"""`make demo` itself, small: its own broker, three replicas behind HAProxy, three producers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.kafka import ROOT, free_port


@pytest.mark.kafka
@pytest.mark.slow
def test_demo_runs_end_to_end_and_stops_everything(tmp_path: Path) -> None:
    state_dir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "devstack.demo", "up", "--dir", str(state_dir),
         "--rows", "400", "--rate", "200", "--kafka-port", str(free_port()),
         "--port", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
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
    # Progress was shown while it ran, and everything it started has stopped.
    assert "HAProxy" in result.stderr
    assert "on raw-events:" in result.stderr
    assert "everything stopped" in result.stderr
    assert not (state_dir / "stack.json").exists()
    assert not (state_dir / "kafka" / "broker.pid").exists()
