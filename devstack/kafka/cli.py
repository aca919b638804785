"""`python -m devstack.kafka fetch|up|down|status`: what `make kafka-jars`, `make kafka-up
[BROKERS=3 | SECURITY=sasl_ssl]` and `make kafka-down` run; state and logs in `.kafka/`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from devstack.kafka.broker import Broker
from devstack.kafka.cluster import Cluster
from devstack.kafka.jars import JARS_SHA256, KAFKA_VERSION, KafkaSetupError, fetch_jars
from devstack.kafka.secure import USERS, secured_broker
from devstack.kafka.topics import DEFAULT_PARTITIONS, DEFAULT_TOPICS, VALIDATED_TOPICS
from devstack.proc import ROOT

DEFAULT_STATE_DIR = ROOT / ".kafka"
# The secured broker's own folder, so a plain broker's data never meets SCRAM users.
SECURE = "sasl_ssl"


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        prog="python -m devstack.kafka",
        description="Real KRaft Kafka on 127.0.0.1, from Maven Central jars and the local Java: "
        "one combined node, or a replicated cluster (one controller and three brokers).",
    )
    sub = made.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="fetch the broker's jars (cached), check their sha256")
    fetch.add_argument(
        "--record", action="store_true", help=f"fetch again and write {JARS_SHA256.name}"
    )
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
    up.add_argument(
        "--security", choices=("plaintext", "sasl_ssl"), default="plaintext",
        help="sasl_ssl: one broker on TLS with SCRAM-SHA-512 users (state in DIR/sasl_ssl)",
    )  # fmt: skip
    up.add_argument("--topics", nargs="*", default=[*DEFAULT_TOPICS, *VALIDATED_TOPICS])
    up.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    return made


def down(state_dir: Path, broker: Broker, cluster: Cluster | None, pids: list[int]) -> int:
    if Broker(state_dir / SECURE).stop():
        print(f"Kafka broker (SASL_SSL) stopped ({state_dir / SECURE})")
    stopped = broker.stop()
    if cluster is not None and cluster.stop():
        print(f"Kafka cluster stopped ({state_dir / 'cluster'})")
    if stopped:
        print(f"Kafka broker stopped ({state_dir})")
    if not stopped and not pids:
        print(f"no Kafka broker running from {state_dir}")
    return 0


def up_secured(args: argparse.Namespace) -> int:
    if args.brokers != 1:
        raise KafkaSetupError("--security sasl_ssl runs one broker; leave BROKERS at 1")
    broker, security = secured_broker(args.dir / SECURE, args.port)
    broker.start()
    broker.create_topics(args.topics, args.partitions)
    env = args.dir / SECURE / "sasl_ssl.env"
    print(
        f"Kafka {KAFKA_VERSION} up on {broker.bootstrap_servers}, SASL_SSL only (SCRAM-SHA-512; "
        f"users {', '.join(USERS)}; CA {security.ca_file}), topics {', '.join(args.topics)}.\n"
        f"Every component's settings for it: set -a; . {env}; set +a"
    )
    return 0


def up(args: argparse.Namespace, cluster_dir: Path) -> int:
    if args.security == "sasl_ssl":
        return up_secured(args)
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


def command(args: argparse.Namespace) -> int:
    if args.command == "fetch":
        jars = fetch_jars(record=args.record)
        print(f"Kafka {KAFKA_VERSION} jars in {jars} (sha256 as recorded)", file=sys.stderr)
        return 0
    broker = Broker(args.dir)
    cluster_dir = args.dir / "cluster"
    cluster = Cluster(cluster_dir) if (cluster_dir / "controller").exists() else None
    pids = [p for p in [broker.running_pid(), Broker(args.dir / SECURE).running_pid()] if p]
    pids += [n.running_pid() or 0 for n in cluster.running()] if cluster else []
    if args.command == "status":
        print(f"running (pids {', '.join(map(str, pids))})" if pids else "not running")
        return 0 if pids else 1
    if args.command == "down":
        return down(args.dir, broker, cluster, pids)
    if pids:
        print(
            f"Kafka is already running from {args.dir} (pids {', '.join(map(str, pids))}); "
            "not starting another (make kafka-down first)"
        )
        return 0
    return up(args, cluster_dir)


def main(argv: list[str] | None = None) -> int:
    try:
        return command(parser().parse_args(argv))
    except KafkaSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
