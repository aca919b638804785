"""What a service process started on 127.0.0.1 has in common (the collector's and the validator's
wrappers): `python -m <module>` as a managed process, its port, and its HTTP probes."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import ClassVar

from devstack.proc import ManagedProcess, ProcessExited, free_port


def http_get(url: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
    """(status, body) of GET `url`, or (0, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (OSError, urllib.error.URLError):
        return 0, b""


@dataclass
class LocalService:
    """The base of a service's dataclass: the Kafka cluster and the raw topic, then the service's
    own settings (positional), then these (by keyword only)."""

    module: ClassVar[str]  # run as `python -m <module>`
    bootstrap_servers: str
    raw_topic: str = "raw-events"
    _: KW_ONLY
    port: int = 0  # 0: a free port, chosen now
    env: dict[str, str] = field(default_factory=dict)  # on top of the service's own variables
    log_path: Path | None = None
    die_with_parent: bool = True
    process: ManagedProcess | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_port()

    @property
    def ident(self) -> str:
        """Its `<MODULE>_ID`: what it writes into its records and logs."""
        return self.settings()["ID"]

    def settings(self) -> dict[str, str]:
        """Its own settings (beyond Kafka, the raw topic and the address), by the name of the
        variable after `<MODULE>_`."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """This environment, its settings as `<MODULE>_*` variables, listening here, then `env`."""
        prefix = self.module.upper()
        own = {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers, "RAW_TOPIC": self.raw_topic}
        own |= {**self.settings(), "HOST": "127.0.0.1", "PORT": str(self.port)}
        return {
            **os.environ,
            **{f"{prefix}_{name}": value for name, value in own.items()},
            **self.env,
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def spawn(self, *, capture: bool) -> None:
        """Start the process in its own session; its log goes to `log_path` (with `capture`,
        stderr only: stdout is kept for its closing line)."""
        self.process = ManagedProcess(
            [sys.executable, "-m", self.module],
            f"{self.module} {self.ident}",
            env=self.environment(),
            log_path=self.log_path,
            capture=capture,
            die_with_parent=self.die_with_parent,
        )
        self.process.spawn()

    def fetch(self, path: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
        """(status, body) of GET `path`, or (0, b"") when nothing answers."""
        return http_get(self.url + path, timeout_s)

    def wait_for(self, path: str, timeout_s: float, status: int = 200) -> None:
        """Until GET `path` answers `status`; an exit of the process ends the wait at once."""
        assert self.process is not None
        try:
            self.process.wait_ready(
                lambda: self.fetch(path)[0] == status, timeout_s, f"{path} {status}"
            )
        except TimeoutError:
            raise TimeoutError(
                f"{self.module} {self.ident}: {path} not {status} in {timeout_s}s"
            ) from None
        except ProcessExited:
            raise ProcessExited(
                f"{self.module} {self.ident} exited with {self.process.returncode}"
            ) from None
