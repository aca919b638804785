"""The producer's settings: flags override `PRODUCER_*` environment variables, read once."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kafkaconn import KafkaSettings
from producer.source import file_name
from producer.urls import collector_base_url


def _split_urls(value: Any) -> Any:
    if isinstance(value, str):
        return [part for part in re.split(r"[\s,]+", value) if part]
    return value


class ReplaySettings(BaseSettings):
    """Everything `python -m producer replay` can be told."""

    model_config = SettingsConfigDict(env_prefix="PRODUCER_", populate_by_name=True)

    data_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="parquet files or http(s) URLs, space or comma separated"
    )
    sha256: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="FILE_OR_URL=HEX (or its file name=HEX): the sha256 a file must have",
    )
    collector_url: str = Field(
        "http://127.0.0.1:8000",
        description="the base URL or a collect endpoint's URL; kept as the base URL",
    )
    rate_per_s: float = Field(
        0.0,
        ge=0,
        validation_alias=AliasChoices("rate_per_s", "PRODUCER_RATE"),
        description="events per second across the producer; 0 = as fast as accepted",
    )
    max_records: int | None = Field(None, ge=0, description="stop after this many events")
    batch_size: int = Field(1, ge=1, description="events per request; above 1 uses /batch")
    concurrency: int = Field(16, ge=1, description="requests in flight at once")
    event_type: str = Field(
        "YellowTaxiTripRecords", min_length=1, max_length=256, description="every event's type"
    )
    schema_version: str = Field(
        "0-0-1", min_length=1, max_length=64, description="every event's schema version"
    )
    api_key: str | None = Field(None, description="sent as `Authorization: Bearer` when set")
    timeout_s: float = Field(10.0, gt=0, description="per request")
    max_attempts: int = Field(30, ge=1, description="per event, the first send included")
    max_retry_s: float = Field(120.0, ge=0, description="per event, from its first send")
    backoff_base_s: float = Field(0.1, gt=0, description="first retry's longest pause")
    backoff_cap_s: float = Field(5.0, gt=0, description="longest pause between retries")
    unreachable_s: float = Field(
        10.0, gt=0, description="stop when no request could connect for this long"
    )
    read_batch_rows: int = Field(10_000, ge=1, description="rows converted at a time")
    progress_interval_s: float = Field(5.0, gt=0, description="plain progress lines, off a tty")
    drain_timeout_s: float = Field(20.0, ge=0, description="after SIGTERM, for sends in flight")
    job_completion_index: int | None = Field(
        None,
        ge=0,
        validation_alias=AliasChoices("job_completion_index", "JOB_COMPLETION_INDEX"),
        description="replay only this file of the list (Kubernetes Indexed Job)",
    )

    @field_validator("data_urls", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _split_urls(value)

    @field_validator("sha256", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if not isinstance(value, str | list):
            return value
        pairs = {}
        for pair in _split_urls(value) if isinstance(value, str) else value:
            location, equals, digest = str(pair).rpartition("=")
            if not equals or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
                raise ValueError(f"{pair!r} is not FILE_OR_URL=<64 hex digits>")
            pairs[location] = digest.lower()
        return pairs

    @field_validator("collector_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return collector_base_url(value)

    @model_validator(mode="after")
    def _sha256_of_listed_files(self) -> ReplaySettings:
        listed = {*self.data_urls, *map(file_name, self.data_urls)}
        if unknown := sorted(set(self.sha256) - listed):
            raise ValueError(f"--sha256 names files that are not replayed: {', '.join(unknown)}")
        return self

    def expected_sha256(self, location: str) -> str | None:
        """The sha256 given for a file, by its full location or its file name."""
        return self.sha256.get(location) or self.sha256.get(file_name(location))

    def selected_files(self) -> list[str]:
        """The files this process replays: all, or the one at JOB_COMPLETION_INDEX."""
        if self.job_completion_index is None:
            return list(self.data_urls)
        if self.job_completion_index >= len(self.data_urls):
            raise ValueError(
                f"JOB_COMPLETION_INDEX={self.job_completion_index} but only "
                f"{len(self.data_urls)} files are listed"
            )
        return [self.data_urls[self.job_completion_index]]


class ReconcileSettings(KafkaSettings):
    """Everything `python -m producer reconcile` can be told; Kafka as `PRODUCER_KAFKA_*`."""

    model_config = SettingsConfigDict(env_prefix="PRODUCER_", populate_by_name=True)

    data_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="the replayed files or URLs, space or comma separated"
    )
    # PRODUCER_BOOTSTRAP_SERVERS, the name before the Kafka settings were shared: still read,
    # below PRODUCER_KAFKA_BOOTSTRAP_SERVERS.
    bootstrap_servers: str | None = Field(None, min_length=1, exclude=True)
    raw_topic: str = Field("raw-events", description="the collector's topic for accepted events")
    dead_letter_topic: str = Field(
        "raw-events-dlq", description="the collector's topic for rejected events"
    )
    check_payloads: bool = Field(False, description="also compare every payload with its row")
    by_collector: bool = Field(False, description="add the raw records per collector_id")
    event_type: str = Field("YellowTaxiTripRecords", description="the replay's event type")
    schema_version: str = Field("0-0-1", description="the replay's schema version")
    read_timeout_s: float = Field(120.0, gt=0, description="to reach the high watermarks")
    max_records: int | None = Field(None, ge=0, description="only the first N rows of each file")

    @field_validator("data_urls", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _split_urls(value)

    @model_validator(mode="before")
    @classmethod
    def _old_bootstrap_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("bootstrap_servers"):
            kafka = data.get("kafka")
            kafka = dict(kafka) if isinstance(kafka, dict) else {}
            kafka.setdefault("bootstrap_servers", data["bootstrap_servers"])
            data = {**data, "kafka": kafka}
        return data
