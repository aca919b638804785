"""HAProxy on 127.0.0.1 in front of the collector replicas: the local stand-in for a Service.

HAProxy (from Debian's packages) sends traffic only to replicas whose /readyz answers 200, marks a
replica down at once when connecting to it fails, and retries a request on another replica when
the connection failed, the replica closed it without answering, or it answered 503 (nothing was
claimed). It also reads each request whole before passing it on, so a client that trickles its
body ties up only HAProxy, never a collector, and is cut off after `request_timeout_s` with 408.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devstack.proc import ManagedProcess, ProcessExited, free_port, wait_until

APT_PACKAGE = "haproxy"
# A collector's largest body (COLLECTOR_MAX_BODY_BYTES) plus room for the headers: a request that
# fits is buffered whole, so it can be retried on another replica and never trickles into one.
DEFAULT_BUFFER_BYTES = 1024 * 1024 + 16 * 1024


class BalancerUnavailable(RuntimeError):
    """HAProxy is not installed and cannot be installed here; the message says what to do."""


def ensure_haproxy() -> str:
    """The path of the haproxy binary; installed with apt-get when missing and run as root."""
    found = shutil.which("haproxy")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing haproxy with apt-get (first run only)", file=sys.stderr, flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        # The package's own service is never started here (no init system); only our process runs.
        steps = (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", APT_PACKAGE])
        for step in steps:
            result = subprocess.run(step, env=env, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                print((result.stdout + result.stderr)[-2000:], file=sys.stderr)
                break
        found = shutil.which("haproxy")
    if found is None:
        raise BalancerUnavailable(
            "HAProxy is not installed (and this is not root with apt-get to install it). "
            f"Install it with `sudo apt-get install {APT_PACKAGE}` (Debian/Ubuntu) or your "
            "system's package manager, then run the command again."
        )
    return found


_ERRORS = (
    (503, "unavailable", "no collector replica is ready; retry later"),
    (502, "bad_gateway", "the collector replica failed; retry later"),
    (504, "gateway_timeout", "the collector replica did not answer in time; retry later"),
    (408, "request_timeout", "the request was not received in time"),
)


def _error_page(status: int, code: str, message: str) -> str:
    body = json.dumps({"error": {"code": code, "message": message}})
    retry = " hdr Retry-After 1" if status != 408 else ""
    return f"    http-error status {status} content-type application/json string '{body}'{retry}"


@dataclass(frozen=True)
class Backend:
    """One collector replica as HAProxy sees it."""

    name: str
    port: int


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def _defaults(
    request_timeout_s: float, idle_timeout_s: float, server_timeout_s: float
) -> list[str]:
    """The `defaults` section: HTTP mode, timeouts, retries and error pages."""
    return [
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        # Log only what went wrong (retries, redispatches, 5xx, timeouts), not every request.
        "    option dontlog-normal",
        # Read the whole request before choosing a replica: slow bodies stay here, and the
        # buffered request can be replayed on another replica.
        "    option http-buffer-request",
        f"    timeout http-request {_ms(request_timeout_s)}",
        f"    timeout http-keep-alive {_ms(min(idle_timeout_s, request_timeout_s))}",
        f"    timeout client {_ms(idle_timeout_s)}",
        # Loopback connects take microseconds; a short connect timeout also shortens the pause
        # HAProxy takes before retrying a refused connection elsewhere.
        "    timeout connect 300ms",
        f"    timeout server {_ms(server_timeout_s)}",
        "    timeout queue 5s",
        "    timeout check 1s",
        # A refused connection, a replica that died before answering, or its 503 (nothing was
        # claimed, e.g. draining): try another replica. A retried POST may reach Kafka twice;
        # the event_id tells the copies apart downstream.
        "    retries 2",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response 503",
        # HAProxy's own errors speak the collector's language: JSON and, when retrying can
        # help, Retry-After.
        *(_error_page(status, code, message) for status, code, message in _ERRORS),
        "",
    ]


def haproxy_config(
    backends: Sequence[Backend],
    port: int,
    stats_socket: Path,
    *,
    request_timeout_s: float = 10.0,
    idle_timeout_s: float = 30.0,
    server_timeout_s: float = 30.0,
    check_interval_s: float = 0.5,
    buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    max_connections: int = 512,
) -> str:
    """The whole haproxy.cfg for `backends` behind 127.0.0.1:`port`."""
    servers = [
        f"    server {b.name} 127.0.0.1:{b.port} check observe layer4 error-limit 1 "
        "on-error mark-down"
        for b in backends
    ]
    return "\n".join(
        [
            "global",
            f"    maxconn {max_connections}",
            f"    tune.bufsize {buffer_bytes}",
            f"    stats socket {stats_socket} mode 600 level admin",
            "    log stderr format raw local0 info",
            "",
            *_defaults(request_timeout_s, idle_timeout_s, server_timeout_s),
            "frontend collectors",
            f"    bind 127.0.0.1:{port}",
            "    default_backend replicas",
            "",
            "backend replicas",
            "    balance roundrobin",
            "    option httpchk GET /readyz",
            "    http-check expect status 200",
            f"    default-server inter {_ms(check_interval_s)} fall 2 rise 2",
            *servers,
            "",
        ]
    )


@dataclass
class Balancer:
    """One HAProxy process; its config, log and admin socket live in `state_dir`."""

    state_dir: Path
    backends: Sequence[Backend]
    port: int = 0
    request_timeout_s: float = 10.0
    idle_timeout_s: float = 30.0
    die_with_parent: bool = True
    process: ManagedProcess | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()
        if not self.port:
            self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stats_socket(self) -> Path:
        """Beside the config, unless that path is too long for a Unix socket (108 bytes, and
        HAProxy binds `<path>.<pid>.tmp` first): then a short one in the temp folder, named by
        the state folder, so another process finds the same socket."""
        beside = self.state_dir / "haproxy.sock"
        if len(str(beside)) + len(".4194304.tmp") < 100:
            return beside
        digest = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"haproxy-{digest}.sock"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "haproxy.cfg"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "haproxy.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, timeout_s: float = 15.0) -> None:
        """Write the config, check it, start HAProxy and wait until it takes connections."""
        binary = ensure_haproxy()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            haproxy_config(
                self.backends,
                self.port,
                self.stats_socket,
                request_timeout_s=self.request_timeout_s,
                idle_timeout_s=self.idle_timeout_s,
            )
        )
        check = subprocess.run(
            [binary, "-c", "-q", "-f", str(self.config_file)],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise BalancerUnavailable(f"haproxy rejected {self.config_file}:\n{check.stderr}")
        self.process = ManagedProcess(
            [binary, "-db", "-f", str(self.config_file)],
            "haproxy",
            log_path=self.log_file,
            die_with_parent=self.die_with_parent,
        )
        self.process.spawn()
        try:
            # The admin socket answers once the listeners are bound; probing the HTTP port itself
            # would log a bad request.
            self.process.wait_ready(self._listening, timeout_s, "haproxy")
        except ProcessExited:
            raise BalancerUnavailable(
                f"haproxy exited with {self.process.returncode}; see {self.log_file}"
            ) from None
        except TimeoutError:
            self.stop()
            raise BalancerUnavailable(
                f"haproxy did not listen on {self.port} within {timeout_s}s"
            ) from None

    def _listening(self) -> bool:
        with contextlib.suppress(OSError):
            return "Pid:" in self.command("show info", timeout_s=0.5)
        return False

    def command(self, line: str, timeout_s: float = 2.0) -> str:
        """Send one command to HAProxy's admin socket and return its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(self.stats_socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_states(self) -> dict[str, str]:
        """Each replica's state as HAProxy sees it: UP, DOWN, 'UP 1/2' while changing, ..."""
        return {
            row["svname"]: row["status"]
            for row in self._stats()
            if row.get("pxname") == "replicas" and row.get("svname") not in ("FRONTEND", "BACKEND")
        }

    def wait_until(self, states: dict[str, str], timeout_s: float = 15.0) -> None:
        """Wait until each named replica is in the given state (UP or DOWN)."""
        seen: dict[str, str] = {}
        try:
            wait_until(functools.partial(self._reached, states, seen), timeout_s, "haproxy")
        except TimeoutError:
            raise TimeoutError(
                f"haproxy: wanted {states}, still {seen} after {timeout_s}s"
            ) from None

    def _reached(self, states: dict[str, str], seen: dict[str, str]) -> bool:
        """Whether each named replica is in its wanted state; `seen` gets the states found."""
        seen.clear()
        seen.update(self.server_states())
        return all(seen.get(name, "").split(" ")[0] == want for name, want in states.items())

    def _stats(self) -> list[dict[str, str]]:
        lines = self.command("show stat").splitlines()
        if not lines or not lines[0].startswith("# "):
            return []
        header = lines[0][2:].split(",")
        return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]

    def stop(self, timeout_s: float = 10.0) -> None:
        """A soft stop (finish what is in flight), then SIGKILL after the deadline."""
        if self.process is None:
            return
        self.process.stop(timeout_s, signal.SIGUSR1)
        self.process = None
        self.stats_socket.unlink(missing_ok=True)
