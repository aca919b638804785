"""Reconciling a replay: what the topics hold against the rows of the files."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import uuid
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from kafkaconn import KafkaConnection
from kafkaconn.reading import read_to_end
from producer import rows, source

# Unexpected ids kept to show (`--show` prints up to this many of each kind).
_KEEP_IDS = 100
# The header `python -m dlq redrive` puts on a re-driven record: `<topic>/<partition>/<offset>`.
REDRIVEN_FROM = "redriven_from"


def digest(payload: Any) -> int:
    """A 64-bit fingerprint of a JSON value, independent of key order and number spelling."""
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return int.from_bytes(hashlib.blake2b(canonical, digest_size=8).digest(), "big")


@dataclass
class _File:
    rows: int
    # Copies seen per row (saturating at 255) and, when payloads are checked, their fingerprint:
    # a few bytes per row, so files of millions of rows reconcile in flat memory.
    seen: bytearray
    digests: array[int] | None


@dataclass
class Reconciler:
    """Counts topic records against the files' rows; pure, fed one record at a time."""

    row_counts: dict[str, int]
    check_payloads: bool = False
    event_type: str | None = None
    schema_version: str | None = None
    raw: int = 0
    dead_letter: int = 0
    duplicates: int = 0
    unexpected: int = 0
    payload_mismatches: int = 0
    other_files: int = 0
    # Dead-letter records re-driven to the raw (or validated) topic: counted there, not here.
    redriven: int = 0
    # Records of these files per `collector_id`: how the load was spread over the replicas.
    by_collector: Counter[str] = field(default_factory=Counter)
    # The first ids (or keys) of records that should not be there, to show a person.
    unexpected_ids: list[str] = field(default_factory=list)
    _files: dict[str, _File] = field(default_factory=dict, repr=False)
    # `<dead-letter topic>/<partition>/<offset>` of every re-driven record seen on the raw topic.
    _redriven_origins: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        for name, n in self.row_counts.items():
            digests = array("Q", bytes(8 * n)) if self.check_payloads else None
            self._files[name] = _File(n, bytearray(n), digests)

    def _locate(self, event_id: Any) -> tuple[_File, int] | Literal["other", "bad"]:
        """(file, row) for an id of these files, "other" for other files, "bad" if no such row."""
        if not isinstance(event_id, str) or ":" not in event_id:
            return "other"
        name, _, row_text = event_id.rpartition(":")
        file = self._files.get(name)
        if file is None:
            return "other"
        if not row_text.isdigit() or int(row_text) >= file.rows:
            return "bad"
        return file, int(row_text)

    def _mark(self, file: _File, row: int) -> None:
        if file.seen[row] == 1:
            self.duplicates += 1
        file.seen[row] = min(255, file.seen[row] + 1)

    def _malformed(self, key_id: str | None) -> None:
        """A record we cannot read: ours (by key) is unexpected, anyone else's is ignored."""
        if self._locate(key_id) == "other":
            self.other_files += 1
        else:
            self._unexpected(key_id)

    def _unexpected(self, what: Any) -> None:
        self.unexpected += 1
        if len(self.unexpected_ids) < _KEEP_IDS:
            self.unexpected_ids.append(str(what))

    def add_raw(self, key: bytes | None, value: bytes | None, headers: Any = None) -> None:
        # As confluent-kafka gives a consumed record's headers: a list of (name, value) pairs.
        for name, origin in headers or ():
            if name == REDRIVEN_FROM and origin:
                self._redriven_origins.add(origin.decode("utf-8", "replace"))
        key_id = key.decode("utf-8", "replace") if key is not None else None
        try:
            envelope = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            envelope = None
        if not isinstance(envelope, dict):
            self._malformed(key_id)
            return
        event_id = envelope.get("event_id")
        where = self._locate(event_id)
        if where == "other":
            if event_id is None:
                self._malformed(key_id)
            else:
                self.other_files += 1
            return
        if where == "bad":
            self._unexpected(event_id)
            return
        file, row = where
        self.raw += 1
        self.by_collector[str(envelope.get("collector_id"))] += 1
        self._mark(file, row)
        if key_id != event_id or not isinstance(envelope.get("payload"), dict):
            self._unexpected(event_id)
            return
        if self.check_payloads:
            self._check_envelope(envelope, file, row)

    def _check_envelope(self, envelope: dict[str, Any], file: _File, row: int) -> None:
        wrong_type = self.event_type is not None and envelope.get("event_type") != self.event_type
        wrong_version = (
            self.schema_version is not None
            and envelope.get("schema_version") != self.schema_version
        )
        assert file.digests is not None
        fingerprint = digest(envelope["payload"]) or 1  # 0 marks "not seen yet"
        differs = bool(file.digests[row]) and file.digests[row] != fingerprint
        if differs or wrong_type or wrong_version:
            self.payload_mismatches += 1
        file.digests[row] = fingerprint

    def add_dead_letter(
        self, key: bytes | None, value: bytes | None, origin: str | None = None
    ) -> None:
        """A dead-letter record is ours when the body it keeps names one of our event ids; one
        re-driven (its `origin` named by a raw record read before) is that raw record's row."""
        if origin is not None and origin in self._redriven_origins:
            self.redriven += 1
            return
        try:
            record = orjson.loads(value or b"")
            text = record.get("raw")
            body = _lenient(
                text if isinstance(text, str) else base64.b64decode(record.get("raw_base64") or "")
            )
        except (AttributeError, ValueError, RecursionError):
            self.other_files += 1
            return
        if isinstance(body, list):
            index = record.get("batch_index")
            body = body[index] if isinstance(index, int) and 0 <= index < len(body) else None
        event_id = body.get("event_id") if isinstance(body, dict) else None
        where = self._locate(event_id)
        if where == "other":
            self.other_files += 1
        elif where == "bad":
            self._unexpected(event_id)
        else:
            self.dead_letter += 1
            self._mark(*where)

    def expect_payloads(self, name: str, first_row: int, payload_texts: list[str]) -> None:
        """Compare the fingerprints of raw payloads seen with the source rows as converted."""
        file = self._files[name]
        assert file.digests is not None
        for offset, text in enumerate(payload_texts):
            seen = file.digests[first_row + offset]
            if seen and seen != (digest(orjson.loads(text)) or 1):
                self.payload_mismatches += 1

    def report(self, *, by_collector: bool = False) -> dict[str, Any]:
        expected = sum(f.rows for f in self._files.values())
        missing = sum(f.seen.count(0) for f in self._files.values())
        result: dict[str, Any] = {
            "expected": expected,
            "raw": self.raw,
            "dead_letter": self.dead_letter,
            "missing": missing,
            "duplicates": self.duplicates,
            "unexpected": self.unexpected + self.payload_mismatches,
            "other_files": self.other_files,
            "redriven": self.redriven,
        }
        if self.check_payloads:
            result["payload_mismatches"] = self.payload_mismatches
        if by_collector:
            result["by_collector"] = dict(sorted(self.by_collector.items()))
        return result

    def offenders(self, limit: int) -> dict[str, list[str]]:
        """The first `limit` event ids missing, sent more than once, and unexpected."""
        missing: list[str] = []
        duplicated: list[str] = []
        for name, file in self._files.items():
            row = file.seen.find(0)
            while row >= 0 and len(missing) < limit:
                missing.append(f"{name}:{row}")
                row = file.seen.find(0, row + 1)
            if self.duplicates and len(duplicated) < limit:
                many = (r for r, copies in enumerate(file.seen) if copies > 1)
                duplicated += [f"{name}:{r}" for r in itertools.islice(many, limit)]
        return {
            "missing": missing,
            "duplicates": duplicated[:limit],
            "unexpected": self.unexpected_ids[:limit],
        }

    @property
    def ok(self) -> bool:
        report = self.report()
        return bool(report["missing"] == 0 and report["unexpected"] == 0)


def _lenient(kept: str | bytes) -> Any:
    """A kept body as JSON, else as Python reads it: a bare NaN (a pandas client's `json.dumps`)
    is not JSON, yet the body still names its event_id, so the row counts as parked."""
    try:
        return orjson.loads(kept)
    except orjson.JSONDecodeError:
        return json.loads(kept)


def reconcile(
    files: list[tuple[str, Path]],
    *,
    connection: KafkaConnection,
    raw_topic: str,
    dead_letter_topic: str,
    check_payloads: bool = False,
    event_type: str | None = None,
    schema_version: str | None = None,
    timeout_s: float = 120.0,
    max_rows: int | None = None,
) -> Reconciler:
    """Read both topics to their ends and compare them with `files` (display name, local path)."""
    counts = {name: source.row_count(path) for name, path in files}
    if max_rows is not None:
        # A replay with --max-records N sent the first N rows of each file it read.
        counts = {name: min(n, max_rows) for name, n in counts.items()}
    reconciler = Reconciler(
        counts,
        check_payloads=check_payloads,
        event_type=event_type,
        schema_version=schema_version,
    )
    # A group id of its own: nothing is committed, but librdkafka wants one.
    config = connection.client_config({"group.id": f"producer-reconcile-{uuid.uuid4()}"})
    for message in read_to_end(config, raw_topic, timeout_s):
        reconciler.add_raw(message.key(), message.value(), message.headers())
    # After the raw topic: its re-driven records name the dead-letter records they replace.
    for message in read_to_end(config, dead_letter_topic, timeout_s):
        origin = f"{dead_letter_topic}/{message.partition()}/{message.offset()}"
        reconciler.add_dead_letter(message.key(), message.value(), origin)
    if check_payloads:
        for name, path in files:
            for part in source.iter_row_batches(path):
                batch = part.batch.slice(0, max(0, counts[name] - part.first_row))
                if not batch.num_rows:
                    break
                texts = rows.payloads(batch).to_pylist()
                reconciler.expect_payloads(name, part.first_row, texts)
    return reconciler
