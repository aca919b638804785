"""The local overlay's front door: an event posted from this machine through the collector's
node port must be answered 202 and be found on the raw topic."""

from __future__ import annotations

import urllib.request
import uuid

import orjson

from collector.schemas import TAXI_EVENT
from devstack.k8s_e2e.kubectl import E2EError, kubectl, kubectl_json, wait_for
from devstack.k8s_e2e.report import Report
from devstack.reporting import say


def node_address() -> str:
    for node in kubectl_json("nodes")["items"]:
        for address in node["status"].get("addresses", []):
            if address["type"] == "InternalIP":
                return str(address["address"])
    raise E2EError("no node has an InternalIP address to reach a NodePort on")


def post(url: str, body: bytes) -> dict[str, object]:
    """POST `body` from this machine; the JSON reply of a 202, else E2EError."""
    headers = {"content-type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - http by design
            status, reply = answer.status, orjson.loads(answer.read())
    except OSError as exc:
        raise E2EError(f"POST {url} from this machine failed: {exc}") from exc
    if status != 202:
        raise E2EError(f"POST {url} from this machine answered {status}, not 202")
    return dict(reply)


def post_through_the_node_port(report: Report) -> None:
    """An event from this machine through the collector-debug Service's node port: 202, and the
    event on the raw topic."""
    service = kubectl_json("service", "collector-debug")
    port = next(p["nodePort"] for p in service["spec"]["ports"] if p.get("nodePort"))
    url = f"http://{node_address()}:{port}/api/v1/collect"
    event_id = f"front-door:{uuid.uuid4()}"
    root_id = str(post(url, orjson.dumps({**TAXI_EVENT, "event_id": event_id}))["root_id"])
    say(f"    POST {url}: 202, root_id {root_id}")

    def on_the_topic() -> str | None:
        records = kubectl(
            "exec", "kafka-0", "--", "/opt/kafka/bin/kafka-console-consumer.sh",
            "--bootstrap-server", "localhost:9092", "--topic", "raw-events", "--from-beginning",
            "--timeout-ms", "10000",
            timeout_s=120, check=False,
        )  # fmt: skip
        return None if root_id in records and event_id in records else "not on raw-events yet"

    wait_for(f"root_id {root_id} on raw-events", on_the_topic, timeout_s=120)
    report.front_door = f"`POST {url}` from this machine: 202, root_id `{root_id}` on raw-events"
