"""Opt-in CORS: preflights answered on the collect routes when origins are set, else nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from collector.schemas import TAXI_EVENT
from collector.settings import Settings
from tests.collector.conftest import RAW
from tests.collector.memory_sink import MemorySink

pytestmark = pytest.mark.anyio

Serve = Callable[..., Any]
TAXI = orjson.dumps(TAXI_EVENT)
SHOP = "https://shop.example"
ROUTES = ("/api/v1/collect", "/api/v1/collect/batch")


def preflight(origin: str, headers: str = "content-type") -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": headers,
    }


def test_origins_are_read_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLLECTOR_CORS_ORIGINS", f"{SHOP}, https://blog.example ,")
    assert Settings(allow_anonymous=True).cors_origins == (SHOP, "https://blog.example")
    monkeypatch.delenv("COLLECTOR_CORS_ORIGINS")
    assert Settings(allow_anonymous=True).cors_origins == ()


async def test_without_origins_nothing_is_added(serve: Serve) -> None:
    sink = MemorySink()
    async with serve(sink) as (client, _):
        for route in ROUTES:
            answer = await client.options(route, headers=preflight(SHOP))
            assert answer.status_code == 405  # no preflight support: the browser refuses
            assert not [h for h in answer.headers if h.startswith("access-control-")]
        posted = await client.post(ROUTES[0], content=TAXI, headers={"origin": SHOP})
    assert posted.status_code == 202
    assert not [h for h in posted.headers if h.startswith("access-control-")]
    assert len(sink.records) == 1


@pytest.mark.parametrize("route", ROUTES)
async def test_a_preflight_from_an_allowed_origin_is_answered(serve: Serve, route: str) -> None:
    sink = MemorySink()
    async with serve(sink, cors_origins=(SHOP,), api_keys=("k1",)) as (client, _):
        answer = await client.options(
            route, headers=preflight(SHOP, "content-type, content-encoding, authorization")
        )
    # Preflights carry no credentials: they are answered before the API key is asked for.
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == SHOP
    assert "POST" in answer.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "content-encoding", "authorization"} <= allowed
    assert int(answer.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in answer.headers
    assert "origin" in answer.headers["vary"].lower()
    assert sink.records == []


async def test_a_preflight_from_another_origin_or_for_other_headers_is_refused(
    serve: Serve,
) -> None:
    async with serve(MemorySink(), cors_origins=(SHOP,)) as (client, _):
        stranger = await client.options(ROUTES[0], headers=preflight("https://evil.example"))
        odd_header = await client.options(ROUTES[0], headers=preflight(SHOP, "x-forged"))
    for answer in (stranger, odd_header):
        assert answer.status_code == 400
    assert "access-control-allow-origin" not in stranger.headers


async def test_answers_to_allowed_origins_carry_the_cors_headers(serve: Serve) -> None:
    sink = MemorySink()
    async with serve(sink, cors_origins=(SHOP,), ack_timeout_s=0.2) as (client, _):
        accepted = await client.post(
            ROUTES[0], content=TAXI, headers={"origin": SHOP, "content-type": "application/json"}
        )
        batch = await client.post(ROUTES[1], content=b"[" + TAXI + b"]", headers={"origin": SHOP})
        sink.hold = True
        retry = await client.post(ROUTES[0], content=TAXI, headers={"origin": SHOP})
        stranger = await client.post(
            ROUTES[0], content=TAXI, headers={"origin": "https://evil.example"}
        )
    assert (accepted.status_code, batch.status_code, retry.status_code) == (202, 202, 503)
    for answer in (accepted, batch, retry):
        assert answer.headers["access-control-allow-origin"] == SHOP
    # The page may read how long to wait before resending.
    assert "retry-after" in retry.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in stranger.headers
    assert stranger.status_code == 503  # held sink: CORS changes no outcome


async def test_a_text_plain_beacon_needs_no_preflight_and_is_stored(serve: Serve) -> None:
    sink = MemorySink()
    async with serve(sink, cors_origins=(SHOP,)) as (client, _):
        answer = await client.post(
            ROUTES[0],
            content=TAXI,
            headers={"origin": SHOP, "content-type": "text/plain;charset=UTF-8"},
        )
    assert answer.status_code == 202
    assert [record.topic for record in sink.records] == [RAW]


async def test_any_origin_with_a_star(serve: Serve) -> None:
    async with serve(MemorySink(), cors_origins=("*",)) as (client, _):
        answer = await client.options(ROUTES[1], headers=preflight("https://any.example"))
        posted = await client.post(ROUTES[0], content=TAXI, headers={"origin": "https://x.example"})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "*"
    assert posted.headers["access-control-allow-origin"] == "*"
