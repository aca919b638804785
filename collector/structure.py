"""A JSON body's structure, read without trusting it: a batch's elements as the bytes each spans,
how deep a parsed value nests, and whether an object names a key twice. Nothing here does I/O."""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from collector.schemas import MAX_DEPTH

_WHITESPACE = b" \t\n\r"

# Every element of a JSON array as the exact bytes the client sent (number spellings, escapes),
# at C speed: msgspec's Raw only finds where each value ends, without decoding it.
_ARRAY_SPANS = msgspec.json.Decoder(list[msgspec.Raw])
# The slower splitter for arrays msgspec refuses (an element that is not JSON, or too deep for it):
# a string literal, or one structural character.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)
_OPEN, _CLOSE, _COMMA, _QUOTE = frozenset(b"[{"), frozenset(b"]}"), ord(","), ord('"')


def array_elements(body: bytes) -> list[bytes] | None:
    """Each element of a JSON array, as the bytes it spans in `body`; None if `body` is no array.

    The elements themselves are not checked: one that is not JSON is only that element's problem.
    """
    try:
        return [bytes(element) for element in _ARRAY_SPANS.decode(body)]
    except (msgspec.DecodeError, RecursionError):
        return _scan_array(body)


def _scan_array(body: bytes) -> list[bytes] | None:
    # By hand, because no JSON library splits an array whose elements it cannot all parse; the
    # cost is one regular-expression step per string or bracket, only for such bodies.
    start = len(body) - len(body.lstrip(_WHITESPACE))
    if body[start : start + 1] != b"[":
        return None
    elements: list[bytes] = []
    depth, element_start = 0, start + 1
    for token in _TOKENS.finditer(body, start + 1):
        char = body[token.start()]
        if char == _QUOTE:
            continue
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            if depth:
                depth -= 1
                continue
            last = body[element_start : token.start()].strip(_WHITESPACE)
            if (
                char != ord("]")
                or (not last and elements)
                or body[token.end() :].strip(_WHITESPACE)
            ):
                return None
            return [*elements, last] if last else elements
        elif char == _COMMA and not depth:
            elements.append(body[element_start : token.start()].strip(_WHITESPACE))
            element_start = token.end()
    return None


def too_deep(value: object, raw: bytes) -> bool:
    """Whether `value` (parsed from `raw`) nests deeper than MAX_DEPTH."""
    if raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH:  # the usual case, without a walk
        return False
    level: list[Any] = [value]
    for _ in range(MAX_DEPTH):
        below: list[Any] = []
        for container in level:
            for child in container.values() if type(container) is dict else container:
                if type(child) is dict or type(child) is list:
                    below.append(child)
        if not below:
            return False
        level = below
    return True


def _pairs(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return pairs


def repeats_a_key(event: dict[str, Any], raw: bytes) -> bool:
    """Whether the object `raw` (parsed as `event`, only known keys) names a key twice."""
    # Without a backslash every key is spelled literally, so as many spellings as keys means
    # no repeat (a payload quoting a key name only sends the event the slow way).
    if b"\\" not in raw:
        count = raw.count
        spelled = count(b'"event_type"') + count(b'"schema_version"') + count(b'"payload"')
        if "event_id" in event:
            spelled += count(b'"event_id"')
        if spelled == len(event):
            return False
    # The standard library can hand over an object's pairs before they become a dict; numbers
    # stay text (no 4,300-digit limit), and `raw` is known to be JSON no deeper than MAX_DEPTH.
    pairs = json.loads(raw, object_pairs_hook=_pairs, parse_int=str, parse_float=str)
    return len(pairs) != len(event)
