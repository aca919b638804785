"""promtool and actionlint, pinned, built with `go install` into .cache/ on first use."""

from __future__ import annotations

import sys
from pathlib import Path

from devstack.gate import tools

PROMTOOL = ("github.com/prometheus/prometheus/cmd/promtool", "v0.316.0")  # Prometheus 3.16.0
ACTIONLINT = ("github.com/rhysd/actionlint/cmd/actionlint", "v1.7.12")


def go_tool(package: str, version: str) -> Path:
    """The binary of `package@version`, built once into .cache/<name>-<version>/ (cached).

    promtool is a large build: several minutes the first time on a quiet machine.
    """
    return tools.go_tool(package, version, package.rsplit("/", 1)[-1])


def main(argv: list[str]) -> int:
    """`python -m devstack.go_tools promtool|actionlint`: build (if needed) and print the path."""
    pins = {"promtool": PROMTOOL, "actionlint": ACTIONLINT}
    for name in argv or list(pins):
        print(go_tool(*pins[name]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
