"""Kafka's broker jars from Maven Central, and the Java and Maven that fetch and run them
(installed with apt-get when missing and run as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from devstack.proc import ROOT

POM = Path(__file__).resolve().parent / "pom.xml"
KAFKA_VERSION = "4.1.1"
JARS_DIR = ROOT / ".cache" / f"kafka-{KAFKA_VERSION}" / "libs"

_APT_PACKAGES = ("openjdk-17-jre-headless", "maven")


class KafkaSetupError(RuntimeError):
    """Something the broker needs is missing or did not come up; the message says what to do."""


def _java_major(java: str) -> int:
    out = subprocess.run(
        [java, "-version"], capture_output=True, text=True, check=False, timeout=60
    ).stderr
    # 'openjdk version "17.0.15" 2025-04-15' or 'java version "1.8.0_392"'
    quoted = out.split('"')[1] if '"' in out else "0"
    parts = quoted.split(".")
    return int(parts[1]) if parts[0] == "1" else int(parts[0].split("-")[0] or 0)


def ensure_tools() -> None:
    """Make sure Java 17+ and Maven are there; install them as root on Debian, else say how."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {' and '.join(missing)} with apt-get", file=sys.stderr, flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", *_APT_PACKAGES], check=True, env=env)
        missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        raise KafkaSetupError(
            f"{' and '.join(missing)} not found. Install Java 17 or newer and Maven, for example "
            f"`sudo apt-get install {' '.join(_APT_PACKAGES)}` on Debian or Ubuntu, "
            "then run the command again."
        )
    java = shutil.which("java")
    assert java is not None
    if (major := _java_major(java)) < 17:
        raise KafkaSetupError(f"Kafka {KAFKA_VERSION} needs Java 17 or newer; found Java {major}.")


def fetch_jars(jars_dir: Path = JARS_DIR) -> Path:
    """Fetch the broker's classpath with Maven once; later calls reuse it."""
    marker = jars_dir / ".complete"
    if marker.exists():
        return jars_dir
    ensure_tools()
    print(
        f"fetching Kafka {KAFKA_VERSION} jars with Maven into {jars_dir} (first run only)",
        file=sys.stderr,
        flush=True,
    )
    if jars_dir.exists():
        shutil.rmtree(jars_dir)
    jars_dir.mkdir(parents=True)
    cmd = [
        "mvn", "-B", "-q", "-f", str(POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={jars_dir}", "-DincludeScope=runtime",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise KafkaSetupError(
            "Maven could not fetch Kafka's jars (is Maven Central reachable?):\n"
            + (result.stdout + result.stderr)[-3000:]
        )
    marker.write_text(KAFKA_VERSION + "\n")
    return jars_dir
