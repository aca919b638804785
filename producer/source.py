"""Parquet files as streams of record batches, from a local path or an http(s) URL."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

DOWNLOAD_CHUNK_BYTES = 1 << 20
# Read column chunks through a small buffer instead of whole: memory stays flat with row groups
# of any size.
_READ_BUFFER_BYTES = 1 << 20


class SourceError(ValueError):
    """A file or URL that cannot be read; the message starts with the file or URL."""


def is_url(location: str) -> bool:
    return urlsplit(location).scheme in ("http", "https")


def file_name(location: str) -> str:
    """The last path segment: `.../yellow_tripdata_2023-01.parquet?x=1` -> the parquet name."""
    if is_url(location):
        return unquote(urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]) or location
    return Path(location).name


class ChecksumError(ValueError):
    """A file's sha256 is not the one expected: it is not read at all."""


def _check(location: str, actual: str, expected: str | None) -> None:
    if expected is not None and actual != expected.lower():
        raise ChecksumError(
            f"{location}: sha256 is {actual}, expected {expected.lower()}; not replaying it"
        )


@contextlib.contextmanager
def local_copy(
    location: str, client: httpx.Client | None = None, *, sha256: str | None = None
) -> Iterator[Path]:
    """A path to read `location` from: itself, or a temporary download streamed to disk.

    Parquet needs random access (footer first), so a URL is streamed into a temporary file in
    fixed chunks rather than held in memory; the file is removed afterwards. With `sha256`, the
    file's digest (taken while it streams in) must match, or ChecksumError.
    """
    if not is_url(location):
        if sha256 is not None:
            with open(location, "rb") as local:
                _check(location, hashlib.file_digest(local, "sha256").hexdigest(), sha256)
        yield Path(location)
        return
    owned = client is None
    http = client or httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0))
    fd, tmp = tempfile.mkstemp(suffix=".parquet", prefix="producer-")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, http.stream("GET", location) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes(DOWNLOAD_CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
        _check(location, digest.hexdigest(), sha256)
        yield Path(tmp)
    finally:
        if owned:
            http.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def local_copies(
    stack: contextlib.ExitStack,
    locations: list[str],
    *,
    sha256_of: Callable[[str], str | None] = lambda _location: None,
) -> list[tuple[str, Path]]:
    """(display name, local path) of each location, checked to be parquet (and to have the sha256
    `sha256_of` gives it); a download or a file that fails raises a `SourceError` naming it."""
    paths = []
    for location in locations:
        try:
            path = stack.enter_context(local_copy(location, sha256=sha256_of(location)))
            row_count(path)  # reads the footer: a file that is not parquet fails here, named
        except (OSError, ValueError, pa.ArrowException, httpx.HTTPError) as exc:
            named = str(exc) if str(exc).startswith(location) else f"{location}: {exc}"
            raise SourceError(named) from exc
        paths.append((file_name(location), path))
    return paths


@dataclass(frozen=True)
class RowBatch:
    """Consecutive rows of one file; `first_row` is the file row number of the first one."""

    first_row: int
    batch: pa.RecordBatch


def open_parquet(path: Path) -> pq.ParquetFile:
    return pq.ParquetFile(path, buffer_size=_READ_BUFFER_BYTES, pre_buffer=False)


def row_count(path: Path) -> int:
    return int(open_parquet(path).metadata.num_rows)


def iter_row_batches(path: Path, batch_rows: int = 10_000) -> Iterator[RowBatch]:
    """The file's rows, `batch_rows` at a time, numbered from 0."""
    parquet = open_parquet(path)
    first = 0
    try:
        for batch in parquet.iter_batches(batch_size=batch_rows, use_threads=False):
            yield RowBatch(first, batch)
            first += batch.num_rows
    finally:
        parquet.close()
