"""The Kafka connection: where the cluster is and how to prove who we are, as one model, and the
one place that turns it into a confluent-kafka (librdkafka) configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Properties = dict[str, str | int | float | bool]


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


SecurityProtocol = Annotated[
    Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], BeforeValidator(_upper)
]
SaslMechanism = Annotated[
    Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"],
    BeforeValidator(_upper),
]


class KafkaConnection(BaseModel):
    """Bootstrap servers, security protocol, SASL user and password, CA file, extra properties.

    The password is a `SecretStr`: it is in no repr, log line or error message, and leaves the
    model only inside `client_config()`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", min_length=1, description="the brokers, host:port[,host:port...]"
    )
    security_protocol: SecurityProtocol | None = Field(
        None, description="PLAINTEXT (when unset), SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    sasl_mechanism: SaslMechanism | None = Field(None, description="e.g. SCRAM-SHA-512")
    sasl_username: str | None = Field(None, description="the SASL user")
    sasl_password: SecretStr | None = Field(None, description="the SASL password, never printed")
    ca_file: FilePath | None = Field(None, description="PEM file of the brokers' CA")
    # Any other librdkafka property (TLS client certificates, tuning); these win over the above.
    # A JSON object in the environment, e.g. `{"ssl.certificate.location": "/tls/me.crt"}`.
    properties: Annotated[Properties, NoDecode] = Field(
        default_factory=dict,
        repr=False,
        description='any other librdkafka property, a JSON object, e.g. {"client.id": "me"}',
    )

    def client_config(self, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """librdkafka settings: the client's own `defaults`, then this connection, then
        `properties`, each winning over the one before."""
        config: dict[str, Any] = dict(defaults or {})
        config["bootstrap.servers"] = self.bootstrap_servers
        named = {
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password and self.sasl_password.get_secret_value(),
            "ssl.ca.location": self.ca_file and str(self.ca_file),
        }
        config.update((key, value) for key, value in named.items() if value is not None)
        config.update(self.properties)
        return config

    @field_validator("properties", mode="before")
    @classmethod
    def _properties_json(cls, value: Any) -> Any:
        return _json_object(value)

    @model_validator(mode="after")
    def _fits_together(self) -> KafkaConnection:
        if problems := self.problems():
            raise ValueError("; ".join(problems))
        return self

    def problems(self) -> list[str]:
        """What does not fit together, named as the `KAFKA_*` settings, never with a value."""
        config = self.client_config()
        protocol = str(config.get("security.protocol", "PLAINTEXT")).upper()
        found = []
        user, password = "sasl.username" in config, "sasl.password" in config
        if user and not password:
            found.append("KAFKA_SASL_PASSWORD is needed with KAFKA_SASL_USERNAME")
        if password and not user:
            found.append("KAFKA_SASL_USERNAME is needed with KAFKA_SASL_PASSWORD")
        if user and not protocol.startswith("SASL_"):
            found.append(
                "KAFKA_SASL_USERNAME is set but KAFKA_SECURITY_PROTOCOL is not SASL_SSL or "
                "SASL_PLAINTEXT, so it would never be sent"
            )
        if user and "sasl.mechanism" not in config:
            found.append(
                "KAFKA_SASL_MECHANISM is needed with KAFKA_SASL_USERNAME (e.g. SCRAM-SHA-512)"
            )
        if "ssl.ca.location" in config and protocol not in ("SSL", "SASL_SSL"):
            found.append(
                "KAFKA_CA_FILE is set but KAFKA_SECURITY_PROTOCOL is not SSL or SASL_SSL, so it "
                "would never be used"
            )
        return found


def _json_object(value: Any) -> Any:
    if not isinstance(value, str | bytes):
        return value
    try:
        parsed = orjson.loads(value or b"{}")
    except orjson.JSONDecodeError as exc:
        # The message says where, never what: the text may hold a password.
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(parsed, dict):
        raise ValueError('must be a JSON object, e.g. {"client.id": "me"}')
    return parsed


class KafkaSettings(BaseSettings):
    """`kafka`, the connection, read from `<PREFIX>KAFKA_<FIELD>` variables (the prefix is the
    component's own): `COLLECTOR_KAFKA_BOOTSTRAP_SERVERS`, `VALIDATOR_KAFKA_SASL_PASSWORD`, ...
    A component's settings inherit it and pass `settings.kafka` to every client they build."""

    # `_` splits a name once after the prefix: KAFKA_SASL_USERNAME is kafka.sasl_username.
    model_config = SettingsConfigDict(env_nested_delimiter="_", env_nested_max_split=1)

    kafka: KafkaConnection = Field(default_factory=KafkaConnection)
