"""What is parked and why: counts by reason, type, version and stage id; pure, fed by the CLI."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dlq.records import Parked, utc_text

_EXAMPLE_CHARS = 60


@dataclass
class Group:
    """Parked records sharing reason, event type, schema version and stage id."""

    reason: str
    event_type: str | None
    schema_version: str | None
    stage_id: str | None
    count: int
    first_ms: int
    last_ms: int
    example: Parked

    def as_json(self) -> dict[str, Any]:
        names = ("reason", "event_type", "schema_version", "stage_id", "count")
        out: dict[str, Any] = {name: getattr(self, name) for name in names}
        out.update(first=utc_text(self.first_ms), last=utc_text(self.last_ms),
                   example=self.example.origin)  # fmt: skip
        return out


def summarise(records: Iterable[Parked]) -> list[Group]:
    """One group per (reason, type, version, stage id), the largest first."""
    groups: dict[tuple[str, str | None, str | None, str | None], Group] = {}
    for parked in records:
        key = (parked.reason, parked.event_type, parked.schema_version, parked.stage_id)
        group = groups.get(key)
        if group is None:
            groups[key] = Group(*key, 1, parked.timestamp_ms, parked.timestamp_ms, parked)
            continue
        group.count += 1
        group.first_ms = min(group.first_ms, parked.timestamp_ms)
        group.last_ms = max(group.last_ms, parked.timestamp_ms)
    return sorted(groups.values(), key=lambda g: (-g.count, g.reason, str(g.event_type)))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Columns padded to their widest cell (ten lines of code rather than one more dependency)."""
    cells = [list(headers)] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]  # fmt: skip
    return "\n".join(lines)


def _short(body: bytes) -> str:
    text = body.decode("utf-8", "replace").replace("\n", " ")
    return text if len(text) <= _EXAMPLE_CHARS else text[: _EXAMPLE_CHARS - 1] + "…"


def summary_table(groups: list[Group]) -> str:
    rows = [
        (g.count, g.reason, g.event_type, g.schema_version, g.stage_id, utc_text(g.first_ms),
         utc_text(g.last_ms), f"{g.example.origin} {_short(g.example.body)}")
        for g in groups
    ]  # fmt: skip
    total = sum(g.count for g in groups)
    head = ("count", "reason", "event_type", "version", "stage_id", "first", "last", "example")
    return f"{table(head, rows)}\n{total} parked records in {len(groups)} groups"


def show_text(parked: Parked) -> str:
    """One parked record for a person: where, why, and the original bytes."""
    body = parked.as_json()
    raw = body.get("raw", body.get("raw_base64"))
    return (
        f"{parked.origin}  parked {body['parked']}  {parked.stage} {parked.stage_id or '-'}\n"
        f"  reason: {parked.reason}: {parked.message}\n"
        f"  event:  {parked.event_type or '-'} {parked.schema_version or '-'} "
        f"{parked.event_id or '-'}\n"
        f"  raw{'' if 'raw' in body else '_base64'}: {raw}"
    )
