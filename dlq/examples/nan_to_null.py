"""Bodies from `json.dumps` of pandas rows carry a bare `NaN` (not JSON) for a missing value;
this writes each as `null`, which is what the row meant. Use: `--transform` with this file."""

import json


def transform(body: bytes) -> bytes:
    # Python's reader takes NaN and Infinity; `parse_constant` turns each into None (null).
    event = json.loads(body, parse_constant=lambda _: None)
    return json.dumps(event, ensure_ascii=False, allow_nan=False).encode()
