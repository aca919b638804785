"""`--collector-url` takes the base URL or a collect endpoint's URL, and refuses anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from producer.settings import ReplaySettings
from producer.urls import collector_base_url
from tests.producer.conftest import StandIn
from tests.producer.test_cli import producer, summary_of


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("http://h:8000", "http://h:8000"),
        ("http://h:8000/", "http://h:8000"),
        ("http://h:8000/api/v1/collect", "http://h:8000"),
        ("http://h:8000/api/v1/collect/", "http://h:8000"),
        ("http://h:8000/api/v1/collect/batch", "http://h:8000"),
        ("http://h:8000/api/v1/collect/batch/", "http://h:8000"),
        ("https://gw.example/events/api/v1/collect", "https://gw.example/events"),
        (" http://collector ", "http://collector"),
    ],
)
def test_base_url_from_every_accepted_form(given: str, base: str) -> None:
    assert collector_base_url(given) == base
    assert ReplaySettings(collector_url=given).collector_url == base


@pytest.mark.parametrize(
    "given",
    [
        "http://h:8000/api/v1",
        "http://h:8000/api/v1/colect",
        "http://h:8000/docs",
        "http://h:8000/api/v1/collect/batch/x",
        "http://h:8000/api/v1/collect?x=1",
        "h:8000",
        "ftp://h/api/v1/collect",
        "http:///api/v1/collect",
    ],
)
def test_other_urls_are_refused_naming_the_accepted_forms(given: str) -> None:
    with pytest.raises(ValueError, match=r"base URL .*/api/v1/collect/batch"):
        collector_base_url(given)


@pytest.mark.parametrize(
    ("suffix", "batch_size", "path"),
    [
        ("", 1, "/api/v1/collect"),
        ("/", 5, "/api/v1/collect/batch"),
        ("/api/v1/collect", 1, "/api/v1/collect"),
        ("/api/v1/collect/", 5, "/api/v1/collect/batch"),
        ("/api/v1/collect/batch", 1, "/api/v1/collect"),
        ("/api/v1/collect/batch/", 5, "/api/v1/collect/batch"),
    ],
)
def test_replay_reaches_the_right_route_from_each_form(
    samples: list[Path], stand_in: StandIn, suffix: str, batch_size: int, path: str
) -> None:
    result = producer(
        "replay",
        str(samples[0]),
        "--collector-url",
        stand_in.url + suffix,
        "--max-records",
        "10",
        "--batch-size",
        str(batch_size),
    )
    assert result.returncode == 0, result.stderr
    assert summary_of(result.stdout)["accepted"] == 10
    assert set(stand_in.paths) == {path}


def test_a_url_with_another_path_exits_2_saying_which_forms_work(samples: list[Path]) -> None:
    result = producer("replay", str(samples[0]), "--collector-url", "http://127.0.0.1:9/api/v2")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "--collector-url" in result.stderr
    assert "http://HOST:PORT/api/v1/collect" in result.stderr
    env = producer("replay", str(samples[0]), env={"PRODUCER_COLLECTOR_URL": "http://x/y"})
    assert env.returncode == 2
    assert "'/y'" in env.stderr
