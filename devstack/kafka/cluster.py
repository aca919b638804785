"""Three brokers and one controller on 127.0.0.1, topics replicated three times."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from devstack.kafka.broker import (
    Broker,
    new_cluster_id,
    previous_cluster_id,
    previous_controller_port,
)
from devstack.kafka.jars import KafkaSetupError
from devstack.kafka.topics import DEFAULT_PARTITIONS, create_topics
from devstack.proc import free_port, wait_until

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
            self.controller_port or previous_controller_port(controller_dir) or free_port()
        )
        cluster_id = previous_cluster_id(controller_dir / "data") or new_cluster_id()
        # The controller keeps metadata only: a quarter of a gigabyte is plenty.
        self.controller = self._node(controller_dir, self.CONTROLLER_ID, 0, "256m", cluster_id)
        self.brokers = [
            self._node(self.state_dir / f"broker-{i}", i, port, self.heap, cluster_id)
            for i, port in enumerate(self.ports, start=1)
        ]

    def _node(self, state_dir: Path, node_id: int, port: int, heap: str, cluster_id: str) -> Broker:
        """The controller (node id CONTROLLER_ID) or one broker of this cluster."""
        roles = "controller" if node_id == self.CONTROLLER_ID else "broker"
        return Broker(
            state_dir,
            port=port,
            controller_port=self.controller_port if roles == "controller" else 0,
            heap=heap,
            die_with_parent=self.die_with_parent,
            node_id=node_id,
            roles=roles,
            voters=f"{self.CONTROLLER_ID}@127.0.0.1:{self.controller_port}",
            cluster_id=cluster_id,
            overrides=dict(self.overrides),
        )

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
        try:
            wait_until(lambda: self.in_sync(names), timeout_s, f"{names} in sync", every_s=0.3)
        except TimeoutError:
            raise KafkaSetupError(f"{names} not fully in sync within {timeout_s:.0f}s") from None

    def create_topics(
        self,
        names: Iterable[str],
        partitions: int = DEFAULT_PARTITIONS,
        replication_factor: int = 3,
        min_insync_replicas: int = 2,
    ) -> None:
        """Topics every guarantee assumes: three replicas, two in sync before an ack."""
        create_topics(
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
