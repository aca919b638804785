"""Every setting of the collector, read once from `COLLECTOR_*` environment variables."""

from __future__ import annotations

import socket
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """The collector's configuration; build it once at start-up and pass it in."""

    model_config = SettingsConfigDict(
        env_prefix="COLLECTOR_", frozen=True, extra="ignore", populate_by_name=True
    )

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", min_length=1)
    raw_topic: str = Field("raw-events", min_length=1)
    dead_letter_topic: str = Field("raw-events-dlq", min_length=1)
    # `COLLECTOR_ID`, not `COLLECTOR_COLLECTOR_ID`: an explicit alias skips the prefix.
    collector_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=256,
        validation_alias=AliasChoices("COLLECTOR_ID", "collector_id"),
    )
    host: str = "0.0.0.0"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(1_048_576, gt=0)
    max_batch_events: int = Field(1_000, gt=0)
    ack_timeout_s: float = Field(5.0, gt=0)
    retry_after_s: int = Field(1, ge=0)
    workers: int = Field(1, ge=1)
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field((), repr=False)
    kafka_properties: dict[str, str | int | float | bool] = Field(default_factory=dict, repr=False)
    readiness_interval_s: float = Field(2.0, gt=0)
    drain_timeout_s: float = Field(25.0, gt=0)
    # A client has this long to send a whole request (headers, then body); then 408, cut off.
    request_timeout_s: float = Field(10.0, gt=0)
    log_level: str = "INFO"
    # Collect requests per second allowed per API key (one shared bucket when keys are off), with
    # bursts up to `rate_limit_burst` (default: one second's worth); 0 turns the limit off.
    rate_limit_per_s: float = Field(0.0, ge=0)
    rate_limit_burst: int = Field(0, ge=0)
    # Origins allowed to post from a browser (CORS), comma-separated, `*` for any; none by default.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level
