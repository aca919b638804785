"""Command-line tools written in Go, pinned, built with `go install` into .cache/ on first use."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from devstack.kafka import ROOT

CACHE_DIR = ROOT / ".cache"
PROMTOOL = ("github.com/prometheus/prometheus/cmd/promtool", "v0.316.0")  # Prometheus 3.16.0
ACTIONLINT = ("github.com/rhysd/actionlint/cmd/actionlint", "v1.7.12")


class GoToolError(RuntimeError):
    """A tool could not be built; the message says what to do."""


def go_tool(package: str, version: str) -> Path:
    """The binary of `package@version`, built once into .cache/<name>-<version>/ (cached)."""
    name = package.rsplit("/", 1)[-1]
    target_dir = CACHE_DIR / f"{name}-{version}"
    binary = target_dir / name
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise GoToolError(
            f"{name} {version} is built with Go, which was not found: install Go 1.25 or newer "
            "(https://go.dev/dl/, or your distribution's golang package) and run again."
        )
    print(f"building {name} {version} with go install (first run only)", file=sys.stderr)
    env = {**os.environ, "GOBIN": str(target_dir), "CGO_ENABLED": "0"}
    # `nice`: a large build (promtool takes minutes) should not starve whatever else runs.
    done = subprocess.run(
        ["nice", go, "install", f"{package}@{version}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if done.returncode != 0 or not binary.exists():
        raise GoToolError(f"go install {package}@{version} failed:\n{done.stderr.strip()}")
    return binary


def main(argv: list[str]) -> int:
    """`python -m devstack.go_tools promtool|actionlint`: build (if needed) and print the path."""
    tools = {"promtool": PROMTOOL, "actionlint": ACTIONLINT}
    for name in argv or list(tools):
        print(go_tool(*tools[name]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
