"""Wiring: settings, sink, metrics and the envelope logic put together into the ASGI app.

Where things live: `problems` (every error code), `service` (the collect logic), `front` (the
ASGI app: the collect routes, the one catch-all), `api` (the documented FastAPI app), `routes`
(every path).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from collector.api import build_api
from collector.docs import docs_url
from collector.envelope import Clock, Enveloper, IdSource, utc_now, uuid7
from collector.front import CollectorApp
from collector.metrics import Metrics
from collector.routes import collect_handlers
from collector.service import CollectService
from collector.settings import Settings
from collector.sinks import KafkaSink, Sink, producer_config

log = logging.getLogger("collector")


def kafka_sink(settings: Settings) -> KafkaSink:
    """The real sink, configured from the settings."""
    config = producer_config(settings.kafka, settings.ack_timeout_s, settings.max_body_bytes)
    return KafkaSink(
        config,
        check_topics=(settings.raw_topic, settings.dead_letter_topic),
        readiness_interval_s=settings.readiness_interval_s,
    )


def create_app(
    settings: Settings,
    sink: Sink,
    *,
    clock: Clock = utc_now,
    new_id: IdSource = uuid7,
) -> CollectorApp:
    """Wire settings, sink, metrics and the envelope logic into the ASGI app."""
    metrics = Metrics(queue_depth=sink.queue_depth, kafka_up=lambda: float(sink.ready))
    enveloper = Enveloper(
        settings.collector_id,
        clock=clock,
        new_id=new_id,
        max_batch_events=settings.max_batch_events,
    )
    service = CollectService(settings, sink, metrics, enveloper)
    # The topics' max.message.bytes, read by the sink, bound the body limit (collector.limits).
    sink.watch_limits(service.fit_topics)
    metrics.ready.set_function(lambda: float(service.ready))
    collect = collect_handlers(service)

    @asynccontextmanager
    async def lifespan(_api: FastAPI) -> AsyncIterator[None]:
        # The sink lives as long as the app: started before the first request, flushed after
        # the last one (the server has already waited for requests in flight).
        await sink.start()
        log.info(
            "collector started",
            extra={
                "collector_id": settings.collector_id,
                "raw_topic": settings.raw_topic,
                "docs": docs_url(settings.host, settings.port),
            },
        )
        if not settings.api_keys:
            log.warning(
                "no API keys: every request is accepted without one (COLLECTOR_ALLOW_ANONYMOUS)"
            )
        try:
            yield
        finally:
            service.draining = True
            left = await sink.close(settings.drain_timeout_s)
            log.info("collector stopped", extra={"undelivered": left})

    api = build_api(settings, service, tuple(collect), lifespan)
    return CollectorApp(api, service, collect, settings.cors_origins)
