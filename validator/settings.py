"""Every setting of the validator, read once from `VALIDATOR_*` environment variables."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import SettingsConfigDict, SettingsError

from kafkaconn import KafkaSettings, settings_problems

# In the image the contracts sit beside the package; in a checkout, at the repository's top.
DEFAULT_CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"
WEEK_S = 7 * 24 * 3600


class Settings(KafkaSettings):
    """The validator's configuration; build it once at start-up and pass it in.

    The Kafka connection is `VALIDATOR_KAFKA_*` (see `kafkaconn.KafkaSettings`).
    """

    model_config = SettingsConfigDict(
        env_prefix="VALIDATOR_", frozen=True, extra="ignore", populate_by_name=True
    )

    raw_topic: str = Field("raw-events", min_length=1, description="topic read: the collector's")
    validated_topic: str = Field(
        "validated-events", min_length=1, description="topic for events that meet their contract"
    )
    dead_letter_topic: str = Field(
        "validated-events-dlq", min_length=1, description="topic for events that do not"
    )
    # The seen-ids changelog: one partition per raw partition, compacted, kept for the window.
    dedup_topic: str = Field(
        "validator-dedup-changelog", min_length=1, description="the seen event ids' changelog"
    )
    group_id: str = Field("validator", min_length=1, description="Kafka consumer group")
    # `VALIDATOR_ID`, not `VALIDATOR_VALIDATOR_ID`: an explicit alias skips the prefix.
    validator_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=200,
        validation_alias=AliasChoices("VALIDATOR_ID", "validator_id"),
        description="this replica's stable id (transactions); the host name, on Kubernetes the pod",
    )
    contracts_dir: Path = Field(DEFAULT_CONTRACTS_DIR, description="folder of the contracts")
    dedup_window_s: float = Field(
        WEEK_S, gt=0, description="an event id seen within this long is a duplicate"
    )
    # One transaction per batch: up to this many records, or what arrived within the wait. Under
    # load 20,000 ran 1.4x faster than 5,000 on one pinned core (fewer, fuller produce requests);
    # a crash re-reads at most one batch.
    batch_max_records: int = Field(20_000, gt=0, description="records per transaction")
    batch_wait_s: float = Field(0.1, gt=0, description="longest wait to fill a transaction")
    # A crashed validator's open transaction blocks its partitions' readers until this passes
    # (or until it restarts under the same id, which aborts it at once).
    transaction_timeout_s: float = Field(
        30.0, ge=1, description="a crashed replica's transaction blocks readers this long"
    )
    host: str = Field("0.0.0.0", description="address of /healthz, /readyz, /metrics")
    port: int = Field(8080, ge=0, le=65535, description="port of /healthz, /readyz, /metrics")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def transactional_id(self) -> str:
        """Stable per validator: a restart under the same id fences and aborts its old self."""
        return f"{self.group_id}-{self.validator_id}"


def problems(exc: ValidationError | SettingsError) -> list[str]:
    """What is wrong with the settings, one line per problem, never a value (it may be a
    password): `VALIDATOR_KAFKA_PROPERTIES['x']: should be a string, a number or a boolean`."""
    return settings_problems(exc, Settings)
