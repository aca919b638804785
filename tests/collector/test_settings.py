"""Settings: never open by accident, and a wrong one is named (never printed) with exit code 2.
And the size chain: the body limit shrinks to what the topics hold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from collector.limits import (
    DEAD_LETTER_ROOM,
    ENVELOPE_ROOM,
    fit_body_limit,
    largest_dead_letter,
    largest_envelope,
)
from collector.settings import Settings, SettingsProblem, load
from tests.collector.conftest import DLQ, RAW
from tests.collector.memory_sink import MemorySink
from tests.conftest import run_service

Serve = Callable[..., Any]
SECRET = "hunter2-do-not-print"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "COLLECTOR_ALLOW_ANONYMOUS"),
        ({"COLLECTOR_API_KEYS": " , "}, "COLLECTOR_API_KEYS"),
        ({"COLLECTOR_API_KEYS": ""}, "COLLECTOR_API_KEYS"),
        ({"COLLECTOR_API_KEYS": f"a {SECRET}"}, "COLLECTOR_API_KEYS"),
        ({"COLLECTOR_ALLOW_ANONYMOUS": "true",
          "COLLECTOR_KAFKA_PROPERTIES": f'{{"sasl.password": "{SECRET}", "x": [1]}}'},
         "COLLECTOR_KAFKA_PROPERTIES"),
        ({"COLLECTOR_ALLOW_ANONYMOUS": "true", "COLLECTOR_KAFKA_PROPERTIES": f"{SECRET}"},
         "COLLECTOR_KAFKA_PROPERTIES"),
        ({"COLLECTOR_API_KEYS": "k", "COLLECTOR_PORT": SECRET}, "COLLECTOR_PORT"),
    ],
)  # fmt: skip
def test_a_wrong_setting_is_named_never_printed_and_exits_2(
    env: dict[str, str], named: str
) -> None:
    result = run_service("collector", env)
    assert result.returncode == 2
    assert named in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_keys_needs_anonymous_access_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COLLECTOR_API_KEYS", "COLLECTOR_ALLOW_ANONYMOUS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SettingsProblem, match="COLLECTOR_ALLOW_ANONYMOUS=true"):
        load()
    monkeypatch.setenv("COLLECTOR_ALLOW_ANONYMOUS", "true")
    assert load().api_keys == ()
    monkeypatch.setenv("COLLECTOR_API_KEYS", "k1, k2")
    assert load().api_keys == ("k1", "k2")
    assert "k1" not in repr(load())


def test_keys_win_over_anonymous() -> None:
    settings = Settings(api_keys=("k",), allow_anonymous=True)
    assert settings.api_keys == ("k",)


def test_the_chain_fits_the_body_to_the_topics() -> None:
    mib = 1_048_576
    roomy = fit_body_limit(mib, (RAW, 2 * mib), (DLQ, 2 * mib))
    assert (roomy.body_bytes, roomy.short) == (mib, None)
    # Kafka's default (1 MiB + 12): the dead-letter topic cannot hold a 1 MiB body as base64.
    stock = fit_body_limit(mib, (RAW, mib + 12), (DLQ, mib + 12))
    assert stock.body_bytes == (mib + 12 - DEAD_LETTER_ROOM) // 4 * 3
    assert largest_dead_letter(stock.body_bytes) <= mib + 12
    assert stock.short is not None
    assert DLQ in stock.short
    assert f"{largest_dead_letter(mib):,}" in stock.short
    narrow_raw = fit_body_limit(mib, (RAW, 500_000), (DLQ, 4 * mib))
    assert narrow_raw.body_bytes == 500_000 - ENVELOPE_ROOM
    assert largest_envelope(narrow_raw.body_bytes) == 500_000
    assert narrow_raw.short is not None
    assert RAW in narrow_raw.short


pytestmark = pytest.mark.anyio


async def test_a_body_the_topics_cannot_hold_gets_413_not_202(serve: Serve) -> None:
    sink = MemorySink()
    small = orjson.dumps({"event_type": "T", "schema_version": "1", "payload": {"s": "x" * 900}})
    large = orjson.dumps({"event_type": "T", "schema_version": "1", "payload": {"s": "x" * 20_000}})
    async with serve(sink) as (client, app):
        assert (await client.post("/api/v1/collect", content=large)).status_code == 202
        for watcher in sink.watchers:  # the topics turn out to hold 64 KiB records
            watcher({RAW: 65_536, DLQ: 65_536})
        limit = app.service.max_body_bytes
        assert limit == (65_536 - DEAD_LETTER_ROOM) // 4 * 3
        assert len(small) < limit < len(large)
        assert (await client.post("/api/v1/collect", content=small)).status_code == 202
        answer = await client.post("/api/v1/collect", content=large)
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "body_too_large"
        metrics = (await client.get("/metrics")).text
        assert f"collector_body_limit_bytes {float(limit)}" in metrics
