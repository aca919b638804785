"""Everything `make demo` starts (Kafka, collector replicas, HAProxy, the validator, the
producers), in the order it must be stopped; and stopping a stack kept by an earlier run."""

from __future__ import annotations

import json
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.balancer import Backend, Balancer, BalancerUnavailable
from devstack.collector import CollectorProcess
from devstack.demo.producers import ProducerProcess
from devstack.kafka import DEFAULT_TOPICS, VALIDATED_TOPICS, Broker, Cluster
from devstack.proc import ManagedProcess, port_or_free
from devstack.reporting import say
from devstack.validator import ValidatorProcess


@dataclass
class Stack:
    """Everything the demo starts, in the order it must be stopped."""

    state_dir: Path
    keep: bool = False
    broker: Broker | Cluster | None = None
    replicas: list[CollectorProcess] = field(default_factory=list)
    balancer: Balancer | None = None
    producers: list[ProducerProcess] = field(default_factory=list)
    validators: list[ValidatorProcess] = field(default_factory=list)

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def collector_url(self) -> str | None:
        return self.balancer.url if self.balancer is not None else None

    def start_broker(self, port: int, brokers: int = 1) -> Broker | Cluster:
        kafka_dir = self.state_dir / "kafka"
        # A fresh broker each run, so the reconciliation sees this run's events only.
        shutil.rmtree(kafka_dir, ignore_errors=True)
        if brokers == 3:
            ports = (port_or_free(port), port_or_free(port + 1), port_or_free(port + 2))
            self.broker = Cluster(kafka_dir, ports=ports, die_with_parent=not self.keep)
            say(
                f"==> starting Kafka: three brokers on {self.broker.bootstrap_servers} and a "
                f"controller; topics with 3 replicas, min.insync.replicas 2 (state in {kafka_dir})"
            )
        else:
            self.broker = Broker(kafka_dir, port=port_or_free(port), die_with_parent=not self.keep)
            say(f"==> starting Kafka on {self.broker.bootstrap_servers} (state in {kafka_dir})")
        started = time.monotonic()
        self.broker.start()
        self.broker.create_topics(DEFAULT_TOPICS)
        self.broker.create_topics(VALIDATED_TOPICS)
        say(
            f"    up in {time.monotonic() - started:.0f}s; topics "
            f"{', '.join(DEFAULT_TOPICS)} created"
        )
        self.save()
        return self.broker

    def start_replicas(self, count: int) -> None:
        assert self.broker is not None
        say(f"==> starting {count} collector replicas (python -m collector)")
        for index in range(1, count + 1):
            replica = CollectorProcess(
                self.broker.bootstrap_servers,
                collector_id=f"collector-{index}",
                log_path=self.logs / f"collector-{index}.log",
                die_with_parent=not self.keep,
            )
            self.replicas.append(replica)
            replica.start(wait_ready=False)
            self.save()
        for replica in self.replicas:
            replica.wait_for("/readyz", timeout_s=60)
            say(f"    {replica.collector_id} ready on {replica.url} (pid {replica.pid})")

    def start_balancer(self, port: int) -> None:
        backends = [Backend(r.collector_id, r.port) for r in self.replicas]
        balancer = Balancer(
            self.state_dir / "haproxy",
            backends,
            port=port_or_free(port),
            die_with_parent=not self.keep,
        )
        say(f"==> starting HAProxy on {balancer.url} in front of the replicas")
        try:
            balancer.start()
        except BalancerUnavailable as exc:
            say(f"    no load balancer: {exc}")
            say("    falling back: each producer talks to one replica directly (round-robin).")
            return
        self.balancer = balancer
        self.save()
        balancer.wait_until({b.name: "UP" for b in backends}, timeout_s=30)
        say("    every replica is UP (health check: GET /readyz)")

    def url_for(self, index: int) -> str:
        """Where producer `index` sends: the balancer, or one replica each when there is none."""
        if self.balancer is not None:
            return self.balancer.url
        return self.replicas[index % len(self.replicas)].url

    def save(self) -> None:
        """Record what runs, so `demo down` can stop a kept stack from another process."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "broker_dir": str(self.broker.state_dir) if self.broker else None,
            "broker_port": int(self.broker.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])
            if self.broker
            else None,
            "cluster": isinstance(self.broker, Cluster),
            "collectors": {r.collector_id: r.pid for r in self.replicas if r.pid},
            "haproxy": self.balancer.pid if self.balancer else None,
            "validators": {v.validator_id: v.pid for v in self.validators if v.pid},
            "url": self.collector_url or (self.replicas[0].url if self.replicas else None),
        }
        self.stack_file.write_text(json.dumps(state, indent=2) + "\n")

    def stop(self) -> None:
        """Producers, then replicas (each drains), then the balancer, then the broker."""
        for producer in self.producers:
            producer.terminate()
        for replica in self.replicas:
            replica.signal(signal.SIGTERM)
        for replica in self.replicas:
            replica.stop(timeout_s=30)
        if self.balancer is not None:
            self.balancer.stop()
        for validator in self.validators:
            validator.stop(timeout_s=30)
        if self.broker is not None:
            self.broker.stop()
        self.stack_file.unlink(missing_ok=True)


def stop_recorded(state_dir: Path) -> bool:
    """Stop a stack left running by `demo --keep`, from its stack.json. False if there is none."""
    stack_file = state_dir / "stack.json"
    try:
        state = json.loads(stack_file.read_text())
    except (OSError, ValueError):
        return False
    # Only a pid that still runs what we started is signalled (pids get reused).
    adopted = [
        ManagedProcess.adopt(pid, name, (b"collector",))
        for name, pid in state.get("collectors", {}).items()
    ]
    adopted.append(ManagedProcess.adopt(state.get("haproxy"), "haproxy", (b"haproxy",)))
    adopted += [
        ManagedProcess.adopt(pid, name, (b"validator",))
        for name, pid in state.get("validators", {}).items()
    ]
    for process in adopted:
        process.signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for process in adopted:
        process.stop(max(0.0, deadline - time.monotonic()), signum=None)
    if state.get("broker_dir"):
        kafka = Cluster if state.get("cluster") else Broker
        kafka(Path(state["broker_dir"])).stop()
    stack_file.unlink(missing_ok=True)
    return True
