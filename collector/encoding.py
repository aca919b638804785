"""Compressed request bodies (`Content-Encoding: gzip` or `deflate`), decoded within the limit.

Nothing here does I/O: the app reads the body (no more than the limit), then asks for it decoded.
Decompression stops as soon as the output passes the limit, so a small "gzip bomb" costs at most
the limit in memory and time, never what it would expand to.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

# zlib's window bits: gzip header and trailer; zlib header (RFC 1950); raw deflate (RFC 1951).
_GZIP: Final = 16 + zlib.MAX_WBITS
_ZLIB: Final = zlib.MAX_WBITS
_RAW: Final = -zlib.MAX_WBITS

# The codings understood (RFC 9110 section 8.4.1). `x-gzip` is gzip's old name, which RFC 9110
# asks recipients to accept. zstd would need a new dependency (the standard library has it only
# from Python 3.14), so it is refused with 415 like any other unknown coding.
SUPPORTED: Final = ("gzip", "deflate")
_ALIASES: Final = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A coding this collector does not decode: 415, nothing read or stored."""

    coding: str


@dataclass(frozen=True, slots=True)
class Corrupt:
    """A body that does not decode with its declared coding: 400, dead-lettered as received."""

    coding: str
    reason: str


@dataclass(frozen=True, slots=True)
class TooManyCodings:
    """More codings than MAX_CODINGS: 415, nothing read or stored."""

    count: int


# Each coding is a full pass over the body, and undoing thousands of stacked ones costs CPU that
# grows with the square of their number; no client stacks more than two (gzip over deflate).
MAX_CODINGS: Final = 2


class TooLarge:
    """The decoded body passes the limit: 413, nothing stored."""


TOO_LARGE: Final = TooLarge()


def codings(values: Iterable[bytes]) -> list[str] | Unsupported | TooManyCodings:
    """The codings applied to the body, in the order they were applied, from the values of its
    Content-Encoding headers ([] when none)."""
    applied: list[str] = []
    for value in values:
        for token in value.decode("latin-1").split(","):
            coding = token.strip().lower()
            if not coding or coding == "identity":
                continue
            known = _ALIASES.get(coding)
            if known is None:
                return Unsupported(coding)
            applied.append(known)
    return applied if len(applied) <= MAX_CODINGS else TooManyCodings(len(applied))


def decode(body: bytes, applied: list[str], limit: int) -> bytes | Corrupt | TooLarge:
    """`body` with its codings undone (last applied, first undone), never more than `limit`."""
    for coding in reversed(applied):
        decoded = _gunzip(body, limit) if coding == "gzip" else _inflate(body, limit)
        if not isinstance(decoded, bytes):
            return decoded
        body = decoded
    return body


def _zlib_header(data: bytes) -> bool:
    # HTTP's "deflate" is the zlib format, but some clients send raw deflate; the two-byte zlib
    # header (method 8, a check value divisible by 31) tells them apart, as browsers do.
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def _inflate(data: bytes, limit: int) -> bytes | Corrupt | TooLarge:
    stream = _stream(data, _ZLIB if _zlib_header(data) else _RAW, limit, "deflate")
    if not isinstance(stream, tuple):
        return stream
    decoded, rest = stream
    if rest:
        return Corrupt("deflate", "data follows the end of the compressed stream")
    return decoded


def _gunzip(data: bytes, limit: int) -> bytes | Corrupt | TooLarge:
    # A gzip file may hold several members, one after the other (RFC 1952 section 2.2).
    parts: list[bytes] = []
    size = 0
    while True:
        member = _stream(data, _GZIP, limit - size, "gzip")
        if not isinstance(member, tuple):
            return member
        decoded, data = member
        parts.append(decoded)
        size += len(decoded)
        if not data:
            return b"".join(parts)


def _stream(
    data: bytes, wbits: int, limit: int, coding: str
) -> tuple[bytes, bytes] | Corrupt | TooLarge:
    """One compressed stream at the start of `data`, decoded, and the bytes after it."""
    inflater = zlib.decompressobj(wbits)
    parts: list[bytes] = []
    size = 0
    while True:
        try:
            # `max_length` is never 0 here (0 would mean "no limit").
            chunk = inflater.decompress(data, limit + 1 - size)
        except zlib.error as exc:
            return Corrupt(coding, str(exc))
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return TOO_LARGE
        if inflater.eof:
            return b"".join(parts), inflater.unused_data
        data = inflater.unconsumed_tail
        if not data and not chunk:
            return Corrupt(coding, "the compressed stream ends before its end marker")
