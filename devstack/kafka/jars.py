"""Kafka's broker jars from Maven Central, and the Java and Maven that fetch and run them
(installed with apt-get when missing and run as root)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from devstack.proc import ROOT

POM = Path(__file__).resolve().parent / "pom.xml"
# The sha256 of every jar of the broker's classpath (sha256sum's format), checked on every fetch;
# `python -m devstack.kafka fetch --record` rewrites it after a deliberate version change.
JARS_SHA256 = Path(__file__).resolve().parent / "jars.sha256"
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


def jar_digests(jars_dir: Path) -> dict[str, str]:
    """File name -> sha256 of every jar in a folder."""
    return {
        jar.name: hashlib.sha256(jar.read_bytes()).hexdigest()
        for jar in sorted(jars_dir.glob("*.jar"))
    }


def recorded_digests(record: Path = JARS_SHA256) -> dict[str, str]:
    """The jar set recorded in the repository: file name -> sha256."""
    digests = {}
    for line in record.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            digests[name.lstrip("*")] = digest
    return digests


def check_jars(jars_dir: Path, record: Path = JARS_SHA256) -> None:
    """The jars are exactly the recorded set, byte for byte; else KafkaSetupError naming each."""
    found, expected = jar_digests(jars_dir), recorded_digests(record)
    problems = [
        f"{name}: sha256 {found.get(name, 'missing')}, recorded {expected.get(name, 'none')}"
        for name in sorted(set(found) | set(expected))
        if found.get(name) != expected.get(name)
    ]
    if problems:
        raise KafkaSetupError(
            f"Kafka's jars in {jars_dir} differ from {record.name}:\n  " + "\n  ".join(problems)
        )


def fetch_jars(jars_dir: Path = JARS_DIR, *, record: bool = False) -> Path:
    """Fetch the broker's classpath with Maven once, and check it against JARS_SHA256 every time.

    Maven runs with -C (--strict-checksums): a jar whose checksum from Maven Central does not
    match fails the fetch instead of being warned about (Maven 3.8's default). The dependency
    plugin is pinned in the POM. `record=True` writes the fetched set's digests to JARS_SHA256.
    """
    marker = jars_dir / ".complete"
    if marker.exists() and not record:
        check_jars(jars_dir)
        return jars_dir
    ensure_tools()
    print(
        f"fetching Kafka {KAFKA_VERSION} jars with Maven into {jars_dir} (first run only)",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()
    if jars_dir.exists():
        shutil.rmtree(jars_dir)
    jars_dir.mkdir(parents=True)
    cmd = [
        "mvn", "-B", "-q", "-C", "-f", str(POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={jars_dir}", "-DincludeScope=runtime",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise KafkaSetupError(
            "Maven could not fetch Kafka's jars (is Maven Central reachable?):\n"
            + (result.stdout + result.stderr)[-3000:]
        )
    if record:
        lines = [f"{digest}  {name}" for name, digest in jar_digests(jars_dir).items()]
        header = f"# Kafka {KAFKA_VERSION}'s classpath (devstack/kafka/pom.xml), sha256sum format\n"
        JARS_SHA256.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    check_jars(jars_dir)
    marker.write_text(KAFKA_VERSION + "\n")
    print(
        f"  Kafka's jars fetched ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True
    )
    return jars_dir
