"""The local broker itself: a real round trip, and the start/stop life cycle of `make kafka-up`."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from confluent_kafka import Producer

from devstack.kafka import Broker, KafkaSetupError, fetch_jars, read_topic
from devstack.kafka import broker as broker_module
from devstack.kafka import jars as jars_module
from devstack.kafka.jars import check_jars
from devstack.proc import ROOT, free_port, process_alive, wait_until
from tests.conftest import Topics


@pytest.mark.kafka
def test_round_trip_keeps_key_headers_and_value(kafka: Broker, topics: Topics) -> None:
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "acks": "all"})
    errors: list[object] = []
    sent = [
        (f"key-{i}".encode(), f'{{"n": {i}, "text": "caf\\u00e9"}}'.encode()) for i in range(20)
    ]
    for key, value in sent:
        producer.produce(
            topics.raw,
            key=key,
            value=value,
            headers=[("event_type", b"Probe"), ("n", key)],
            on_delivery=lambda err, _msg: errors.append(err) if err else None,
        )
    assert producer.flush(30) == 0
    assert errors == []

    received = read_topic(kafka.bootstrap_servers, topics.raw)
    got = {m.key(): (m.value(), m.headers()) for m in received}
    assert len(received) == len(sent)
    for key, value in sent:
        assert got[key] == (value, [("event_type", b"Probe"), ("n", key)])


def _kafka_cli(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack.kafka", *args, "--dir", str(state_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
        check=False,
    )


@pytest.mark.kafka
@pytest.mark.slow
def test_up_down_twice_and_a_second_up_says_so(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "state"
    try:
        for _ in range(2):
            up = _kafka_cli("up", "--port", str(port), state_dir=state)
            assert up.returncode == 0, up.stderr
            assert f"up on 127.0.0.1:{port}" in up.stdout
            pid = Broker(state).running_pid()
            assert pid is not None

            again = _kafka_cli("up", "--port", str(port), state_dir=state)
            assert again.returncode == 0
            assert "already running" in again.stdout
            assert Broker(state).running_pid() == pid

            down = _kafka_cli("down", state_dir=state)
            assert down.returncode == 0
            assert "stopped" in down.stdout
            assert Broker(state).running_pid() is None
            assert not process_alive(pid, None)
    finally:
        Broker(state).stop()


@pytest.mark.tools
def test_second_fetch_reuses_the_cached_jars(monkeypatch: pytest.MonkeyPatch) -> None:
    jars = fetch_jars()

    def no_download(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("Maven ran although the jars are cached")

    monkeypatch.setattr(jars_module.subprocess, "run", no_download)
    assert fetch_jars() == jars
    assert any(jar.name.startswith("kafka_2.13-") for jar in jars.glob("*.jar"))


def test_virtualenv_is_up_to_date_so_make_reuses_it() -> None:
    # `make -q` exits 0 only when the stamp is newer than pyproject.toml: nothing to reinstall.
    result = subprocess.run(
        ["make", "-q", ".venv/.installed"], cwd=ROOT, capture_output=True, check=False
    )
    assert result.returncode == 0


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jars_module.shutil, "which", lambda _name: None)
    monkeypatch.setattr(jars_module.os, "geteuid", lambda: 1000)
    with pytest.raises(KafkaSetupError, match=r"java and mvn not found.*apt-get install"):
        jars_module.ensure_tools()


@pytest.mark.kafka
@pytest.mark.slow
def test_a_killed_test_run_leaves_no_broker_behind(tmp_path: Path) -> None:
    # What the session fixture does, in a process that is then killed without any clean-up.
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from devstack.kafka import Broker\n"
        "from devstack.proc import free_port\n"
        f"broker = Broker(Path({str(tmp_path)!r}), port=free_port(), die_with_parent=True)\n"
        "broker.start()\n"
        "print(broker.running_pid(), flush=True)\n"
        "time.sleep(600)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    ) as runner:
        _kill_and_check(runner, tmp_path)


def _kill_and_check(runner: subprocess.Popen[str], state: Path) -> None:
    try:
        assert runner.stdout is not None
        pid = int(runner.stdout.readline())
        assert process_alive(pid)
        runner.kill()
        runner.wait(timeout=10)
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not process_alive(pid), 60, "the broker's exit", every_s=0.2)
        assert not process_alive(pid), "the broker outlived the process that started it"
    finally:
        runner.kill()
        Broker(state).stop()


def test_cluster_ids_never_look_like_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first draw encodes to "-..." (0xF8 in the top bits); the tool would take it for a flag.
    draws = iter([uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(int=1)])
    monkeypatch.setattr(broker_module.uuid, "uuid4", lambda: next(draws))
    cluster_id = broker_module.new_cluster_id()
    assert not cluster_id.startswith("-")
    assert len(cluster_id) == 22


@pytest.mark.tools
def test_the_jars_are_checked_against_their_recorded_sha256(tmp_path: Path) -> None:
    jars = tmp_path / "libs"
    shutil.copytree(fetch_jars(), jars)  # fetch_jars itself checked the cached set
    check_jars(jars)
    kafka_jar = next(jars.glob("kafka_2.13-*.jar"))
    kafka_jar.write_bytes(kafka_jar.read_bytes() + b"\0")
    (jars / "extra-1.0.jar").write_bytes(b"PK")
    (jars / "log4j-core-2.24.3.jar").unlink()
    with pytest.raises(KafkaSetupError) as raised:
        check_jars(jars)
    message = str(raised.value)
    assert f"{kafka_jar.name}: sha256 " in message
    assert "extra-1.0.jar: sha256 " in message
    assert "recorded none" in message
    assert "log4j-core-2.24.3.jar: sha256 missing, recorded " in message


@pytest.mark.tools
def test_maven_fetches_with_strict_checksums_and_a_pinned_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pom = ET.parse(jars_module.POM).getroot()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    plugins = {
        p.findtext("m:artifactId", namespaces=ns): p.findtext("m:version", namespaces=ns)
        for p in pom.iterfind("m:build/m:plugins/m:plugin", ns)
    }
    assert plugins == {"maven-dependency-plugin": "3.8.1"}
    ran: list[list[str]] = []

    def record(cmd: list[str], **_kwargs: object) -> subprocess.CompletedProcess[str]:
        ran.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "stopped by the test")

    monkeypatch.setattr(jars_module.subprocess, "run", record)
    monkeypatch.setattr(jars_module, "ensure_tools", lambda: None)
    with pytest.raises(KafkaSetupError, match="stopped by the test"):
        fetch_jars(tmp_path / "libs")
    assert ran[0][:4] == ["mvn", "-B", "-q", "-C"]
