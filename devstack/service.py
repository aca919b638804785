"""What a service process started on 127.0.0.1 has in common (the collector's and the validator's
wrappers): its port, its pid, its HTTP probes, and how it is spawned."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, ClassVar

from devstack.proc import ROOT, die_with_parent


class LocalService:
    """Mixed into a dataclass that has `port`, `log_path`, `die_with_parent` and `_process`."""

    module: ClassVar[str]  # run as `python -m <module>`
    port: int
    log_path: Path | None
    die_with_parent: bool
    _process: subprocess.Popen[bytes] | None

    @property
    def ident(self) -> str:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def spawn(self, *, logs_on_stdout: bool) -> None:
        """Start the process in its own session; its log goes to `log_path` (stdout or stderr)."""
        log: IO[bytes] | int = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=self.environment(),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log if logs_on_stdout else subprocess.PIPE,
                stderr=subprocess.STDOUT if logs_on_stdout else log,
                start_new_session=True,
                preexec_fn=die_with_parent if self.die_with_parent else None,
            )
        finally:
            if not isinstance(log, int):
                log.close()

    def fetch(self, path: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
        """(status, body) of GET `path`, or (0, b"") when nothing answers."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout_s) as response:  # noqa: S310
                return int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, b""
        except (OSError, urllib.error.URLError):
            return 0, b""

    def wait_for(self, path: str, timeout_s: float, status: int = 200) -> None:
        """Until GET `path` answers `status`; an exit of the process ends the wait at once."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(
                    f"{self.module} {self.ident} exited with {self._process.returncode}"
                )
            if self.fetch(path)[0] == status:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.module} {self.ident}: {path} not {status} in {timeout_s}s")
