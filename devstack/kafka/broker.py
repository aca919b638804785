"""One KRaft node on 127.0.0.1 as a managed process: a lone broker+controller, or one node of a
`Cluster`. Its whole state (data, config, log, pid file) lives in one folder."""

from __future__ import annotations

import base64
import contextlib
import signal
import subprocess
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from devstack.kafka.jars import KafkaSetupError, fetch_jars
from devstack.kafka.topics import DEFAULT_PARTITIONS, TOPIC_MAX_MESSAGE_BYTES, create_topics
from devstack.proc import ManagedProcess, ProcessExited, free_port, port_open


def new_cluster_id() -> str:
    """16 random bytes, url-safe base64 without padding, never starting with "-".

    An id starting with "-" would be read as an option by the storage tool (Kafka's own
    generator draws again in that case too).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class Broker:
    """One KRaft node process whose whole state lives in `state_dir`.

    By default a lone broker+controller; `roles`, `node_id`, `voters` and `cluster_id` make it
    one node of a cluster (see `Cluster`).
    """

    state_dir: Path
    port: int = 9092
    controller_port: int = 0
    heap: str = "512m"
    die_with_parent: bool = False
    node_id: int = 1
    roles: str = "broker,controller"
    # The static controller quorum, "id@host:port,..."; empty: this node alone.
    voters: str = ""
    # Formats a new data folder with this id (every node of a cluster shares one); empty: new id.
    cluster_id: str = ""
    # Extra server.properties lines, winning over the defaults.
    overrides: dict[str, str] = field(default_factory=dict)
    # Extra arguments of the storage tool's `format` (e.g. `--add-scram` users).
    format_args: list[str] = field(default_factory=list, repr=False)
    # The admin client's settings beyond the bootstrap servers (a secured listener's login).
    client: dict[str, Any] = field(default_factory=dict, repr=False)
    process: ManagedProcess = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()
        if not self.controller_port and not self.voters:
            # Keep the controller where a previous start of this folder put it.
            self.controller_port = previous_controller_port(self.state_dir) or free_port()
        # The JVM's command line holds `kafka.Kafka` and this folder (its config file's path):
        # a pid file's pid is this broker's only while both are there.
        self.process = ManagedProcess(
            [],
            f"the broker in {self.state_dir}",
            cwd=self.state_dir,
            log_path=self.state_dir / "broker.log",
            pid_file=self.state_dir / "broker.pid",
            owner_marks=(b"kafka.Kafka", str(self.state_dir).encode()),
            die_with_parent=self.die_with_parent,
            signal_group=True,
        )

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles.split(",")

    @property
    def is_controller(self) -> bool:
        return "controller" in self.roles.split(",")

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def client_config(self) -> dict[str, Any]:
        """What a client of this broker needs: its address and, when secured, how to log in."""
        return {"bootstrap.servers": self.bootstrap_servers, **self.client}

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "broker.log"

    def running_pid(self) -> int | None:
        """The pid of this folder's broker when it is alive, else None."""
        return self.process.running_pid()

    def _properties(self) -> dict[str, str]:
        data = self.state_dir / "data"
        lone = not self.voters
        listeners = []
        if self.is_broker:
            listeners.append(f"PLAINTEXT://127.0.0.1:{self.port}")
        if self.is_controller:
            listeners.append(f"CONTROLLER://127.0.0.1:{self.controller_port}")
        props = {
            "process.roles": self.roles,
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters
            or f"{self.node_id}@127.0.0.1:{self.controller_port}",
            "listeners": ",".join(listeners),
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": str(DEFAULT_PARTITIONS),
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": "0",
            # Small segments and indexes keep a throwaway broker's disk use small.
            "log.segment.bytes": "67108864",
            "log.index.size.max.bytes": "1048576",
            "log.retention.hours": "24",
            "message.max.bytes": str(TOPIC_MAX_MESSAGE_BYTES),
        }
        if self.is_broker:
            props["advertised.listeners"] = f"PLAINTEXT://127.0.0.1:{self.port}"
            props["inter.broker.listener.name"] = "PLAINTEXT"
        if lone:
            # One node: every internal topic has a single replica, or consumers wait forever
            # for a coordinator.
            props.update(
                {
                    "offsets.topic.replication.factor": "1",
                    "offsets.topic.num.partitions": "1",
                    "transaction.state.log.replication.factor": "1",
                    "transaction.state.log.min.isr": "1",
                    "transaction.state.log.num.partitions": "1",
                    "share.coordinator.state.topic.replication.factor": "1",
                    "share.coordinator.state.topic.min.isr": "1",
                    "share.coordinator.state.topic.num.partitions": "1",
                }
            )
        else:
            # Three replicas (the defaults) for internal topics, but few partitions.
            props["offsets.topic.num.partitions"] = "1"
            props["transaction.state.log.num.partitions"] = "1"
            props["share.coordinator.state.topic.num.partitions"] = "1"
        props.update(self.overrides)
        return props

    def _write_config(self) -> Path:
        config = self.state_dir / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in self._properties().items()))
        (self.state_dir / "log4j2.properties").write_text(
            "\n".join(
                [
                    "appender.out.type=Console",
                    "appender.out.name=out",
                    "appender.out.layout.type=PatternLayout",
                    "appender.out.layout.pattern=[%d] %p %m (%c)%n",
                    "rootLogger.level=WARN",
                    "rootLogger.appenderRef.out.ref=out",
                    "logger.server.name=kafka.server.KafkaRaftServer",
                    "logger.server.level=INFO",
                    "",
                ]
            )
        )
        return config

    def start(self, timeout_s: float = 120.0) -> None:
        """Format the data folder on first use, start the JVM and wait until clients see it."""
        self.launch(timeout_s)
        self.wait_ready(timeout_s)

    def launch(self, timeout_s: float = 120.0) -> None:
        """Format the data folder on first use and start the JVM, without waiting for it."""
        jars = fetch_jars()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.running_pid() is not None:
            raise KafkaSetupError(f"a broker is already running from {self.state_dir}")
        for port in (self.port if self.is_broker else 0, self.controller_port):
            if port and port_open(port):
                raise KafkaSetupError(f"port {port} on 127.0.0.1 is already taken")
        config = self._write_config()
        java = [
            "java",
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.state_dir / 'log4j2.properties'}",
            "-cp",
            f"{jars}/*",
        ]
        if not (self.state_dir / "data" / "meta.properties").exists():
            cluster_id = self.cluster_id or new_cluster_id()
            storage = [*java, "kafka.tools.StorageTool", "format", "-t", cluster_id]
            subprocess.run(
                [*storage, "-c", str(config), *self.format_args],
                check=True,
                capture_output=True,
                timeout=timeout_s,
            )
        self.process.argv = [*java, "kafka.Kafka", str(config)]
        self.process.spawn()

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Until clients see this broker in the cluster (a controller: its port answers)."""
        admin = AdminClient({**self.client_config, "log_level": 0})
        try:
            self.process.wait_ready(lambda: self._answers(admin), timeout_s, self.process.name)
        except ProcessExited:
            raise KafkaSetupError(
                f"the broker exited with code {self.process.returncode}; "
                f"last lines of {self.log_file}:\n{self.process.log_tail()}"
            ) from None
        except TimeoutError:
            self.stop()
            raise KafkaSetupError(
                f"the broker did not answer within {timeout_s:.0f}s; last lines of "
                f"{self.log_file}:\n{self.process.log_tail()}"
            ) from None

    def _answers(self, admin: AdminClient) -> bool:
        if not self.is_broker:
            return port_open(self.controller_port)
        with contextlib.suppress(KafkaException):
            return self.node_id in admin.list_topics(timeout=2).brokers
        return False

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM (a clean shutdown), SIGKILL after the deadline. False if nothing was running."""
        return self.process.stop(timeout_s)

    def kill(self) -> None:
        """SIGKILL at once: a crash, for fault tests."""
        self.process.kill()

    def pause(self) -> None:
        """SIGSTOP: the JVM keeps its sockets open but answers nothing (a slow, not dead, node)."""
        self.process.signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause`."""
        self.process.signal(signal.SIGCONT)

    def create_topics(self, names: Iterable[str], partitions: int = DEFAULT_PARTITIONS) -> None:
        """Create topics (librdkafka never auto-creates them); existing ones are left alone."""
        create_topics(self.client_config, names, partitions, replication_factor=1)


def previous_controller_port(state_dir: Path) -> int:
    """The controller port of the last start from `state_dir` (0 if none)."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        voters = next(
            line
            for line in (state_dir / "server.properties").read_text().splitlines()
            if line.startswith("controller.quorum.voters=")
        )
        return int(voters.rsplit(":", 1)[1])
    return 0


def previous_cluster_id(data_dir: Path) -> str:
    with contextlib.suppress(OSError):
        for line in (data_dir / "meta.properties").read_text().splitlines():
            if line.startswith("cluster.id="):
                return line.split("=", 1)[1].strip()
    return ""
