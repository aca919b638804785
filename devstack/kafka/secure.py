"""A broker that only speaks SASL_SSL with SCRAM-SHA-512, as a company cluster would: a throwaway
CA and a broker certificate made here with openssl, the broker's keystore and truststore with
openssl and keytool, and SCRAM users written when the data folder is formatted.

`make kafka-up SECURITY=sasl_ssl` runs one (state in `.kafka/sasl_ssl/`); the tests start one on
free ports to prove every client of the project over it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.kafka.broker import Broker
from devstack.kafka.jars import KafkaSetupError
from kafkaconn import KafkaConnection

MECHANISM = "SCRAM-SHA-512"
# The broker's own user (inter-broker traffic, topic creation) and one per component.
USERS = ("admin", "collector", "validator", "producer")
_DAYS = "825"


def _run(*argv: str, cwd: Path) -> None:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise KafkaSetupError(f"{argv[0]} {argv[1]} failed: {result.stderr.strip()[-500:]}")


def make_ca(folder: Path, name: str = "ca") -> Path:
    """A self-signed CA (`<name>.crt`, `<name>.key`) in `folder`; the certificate's path."""
    folder.mkdir(parents=True, exist_ok=True)
    _run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", _DAYS,
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN=event-collector {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    return folder / f"{name}.crt"


@dataclass
class Security:
    """The TLS material and SCRAM users of one secured broker, kept in `folder`."""

    folder: Path
    passwords: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder).resolve()

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.crt"

    def prepare(self) -> None:
        """Certificates, stores and passwords, made once and reused by later starts."""
        self.folder.mkdir(parents=True, exist_ok=True)
        users = self.folder / "users.json"
        if users.exists():
            self.passwords = json.loads(users.read_text())
        else:
            self.passwords = {user: secrets.token_urlsafe(18) for user in USERS}
            self.passwords["store"] = secrets.token_urlsafe(18)
            users.touch(mode=0o600)
            users.write_text(json.dumps(self.passwords))
        if not (self.folder / "truststore.p12").exists():
            self._make_stores()

    def _make_stores(self) -> None:
        make_ca(self.folder)
        # The SAN is what clients dial: librdkafka checks it (ssl.endpoint.identification).
        (self.folder / "broker.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        store = f"pass:{self.passwords['store']}"
        steps = [
            ("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key",
             "-out", "broker.csr", "-subj", "/CN=localhost"),
            ("openssl", "x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", _DAYS, "-extfile", "broker.ext", "-out", "broker.crt"),
            ("openssl", "pkcs12", "-export", "-in", "broker.crt", "-inkey", "broker.key",
             "-certfile", "ca.crt", "-name", "broker", "-out", "keystore.p12", "-passout", store),
            ("keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.crt",
             "-keystore", "truststore.p12", "-storetype", "PKCS12",
             "-storepass", self.passwords["store"]),
        ]  # fmt: skip
        for step in steps:
            _run(*step, cwd=self.folder)

    def server_properties(self, port: int) -> dict[str, str]:
        """The broker's listener on `port`: SASL_SSL only (the controller stays on loopback)."""
        admin = self.passwords["admin"]
        return {
            "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{{controller}}",
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{port}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
            "inter.broker.listener.name": "SASL_SSL",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="admin" password="{admin}";'
            ),
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.folder / "keystore.p12"),
            "ssl.keystore.password": self.passwords["store"],
            "ssl.key.password": self.passwords["store"],
            "ssl.truststore.type": "PKCS12",
            "ssl.truststore.location": str(self.folder / "truststore.p12"),
            "ssl.truststore.password": self.passwords["store"],
        }

    def format_args(self) -> list[str]:
        """The SCRAM users, written into the metadata when the data folder is formatted."""
        args = []
        for user in USERS:
            args += ["--add-scram", f"{MECHANISM}=[name={user},password={self.passwords[user]}]"]
        return args

    def connection(
        self, bootstrap_servers: str, user: str = "admin", **changes: Any
    ) -> KafkaConnection:
        """How `user` connects (`changes` replace fields, e.g. a wrong password)."""
        fields: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": MECHANISM,
            "sasl_username": user,
            "sasl_password": self.passwords[user],
            "ca_file": self.ca_file,
        }
        return KafkaConnection(**{**fields, **changes})

    def env(self, bootstrap_servers: str) -> str:
        """`<PREFIX>KAFKA_*` lines for each component's own user, to `source` in a shell."""
        lines = []
        for prefix, user in (("COLLECTOR", "collector"), ("VALIDATOR", "validator"),
                             ("PRODUCER", "producer")):  # fmt: skip
            lines += [
                f"{prefix}_KAFKA_BOOTSTRAP_SERVERS={bootstrap_servers}",
                f"{prefix}_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
                f"{prefix}_KAFKA_SASL_MECHANISM={MECHANISM}",
                f"{prefix}_KAFKA_SASL_USERNAME={user}",
                f"{prefix}_KAFKA_SASL_PASSWORD={self.passwords[user]}",
                f"{prefix}_KAFKA_CA_FILE={self.ca_file}",
            ]
        return "\n".join(lines) + "\n"


def secured_broker(state_dir: Path, port: int, **broker: Any) -> tuple[Broker, Security]:
    """A `Broker` in `state_dir` whose only client listener is SASL_SSL on `port`."""
    security = Security(Path(state_dir) / "tls")
    security.prepare()
    node = Broker(state_dir, port=port, **broker)
    props = security.server_properties(port)
    props["listeners"] = props["listeners"].format(controller=node.controller_port)
    node.overrides = {**props, **node.overrides}
    node.format_args = security.format_args()
    node.client = security.connection(node.bootstrap_servers).client_config()
    env_file = Path(state_dir) / "sasl_ssl.env"
    env_file.touch(mode=0o600)
    os.chmod(env_file, 0o600)
    env_file.write_text(security.env(node.bootstrap_servers))
    return node, security
