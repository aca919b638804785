"""The demo's producers: one `python -m producer replay` process per data file."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devstack.demo.summary import ProducerResult, parse_summary
from devstack.proc import ManagedProcess

_PROGRESS_SPLIT = re.compile(r"[\r\n]+")
# Enough of a log's end to hold its last progress line.
_TAIL_BYTES = 4096


def file_stem(path_or_url: str) -> str:
    """A data file's name without `.parquet`: 'yellow_tripdata_2023-01' for any path or URL."""
    base = path_or_url.rstrip("/").rsplit("/", 1)[-1]
    return base.removesuffix(".parquet")


@dataclass
class ProducerProcess:
    """One `python -m producer replay`: its stderr logged (the latest progress line shown), its
    closing JSON line kept from stdout."""

    name: str
    command: list[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    process: ManagedProcess = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Its own session no more than the demo's: Ctrl-C reaches it as it reaches the demo.
        self.process = ManagedProcess(
            self.command,
            self.name,
            env={**os.environ, **self.env},
            log_path=self.log_path,
            capture=True,
            die_with_parent=False,
            own_session=False,
        )

    def start(self) -> None:
        self.log_path.unlink(missing_ok=True)
        self.process.spawn()

    @property
    def latest(self) -> str:
        """The last whole line of its log (the replay ends progress lines with \\r or \\n)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(0, self.log_path.stat().st_size - _TAIL_BYTES))
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        *done, _pending = _PROGRESS_SPLIT.split(text)
        return next((line.strip() for line in reversed(done) if line.strip()), "")

    def poll(self) -> int | None:
        return self.process.returncode if self.process.started else 0

    def terminate(self) -> None:
        self.process.signal(signal.SIGTERM)

    def result(self, timeout_s: float = 60.0) -> ProducerResult:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.finish(timeout_s)
        code = self.process.returncode
        return ProducerResult(
            self.name, -1 if code is None else code, parse_summary(self.process.output)
        )
