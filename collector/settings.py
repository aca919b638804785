"""Every setting of the collector, read once from `COLLECTOR_*` environment variables."""

from __future__ import annotations

import socket
from typing import Annotated, Any

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict, SettingsError

from kafkaconn import KafkaSettings, settings_problems


class Settings(KafkaSettings):
    """The collector's configuration; build it once at start-up and pass it in.

    The Kafka connection is `COLLECTOR_KAFKA_*` (see `kafkaconn.KafkaSettings`).
    """

    model_config = SettingsConfigDict(
        env_prefix="COLLECTOR_", frozen=True, extra="ignore", populate_by_name=True
    )

    raw_topic: str = Field("raw-events", min_length=1, description="topic for accepted events")
    dead_letter_topic: str = Field(
        "raw-events-dlq", min_length=1, description="topic for rejected events (400, 422)"
    )
    # `COLLECTOR_ID`, not `COLLECTOR_COLLECTOR_ID`: an explicit alias skips the prefix.
    collector_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=256,
        validation_alias=AliasChoices("COLLECTOR_ID", "collector_id"),
        description="goes into every record; the host name (on Kubernetes the pod name)",
    )
    host: str = Field("0.0.0.0", description="address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="port to listen on")
    max_body_bytes: int = Field(1_048_576, gt=0, description="larger request bodies get 413")
    max_batch_events: int = Field(
        1_000, gt=0, description="events per /collect/batch request; more get 413 batch_too_large"
    )
    ack_timeout_s: float = Field(
        5.0, gt=0, description="how long Kafka may take to acknowledge; then 503 ack_timeout"
    )
    retry_after_s: int = Field(1, ge=0, description="the Retry-After header's seconds on a 503")
    workers: int = Field(1, ge=1, description="server processes sharing the port")
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        (), repr=False, description="comma-separated keys clients send as `Authorization: Bearer`"
    )
    # Without keys the collector starts only when this says so: never open by accident.
    allow_anonymous: bool = Field(
        False, description="true: accept requests without a key when COLLECTOR_API_KEYS is unset"
    )
    readiness_interval_s: float = Field(
        2.0, gt=0, description="how often /readyz's view of Kafka is refreshed"
    )
    drain_timeout_s: float = Field(
        25.0, gt=0, description="after SIGTERM, for requests in flight and Kafka's flush"
    )
    request_timeout_s: float = Field(
        10.0, gt=0, description="to send a whole request (headers, then body); then 408"
    )
    max_header_bytes: int = Field(
        32_768, ge=1_024, description="a request's line and headers, in bytes; more get 431"
    )
    max_headers: int = Field(100, ge=8, description="header fields per request; more get 431")
    # uvicorn's limit_concurrency, done here to answer 503 with Retry-After; each request may hold
    # a body of up to max_body_bytes. Probes are always answered.
    max_concurrency: int = Field(
        256, ge=1, description="requests in flight at once; more get 503 with Retry-After"
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL")
    rate_limit_per_s: float = Field(
        0.0, ge=0, description="collect requests/s per API key (one bucket without keys); 0 = off"
    )
    rate_limit_burst: int = Field(
        0, ge=0, description="burst above the rate limit; 0 = one second's worth"
    )
    max_connection_age_s: float = Field(
        30.0,
        ge=0,
        description="a keep-alive connection's age; then the next answer says Connection: close",
    )
    max_connection_age_jitter: float = Field(
        0.1, ge=0, lt=1, description="each connection's age drawn within ± this share of it"
    )
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="origins allowed to post from a browser (CORS), comma-separated, * = any"
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split(value) if isinstance(value, str) else value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _key_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            # Set but blank (" , ") is a mistake, never "no keys, so open to all".
            value = _split(value)
            if not value:
                raise ValueError("set but holds no key: give comma-separated keys, or unset it")
        return value

    @field_validator("api_keys")
    @classmethod
    def _keys_are_tokens(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        if any(char.isspace() or not char.isprintable() for key in keys for char in key):
            raise ValueError("a key holds a space or a control character, which no bearer can send")
        return keys

    @model_validator(mode="after")
    def _keys_or_anonymous(self) -> Settings:
        if not self.api_keys and not self.allow_anonymous:
            raise ValueError(
                "no API keys: set COLLECTOR_API_KEYS, or COLLECTOR_ALLOW_ANONYMOUS=true to accept "
                "requests without one"
            )
        return self

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level


def _split(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


class SettingsProblem(Exception):
    """Settings that cannot be used: one line per variable, naming it and what is wrong."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def load() -> Settings:
    """The settings from the environment; SettingsProblem, which never holds a value, if wrong."""
    try:
        return Settings()
    except (ValidationError, SettingsError) as exc:
        raise SettingsProblem(settings_problems(exc, Settings)) from None
