"""The collector's URL as people write it: the base URL, or the full URL of a collect endpoint."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from producer.sending import BATCH_PATH, COLLECT_PATH

ACCEPTED_FORMS = (
    "the collector's base URL (http://HOST:PORT) or the URL of one of its collect endpoints "
    f"(http://HOST:PORT{COLLECT_PATH} or http://HOST:PORT{BATCH_PATH}, a trailing / allowed)"
)


def collector_base_url(url: str) -> str:
    """The base URL both collect routes hang from; ValueError naming the accepted forms."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL; give {ACCEPTED_FORMS}")
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r} has a query or fragment; give {ACCEPTED_FORMS}")
    path = parts.path.rstrip("/")
    # The batch path first: it ends with the single one's path plus "/batch".
    for endpoint in (BATCH_PATH, COLLECT_PATH):
        if path.endswith(endpoint):
            # A prefix before the endpoint (a gateway mounting the collector) stays in the base.
            path = path.removesuffix(endpoint)
            break
    else:
        if path:
            raise ValueError(f"{url!r} has the path {parts.path!r}; give {ACCEPTED_FORMS}")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
