"""Every setting of the dead-letter tool, read once from `DLQ_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from kafkaconn import KafkaSettings
from validator.settings import DEFAULT_CONTRACTS_DIR


class Settings(KafkaSettings):
    """Topics and Kafka connection (`DLQ_KAFKA_*`, as every component's) of `python -m dlq`;
    command-line flags override the filters."""

    model_config = SettingsConfigDict(env_prefix="DLQ_", frozen=True, extra="ignore")

    raw_topic: str = Field("raw-events", min_length=1)
    raw_dead_letter_topic: str = Field("raw-events-dlq", min_length=1)
    validated_topic: str = Field("validated-events", min_length=1)
    validated_dead_letter_topic: str = Field("validated-events-dlq", min_length=1)
    contracts_dir: Path = DEFAULT_CONTRACTS_DIR
    # Goes into re-driven records as their collector_id / validator_id.
    redrive_id: str = Field("dlq-redrive", min_length=1, max_length=200)
    # Records per re-drive transaction: a kill repeats at most this many (never twice on the topic).
    batch_records: int = Field(2_000, gt=0)
    read_timeout_s: float = Field(300.0, gt=0)
    # When set, the run's counters are pushed here at the end (a Job is gone before a scrape).
    pushgateway_url: str | None = None
    # What a run looks at when no flag says otherwise (a Kubernetes Job sets these): the stage,
    # filters as comma-separated lists, a time range, the transformation file and --dry-run.
    stage: Literal["validator", "collector"] = "validator"
    reason: str = ""
    event_type: str = ""
    schema_version: str = ""
    event_id: str = ""
    since: str = ""
    until: str = ""
    transform: Path | None = None
    dry_run: bool = False

    @field_validator("transform", "pushgateway_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        """A Job template's `value: ""` means unset, not the current directory."""
        return None if value == "" else value


def listed(text: str) -> frozenset[str]:
    """`a,b` -> {"a", "b"}: a filter given as an environment variable."""
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def kafka_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """The librdkafka configuration of every client this tool makes: the one place to change."""
    # log_level 2: librdkafka's own lines (a refused connection, retried many times) would bury
    # the one line the tool prints when it gives up.
    return settings.kafka.client_config({"log_level": 2, **extra})
