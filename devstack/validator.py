"""Validator processes on 127.0.0.1 (`python -m validator`, as in the image): demo and tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition

from devstack.kafka import VALIDATED_TOPICS
from devstack.proc import wait_until
from devstack.service import LocalService


@dataclass
class ValidatorProcess(LocalService):
    """One `python -m validator` configured through its VALIDATOR_* environment."""

    module: ClassVar[str] = "validator"

    validated_topic: str = VALIDATED_TOPICS[0]
    dead_letter_topic: str = VALIDATED_TOPICS[1]
    dedup_topic: str = "validator-dedup-changelog"
    group_id: str = "validator"
    validator_id: str = "validator-0"

    def settings(self) -> dict[str, str]:
        return {
            "VALIDATED_TOPIC": self.validated_topic,
            "DEAD_LETTER_TOPIC": self.dead_letter_topic,
            "DEDUP_TOPIC": self.dedup_topic,
            "GROUP_ID": self.group_id,
            "ID": self.validator_id,
        }

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the process and wait until /readyz answers 200 (transactions initialised)."""
        # The last line of stdout is the summary; logs (stderr) go to the log file.
        self.spawn(capture=True)
        self.wait_for("/readyz", timeout_s)

    def metric(self, name: str) -> float:
        """The sum of every sample of one metric from /metrics (0 when absent)."""
        status, body = self.fetch("/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total if status == 200 else 0.0

    def kill(self) -> None:
        """SIGKILL at once: a crashed validator, with whatever transaction it had open."""
        if self.process is not None:
            self.process.kill()

    def stop(self, timeout_s: float = 60.0) -> dict[str, Any] | None:
        """SIGTERM (commit the batch in hand, leave the group), SIGKILL after the deadline.

        Returns the counts the process printed on a clean exit.
        """
        if self.process is None or not self.process.stop(timeout_s):
            return None
        lines = self.process.output.strip().splitlines()
        counts = orjson.loads(lines[-1]) if lines and self.process.returncode == 0 else None
        return counts if isinstance(counts, dict) else None


def lag(bootstrap_servers: str, group_id: str, topic: str) -> int:
    """Records of `topic` not yet committed by `group_id` (all of them when nothing is; -1 while
    the group's coordinator cannot say)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap_servers, "group.id": group_id, "log_level": 3}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        try:
            committed = consumer.committed([TopicPartition(topic, p) for p in partitions],
                                           timeout=30)  # fmt: skip
        except KafkaException as exc:
            # On a broker just started the group's coordinator may still be loading
            # (NOT_COORDINATOR): not known yet, which is never "caught up".
            if exc.args[0].retriable():
                return -1
            raise
        behind = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            position = tp.offset if tp.offset >= 0 else low
            behind += max(0, high - position)
        return behind
    finally:
        consumer.close()


def wait_caught_up(
    bootstrap_servers: str, group_id: str, topic: str, timeout_s: float = 120.0
) -> None:
    """Until `group_id` has committed every record now on `topic`."""
    wait_until(
        lambda: lag(bootstrap_servers, group_id, topic) == 0,
        timeout_s,
        f"{group_id} caught up on {topic}",
        every_s=0.5,
    )
