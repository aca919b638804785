"""BASELINE: the tutorial-style collector we started from, kept only to benchmark against.

FastAPI with a pydantic model parameter, metadata with a new uuid4 and a timestamp, an INFO log
line per event, and no Kafka at all: nothing is stored. Not production code; do not copy it.
"""

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
logger = logging.getLogger("collector")


class Event(BaseModel):
    event_type: str
    schema_version: str
    payload: dict[str, Any]
    event_id: str | None = None


class Processor:
    def __init__(self, collector_id: str) -> None:
        self.collector_id = collector_id

    def process(self, event: Event) -> dict[str, Any]:
        data = event.model_dump()
        data["metadata"] = {
            "root_id": str(uuid.uuid4()),
            "collector_timestamp": datetime.now(UTC).isoformat(),
            "collector_id": self.collector_id,
        }
        logger.info("collected event %s", json.dumps(data, default=str))
        return data


app = FastAPI(title="tutorial collector (baseline)")
processor = Processor("tutorial-collector")


@app.post("/api/v1/collect")
async def collect(event: Event) -> dict[str, Any]:
    processed = processor.process(event)
    return {"status": "success", "root_id": processed["metadata"]["root_id"]}
