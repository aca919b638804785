"""Facts about the machine and the software a run was measured on."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from devstack.kafka import KAFKA_VERSION

LIBRARIES = (
    "uvicorn",
    "uvloop",
    "httptools",
    "fastapi",
    "starlette",
    "pydantic",
    "orjson",
    "confluent-kafka",
    "pyarrow",
    "pandas",
    "httpx",
)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "missing"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def facts() -> dict[str, str]:
    """What a reader needs to compare this run with another."""
    from confluent_kafka import libversion

    libs = []
    for name in LIBRARIES:
        try:
            libs.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            libs.append(f"{name} missing")
    one, five, _ = load_average()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{os.cpu_count()} cores, {_cpu_model()}",
        "memory": f"{_memory_gib():.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "kafka": f"Apache Kafka {KAFKA_VERSION} (single KRaft node, local), "
        f"librdkafka {libversion()[0]}",
        "java": _version(["java", "-version"]),
        "load generators": _version(["wrk", "-v"]).split(" [")[0]
        + "; "
        + _version(["go", "version"]),
        "libraries": ", ".join(libs),
        "load average at start": f"{one:.2f} (1 min), {five:.2f} (5 min)",
    }
