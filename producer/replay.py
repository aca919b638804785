"""Replaying files: read and convert in a worker thread, pace, send concurrently, report."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson
import pyarrow as pa

from console.tables import table
from producer import reasons, rows, source
from producer.client import Poster
from producer.pacing import Pacer
from producer.sending import EncodedEvent, RetryPolicy, Sender, Stats
from producer.settings import ReplaySettings

_DONE = None  # end of input, one per worker
# This many requests all turned away the same way (401, 403 or 404) and nothing accepted: the
# URL or the key is wrong, and the rest of the file would only fail the same way.
TURNED_AWAY_REQUESTS = 5
# Below this share of the asked rate, with no retries, the settings are the limit, not the
# collector.
RATE_SHORTFALL = 0.8


def turned_away(stats: Stats, collector_url: str) -> str | None:
    """Why to stop early, when every request so far was answered 401, 403 or 404 alike."""
    if stats.accepted or stats.rejected or len(stats.statuses) != 1:
        return None
    ((status, count),) = stats.statuses.items()
    if not status.isdigit() or int(status) not in reasons.TURNED_AWAY:
        return None
    if count < TURNED_AWAY_REQUESTS:
        return None
    key, reason = next(
        ((k, r) for k, r in stats.reasons.by_key.items() if k.startswith(status + " ")),
        (status, None),
    )
    said = f' ("{reason.message}")' if reason else ""
    hint = (
        "is --api-key (PRODUCER_API_KEY) one of the collector's keys?"
        if status in {"401", "403"}
        else f"is {collector_url} the collector's address?"
    )
    return (
        f"stopped early: the first {count} requests were all answered {key}{said}; {hint} "
        "The rest of the input was not sent."
    )


def unreachable(stats: Stats, collector_url: str, waited_s: float, limit_s: float) -> str | None:
    """Why to stop early, when no attempt has connected (refused, unknown host) for `limit_s`."""
    if stats.accepted or stats.rejected or set(stats.statuses) != {"ConnectError"}:
        return None
    if waited_s < limit_s:
        return None
    return (
        f"stopped early: could not connect to {collector_url} for {waited_s:.0f} s "
        f"({stats.last_retry}); is the collector running, and is --collector-url "
        "(PRODUCER_COLLECTOR_URL) its address? The rest of the input was not sent."
    )


@dataclass
class Summary:
    stats: Stats
    seconds: float
    files: list[str]
    stopped: bool
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            "records": s.records,
            "accepted": s.accepted,
            "rejected": s.rejected,
            "failed": s.failed,
            "seconds": round(self.seconds, 3),
            "rate_per_s": round(s.done / self.seconds, 1) if self.seconds > 0 else 0.0,
            "retries": s.retries,
            "reconnects": s.reconnects,
            "files": self.files,
            "stopped": self.stopped,
            "reasons": s.reasons.as_dict(),
            **({"error": self.error} if self.error else {}),
        }

    def line(self) -> str:
        return orjson.dumps(self.as_dict()).decode()

    def tables(self) -> str:
        """The run, and why events did not get through, as tables a person reads."""
        s = self.stats
        rate = s.done / self.seconds if self.seconds > 0 else 0.0
        headers = ["files", "records", "accepted", "rejected", "failed", "retries", "seconds"]
        text = table(
            [*headers, "events/s"],
            [[", ".join(self.files), s.records, s.accepted, s.rejected, s.failed, s.retries,
              self.seconds, rate]],
        )  # fmt: skip
        if s.reasons.by_key:
            rows = [[key, r.outcome, r.count, r.message] for key, r in s.reasons.by_key.items()]
            text += "\n\n" + table(["reason", "outcome", "events", "first message"], rows)
        return text


def units_of(
    paths: list[tuple[str, Path]], settings: ReplaySettings
) -> Generator[list[EncodedEvent], None, None]:
    """The events to send, `batch_size` per unit, up to `max_records` in all; a read error
    names its file."""
    budget = settings.max_records
    for name, path in paths:
        if budget is not None and budget <= 0:
            return
        try:
            used = yield from _units_of_file(name, path, settings, budget)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise source.SourceError(f"{name}: {type(exc).__name__}: {exc}") from exc
        if budget is not None:
            budget -= used


def _units_of_file(
    name: str, path: Path, settings: ReplaySettings, budget: int | None
) -> Generator[list[EncodedEvent], None, int]:
    """One file's events, at most `budget`; returns how many."""
    used = 0
    size = settings.batch_size
    for part in source.iter_row_batches(path, settings.read_batch_rows):
        left = None if budget is None else budget - used
        if left is not None and left <= 0:
            break
        batch = part.batch if left is None else part.batch.slice(0, left)
        bodies = rows.event_bodies(
            batch,
            file_name=name,
            first_row=part.first_row,
            event_type=settings.event_type,
            schema_version=settings.schema_version,
        )
        used += len(bodies)
        events = [
            EncodedEvent(f"{name}:{part.first_row + i}", body) for i, body in enumerate(bodies)
        ]
        for start in range(0, len(events), size):
            yield events[start : start + size]
    return used


def _take(
    units: Iterator[list[EncodedEvent]], n: int
) -> tuple[list[list[EncodedEvent]], OSError | ValueError | pa.ArrowException | None]:
    """Up to `n` units, and the read error that ended them early, if any."""
    chunk: list[list[EncodedEvent]] = []
    try:
        chunk.extend(itertools.islice(units, n))
    except (OSError, ValueError, pa.ArrowException) as exc:
        return chunk, exc
    return chunk, None


class Progress:
    """A tqdm bar on a terminal, else a plain line every `interval_s`, both on stderr."""

    def __init__(self, stats: Stats, total: int, interval_s: float, stream: TextIO) -> None:
        self._stats, self._total, self._interval_s = stats, total, interval_s
        self._stream = stream
        self._bar: Any = None
        if stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="ev", file=stream, dynamic_ncols=True)
        self._shown = 0
        self._started_s = time.monotonic()

    def update(self) -> None:
        s = self._stats
        if self._bar is not None:
            self._bar.update(s.done - self._shown)
            counts = {key: r.count for key, r in s.reasons.by_key.items()}
            self._bar.set_postfix(
                accepted=s.accepted, rejected=s.rejected, failed=s.failed, retries=s.retries,
                **({"why": counts} if counts else {}),
                **({"last_retry": s.last_retry} if s.last_retry else {}), refresh=False,
            )  # fmt: skip
            self._shown = s.done
            return
        elapsed_s = time.monotonic() - self._started_s
        rate = s.done / elapsed_s if elapsed_s > 0 else 0.0
        why = s.reasons.line()
        print(
            f"progress: {s.done}/{self._total} done, accepted {s.accepted}, rejected "
            f"{s.rejected}, failed {s.failed}, retries {s.retries}, {rate:.0f} events/s"
            + (f" | last retry: {s.last_retry}" if s.last_retry else "")
            + (f" | {why}" if why else ""),
            file=self._stream,
            flush=True,
        )

    async def run(self) -> None:
        period_s = 0.2 if self._bar is not None else self._interval_s
        while True:
            await asyncio.sleep(period_s)
            self.update()

    def close(self) -> None:
        self.update()
        if self._bar is not None:
            self._bar.close()


class _Run:
    """One replay: its state, and one method per job (reading, sending, watching, draining)."""

    def __init__(
        self,
        paths: list[tuple[str, Path]],
        settings: ReplaySettings,
        client: Poster,
        stop: asyncio.Event,
        stderr: TextIO,
        sender_factory: Callable[[Poster, Stats], Sender] | None,
        rate_check_s: float,
    ) -> None:
        self.paths, self.settings, self.client = paths, settings, client
        self.stop, self.stderr, self.rate_check_s = stop, stderr, rate_check_s
        self.stats = Stats()
        policy = RetryPolicy(
            max_attempts=settings.max_attempts,
            max_elapsed_s=settings.max_retry_s,
            base_s=settings.backoff_base_s,
            cap_s=settings.backoff_cap_s,
        )
        self.sender = (sender_factory or (lambda c, s: Sender(c, s, policy)))(client, self.stats)
        self.pacer = Pacer(settings.rate_per_s)
        self.queue: asyncio.Queue[list[EncodedEvent] | None] = asyncio.Queue(
            maxsize=2 * settings.concurrency
        )
        self.total = sum(source.row_count(path) for _, path in paths)
        if settings.max_records is not None:
            self.total = min(self.total, settings.max_records)
        self.errors: list[str] = []
        # Set once the lead sender's first unit is answered: the others and the rate check wait.
        self.warmed = asyncio.Event()

    async def run(self) -> Summary:
        started_s = time.monotonic()
        settings = self.settings
        progress = Progress(self.stats, self.total, settings.progress_interval_s, self.stderr)
        jobs = (progress.run(), self._give_up_on_stop(), self._watch_connections())
        helpers = [asyncio.create_task(job) for job in jobs]
        if settings.rate_per_s > 0:
            helpers.append(asyncio.create_task(self._watch_rate()))
        try:
            await asyncio.gather(
                self._read(), *(self._send(lead=i == 0) for i in range(settings.concurrency))
            )
        finally:
            for task in helpers:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.stats.reconnects = self.client.reconnects
            progress.close()
        return Summary(
            self.stats,
            time.monotonic() - started_s,
            [name for name, _ in self.paths],
            self.stop.is_set(),
            self.errors[0] if self.errors else None,
        )

    async def _read(self) -> None:
        # Reading and converting run in a thread (Arrow releases the GIL), one batch at a time.
        settings, stop = self.settings, self.stop
        units = units_of(self.paths, settings)
        # One thread hop per read batch, not per unit: for single events a hop per event
        # costs as much as sending it.
        take = settings.read_batch_rows // settings.batch_size or 1
        try:
            while not stop.is_set():
                chunk, error = await asyncio.to_thread(_take, units, take)
                for unit in chunk:
                    if stop.is_set():
                        break
                    await self.queue.put(unit)
                if error is not None:
                    # A file that cannot be read on: what was read is still sent and summarised.
                    self.errors.append(str(error))  # a SourceError: names its file
                    break
                if len(chunk) < take:
                    break
        finally:
            with contextlib.suppress(ValueError):  # still running in its thread if cancelled
                units.close()
            for _ in range(settings.concurrency):
                await self.queue.put(_DONE)

    async def _send(self, lead: bool) -> None:
        # The lead sends the first unit alone; the schedule starts once it is answered, so
        # the first connection and lazy imports are not caught up on with a burst after.
        if not lead:
            await self.warmed.wait()
        try:
            while (unit := await self.queue.get()) is not _DONE:
                if self.stop.is_set():
                    continue  # not sent, not counted: drain the queue to reach the end marker
                await self._send_unit(unit)
                if not self.warmed.is_set():
                    self.pacer.resync()
                    self.warmed.set()
        finally:
            self.warmed.set()

    async def _send_unit(self, unit: list[EncodedEvent]) -> None:
        await self.pacer.acquire(len(unit))
        if self.settings.batch_size > 1:
            await self.sender.send_batch(unit)
        else:
            await self.sender.send(unit[0])
        if not self.stop.is_set() and (why := turned_away(self.stats, self.settings.collector_url)):
            self.errors.append(why)
            self.stop.set()

    async def _give_up_on_stop(self) -> None:
        await self.stop.wait()
        self.sender.give_up_after(self.settings.drain_timeout_s)

    async def _watch_connections(self) -> None:
        """Nothing connects (refused, unknown host): say so now, not when the retries run out."""
        stats, settings, stop = self.stats, self.settings, self.stop
        started_s = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.2)
            waited_s = time.monotonic() - started_s
            if why := unreachable(stats, settings.collector_url, waited_s, settings.unreachable_s):
                self.errors.append(why)
                self.sender.give_up_after(0.0)
                stop.set()

    async def _watch_rate(self) -> None:
        # Once, after a few seconds of sending: is the asked rate out of reach of these settings?
        stats = self.stats
        await self.warmed.wait()
        done_before, since_s = stats.done, time.monotonic()
        retries_before = stats.retries
        await asyncio.sleep(self.rate_check_s)
        achieved = (stats.done - done_before) / (time.monotonic() - since_s)
        if self.stop.is_set() or stats.retries > retries_before:
            return  # stopping, or the collector pushed back: a bigger batch would not help
        if achieved < RATE_SHORTFALL * self.settings.rate_per_s:
            self._warn_rate_out_of_reach(achieved)

    def _warn_rate_out_of_reach(self, achieved: float) -> None:
        settings = self.settings
        more = (
            "--batch-size 100 sends 100 events per request"
            if settings.batch_size == 1
            else "a larger --batch-size or --concurrency sends more per second"
        )
        print(
            f"warning: --rate {settings.rate_per_s:g} events/s is out of reach with "
            f"{settings.batch_size} event(s) per request and {settings.concurrency} requests "
            f"in flight: reaching {achieved:.0f} events/s with no retries; {more}",
            file=self.stderr,
            flush=True,
        )


async def replay(
    paths: list[tuple[str, Path]],
    settings: ReplaySettings,
    client: Poster,
    *,
    stop: asyncio.Event | None = None,
    stderr: TextIO = sys.stderr,
    sender_factory: Callable[[Poster, Stats], Sender] | None = None,
    rate_check_s: float = 3.0,
) -> Summary:
    """Send every row of `paths` (display name, local path) to the collector behind `client`."""
    run = _Run(
        paths, settings, client, stop or asyncio.Event(), stderr, sender_factory, rate_check_s
    )
    return await run.run()
