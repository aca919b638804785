"""Real KRaft Kafka on 127.0.0.1, from Maven Central jars and the local Java: one combined node,
or a replicated cluster (one controller and three brokers).

Used by `make kafka-up [BROKERS=3]` / `make kafka-down` (state in `.kafka/`), by the test suite
(free ports in a temp dir, stopped with the session) and by `make demo` / `make bench`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException, Message
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from devstack.proc import ROOT, die_with_parent, free_port, port_open, process_alive

POM = Path(__file__).resolve().parent / "pom.xml"
KAFKA_VERSION = "4.1.1"
JARS_DIR = ROOT / ".cache" / f"kafka-{KAFKA_VERSION}" / "libs"
DEFAULT_STATE_DIR = ROOT / ".kafka"
DEFAULT_TOPICS = ("raw-events", "raw-events-dlq")
# The validator's output: `make kafka-up` creates them beside the raw ones.
VALIDATED_TOPICS = ("validated-events", "validated-events-dlq")
DEFAULT_PARTITIONS = 3

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
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()
        if not self.controller_port and not self.voters:
            # Keep the controller where a previous start of this folder put it.
            self.controller_port = _previous_controller_port(self.state_dir) or free_port()

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
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else self.running_pid()

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "broker.log"

    def running_pid(self) -> int | None:
        """The pid of this folder's broker when it is alive, else None."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return None
        return (
            pid if b"kafka.Kafka" in cmdline and str(self.state_dir).encode() in cmdline else None
        )

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
            "java", f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.state_dir / 'log4j2.properties'}",
            "-cp", f"{jars}/*",
        ]  # fmt: skip
        if not (self.state_dir / "data" / "meta.properties").exists():
            cluster_id = self.cluster_id or new_cluster_id()
            subprocess.run(
                [*java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)],
                check=True,
                capture_output=True,
                timeout=timeout_s,
            )
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [*java, "kafka.Kafka", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.state_dir,
                start_new_session=True,
                preexec_fn=die_with_parent if self.die_with_parent else None,
            )
        self.pid_file.write_text(f"{self._process.pid}\n")

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Until clients see this broker in the cluster (a controller: its port answers)."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise KafkaSetupError(
                    f"the broker exited with code {self._process.returncode}; "
                    f"last lines of {self.log_file}:\n{self._log_tail()}"
                )
            if not self.is_broker:
                if port_open(self.controller_port):
                    return
            else:
                with contextlib.suppress(KafkaException):
                    if self.node_id in admin.list_topics(timeout=2).brokers:
                        return
            time.sleep(0.3)
        self.stop()
        raise KafkaSetupError(
            f"the broker did not answer within {timeout_s:.0f}s; last lines of {self.log_file}:\n"
            + self._log_tail()
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM (a clean shutdown), SIGKILL after the deadline. False if nothing was running."""
        pid = self._process.pid if self._process is not None else self.running_pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and process_alive(pid, self._process):
            time.sleep(0.1)
        if process_alive(pid, self._process):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while process_alive(pid, self._process):
                time.sleep(0.05)
        self._process = None
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL at once: a crash, for fault tests."""
        pid = self._process.pid if self._process is not None else self.running_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while process_alive(pid, self._process):
                time.sleep(0.05)
        self._process = None
        self.pid_file.unlink(missing_ok=True)

    def pause(self) -> None:
        """SIGSTOP: the JVM keeps its sockets open but answers nothing (a slow, not dead, node)."""
        if (pid := self.pid) is not None:
            os.killpg(pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause`."""
        if (pid := self.pid) is not None:
            os.killpg(pid, signal.SIGCONT)

    def create_topics(self, names: Iterable[str], partitions: int = DEFAULT_PARTITIONS) -> None:
        """Create topics (librdkafka never auto-creates them); existing ones are left alone."""
        _create_topics(self.bootstrap_servers, names, partitions, replication_factor=1)


# Local values for a replicated cluster; production keeps Kafka's defaults (9 s, 3 s, 30 s).
FAST_FAILOVER = {
    # The controller fences a broker that missed heartbeats this long and moves its leaders.
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    # A follower that fetched nothing for this long leaves the ISR, so a paused one stops
    # holding back acks=all writes after 5 s rather than 30 s.
    "replica.lag.time.max.ms": "5000",
}


@dataclass
class Cluster:
    """Three brokers and one controller on 127.0.0.1, topics replicated three times.

    The controller is a node of its own (`process.roles=controller`) so that killing brokers,
    even two of three, takes replicas away but never the metadata quorum: "ISR below
    min.insync.replicas" is then tested alone, not mixed with a lost quorum.
    """

    state_dir: Path
    ports: tuple[int, ...] = (9092, 9093, 9094)
    controller_port: int = 0
    heap: str = "384m"
    die_with_parent: bool = False
    overrides: dict[str, str] = field(default_factory=dict)
    brokers: list[Broker] = field(init=False)
    controller: Broker = field(init=False)

    CONTROLLER_ID = 100

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()
        controller_dir = self.state_dir / "controller"
        # Keep the controller port and cluster id of a previous start of this folder.
        self.controller_port = (
            self.controller_port or _previous_controller_port(controller_dir) or free_port()
        )
        voters = f"{self.CONTROLLER_ID}@127.0.0.1:{self.controller_port}"
        cluster_id = _previous_cluster_id(controller_dir / "data") or new_cluster_id()

        def node(state_dir: Path, node_id: int, roles: str, port: int, heap: str) -> Broker:
            return Broker(
                state_dir,
                port=port,
                controller_port=self.controller_port if roles == "controller" else 0,
                heap=heap,
                die_with_parent=self.die_with_parent,
                node_id=node_id,
                roles=roles,
                voters=voters,
                cluster_id=cluster_id,
                overrides=dict(self.overrides),
            )

        # The controller keeps metadata only: a quarter of a gigabyte is plenty.
        self.controller = node(controller_dir, self.CONTROLLER_ID, "controller", 0, "256m")
        self.brokers = [
            node(self.state_dir / f"broker-{i}", i, "broker", port, self.heap)
            for i, port in enumerate(self.ports, start=1)
        ]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(b.bootstrap_servers for b in self.brokers)

    def broker(self, node_id: int) -> Broker:
        return next(b for b in self.brokers if b.node_id == node_id)

    def running(self) -> list[Broker]:
        """The nodes (controller first) whose process is alive."""
        return [n for n in (self.controller, *self.brokers) if n.running_pid() is not None]

    def start(self, timeout_s: float = 180.0) -> None:
        """Start the controller, then the three brokers together, and wait for all of them."""
        try:
            self.controller.launch(timeout_s)
            self.controller.wait_ready(timeout_s)
            for broker in self.brokers:
                broker.launch(timeout_s)
            for broker in self.brokers:
                broker.wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the brokers, then the controller. False if nothing was running."""
        stopped = [b.stop(timeout_s) for b in self.brokers]
        return self.controller.stop(timeout_s) or any(stopped)

    def heal(self, timeout_s: float = 180.0) -> None:
        """Resume paused brokers and start stopped ones (after a fault test), then wait for them."""
        for node in (self.controller, *self.brokers):
            if node.running_pid() is None:
                node.launch(timeout_s)
            else:
                node.resume()
        for node in (self.controller, *self.brokers):
            node.wait_ready(timeout_s)

    def metadata(self, topic: str | None = None, timeout_s: float = 5.0) -> Any:
        """Cluster metadata as the brokers that still answer see it."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        return admin.list_topics(topic, timeout=timeout_s)

    def leaders(self, topic: str) -> dict[int, int]:
        """Partition -> node id of its leader (-1: none)."""
        found = self.metadata(topic).topics[topic]
        return {p.id: p.leader for p in found.partitions.values()}

    def in_sync(self, topics: Iterable[str]) -> bool:
        """Whether every partition of `topics` has all its replicas in sync and a leader."""
        with contextlib.suppress(KafkaException):
            for topic in topics:
                found = self.metadata(topic).topics[topic]
                if found.error is not None or not found.partitions:
                    return False
                for partition in found.partitions.values():
                    if partition.leader < 0 or set(partition.isrs) != set(partition.replicas):
                        return False
            return True
        return False

    def wait_in_sync(self, topics: Iterable[str], timeout_s: float = 120.0) -> None:
        """Until every replica of `topics` is back in sync (a restarted broker has caught up)."""
        names = list(topics)
        deadline = time.monotonic() + timeout_s
        while not self.in_sync(names):
            if time.monotonic() > deadline:
                raise KafkaSetupError(f"{names} not fully in sync within {timeout_s:.0f}s")
            time.sleep(0.3)

    def create_topics(
        self,
        names: Iterable[str],
        partitions: int = DEFAULT_PARTITIONS,
        replication_factor: int = 3,
        min_insync_replicas: int = 2,
    ) -> None:
        """Topics every guarantee assumes: three replicas, two in sync before an ack."""
        _create_topics(
            self.bootstrap_servers,
            names,
            partitions,
            replication_factor,
            {
                "min.insync.replicas": str(min_insync_replicas),
                # Kafka's default, stated: a replica that missed writes never becomes leader.
                "unclean.leader.election.enable": "false",
            },
        )


def _previous_controller_port(state_dir: Path) -> int:
    """The controller port of the last start from `state_dir` (0 if none)."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        voters = next(
            line
            for line in (state_dir / "server.properties").read_text().splitlines()
            if line.startswith("controller.quorum.voters=")
        )
        return int(voters.rsplit(":", 1)[1])
    return 0


def _previous_cluster_id(data_dir: Path) -> str:
    with contextlib.suppress(OSError):
        for line in (data_dir / "meta.properties").read_text().splitlines():
            if line.startswith("cluster.id="):
                return line.split("=", 1)[1].strip()
    return ""


def _create_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    partitions: int,
    replication_factor: int,
    config: dict[str, str] | None = None,
) -> None:
    # Errors only: librdkafka's informational lines would interleave with the caller's output.
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 3})
    futures = admin.create_topics(
        [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=replication_factor,
                config=config or {},
            )
            for name in names
        ],
        operation_timeout=30,
    )
    for name, future in futures.items():
        try:
            future.result(timeout=60)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise KafkaSetupError(f"could not create topic {name}: {exc}") from exc


def read_topic(bootstrap_servers: str, topic: str, timeout_s: float = 30.0) -> list[Message]:
    """Every message now on `topic`, read up to each partition's high watermark, in order."""
    # The reconciliation's reader: one way of reading a topic to its end, for tools and tests.
    from producer.reconcile import TopicReadError, read_to_end

    try:
        return list(read_to_end(bootstrap_servers, topic, timeout_s))
    except TopicReadError as exc:
        raise KafkaSetupError(str(exc)) from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.kafka", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="fetch the broker's jars (cached)")
    up = sub.add_parser("up", help="start a broker (or three) and create the topics")
    down = sub.add_parser("down", help="stop every broker started from the state folder")
    status = sub.add_parser("status", help="say whether the brokers run")
    for cmd in (up, down, status):
        cmd.add_argument("--dir", type=Path, default=DEFAULT_STATE_DIR, help="state folder")
    up.add_argument("--port", type=int, default=int(os.environ.get("KAFKA_PORT", "9092")))
    up.add_argument(
        "--brokers", type=int, choices=(1, 3), default=1,
        help="3: brokers on --port and the next two, a controller, replication factor 3",
    )  # fmt: skip
    up.add_argument("--topics", nargs="*", default=[*DEFAULT_TOPICS, *VALIDATED_TOPICS])
    up.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    args = parser.parse_args(argv)

    try:
        if args.command == "fetch":
            print(f"Kafka {KAFKA_VERSION} jars in {fetch_jars()}", file=sys.stderr)
            return 0
        broker = Broker(args.dir)
        cluster_dir = args.dir / "cluster"
        cluster = Cluster(cluster_dir) if (cluster_dir / "controller").exists() else None
        pids = [p for p in [broker.running_pid()] if p]
        pids += [n.running_pid() or 0 for n in cluster.running()] if cluster else []
        if args.command == "status":
            print(f"running (pids {', '.join(map(str, pids))})" if pids else "not running")
            return 0 if pids else 1
        if args.command == "down":
            stopped = broker.stop()
            if cluster is not None and cluster.stop():
                print(f"Kafka cluster stopped ({cluster_dir})")
            if stopped:
                print(f"Kafka broker stopped ({args.dir})")
            if not stopped and not pids:
                print(f"no Kafka broker running from {args.dir}")
            return 0
        if pids:
            print(
                f"Kafka is already running from {args.dir} (pids {', '.join(map(str, pids))}); "
                "not starting another (make kafka-down first)"
            )
            return 0
        if args.brokers == 3:
            cluster = Cluster(cluster_dir, ports=tuple(args.port + i for i in range(3)))
            cluster.start()
            cluster.create_topics(args.topics, args.partitions)
            print(
                f"Kafka {KAFKA_VERSION}: three brokers up on {cluster.bootstrap_servers} and a "
                f"controller on 127.0.0.1:{cluster.controller_port}; topics "
                f"{', '.join(args.topics)} with {args.partitions} partitions, replication "
                f"factor 3, min.insync.replicas 2; state and logs in {cluster_dir}"
            )
            return 0
        broker = Broker(args.dir, port=args.port)
        broker.start()
        broker.create_topics(args.topics, args.partitions)
        print(
            f"Kafka {KAFKA_VERSION} up on {broker.bootstrap_servers} (pid {broker.running_pid()}), "
            f"topics {', '.join(args.topics)} with {args.partitions} partitions; "
            f"state and log in {args.dir}"
        )
        return 0
    except KafkaSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
