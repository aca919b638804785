"""The images as they run anywhere: read-only root filesystem, user 10001, nothing else given.

Needs a Docker engine and the images built (`make k8s-e2e` builds them and runs this file); `make
test` leaves this folder out, since CI machines may have no engine.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest

from devstack.proc import wait_until

COLLECTOR_IMAGE = os.environ.get("COLLECTOR_IMAGE", "event-collector/collector:0.1.0")
PRODUCER_IMAGE = os.environ.get("PRODUCER_IMAGE", "event-collector/producer:0.1.0")
HARDENED = [
    "--read-only",
    "--user",
    "10001:10001",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--tmpfs",
    "/tmp:size=64m",
]


def docker(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )


@pytest.fixture
def collector() -> Iterator[tuple[str, str]]:
    """The collector image with no Kafka to reach: (its name, its base URL on loopback)."""
    name = f"collector-test-{uuid.uuid4().hex[:8]}"
    started = docker(
        "run",
        "-d",
        "--name",
        name,
        *HARDENED,
        "-p",
        "127.0.0.1::8000",
        "-e",
        "COLLECTOR_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9",
        "-e",
        "COLLECTOR_ALLOW_ANONYMOUS=true",
        COLLECTOR_IMAGE,
    )
    assert started.returncode == 0, started.stderr
    try:
        port = docker("port", name, "8000/tcp").stdout.split(":")[-1].strip()
        yield name, f"http://127.0.0.1:{port}"
    finally:
        docker("rm", "-f", name)


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_the_collector_image_serves_read_only_as_user_10001(collector: tuple[str, str]) -> None:
    name, url = collector
    wait_until(lambda: healthy(url), 60, f"{url}/healthz answering 200")
    about = httpx.get(f"{url}/api/v1", timeout=5)
    assert about.status_code == 200
    assert about.json()["collector_id"]  # the container's host name
    # Up, but not ready: there is no Kafka, and readiness says so rather than the process dying.
    assert httpx.get(f"{url}/readyz", timeout=5).status_code == 503
    user = docker("exec", name, "id", "-u").stdout.strip()
    assert user == "10001"
    # SIGTERM (docker stop) drains and exits 0: PID 1 is the Python process itself.
    assert docker("stop", "-t", "30", name).returncode == 0
    assert docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() == "0"


def test_the_producer_image_prints_its_help() -> None:
    done = docker("run", "--rm", *HARDENED, PRODUCER_IMAGE, "--help")
    assert done.returncode == 0, done.stderr
    assert "replay" in done.stdout
    assert "reconcile" in done.stdout


def test_the_producer_image_writes_and_reads_parquet_read_only() -> None:
    """pyarrow works in the image: sample parquet files written to the only writable place."""
    script = "python -m producer sample /tmp/d --rows 50 && ls /tmp/d"
    done = docker("run", "--rm", *HARDENED, "--entrypoint", "sh", PRODUCER_IMAGE, "-c", script)
    assert done.returncode == 0, done.stderr
    assert "yellow_tripdata_2023-01.parquet" in done.stdout


VALIDATOR_IMAGE = os.environ.get("VALIDATOR_IMAGE", "event-collector/validator:0.1.0")


def test_the_validator_image_checks_its_shipped_contracts_read_only() -> None:
    done = docker("run", "--rm", *HARDENED, VALIDATOR_IMAGE, "contracts", "check")
    assert done.returncode == 0, done.stderr
    assert "YellowTaxiTripRecords" in done.stdout + done.stderr
